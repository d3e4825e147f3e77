//! Promises of the TCP rustdoc that no other test held to, one test each, on loopback:
//!
//! - `TcpStream`: after the peer shuts its write side, reads give `Ok(0)` and keep giving
//!   it while writes still arrive; `peek` leaves bytes for the read and gives 0 at end of
//!   file; `try_read`/`try_write` with an empty buffer are `Ok(0)` at once, even on a
//!   stream whose readiness is not known yet; `try_read_buf` keeps the bytes a buffer had.
//! - `OwnedWriteHalf`: with a zero linger its drop sends no FIN, yet `close` still shuts
//!   the write side down, and the read half reads the peer's reply; `forget` on a write
//!   half whose read half is gone already closes the stream at once.
//! - `TcpStream`: two tasks waiting to read one stream (or to write to it) are both woken
//!   by the next edge.
//! - `TcpListener::incoming` and `TcpListenerStream`: they never end; an accept that fails
//!   yields its error, and the next poll accepts (and fails) again.

mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::stream::wrappers::TcpListenerStream;
use overlap::stream::StreamExt;

use support::{fill_send_buffer, settle, tcp_pair, until, wait_on, within, ManualTask};

/// A hang guard only: every wait here ends as soon as loopback delivers.
const HANG: Duration = Duration::from_secs(20);

/// Reads until end of file, with a hang guard.
async fn read_to_eof(stream: &mut (impl AsyncReadExt + Unpin), what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    within(HANG, stream.read_to_end(&mut got), what)
        .await
        .unwrap();
    got
}

#[overlap::test]
async fn after_the_peer_shuts_its_write_side_reads_give_eof_every_time_and_writes_still_arrive() {
    let (mut ours, mut peer) = tcp_pair().await;
    peer.write_all(b"last").await.unwrap();
    peer.shutdown(Shutdown::Write).unwrap();

    assert_eq!(read_to_eof(&mut ours, "the peer's EOF").await, b"last");
    let mut buf = [0u8; 8];
    for attempt in 0..3 {
        let n = within(HANG, ours.read(&mut buf), "a read after EOF").await;
        assert_eq!(n.unwrap(), 0, "read {attempt} after EOF");
    }
    assert_eq!(ours.try_read(&mut buf).unwrap(), 0, "try_read after EOF");

    ours.write_all(b"still open").await.unwrap();
    ours.close().await.unwrap();
    assert_eq!(read_to_eof(&mut peer, "our bytes").await, b"still open");
}

#[overlap::test]
async fn a_zero_linger_write_half_closed_still_sends_eof_and_the_read_half_reads_the_reply() {
    let (conn, mut peer) = tcp_pair().await;
    conn.set_zero_linger().unwrap();
    let (mut rd, mut wr) = conn.into_split();
    wr.write_all(b"request").await.unwrap();
    wr.close().await.unwrap();

    // A clean end of file, not a reset: `close` shut the write side down.
    assert_eq!(read_to_eof(&mut peer, "EOF after close").await, b"request");
    peer.write_all(b"reply").await.unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut rd, "the reply").await, b"reply");
    drop(wr);
    drop(rd);
}

#[overlap::test]
async fn peek_leaves_the_bytes_for_the_read_and_gives_zero_once_they_are_read_at_eof() {
    let (mut ours, mut peer) = tcp_pair().await;
    peer.write_all(b"abc").await.unwrap();
    peer.shutdown(Shutdown::Write).unwrap();

    let mut buf = [0u8; 8];
    let n = within(HANG, ours.peek(&mut buf), "the first peek")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"abc");
    let mut again = [0u8; 8];
    let m = ours.peek(&mut again).await.unwrap();
    assert_eq!(&again[..m], b"abc", "a second peek sees the same bytes");

    let mut read = [0u8; 3];
    ours.read_exact(&mut read).await.unwrap();
    assert_eq!(&read, b"abc");
    let at_eof = within(HANG, ours.peek(&mut buf), "the peek at EOF").await;
    assert_eq!(at_eof.unwrap(), 0);
    assert_eq!(ours.read(&mut buf).await.unwrap(), 0);
}

#[overlap::test]
async fn empty_buffers_give_zero_at_once_on_a_stream_whose_readiness_is_not_known() {
    // Made from a std stream, it has seen no readiness edge yet: a non-empty try is
    // `WouldBlock` whatever the kernel holds, an empty one is `Ok(0)` without asking.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    std::io::Write::write_all(&mut server, b"queued").unwrap();
    let stream = TcpStream::from_std(client).unwrap();

    assert_eq!(stream.try_read(&mut []).unwrap(), 0);
    assert_eq!(stream.try_write(&[]).unwrap(), 0);
    let mut buf = [0u8; 8];
    assert_eq!(
        stream.try_read(&mut buf).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock),
        "not known to be readable before the loop saw an edge"
    );
    within(HANG, stream.readable(), "readable").await.unwrap();
    let n = stream.try_read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"queued");
}

