//! Behaviours checked by mio's TCP stream tests (`tcp_stream.rs`, `tcp.rs`,
//! `regressions.rs`) and async-io's (`async.rs`), ported to overlap's `TcpStream` on
//! loopback (the listener's side is in `port_mio_tcp_listener.rs`). mio asserts raw epoll
//! events; here the same kernel states are checked through what a task sees: what `ready`
//! reports, which waits end, what each call returns. Each test names the test it follows.
//!
//! Left out, already covered elsewhere: the smoke tests and vectored I/O (`net_tcp_echo.rs`),
//! a refused port (`net_connect.rs`), urgent data (`net_priority_interest.rs`), `into_std`
//! and `from_std` (`port_tokio_net_tcp.rs`), `try_clone` (overlap has none: `into_std`,
//! clone, `from_std` is the way, and it is tested).

mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt, Interest};
use overlap::net::TcpStream;
use support::{fill_send_buffer, poll_once, settle, tcp_pair, within};

const HANG: Duration = Duration::from_secs(10);
const DATA: &[u8] = b"Hello world!";

// mio: regressions.rs issue_776; tcp_stream.rs smoke (a read before any data would block)
#[overlap::test]
async fn a_fresh_connection_has_nothing_to_read_and_says_so() {
    let (client, _server) = tcp_pair().await;
    let mut buf = [0u8; 16];
    let err = client.try_read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    let mut peek = pin!(client.peek(&mut buf));
    assert!(poll_once(peek.as_mut()).await.is_pending(), "peek saw data");
    assert!(client.take_error().unwrap().is_none());
    let ready = client.ready(Interest::WRITABLE).await.unwrap();
    assert!(ready.is_writable() && !ready.is_readable(), "{ready:?}");
}

// mio: tcp_stream.rs shutdown_read, tcp_shutdown_client_read_close_event
#[overlap::test]
async fn shutdown_read_makes_reads_return_eof_and_shows_read_closed() {
    let (client, _server) = tcp_pair().await;
    client.shutdown(Shutdown::Read).unwrap();
    let ready = within(HANG, client.ready(Interest::READABLE), "no read-closed")
        .await
        .unwrap();
    assert!(ready.is_read_closed(), "{ready:?}");
    let mut buf = [0u8; 16];
    let n = within(HANG, (&client).read(&mut buf), "read after shutdown(Read)").await;
    assert_eq!(n.unwrap(), 0);
    assert_eq!(client.try_read(&mut buf).unwrap(), 0, "EOF stays");
    // The write side is untouched.
    (&client).write_all(DATA).await.unwrap();
}

