//! An adversarial review of `splice`: a destination the kernel cannot splice into (no byte
//! may leave the source), what a dropped or failed copy loses (only what its private pipe
//! held, the rest in order), half-closes in both orders and across a Unix and a TCP side, a
//! stalled destination or an idle source that must cost no polls (even with the socket's
//! error queue holding timestamps, which `poll` reports as `POLLERR`), urgent data inline,
//! 256 MiB checked at both ends, and many copies at once whose private pipes all close.

mod support;

use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpStream, UnixStream};
use overlap::pipe::{pipe, splice_bidirectional, splice_copy};
use overlap::{block_on, spawn, yield_now, AsyncFd};
use support::{
    eventfd, fill_send_buffer, open_fds, pattern_seeded, send_urgent, set_int_option, settle,
    tcp_pair, within,
};

/// Generous: only a hang (a lost wakeup) gets near it.
const HANG: Duration = Duration::from_secs(20);

/// `SO_TIMESTAMPING` (`SO_TIMESTAMPING_OLD`, the one that takes an int).
const SO_TIMESTAMPING: libc::c_int = 37;
/// Software transmit timestamps, reported with no payload: every send queues one note on
/// the socket's error queue, which `poll` reports as `POLLERR` until it is read.
const TX_SOFTWARE_TSONLY: libc::c_int = (1 << 1) | (1 << 4) | (1 << 11);

/// Reads `n` bytes from `s` exactly.
async fn read_n<S: AsyncReadExt + Unpin>(s: &mut S, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    within(HANG, s.read_exact(&mut got), "bytes never came")
        .await
        .unwrap();
    got
}

/// Task polls so far, on this runtime.
fn polls() -> u64 {
    overlap::metrics().task_polls
}

/// Lets the loop turn `rounds` times; returns how many task polls that took. A task that
/// waits quietly costs none; one that wakes itself costs one a round.
async fn polls_over(rounds: usize) -> u64 {
    settle().await;
    let before = polls();
    for _ in 0..rounds {
        yield_now().await;
    }
    polls() - before
}

/// An eventfd takes writes (so its write readiness passes) but the kernel cannot splice
/// into it (`EINVAL`): `splice_copy` must find that out before it takes a byte from the
/// source, which would otherwise be lost in its private pipe. `splice_bidirectional` too.
#[test]
fn a_destination_the_kernel_cannot_splice_into_takes_no_byte_from_the_source() {
    block_on(async {
        let (mut peer, src) = UnixStream::pair().unwrap();
        let efd = AsyncFd::new(eventfd()).unwrap();
        peer.write_all(b"must stay queued").await.unwrap();
        let err = within(HANG, splice_copy(&src, &efd), "splice_copy hung")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("splice"), "{err}");
        let mut src = src;
        assert_eq!(read_n(&mut src, 16).await, b"must stay queued");

        peer.write_all(b"both ways").await.unwrap();
        let err = within(HANG, splice_bidirectional(&src, &efd), "bidirectional hung")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert_eq!(read_n(&mut src, 9).await, b"both ways");
    });
}

/// A TCP connection whose first end keeps a note on its error queue for each send (so
/// `poll` says `POLLERR` while no error is pending): `(noted, peer)`.
async fn timestamped_pair() -> (TcpStream, TcpStream) {
    let (a, b) = tcp_pair().await;
    set_int_option(
        a.as_raw_fd(),
        libc::SOL_SOCKET,
        SO_TIMESTAMPING,
        TX_SOFTWARE_TSONLY,
    )
    .unwrap();
    (a, b)
}

