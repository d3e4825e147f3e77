//! Peeking without taking: `UdpSocket::peek_sender`/`try_peek_sender`/`try_peek_from`,
//! `next_datagram_len` on `UdpSocket` and `UnixDatagram`, and `peek` on TCP read halves and
//! into empty buffers; plus the vectored `try_*` calls on stream sockets.

mod support;

use std::future::poll_fn;
use std::io::{ErrorKind, IoSlice, IoSliceMut};
use std::time::Duration;

use overlap::block_on;
use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpStream, UdpSocket, UnixDatagram, UnixStream};
use support::{tcp_pair, udp_trio, within};

const HANG: Duration = Duration::from_secs(30);

#[test]
fn peek_sender_names_the_head_datagram_and_leaves_it_queued() {
    block_on(async {
        let (rx, (a, a_addr), (b, b_addr)) = udp_trio().await;
        let to = rx.local_addr().unwrap();
        a.send_to(b"from a", to).await.unwrap();
        within(HANG, rx.readable(), "no datagram").await.unwrap();
        b.send_to(b"from b!", to).await.unwrap();

        let peeked = within(HANG, rx.peek_sender(), "no sender").await;
        assert_eq!(peeked.unwrap(), a_addr);
        // Peeking again sees the same datagram: nothing was taken.
        assert_eq!(rx.peek_sender().await.unwrap(), a_addr);
        assert_eq!(rx.try_peek_sender().unwrap(), a_addr);
        let polled = poll_fn(|cx| rx.poll_peek_sender(cx)).await.unwrap();
        assert_eq!(polled, a_addr);

        // The datagram is whole: the empty peek truncated nothing.
        let mut buf = [0u8; 32];
        let (n, from) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"from a"[..], a_addr));

        let next = within(HANG, rx.peek_sender(), "second datagram lost").await;
        assert_eq!(next.unwrap(), b_addr);
        let (n, from) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"from b!"[..], b_addr));
    });
}