// mio: tcp_stream.rs shutdown_write
#[overlap::test]
async fn shutdown_write_fails_later_writes_and_keeps_the_read_side() {
    let (mut client, mut server) = tcp_pair().await;
    client.write_all(DATA).await.unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let err = within(HANG, client.write(b"more"), "write after shutdown(Write)")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert_eq!(
        client.try_write(b"more").unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
    // The peer gets the bytes, then EOF, and can still answer.
    let mut got = Vec::new();
    within(HANG, server.read_to_end(&mut got), "peer never saw EOF")
        .await
        .unwrap();
    assert_eq!(got, DATA);
    server.write_all(b"answer").await.unwrap();
    let mut buf = [0u8; 6];
    within(HANG, client.read_exact(&mut buf), "the answer never came")
        .await
        .unwrap();
    assert_eq!(&buf, b"answer");
}

// mio: tcp_stream.rs shutdown_both, tcp_shutdown_client_both_close_event
#[overlap::test]
async fn shutdown_both_ends_reads_and_writes_at_once() {
    let (mut client, mut server) = tcp_pair().await;
    server.write_all(DATA).await.unwrap();
    client.shutdown(Shutdown::Both).unwrap();
    let ready = within(HANG, client.ready(Interest::READABLE), "no read-closed")
        .await
        .unwrap();
    assert!(ready.is_read_closed(), "{ready:?}");
    let ready = within(HANG, client.ready(Interest::WRITABLE), "no write-closed")
        .await
        .unwrap();
    assert!(ready.is_write_closed(), "{ready:?}");
    let mut buf = [0u8; 32];
    // Linux keeps bytes that were queued before the shutdown readable; then EOF.
    let mut got = Vec::new();
    within(
        HANG,
        client.read_to_end(&mut got),
        "no EOF after shutdown(Both)",
    )
    .await
    .unwrap();
    assert!(got.is_empty() || got == DATA, "{got:?}");
    assert_eq!(client.try_read(&mut buf).unwrap(), 0);
    let err = within(HANG, client.write(b"x"), "write after shutdown(Both)")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    // A second shutdown of a shut socket is harmless or ENOTCONN, never a hang.
    let _ = client.shutdown(Shutdown::Both);
}

// mio: tcp_stream.rs tcp_shutdown_server_write_close_event
#[overlap::test]
async fn a_waiter_sees_the_peers_half_close_and_writes_go_on() {
    let (client, server) = tcp_pair().await;
    let mut wait = pin!(client.ready(Interest::READABLE));
    assert!(poll_once(wait.as_mut()).await.is_pending());
    server.shutdown(Shutdown::Write).unwrap();
    let ready = within(HANG, wait, "the half-close did not wake the waiter")
        .await
        .unwrap();
    assert!(
        ready.is_read_closed() && !ready.is_write_closed(),
        "{ready:?}"
    );
    // Half-closed, not closed: the other direction still carries bytes.
    (&client).write_all(DATA).await.unwrap();
    let mut buf = [0u8; DATA.len()];
    (&server).read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, DATA);
    let mut rest = Vec::new();
    (&client).read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

// mio: tcp_stream.rs tcp_reset_close_event, hup_event_on_disconnect; tcp.rs connection_reset_by_peer
#[overlap::test]
async fn a_reader_waiting_when_the_peer_resets_gets_connection_reset() {
    let (client, server) = tcp_pair().await;
    client.try_write(DATA).unwrap();
    let reader = overlap::spawn({
        let client = Rc::new(client);
        async move {
            let mut buf = [0u8; 16];
            let first = (&*client).read(&mut buf).await;
            (client, first)
        }
    });
    settle().await;
    server.set_zero_linger().unwrap();
    drop(server); // unread data and no linger: the kernel sends a reset
    let (client, first) = within(HANG, reader, "the reset did not wake the reader")
        .await
        .unwrap();
    assert_eq!(first.unwrap_err().kind(), ErrorKind::ConnectionReset);
    let ready = client.ready(Interest::READABLE).await.unwrap();
    assert!(ready.is_read_closed(), "{ready:?}");
    // The error is reported once; the socket then reads as closed and refuses writes.
    let mut buf = [0u8; 16];
    assert_eq!((&*client).read(&mut buf).await.unwrap(), 0);
    let err = (&*client).write(DATA).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
}

// async-io: async.rs tcp_reader_hangup (a writer learns that its reader is gone)
#[overlap::test]
async fn a_writer_blocked_on_a_full_buffer_learns_the_reader_is_gone() {
    let (client, server) = tcp_pair().await;
    fill_send_buffer(&client);
    let writer = overlap::spawn(async move {
        let chunk = vec![1u8; 64 * 1024];
        loop {
            if let Err(e) = (&client).write_all(&chunk).await {
                return e;
            }
        }
    });
    settle().await;
    drop(server); // unread data: closing resets the connection
    let err = within(HANG, writer, "the writer never learnt")
        .await
        .unwrap();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
        ),
        "{err:?}"
    );
}

// async-io: async.rs tcp_writer_hangup (a reader learns that its writer is gone)
#[overlap::test]
async fn a_reader_waiting_when_the_peer_closes_cleanly_reads_eof() {
    let (mut client, server) = tcp_pair().await;
    let closer = overlap::spawn(async move {
        settle().await;
        drop(server);
    });
    let mut got = Vec::new();
    within(HANG, client.read_to_end(&mut got), "no EOF")
        .await
        .unwrap();
    assert!(got.is_empty());
    closer.await.unwrap();
}

// mio: tcp.rs write_then_drop (bytes written just before a drop still arrive)
#[overlap::test]
async fn bytes_written_right_before_a_drop_are_delivered() {
    let (mut client, mut server) = tcp_pair().await;
    let big: Vec<u8> = (0..64 * 1024).map(|i| i as u8).collect();
    client.write_all(&big).await.unwrap();
    drop(client);
    let mut got = Vec::new();
    within(HANG, server.read_to_end(&mut got), "no EOF")
        .await
        .unwrap();
    assert_eq!(got, big);
}