/// `splice_to` into a socket that is full and whose error queue holds notes: `poll` says
/// `POLLERR` for it, which is no room and no error. The splice must wait for room quietly,
/// not wake itself round after round until the peer reads; then every byte goes through.
#[test]
fn splice_to_a_full_socket_with_error_queue_notes_waits_without_spinning() {
    block_on(async {
        let (dst, mut peer) = timestamped_pair().await;
        let filled = fill_send_buffer(&dst);
        let (mut tx, mut rx) = pipe().unwrap();
        tx.write_all(b"after the fill").await.unwrap();
        let task = spawn(async move {
            let n = rx.splice_to(&dst, 1024).await.unwrap();
            (n, dst)
        });
        let spent = polls_over(200).await;
        assert!(spent <= 4, "the waiting splice was polled {spent} times");
        let got = read_n(&mut peer, filled + 14).await;
        let (n, _dst) = within(HANG, task, "splice_to hung").await.unwrap();
        assert_eq!(n, 14);
        assert_eq!(&got[filled..], b"after the fill");
    });
}

/// `splice_from` a socket with nothing to read but notes on its error queue: it waits for
/// data quietly, not in a loop, and then moves it.
#[test]
fn splice_from_an_idle_socket_with_error_queue_notes_waits_without_spinning() {
    block_on(async {
        let (src, mut peer) = timestamped_pair().await;
        // Our own send queues the note; the peer reads it so our side has nothing to read.
        let mut src = src;
        src.write_all(b"ping").await.unwrap();
        assert_eq!(read_n(&mut peer, 4).await, b"ping");
        let (mut tx, mut rx) = pipe().unwrap();
        let task = spawn(async move { tx.splice_from(&src, 1024).await.unwrap() });
        let spent = polls_over(200).await;
        assert!(spent <= 4, "the waiting splice was polled {spent} times");
        peer.write_all(b"pong").await.unwrap();
        assert_eq!(within(HANG, task, "splice_from hung").await.unwrap(), 4);
        assert_eq!(read_n(&mut rx, 4).await, b"pong");
    });
}

/// Sets the capacity of the pipe behind `fd` (`F_SETPIPE_SZ`); the size the kernel chose.
fn set_pipe_size(fd: &impl AsRawFd, size: usize) -> usize {
    // SAFETY: F_SETPIPE_SZ takes an integer argument; the fd is open.
    let got = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size as libc::c_int) };
    assert!(got > 0, "{}", io::Error::last_os_error());
    got as usize
}

/// How a copy stalled on a full one-page pipe ends in [`stall_a_copy_then`].
#[derive(Clone, Copy, Debug)]
enum End {
    /// The copy future is dropped.
    Dropped,
    /// The pipe's reader goes away, so the copy's next write fails.
    ReaderGone,
}

/// Copies 256 KiB from a socket into a one-page pipe nobody reads until the copy stalls,
/// ends it as `end` says, and checks what became of every byte: the pipe holds a prefix,
/// the socket still holds a suffix, and what is missing between them (the private pipe's
/// share) is at most 64 KiB. Returns the copy's result, if it ended by itself.
async fn stall_a_copy_then(end: End) -> Option<io::Result<u64>> {
    const TOTAL: usize = 256 * 1024;
    let (mut peer, mut src) = UnixStream::pair().unwrap();
    let data = pattern_seeded(TOTAL, 11);
    let sent = data.clone();
    let writer = spawn(async move {
        peer.write_all(&sent).await.unwrap();
        // Dropped here: the socket's reader sees end of file after the last byte.
    });
    let (tx, rx) = pipe().unwrap();
    let mut rx = Some(rx);
    assert_eq!(set_pipe_size(&tx, 4096), 4096);
    let result = {
        let copy = std::pin::pin!(splice_copy(&src, &tx));
        match end {
            End::Dropped => {
                let stalled = std::pin::pin!(async {
                    rx.as_ref().unwrap().readable().await.unwrap();
                    settle().await;
                });
                match futures_util::future::select(copy, stalled).await {
                    futures_util::future::Either::Left((res, _)) => panic!("ended: {res:?}"),
                    futures_util::future::Either::Right(((), _copy)) => None,
                }
            }
            End::ReaderGone => {
                let mut copy = copy;
                let mut reader = rx.take().unwrap();
                let data = &data;
                let reader_leaves = std::pin::pin!(async move {
                    let mut at_once = [0u8; 4096];
                    reader.read_exact(&mut at_once).await.unwrap();
                    assert!(at_once[..] == data[..4096]);
                    settle().await;
                });
                match futures_util::future::select(copy.as_mut(), reader_leaves).await {
                    futures_util::future::Either::Left((res, _)) => panic!("ended: {res:?}"),
                    futures_util::future::Either::Right(((), _)) => {}
                }
                Some(within(HANG, copy, "the copy hung").await)
            }
        }
    };
    drop(tx);
    let prefix = match end {
        End::Dropped => {
            let mut got = Vec::new();
            rx.unwrap().read_to_end(&mut got).await.unwrap();
            got
        }
        End::ReaderGone => data[..4096].to_vec(),
    };
    let mut suffix = Vec::new();
    within(HANG, src.read_to_end(&mut suffix), "the rest never came")
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(
        prefix[..] == data[..prefix.len()],
        "the pipe's bytes differ"
    );
    assert!(
        suffix[..] == data[TOTAL - suffix.len()..],
        "the source's rest differs"
    );
    let lost = TOTAL - prefix.len() - suffix.len();
    assert!(lost <= 64 * 1024, "{end:?}: {lost} bytes lost");
    result
}