#[overlap::test]
async fn try_read_buf_keeps_the_earlier_bytes_on_would_block_and_at_eof() {
    let (ours, mut peer) = tcp_pair().await;
    let mut got: Vec<u8> = b"kept:".to_vec();
    settle().await;
    let mut nothing = [0u8; 1];
    // Nothing sent yet: WouldBlock, and the buffer is as it was.
    assert_eq!(
        ours.try_read(&mut nothing).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock)
    );
    assert_eq!(
        ours.try_read_buf(&mut got).map_err(|e| e.kind()),
        Err(ErrorKind::WouldBlock)
    );
    assert_eq!(got, b"kept:");

    peer.write_all(b"data").await.unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    within(HANG, ours.readable(), "readable").await.unwrap();
    assert_eq!(ours.try_read_buf(&mut got).unwrap(), 4);
    assert_eq!(got, b"kept:data");
    let at_eof = loop {
        within(HANG, ours.readable(), "EOF readable").await.unwrap();
        match ours.try_read_buf(&mut got) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            other => break other.unwrap(),
        }
    };
    assert_eq!(at_eof, 0);
    assert_eq!(got, b"kept:data", "EOF appends nothing and drops nothing");
}

/// Shuts `listener` down through a dup of its fd, as another process holding it could:
/// every copy stops listening. (std's `TcpStream::shutdown` is a bare `shutdown(2)`.)
fn shut_down_through_a_dup(listener: &TcpListener) {
    let dup = listener.as_fd().try_clone_to_owned().unwrap();
    std::net::TcpStream::from(dup)
        .shutdown(Shutdown::Both)
        .unwrap();
}

fn assert_not_listening(item: Option<std::io::Result<TcpStream>>, what: &str) {
    let err = item
        .unwrap_or_else(|| panic!("{what}: the stream ended"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    assert_eq!(
        overlap::io::raw_os_error(&err),
        Some(libc::EINVAL),
        "{what}: {err}"
    );
}

#[overlap::test]
async fn incoming_yields_an_accepts_error_as_an_item_and_polls_again_after_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    {
        let mut incoming = listener.incoming();
        let client = TcpStream::connect(addr).await.unwrap();
        let first = within(HANG, incoming.next(), "the first connection").await;
        let accepted = first.expect("never ends").unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
    }
    shut_down_through_a_dup(&listener);
    let mut incoming = listener.incoming();
    for attempt in ["first", "second", "third"] {
        let item = within(HANG, incoming.next(), "an accept's error").await;
        assert_not_listening(item, attempt);
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    shut_down_through_a_dup(&listener);
    let mut owned = TcpListenerStream::new(listener);
    for attempt in ["owned first", "owned second"] {
        let item = within(HANG, owned.next(), "an owned accept's error").await;
        assert_not_listening(item, attempt);
    }
}

#[overlap::test]
async fn two_tasks_waiting_on_one_stream_are_both_woken_by_the_next_edge() {
    let (ours, mut peer) = tcp_pair().await;
    let (first, second) = (ManualTask::default(), ManualTask::default());
    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
    let (mut ra, mut rb) = (&ours, &ours);
    let mut read_a = std::pin::pin!(ra.read(&mut a));
    let mut read_b = std::pin::pin!(rb.read(&mut b));
    wait_on(&first, read_a.as_mut());
    wait_on(&second, read_b.as_mut());
    peer.write_all(b"x").await.unwrap();
    until(
        || first.is_woken() && second.is_woken(),
        "both readers woken",
    )
    .await;

    let filled = fill_send_buffer(&ours);
    assert!(filled > 0);
    let (mut wa, mut wb) = (&ours, &ours);
    let mut write_a = std::pin::pin!(wa.write(b"a"));
    let mut write_b = std::pin::pin!(wb.write(b"b"));
    wait_on(&first, write_a.as_mut());
    wait_on(&second, write_b.as_mut());
    let mut drained = 0;
    let mut buf = vec![0u8; 256 * 1024];
    // The byte "x" is still queued for `ours`; the peer takes everything `ours` wrote.
    while drained < filled {
        drained += within(HANG, peer.read(&mut buf), "draining").await.unwrap();
    }
    until(
        || first.is_woken() && second.is_woken(),
        "both writers woken",
    )
    .await;
}

#[overlap::test]
async fn forgetting_a_write_half_whose_read_half_is_gone_closes_the_stream_at_once() {
    let (conn, mut peer) = tcp_pair().await;
    let (rd, mut wr) = conn.into_split();
    drop(rd);
    wr.write_all(b"last words").await.unwrap();
    wr.forget();
    // A clean end of file after the bytes, not a reset, and no wait for anything else.
    assert_eq!(
        read_to_eof(&mut peer, "EOF once both halves are gone").await,
        b"last words"
    );
}
