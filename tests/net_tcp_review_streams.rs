//! An adversarial review of a connected `TcpStream`'s edges: reads and writes after the
//! peer's reset, owned halves dropped in either order and reunited across streams, a
//! round trip through std with bytes waiting in the kernel, vectored writes past `IOV_MAX`
//! with runs of empty slices. The connect and accept edges are in `net_tcp_review.rs`.
//! Loopback only.

mod support;

use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use support::{pattern_seeded, poll_once, tcp_pair, until, within};

/// A hang guard only: every wait below ends at once when the code is right.
const HANG: Duration = Duration::from_secs(10);

/// What a read of `stream` into an 8-byte buffer gives, under the hang guard.
async fn read8(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = [0u8; 8];
    let n = within(HANG, stream.read(&mut buf), "read hung").await?;
    Ok(buf[..n].to_vec())
}

#[overlap::test]
async fn after_the_peers_reset_a_read_fails_once_then_reads_end_of_file_at_once() {
    let (mut client, server) = tcp_pair().await;
    server.set_zero_linger().unwrap();
    drop(server);
    let err = read8(&mut client).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    // The reset was reported; the connection is over, and says so without waiting.
    for _ in 0..3 {
        assert_eq!(read8(&mut client).await.unwrap(), b"");
    }
    let mut buf = [0u8; 4];
    assert_eq!(
        within(HANG, client.peek(&mut buf), "peek").await.unwrap(),
        0
    );
    assert_eq!(client.try_read(&mut buf).unwrap(), 0);
    assert_eq!(
        client.take_error().unwrap().map(|e| e.kind()),
        None,
        "taken by the read"
    );
    let err = within(HANG, client.write(b"late"), "write")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    // Closing the write side of a dead connection is no error (documented: ENOTCONN).
    client.close().await.unwrap();
}

#[overlap::test]
async fn bytes_that_came_before_a_reset_are_read_first_then_the_reset_once_then_eof() {
    let (mut client, mut server) = tcp_pair().await;
    client.write_all(b"unread").await.unwrap();
    within(HANG, server.readable(), "readable").await.unwrap();
    let mut peeked = [0u8; 6];
    assert_eq!(server.peek(&mut peeked).await.unwrap(), 6);
    assert_eq!(&peeked, b"unread", "peek leaves the bytes queued");
    let mut again = [0u8; 6];
    server.read_exact(&mut again).await.unwrap();
    assert_eq!(&again, b"unread", "the read gives the peeked bytes");
    server.write_all(b"bye").await.unwrap();
    within(HANG, client.readable(), "client readable")
        .await
        .unwrap();
    // Closed with bytes it never read, the server resets the connection instead of a FIN.
    client.write_all(b"more").await.unwrap();
    within(HANG, server.readable(), "readable").await.unwrap();
    drop(server);
    assert_eq!(read8(&mut client).await.unwrap(), b"bye");
    let err = read8(&mut client).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(read8(&mut client).await.unwrap(), b"");
    assert_eq!(read8(&mut client).await.unwrap(), b"");
}

#[overlap::test]
async fn dropping_the_read_half_first_leaves_the_write_half_writing_and_then_its_drop_ends_it() {
    let (mut client, server) = tcp_pair().await;
    let (rd, mut wr) = server.into_split();
    drop(rd);
    // The read half's drop shut nothing: the client sees no end of file.
    let mut buf = [0u8; 8];
    let pending = poll_once(Box::pin(client.read(&mut buf))).await;
    assert!(pending.is_pending(), "{pending:?}");
    wr.write_all(b"still").await.unwrap();
    let mut got = [0u8; 5];
    within(HANG, client.read_exact(&mut got), "read")
        .await
        .unwrap();
    assert_eq!(&got, b"still");
    drop(wr);
    assert_eq!(
        read8(&mut client).await.unwrap(),
        b"",
        "EOF once both halves are gone"
    );
}

