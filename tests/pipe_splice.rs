//! `splice` between sockets and pipes: exact bytes, waiting on the side that is not ready
//! (a full pipe, an empty socket, a full socket), errors, and no leaked fd.

mod support;

use std::io;
use std::net::Shutdown;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpStream, UnixStream};
use overlap::pipe::{pipe, splice_copy};
use overlap::time::{sleep, timeout};
use overlap::{block_on, spawn, AsyncFd};
use support::{eventfd, eventfd_add, open_fds, pattern_seeded, tcp_pair, within};

/// Generous: only a hang (a lost wakeup) gets near it.
const HANG: Duration = Duration::from_secs(60);

#[test]
fn splice_copy_forwards_eight_mib_between_tcp_connections_exactly() {
    block_on(async {
        const TOTAL: usize = 8 << 20;
        let (mut client, proxy_in) = tcp_pair().await;
        let (proxy_out, mut server) = tcp_pair().await;
        let data = pattern_seeded(TOTAL, 7);
        let sent = data.clone();
        let writer = spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        });
        let proxy = spawn(async move {
            let n = splice_copy(&proxy_in, &proxy_out).await.unwrap();
            proxy_out.shutdown(Shutdown::Write).unwrap();
            n
        });
        let mut got = Vec::with_capacity(TOTAL);
        within(HANG, server.read_to_end(&mut got), "proxy hung")
            .await
            .unwrap();
        writer.await.unwrap();
        assert_eq!(proxy.await.unwrap(), TOTAL as u64);
        assert_eq!(got.len(), TOTAL);
        assert!(got == data, "bytes changed on the way");
    });
}

/// Writes `payload` and shuts the write side, while reading everything the peer sends.
async fn send_and_read_to_end(stream: &mut TcpStream, payload: &[u8]) -> Vec<u8> {
    let (mut rd, mut wr) = TcpStream::split(stream);
    let (w, got) = futures_util::join!(
        async {
            wr.write_all(payload).await?;
            wr.close().await
        },
        async {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.map(|_| got)
        }
    );
    w.unwrap();
    got.unwrap()
}

#[test]
fn a_bidirectional_proxy_of_split_halves_carries_both_directions() {
    block_on(async {
        const EACH: usize = 1 << 20;
        let (mut left, proxy_a) = tcp_pair().await;
        let (proxy_b, mut right) = tcp_pair().await;
        let (a_rd, a_wr) = proxy_a.into_split();
        let (b_rd, b_wr) = proxy_b.into_split();
        // Each direction in its own task; dropping a write half shuts its side down.
        let ab = spawn(async move { splice_copy(&a_rd, &b_wr).await.unwrap() });
        let ba = spawn(async move { splice_copy(&b_rd, &a_wr).await.unwrap() });
        let to_right = pattern_seeded(EACH, 1);
        let to_left = pattern_seeded(EACH, 2);
        let (l, r) = futures_util::join!(
            send_and_read_to_end(&mut left, &to_right),
            send_and_read_to_end(&mut right, &to_left)
        );
        assert!(l == to_left, "right-to-left bytes differ");
        assert!(r == to_right, "left-to-right bytes differ");
        assert_eq!(ab.await.unwrap(), EACH as u64);
        assert_eq!(ba.await.unwrap(), EACH as u64);
    });
}

#[test]
fn splice_from_a_socket_into_a_full_pipe_waits_for_the_pipe_not_the_socket() {
    block_on(async {
        const TOTAL: usize = 512 * 1024;
        let (mut a, b) = UnixStream::pair().unwrap();
        let (mut tx, mut rx) = pipe().unwrap();
        let data = pattern_seeded(TOTAL, 3);
        // All of it sits in the socket before the first splice: no read edge will come.
        let sent = data.clone();
        let writer = spawn(async move { a.write_all(&sent).await.unwrap() });
        // The reader starts late, so the pipe (64 KiB) fills and the splice must wait on it.
        let reader = spawn(async move {
            sleep(Duration::from_millis(50)).await;
            let mut got = vec![0u8; TOTAL];
            rx.read_exact(&mut got).await.unwrap();
            got
        });
        let mut moved = 0;
        while moved < TOTAL {
            let n = within(
                HANG,
                tx.splice_from(&b, TOTAL - moved),
                "splice_from slept on the wrong fd",
            )
            .await
            .unwrap();
            assert!(n > 0, "unexpected end of file after {moved} bytes");
            moved += n;
        }
        writer.await.unwrap();
        assert!(reader.await.unwrap() == data);
    });
}

#[test]
fn splice_from_an_empty_socket_waits_for_data() {
    block_on(async {
        let (mut a, b) = UnixStream::pair().unwrap();
        let (mut tx, mut rx) = pipe().unwrap();
        let writer = spawn(async move {
            sleep(Duration::from_millis(20)).await;
            a.write_all(b"late data").await.unwrap();
            a
        });
        let n = within(
            HANG,
            tx.splice_from(&b, 4096),
            "splice_from missed the data",
        )
        .await
        .unwrap();
        let mut got = vec![0u8; n];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"late data");
        // End of file on the socket is a 0, and stays one.
        drop(writer.await.unwrap());
        assert_eq!(tx.splice_from(&b, 4096).await.unwrap(), 0);
        assert_eq!(tx.splice_from(&b, 4096).await.unwrap(), 0);
    });
}