/// A copy dropped while its destination is full loses only what its private pipe held (at
/// most 64 KiB, as documented); what it wrote came first and in order, and what it did not
/// take is still in the source, in order.
#[test]
fn a_dropped_copy_loses_only_what_its_private_pipe_held() {
    block_on(async {
        assert!(stall_a_copy_then(End::Dropped).await.is_none());
    });
}

/// A copy whose destination fails mid-way (its reader gone) ends with `BrokenPipe`, and
/// takes no more from the source than its private pipe held.
#[test]
fn a_destination_failing_mid_copy_is_broken_pipe_and_the_source_keeps_the_rest() {
    block_on(async {
        let res = stall_a_copy_then(End::ReaderGone).await.unwrap();
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    });
}

/// Writes `data` on `w` while reading from `r` to the end; what was read.
async fn send_and_read<R, W>(r: &mut R, w: &mut W, data: &[u8]) -> Vec<u8>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let (sent, got) = futures_util::join!(
        async {
            w.write_all(data).await?;
            w.close().await
        },
        async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.map(|_| got)
        }
    );
    sent.unwrap();
    got.unwrap()
}

/// Half-closes in both orders through `splice_bidirectional`: the side that shuts down
/// first sees its bytes arrive followed by end of file, which stays end of file, while the
/// other way goes on carrying 1 MiB; then the second half-close ends the call, with exact
/// counts both ways.
#[test]
fn half_closes_in_either_order_pass_on_and_the_other_way_keeps_flowing() {
    block_on(async {
        for server_first in [false, true] {
            let (mut client, proxy_a) = tcp_pair().await;
            let (proxy_b, mut server) = tcp_pair().await;
            let proxy = spawn(async move { splice_bidirectional(&proxy_a, &proxy_b).await });
            let (first, second) = if server_first {
                (&mut server, &mut client)
            } else {
                (&mut client, &mut server)
            };
            first.write_all(b"first and last").await.unwrap();
            first.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            within(HANG, second.read_to_end(&mut got), "no end of file")
                .await
                .unwrap();
            assert_eq!(got, b"first and last", "server first: {server_first}");
            assert_eq!(second.read(&mut [0u8; 8]).await.unwrap(), 0);

            let big = pattern_seeded(1 << 20, 5);
            let (mut second_rd, mut second_wr) = TcpStream::split(second);
            let (mut first_rd, _first_wr) = TcpStream::split(first);
            let (nothing, got) =
                futures_util::join!(send_and_read(&mut second_rd, &mut second_wr, &big), async {
                    let mut got = Vec::new();
                    first_rd.read_to_end(&mut got).await.unwrap();
                    got
                });
            assert!(nothing.is_empty());
            assert!(got == big, "server first: {server_first}: bytes differ");
            let (there, back) = within(HANG, proxy, "the proxy did not end")
                .await
                .unwrap()
                .unwrap();
            let (short, long) = (14, 1 << 20);
            let want = if server_first {
                (long, short)
            } else {
                (short, long)
            };
            assert_eq!((there, back), want, "server first: {server_first}");
        }
    });
}