#[overlap::test]
async fn dropping_the_write_half_first_sends_eof_and_the_read_half_reads_the_reply() {
    let (mut client, server) = tcp_pair().await;
    let (mut rd, wr) = server.into_split();
    drop(wr);
    assert_eq!(
        read8(&mut client).await.unwrap(),
        b"",
        "the write half's drop sends EOF"
    );
    client.write_all(b"reply").await.unwrap();
    client.close().await.unwrap();
    let mut got = Vec::new();
    within(HANG, rd.read_to_end(&mut got), "read_to_end")
        .await
        .unwrap();
    assert_eq!(got, b"reply");
}

#[overlap::test]
async fn halves_of_two_streams_are_refused_together_given_back_whole_and_shut_nothing() {
    let (mut peer1, one) = tcp_pair().await;
    let (mut peer2, two) = tcp_pair().await;
    let (rd1, wr1) = one.into_split();
    let (rd2, wr2) = two.into_split();
    let err = rd1.reunite(wr2).unwrap_err();
    assert!(
        err.to_string().contains("not from the same TcpStream"),
        "{err}"
    );
    let overlap::net::tcp::ReuniteError(rd1, wr2) = err;
    let err = wr1.reunite(rd2).unwrap_err();
    let overlap::net::tcp::ReuniteError(rd2, wr1) = err;
    // The refused halves were not dropped: no write side was shut down.
    let mut one = rd1.reunite(wr1).unwrap();
    let mut two = wr2.reunite(rd2).unwrap();
    one.write_all(b"one").await.unwrap();
    two.write_all(b"two").await.unwrap();
    let mut buf = [0u8; 3];
    within(HANG, peer1.read_exact(&mut buf), "peer1")
        .await
        .unwrap();
    assert_eq!(&buf, b"one");
    within(HANG, peer2.read_exact(&mut buf), "peer2")
        .await
        .unwrap();
    assert_eq!(&buf, b"two");
    peer2.write_all(b"back").await.unwrap();
    let mut back = [0u8; 4];
    within(HANG, two.read_exact(&mut back), "two")
        .await
        .unwrap();
    assert_eq!(&back, b"back");
    drop(one);
    assert_eq!(read8(&mut peer1).await.unwrap(), b"");
}

#[overlap::test]
async fn into_std_and_back_with_bytes_waiting_in_the_kernel_reads_them_without_a_new_edge() {
    let (mut client, mut server) = tcp_pair().await;
    client.write_all(b"abcdef").await.unwrap();
    // The loop has seen the readable edge; two of the six bytes are taken.
    within(HANG, server.readable(), "readable").await.unwrap();
    let mut two = [0u8; 2];
    server.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"ab");

    let mut std = server.into_std().unwrap();
    let mut c = [0u8; 1];
    std.read_exact(&mut c).unwrap();
    assert_eq!(&c, b"c");
    // Still non-blocking, as documented: the rest, then WouldBlock rather than a wait.
    let mut rest = [0u8; 8];
    assert_eq!(std.read(&mut rest).unwrap(), 3);
    assert_eq!(&rest[..3], b"def");
    assert_eq!(
        std.read(&mut rest).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );

    // Bytes and the end of file arrive while the socket is on no reactor; back on one, the
    // read sees them with no further edge to come.
    client.write_all(b"gh").await.unwrap();
    client.close().await.unwrap();
    let mut peer_std = client.into_std().unwrap();
    until(
        || matches!(std.peek(&mut rest), Ok(2)),
        "the bytes to reach the std socket",
    )
    .await;
    let mut back = TcpStream::from_std(std).unwrap();
    assert_eq!(read8(&mut back).await.unwrap(), b"gh");
    assert_eq!(read8(&mut back).await.unwrap(), b"");
    // And the other way: the peer, itself through std and back, still gets what we send.
    back.write_all(b"ij").await.unwrap();
    peer_std.set_nonblocking(false).unwrap();
    let mut ij = [0u8; 2];
    peer_std.read_exact(&mut ij).unwrap();
    assert_eq!(&ij, b"ij");
    peer_std.write_all(b"").unwrap();
}