// async-io: async.rs tcp_duplex (a reader and a writer blocked on one stream at once
// both get their own edge)
#[overlap::test]
async fn a_blocked_reader_and_writer_on_one_stream_are_both_woken() {
    let (a, b) = tcp_pair().await;
    let (a, b) = (Rc::new(a), Rc::new(b));
    const CHUNKS: usize = 256;
    async fn write_all_then_close(s: Rc<TcpStream>) {
        let buf = vec![3u8; 16 * 1024];
        for _ in 0..CHUNKS {
            (&*s).write_all(&buf).await.unwrap();
        }
        s.shutdown(Shutdown::Write).unwrap();
    }
    async fn read_to_eof(s: Rc<TcpStream>) -> usize {
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        loop {
            match (&*s).read(&mut buf).await.unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    }
    // Both directions of `a` wait: its reader for data, its writer for room.
    let r1 = overlap::spawn(read_to_eof(a.clone()));
    let w1 = overlap::spawn(write_all_then_close(a.clone()));
    settle().await;
    // Draining `b` frees room for `a`'s writer.
    let r2 = overlap::spawn(read_to_eof(b.clone()));
    within(HANG, w1, "a's writer was never woken")
        .await
        .unwrap();
    assert_eq!(
        within(HANG, r2, "b's reader").await.unwrap(),
        CHUNKS * 16 * 1024
    );
    // Now `b` writes and `a`'s reader, which has waited all along, must wake.
    let w2 = overlap::spawn(write_all_then_close(b));
    let n = within(HANG, r1, "a's reader was never woken")
        .await
        .unwrap();
    assert_eq!(n, CHUNKS * 16 * 1024);
    w2.await.unwrap();
}

// async-io: async.rs shutdown (a shutdown from a concurrent branch ends read_to_end)
#[overlap::test]
async fn a_write_shutdown_made_while_the_peer_reads_ends_its_read() {
    let (mut reader, writer) = tcp_pair().await;
    let mut got = Vec::new();
    let read = reader.read_to_end(&mut got);
    let close = async {
        settle().await;
        writer.shutdown(Shutdown::Write)
    };
    let (read, close) = within(HANG, async { overlap::join!(read, close) }, "hung").await;
    read.unwrap();
    close.unwrap();
    assert!(got.is_empty());
}

// mio: tcp_stream.rs smoke (peek then read), with the peer going away while a peek waits:
// a clean close is a peek of 0 bytes, as often as asked; a reset is the error, once
#[overlap::test]
async fn a_waiting_peek_hears_a_clean_close_and_a_reset() {
    for reset in [false, true] {
        let (client, server) = tcp_pair().await;
        let client = Rc::new(client);
        let peeker = overlap::spawn({
            let client = client.clone();
            async move {
                let mut buf = [0u8; 8];
                client.peek(&mut buf).await
            }
        });
        settle().await;
        if reset {
            server.set_zero_linger().unwrap();
        }
        drop(server);
        let res = within(HANG, peeker, "the close did not wake the peek")
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        if reset {
            assert_eq!(res.unwrap_err().kind(), ErrorKind::ConnectionReset);
        } else {
            assert_eq!(res.unwrap(), 0);
            assert_eq!(client.peek(&mut buf).await.unwrap(), 0, "a second peek");
        }
        assert_eq!((&*client).read(&mut buf).await.unwrap(), 0, "then EOF");
    }
}

// mio: tcp.rs connection_reset_by_peer (the socket is registered only after its peer
// reset it), and the same for data and a clean close that arrived before registration:
// epoll reports the state an fd is already in when it is added, and the wait must see it
#[overlap::test]
async fn state_reached_before_registration_is_seen_by_the_first_wait() {
    for case in ["data", "close", "reset"] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        match case {
            "data" => std::io::Write::write_all(&mut &peer, DATA).unwrap(),
            "close" => peer.shutdown(Shutdown::Both).unwrap(),
            _ => {
                let peer = TcpStream::from_std(peer).unwrap();
                peer.set_zero_linger().unwrap();
                std::io::Write::write_all(&mut &server, b"unread").unwrap();
                drop(peer);
                let server = TcpStream::from_std(server).unwrap();
                let mut buf = [0u8; 16];
                let res = within(HANG, (&server).read(&mut buf), case).await;
                match res {
                    Ok(n) => assert_eq!(n, 0, "{case}"),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{case}"),
                }
                continue;
            }
        }
        server.set_nonblocking(true).unwrap();
        let server = TcpStream::from_std(server).unwrap();
        if case == "data" {
            let mut buf = [0u8; DATA.len()];
            within(HANG, (&server).read_exact(&mut buf), case)
                .await
                .unwrap();
            assert_eq!(buf, DATA);
            drop(peer);
        }
        let mut rest = Vec::new();
        within(HANG, (&server).read_to_end(&mut rest), case)
            .await
            .unwrap();
        assert!(rest.is_empty(), "{case}: {rest:?}");
    }
}