#[test]
fn splice_to_a_full_socket_waits_until_the_peer_reads() {
    block_on(async {
        const TOTAL: usize = 2 << 20;
        let (a, mut b) = UnixStream::pair().unwrap();
        let (mut tx, mut rx) = pipe().unwrap();
        let data = pattern_seeded(TOTAL, 4);
        let sent = data.clone();
        let writer = spawn(async move {
            tx.write_all(&sent).await.unwrap();
        });
        // The peer reads only after the socket buffer has long been full.
        let reader = spawn(async move {
            sleep(Duration::from_millis(50)).await;
            let mut got = vec![0u8; TOTAL];
            b.read_exact(&mut got).await.unwrap();
            got
        });
        let mut moved = 0;
        while moved < TOTAL {
            let n = within(
                HANG,
                rx.splice_to(&a, TOTAL - moved),
                "splice_to slept on the wrong fd",
            )
            .await
            .unwrap();
            assert!(n > 0);
            moved += n;
        }
        writer.await.unwrap();
        assert!(reader.await.unwrap() == data);
        // Every write end is closed and the pipe is drained: end of file.
        assert_eq!(rx.splice_to(&a, 16).await.unwrap(), 0);
    });
}

#[test]
fn pipe_to_pipe_works_too() {
    block_on(async {
        let (mut tx1, rx1) = pipe().unwrap();
        let (mut tx2, mut rx2) = pipe().unwrap();
        tx1.write_all(b"hop").await.unwrap();
        assert_eq!(tx2.splice_from(&rx1, 100).await.unwrap(), 3);
        let mut got = [0u8; 3];
        rx2.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hop");
    });
}

#[test]
fn splicing_into_a_reset_socket_is_an_error_and_the_process_lives() {
    block_on(async {
        let (a, b) = tcp_pair().await;
        // RST on close: linger on, zero timeout.
        b.set_linger(Some(Duration::ZERO)).unwrap();
        drop(b);
        sleep(Duration::from_millis(20)).await;
        let (mut tx, mut rx) = pipe().unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut result = Ok(0);
        for _ in 0..64 {
            tx.write_all(&chunk).await.unwrap();
            result = within(
                HANG,
                rx.splice_to(&a, chunk.len()),
                "splice_to hung on a dead socket",
            )
            .await;
            if result.is_err() {
                break;
            }
        }
        let kind = result.unwrap_err().kind();
        assert!(
            matches!(
                kind,
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{kind:?}"
        );
    });
}

#[test]
fn an_fd_the_kernel_cannot_splice_gives_invalid_input() {
    block_on(async {
        let efd = AsyncFd::new(eventfd()).unwrap();
        eventfd_add(efd.get_ref(), 1);
        let (mut tx, _rx) = pipe().unwrap();
        let err = tx.splice_from(&efd, 8).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("splice"), "{err}");
        // A zero-length splice does nothing and succeeds, whatever the fds.
        assert_eq!(tx.splice_from(&efd, 0).await.unwrap(), 0);
    });
}

#[test]
fn splice_copy_closes_its_private_pipe_when_done_or_dropped() {
    // Counts the whole process's fds: alone in a child, so that no other test's fds (its
    // pipes, sockets, runtime) come or go between the two counts.
    support::run_in_child(
        "splice_copy_closes_its_private_pipe_when_done_or_dropped",
        || block_on(count_the_fds_around_splice_copies()),
    );
}

async fn count_the_fds_around_splice_copies() {
    let before = open_fds();
    {
        let (mut client, proxy_in) = tcp_pair().await;
        let (proxy_out, mut server) = tcp_pair().await;
        client.write_all(b"x").await.unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(splice_copy(&proxy_in, &proxy_out).await.unwrap(), 1);
        // Cancelled mid-copy: the source never ends, so the timeout drops the future.
        let (_silent, proxy_in2) = tcp_pair().await;
        assert!(timeout(
            Duration::from_millis(20),
            splice_copy(&proxy_in2, &proxy_out)
        )
        .await
        .is_err());
        drop(proxy_out);
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"x");
    }
    assert_eq!(open_fds(), before, "an fd leaked");
}

#[test]
fn splice_from_a_closed_sender_is_broken_pipe() {
    block_on(async {
        let (a, _b) = UnixStream::pair().unwrap();
        let (mut tx, _rx) = pipe().unwrap();
        tx.close().await.unwrap();
        let err = tx.splice_from(&a, 10).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn splice_bidirectional_ends_with_an_error_when_one_side_resets() {
    block_on(async {
        let (mut client, proxy_a) = tcp_pair().await;
        let (proxy_b, server) = tcp_pair().await;
        let proxy =
            spawn(async move { overlap::pipe::splice_bidirectional(&proxy_a, &proxy_b).await });
        // The server side resets; the client keeps sending into the proxy.
        server.set_linger(Some(Duration::ZERO)).unwrap();
        drop(server);
        let chunk = vec![1u8; 64 * 1024];
        for _ in 0..64 {
            if client.write_all(&chunk).await.is_err() || proxy.is_finished() {
                break;
            }
        }
        let res = within(HANG, proxy, "the proxy hung after a reset")
            .await
            .unwrap();
        let kind = res.unwrap_err().kind();
        assert!(
            matches!(
                kind,
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{kind:?}"
        );
    });
}

#[test]
fn a_pipe_end_used_the_wrong_way_round_is_invalid_input_not_a_hang() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        let (other_tx, other_rx) = pipe().unwrap();
        let errs = [
            // A write end as the source: it never becomes readable.
            within(HANG, tx.splice_from(&other_tx, 16), "splice_from hung")
                .await
                .unwrap_err(),
            // A read end as the destination: it never becomes writable.
            within(HANG, rx.splice_to(&other_rx, 16), "splice_to hung")
                .await
                .unwrap_err(),
            within(HANG, splice_copy(&other_tx, &other_rx), "splice_copy hung")
                .await
                .unwrap_err(),
        ];
        for err in errs {
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
    });
}