/// A Unix stream socket on one side and TCP on the other: 1 MiB each way at once, and each
/// half-close passed on (`shutdown` works on both kinds).
#[test]
fn a_unix_side_and_a_tcp_side_carry_both_ways_and_half_close() {
    block_on(async {
        const EACH: usize = 1 << 20;
        let (client, proxy_a) = UnixStream::pair().unwrap();
        let (proxy_b, mut server) = tcp_pair().await;
        let proxy = spawn(async move { splice_bidirectional(&proxy_a, &proxy_b).await });
        let (up, down) = (pattern_seeded(EACH, 21), pattern_seeded(EACH, 22));
        let (mut c_rd, mut c_wr) = client.split();
        let (mut s_rd, mut s_wr) = TcpStream::split(&mut server);
        let (at_client, at_server) = futures_util::join!(
            send_and_read(&mut c_rd, &mut c_wr, &up),
            send_and_read(&mut s_rd, &mut s_wr, &down)
        );
        assert!(at_server == up, "client to server bytes differ");
        assert!(at_client == down, "server to client bytes differ");
        let counts = within(HANG, proxy, "the proxy did not end").await.unwrap();
        assert_eq!(counts.unwrap(), (EACH as u64, EACH as u64));
    });
}

/// Writes on `conn` until the kernel takes nothing more, letting the loop turn between
/// rounds so the bytes move along the chain: every buffer on the way is full then.
async fn fill_chain(conn: &TcpStream) -> usize {
    let mut total = 0;
    for _ in 0..4 {
        settle().await;
        total += fill_send_buffer(conn);
    }
    total
}

/// A destination that stops reading stalls `splice_copy` and `splice_bidirectional` with
/// every buffer full: the waiting copy is not polled while the loop turns.
#[test]
fn a_stalled_destination_costs_no_polls() {
    block_on(async {
        for bidirectional in [false, true] {
            let (client, proxy_in) = tcp_pair().await;
            let (proxy_out, mut server) = tcp_pair().await;
            let proxy = spawn(async move {
                if bidirectional {
                    splice_bidirectional(&proxy_in, &proxy_out)
                        .await
                        .map(|(n, _)| n)
                } else {
                    splice_copy(&proxy_in, &proxy_out).await
                }
            });
            let sent = fill_chain(&client).await;
            let spent = polls_over(200).await;
            assert!(spent <= 4, "bidirectional {bidirectional}: {spent} polls");
            client.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            within(HANG, server.read_to_end(&mut got), "the rest never came")
                .await
                .unwrap();
            assert_eq!(got.len(), sent);
            assert!(got.iter().all(|&b| b == 7));
            // The other way has nothing to carry: its end ends the bidirectional call.
            server.shutdown(Shutdown::Write).unwrap();
            let n = within(HANG, proxy, "the proxy did not end").await.unwrap();
            assert_eq!(n.unwrap(), sent as u64);
        }
    });
}

/// With `SO_OOBINLINE` the urgent byte is part of the stream: `splice` stops at the mark,
/// and the step over it must forward that byte in its place, as a read would return it.
#[test]
fn an_urgent_byte_inline_is_forwarded_in_its_place() {
    block_on(async {
        let listener = overlap::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        set_int_option(conn.as_raw_fd(), libc::SOL_SOCKET, libc::SO_OOBINLINE, 1).unwrap();
        std::io::Write::write_all(&mut peer, b"ab").unwrap();
        send_urgent(peer.as_raw_fd(), b'!');
        std::io::Write::write_all(&mut peer, b"cd").unwrap();
        peer.shutdown(Shutdown::Write).unwrap();
        let (tx, mut rx) = pipe().unwrap();
        let n = within(HANG, splice_copy(&conn, &tx), "stuck at the mark")
            .await
            .unwrap();
        drop(tx);
        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.unwrap();
        assert_eq!((n, got.as_slice()), (5, &b"ab!cd"[..]));
    });
}