#[test]
fn peek_sender_waits_for_a_datagram_and_survives_cancellation() {
    block_on(async {
        let (rx, (a, a_addr), _) = udp_trio().await;
        // Nothing queued: pending, and dropping it leaves the next wait working.
        assert!(rx.peek_sender().now_or_never().is_none());
        assert_eq!(
            rx.try_peek_sender().unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        let to = rx.local_addr().unwrap();
        let send = async {
            overlap::yield_now().await;
            a.send_to(b"x", to).await.unwrap();
        };
        let (peeked, ()) = within(
            HANG,
            async { overlap::join!(rx.peek_sender(), send) },
            "no wake",
        )
        .await;
        assert_eq!(peeked.unwrap(), a_addr);
    });
}

#[test]
fn peek_sender_works_over_ipv6_loopback() {
    block_on(async {
        let Ok(rx) = UdpSocket::bind("[::1]:0").await else {
            return; // No IPv6 loopback here.
        };
        let tx = UdpSocket::bind("[::1]:0").await.unwrap();
        tx.send_to(b"six", rx.local_addr().unwrap()).await.unwrap();
        let peeked = within(HANG, rx.peek_sender(), "no datagram").await;
        assert_eq!(peeked.unwrap(), tx.local_addr().unwrap());
    });
}

#[test]
fn try_peek_from_copies_the_datagram_without_taking_it() {
    block_on(async {
        let (rx, (a, a_addr), _) = udp_trio().await;
        let mut buf = [0u8; 32];
        assert_eq!(
            rx.try_peek_from(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        a.send_to(b"peek me", rx.local_addr().unwrap())
            .await
            .unwrap();
        within(HANG, rx.readable(), "no datagram").await.unwrap();
        let (n, from) = rx.try_peek_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"peek me"[..], a_addr));
        let mut again = [0u8; 32];
        let (n, from) = rx.try_recv_from(&mut again).unwrap();
        assert_eq!((&again[..n], from), (&b"peek me"[..], a_addr));
        // Taken now: the queue is empty.
        assert_eq!(
            rx.try_peek_from(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
    });
}

#[test]
fn tcp_read_halves_peek_without_consuming() {
    block_on(async {
        let (mut client, mut server) = tcp_pair().await;
        client.write_all(b"abc").await.unwrap();
        {
            let (mut rd, _wr) = TcpStream::split(&mut server);
            let mut buf = [0u8; 8];
            let n = within(HANG, rd.peek(&mut buf), "no data").await.unwrap();
            assert_eq!(&buf[..n], &b"abc"[..n]);
            let mut all = [0u8; 3];
            rd.read_exact(&mut all).await.unwrap();
            assert_eq!(&all, b"abc");
        }

        let (mut rd, _wr) = server.into_split();
        // A peek on an empty queue waits; cancelled, it took nothing.
        let mut buf = [0u8; 8];
        assert!(rd.peek(&mut buf).now_or_never().is_none());
        client.write_all(b"xyz").await.unwrap();
        let n = within(HANG, rd.peek(&mut buf), "no data").await.unwrap();
        assert_eq!(&buf[..n], &b"xyz"[..n]);
        let mut all = [0u8; 3];
        rd.read_exact(&mut all).await.unwrap();
        assert_eq!(&all, b"xyz");

        client.close().await.unwrap();
        let eof = within(HANG, rd.peek(&mut buf), "no EOF").await.unwrap();
        assert_eq!(eof, 0);
    });
}

/// A stream peek into an empty buffer returns 0 at once, as `poll_peek` and a read into
/// one do, instead of waiting for data that may never come (the kernel's `recv` of 0 bytes
/// says `EAGAIN` on an empty queue).
#[test]
fn stream_peeks_into_an_empty_buffer_return_at_once() {
    block_on(async {
        let (mut tcp, _tcp_peer) = tcp_pair().await;
        let now = |n: Option<std::io::Result<usize>>| n.map(|r| r.unwrap());
        assert_eq!(now(tcp.peek(&mut []).now_or_never()), Some(0));
        assert_eq!(
            now(poll_fn(|cx| tcp.poll_peek(cx, &mut [])).now_or_never()),
            Some(0)
        );
        assert_eq!(now(tcp.read(&mut []).now_or_never()), Some(0));
        {
            let (rd, _wr) = TcpStream::split(&mut tcp);
            assert_eq!(now(rd.peek(&mut []).now_or_never()), Some(0));
        }
        let (rd, _wr) = tcp.into_split();
        assert_eq!(now(rd.peek(&mut []).now_or_never()), Some(0));

        let (mut unix, _unix_peer) = UnixStream::pair().unwrap();
        assert_eq!(now(unix.peek(&mut []).now_or_never()), Some(0));
        assert_eq!(now(unix.read(&mut []).now_or_never()), Some(0));
        {
            let (rd, _wr) = UnixStream::split(&mut unix);
            assert_eq!(now(rd.peek(&mut []).now_or_never()), Some(0));
        }
        let (rd, _wr) = unix.into_split();
        assert_eq!(now(rd.peek(&mut []).now_or_never()), Some(0));
    });
}

#[test]
fn tcp_vectored_tries_move_every_slice_in_order() {
    block_on(async {
        let (client, server) = tcp_pair().await;
        within(HANG, client.writable(), "a new socket is writable")
            .await
            .unwrap();
        let mut out = vec![IoSlice::new(b""); 2000];
        out.push(IoSlice::new(b"head"));
        out.push(IoSlice::new(b"body"));
        assert_eq!(client.try_write_vectored(&out).unwrap(), 8);
        assert_eq!(client.try_write_vectored(&[]).unwrap(), 0);

        let mut buf = [0u8; 4];
        assert_eq!(
            server
                .try_read_vectored(&mut [IoSliceMut::new(&mut buf)])
                .map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock),
            "nothing is known readable yet"
        );
        let mut got = Vec::new();
        while got.len() < 8 {
            within(HANG, server.readable(), "no read edge")
                .await
                .unwrap();
            let (mut a, mut b) = ([0u8; 3], [0u8; 8]);
            let mut empties: Vec<[u8; 0]> = vec![[]; 2000];
            let mut bufs: Vec<IoSliceMut<'_>> =
                empties.iter_mut().map(|e| IoSliceMut::new(e)).collect();
            bufs.push(IoSliceMut::new(&mut a));
            bufs.push(IoSliceMut::new(&mut b));
            match server.try_read_vectored(&mut bufs) {
                Ok(n) => {
                    drop(bufs);
                    let joined: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
                    got.extend_from_slice(&joined[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("try_read_vectored: {e}"),
            }
        }
        assert_eq!(got, b"headbody");
        assert_eq!(server.try_read_vectored(&mut []).unwrap(), 0);
    });
}

#[test]
fn unix_vectored_tries_move_every_slice_and_see_eof() {
    block_on(async {
        let (a, mut b) = UnixStream::pair().unwrap();
        within(HANG, a.writable(), "a new socket is writable")
            .await
            .unwrap();
        let out = [
            IoSlice::new(b"one "),
            IoSlice::new(b""),
            IoSlice::new(b"two"),
        ];
        assert_eq!(a.try_write_vectored(&out).unwrap(), 7);
        drop(a);

        within(HANG, b.readable(), "no read edge").await.unwrap();
        let (mut x, mut y) = ([0u8; 4], [0u8; 8]);
        let n = b
            .try_read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)])
            .unwrap();
        assert_eq!((n, &x, &y[..3]), (7, b"one ", &b"two"[..]));
        let n = b.try_read_vectored(&mut [IoSliceMut::new(&mut x)]).unwrap();
        assert_eq!(n, 0, "end of file");
        assert_eq!(b.read(&mut x).await.unwrap(), 0);
    });
}

#[test]
fn next_datagram_len_gives_the_whole_length_and_takes_nothing() {
    block_on(async {
        let (rx, (a, a_addr), _) = udp_trio().await;
        let to = rx.local_addr().unwrap();
        let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        a.send_to(&big, to).await.unwrap();
        a.send_to(b"", to).await.unwrap();
        a.send_to(b"tail!", to).await.unwrap();

        let len = within(HANG, rx.next_datagram_len(), "no datagram").await;
        assert_eq!(len.unwrap(), 3000);
        // Asking again, or polling, takes nothing.
        assert_eq!(rx.try_next_datagram_len().unwrap(), 3000);
        let polled = poll_fn(|cx| rx.poll_next_datagram_len(cx)).await;
        assert_eq!(polled.unwrap(), 3000);
        let mut buf = vec![0u8; 3000];
        let (n, from) = rx.recv_from(&mut buf).await.unwrap();
        assert_eq!((n, from), (3000, a_addr));
        assert_eq!(buf, big);

        // An empty datagram is one of length 0, not "nothing queued".
        assert_eq!(rx.next_datagram_len().await.unwrap(), 0);
        assert_eq!(rx.recv_from(&mut buf).await.unwrap(), (0, a_addr));
        assert_eq!(rx.next_datagram_len().await.unwrap(), 5);
        assert_eq!(rx.recv_from(&mut buf).await.unwrap(), (5, a_addr));
        assert_eq!(&buf[..5], b"tail!");
    });
}

#[test]
fn next_datagram_len_waits_for_a_datagram_and_survives_cancellation() {
    block_on(async {
        let (rx, (a, _), _) = udp_trio().await;
        assert!(rx.next_datagram_len().now_or_never().is_none());
        let err = rx.try_next_datagram_len().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        let to = rx.local_addr().unwrap();
        let send = async {
            overlap::yield_now().await;
            a.send_to(&[7u8; 1200], to).await.unwrap();
        };
        let (len, ()) = within(
            HANG,
            async { overlap::join!(rx.next_datagram_len(), send) },
            "no wake",
        )
        .await;
        assert_eq!(len.unwrap(), 1200);
    });
}

#[test]
fn unix_next_datagram_len_sizes_the_buffer_exactly() {
    block_on(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        assert!(b.next_datagram_len().now_or_never().is_none());
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 13) as u8).collect();
        a.send(&big).await.unwrap();
        a.send(b"").await.unwrap();

        let len = within(HANG, b.next_datagram_len(), "no datagram")
            .await
            .unwrap();
        assert_eq!(len, 10_000);
        assert_eq!(b.try_next_datagram_len().unwrap(), 10_000);
        assert_eq!(
            poll_fn(|cx| b.poll_next_datagram_len(cx)).await.unwrap(),
            10_000
        );
        let mut buf = vec![0u8; len];
        assert_eq!(b.recv(&mut buf).await.unwrap(), 10_000);
        assert_eq!(buf, big);
        assert_eq!(b.next_datagram_len().await.unwrap(), 0);
        assert_eq!(b.recv(&mut buf).await.unwrap(), 0);
        let err = b.try_next_datagram_len().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn next_datagram_len_reports_a_refused_peer_once() {
    block_on(async {
        let gone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.connect(gone_addr).await.unwrap();
        s.send(b"anyone?").await.unwrap();
        let err = within(HANG, s.next_datagram_len(), "no ICMP error").await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::ConnectionRefused);
        // Reported and cleared: the socket waits for a datagram again.
        assert!(s.next_datagram_len().now_or_never().is_none());
    });
}