#[overlap::test]
async fn vectored_writes_past_iov_max_with_runs_of_empty_slices_send_every_byte_in_order() {
    let (mut client, mut server) = tcp_pair().await;
    // 3,000 one-to-three-byte slices with empty runs inside, at the start and at the end:
    // 1,500 empty ones ahead of the first byte, longer than one sendmsg takes.
    let data = pattern_seeded(6000, 118);
    let mut parts: Vec<&[u8]> = vec![&[]; 1500];
    let mut at = 0;
    for i in 0..3000usize {
        let len = i % 3 + 1;
        parts.push(&data[at..at + len]);
        at += len;
        if i % 700 == 0 {
            parts.extend(std::iter::repeat_n(&[][..], 1100));
        }
    }
    parts.extend(std::iter::repeat_n(&[][..], 1200));
    let sent = &data[..at];
    let reader = overlap::spawn(async move {
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.map(|_| got)
    });
    let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let mut bufs = &mut slices[..];
    let mut written = 0;
    while written < sent.len() {
        let n = within(HANG, client.write_vectored(bufs), "write_vectored")
            .await
            .unwrap();
        assert!(
            n > 0,
            "a write of {} bytes left made no progress",
            sent.len() - written
        );
        written += n;
        IoSlice::advance_slices(&mut bufs, n);
    }
    assert_eq!(written, sent.len());
    // What is left is empty slices only: nothing to write, at once.
    let left = poll_once(Box::pin(client.write_vectored(bufs))).await;
    assert!(matches!(left, std::task::Poll::Ready(Ok(0))), "{left:?}");
    client.close().await.unwrap();
    let got = within(HANG, reader, "reader").await.unwrap().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the bytes arrived out of order or changed");
}

#[overlap::test]
async fn vectored_tries_skip_more_empty_slices_than_one_call_takes() {
    let (client, server) = tcp_pair().await;
    within(HANG, client.writable(), "writable").await.unwrap();
    let empties = vec![IoSlice::new(&[]); 1500];
    assert_eq!(
        client.try_write_vectored(&empties).unwrap(),
        0,
        "nothing to send"
    );
    let mut with_tail = empties.clone();
    with_tail.push(IoSlice::new(b"x"));
    with_tail.extend(std::iter::repeat_n(IoSlice::new(b"yz"), 2000));
    // One sendmsg: the "x" and 1,023 "yz" slices of the first 1,024 past the empty run.
    assert_eq!(client.try_write_vectored(&with_tail).unwrap(), 1 + 2 * 1023);
    let total = 1 + 2 * 1023;
    let mut peek = vec![0u8; total + 1];
    let all_there = async {
        while server.peek(&mut peek).await.unwrap() < total {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    };
    within(HANG, all_there, "every byte to arrive").await;
    // 1,500 empty slices, then 2,000 one-byte ones: one recvmsg fills 1,024 of them.
    let mut empty: Vec<[u8; 0]> = vec![[]; 1500];
    let mut ones = vec![[0u8; 1]; 2000];
    let mut bufs: Vec<IoSliceMut<'_>> = empty.iter_mut().map(|b| IoSliceMut::new(b)).collect();
    bufs.extend(ones.iter_mut().map(|b| IoSliceMut::new(b)));
    assert_eq!(server.try_read_vectored(&mut bufs).unwrap(), 1024);
    drop(bufs);
    assert_eq!(ones[0], *b"x");
    // "x", then "yz" pairs: odd places hold "y", even ones "z", up to the 1,024th.
    assert_eq!((ones[1], ones[1022], ones[1023]), (*b"y", *b"z", *b"y"));
    assert_eq!(ones[1024], [0], "past the first recvmsg's 1,024 slices");
}