/// 256 MiB through a `splice_copy` between loopback connections: every 1 MiB chunk is
/// stamped with its number, so a chunk lost, repeated or out of place is caught, and each
/// arrives whole; the count is exact.
#[test]
fn two_hundred_fifty_six_mib_arrive_whole_and_in_order() {
    block_on(async {
        const CHUNK: usize = 1 << 20;
        const CHUNKS: u64 = 256;
        let base = std::rc::Rc::new(pattern_seeded(CHUNK, 31));
        let chunk = move |i: u64| {
            let mut c = base.to_vec();
            c[..8].copy_from_slice(&i.to_le_bytes());
            c[CHUNK - 8..].copy_from_slice(&(!i).to_le_bytes());
            c
        };
        let (mut client, proxy_in) = tcp_pair().await;
        let (proxy_out, mut server) = tcp_pair().await;
        let proxy = spawn(async move { splice_copy(&proxy_in, &proxy_out).await });
        let sender_chunk = chunk.clone();
        let sender = spawn(async move {
            let chunk = sender_chunk;
            for i in 0..CHUNKS {
                client.write_all(&chunk(i)).await.unwrap();
            }
            client.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = vec![0u8; CHUNK];
        for i in 0..CHUNKS {
            within(HANG, server.read_exact(&mut got), "the copy stalled")
                .await
                .unwrap();
            assert!(got == chunk(i), "chunk {i} differs");
        }
        assert_eq!(
            server.read(&mut got).await.unwrap(),
            0,
            "bytes after the end"
        );
        sender.await.unwrap();
        let n = within(HANG, proxy, "the copy did not end").await.unwrap();
        assert_eq!(n.unwrap(), CHUNKS * CHUNK as u64);
    });
}

/// 32 copies at once hold one private pipe each (two fds), no more; each closes it as it
/// ends, so the process is back to its sockets alone, then to where it started.
#[test]
fn many_copies_at_once_hold_one_private_pipe_each_and_close_it() {
    // Counts the whole process's fds: alone in a child, so no other test's come or go.
    support::run_in_child(
        "many_copies_at_once_hold_one_private_pipe_each_and_close_it",
        || block_on(count_fds_around_many_copies()),
    );
}

async fn count_fds_around_many_copies() {
    const COPIES: usize = 32;
    let before = open_fds();
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    let mut copies = Vec::new();
    for _ in 0..COPIES {
        let (client, proxy_in) = tcp_pair().await;
        let (proxy_out, server) = tcp_pair().await;
        copies.push(spawn(async move {
            let n = splice_copy(&proxy_in, &proxy_out).await;
            (n, proxy_in, proxy_out)
        }));
        clients.push(client);
        servers.push(server);
    }
    for (i, (client, server)) in clients.iter_mut().zip(&mut servers).enumerate() {
        client.write_all(&[i as u8]).await.unwrap();
        assert_eq!(read_n(server, 1).await, [i as u8]);
    }
    assert_eq!(open_fds(), before + COPIES * 4 + COPIES * 2, "mid-copy");
    for client in &clients {
        client.shutdown(Shutdown::Write).unwrap();
    }
    let mut sockets = Vec::new();
    for copy in copies {
        let (n, a, b) = within(HANG, copy, "a copy did not end").await.unwrap();
        assert_eq!(n.unwrap(), 1);
        sockets.push((a, b));
    }
    assert_eq!(open_fds(), before + COPIES * 4, "after the copies");
    drop((sockets, clients, servers));
    assert_eq!(open_fds(), before, "at the end");
}
