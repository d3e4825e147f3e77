//! `AsyncReadBufExt::read_buf`, tokio's `read_buf`: a read appended to a `BytesMut` or a
//! `Vec<u8>`, over real loopback TCP and a pipe (and the sockets' `recv_buf` family).

mod support;

use std::time::Duration;

use overlap::codec::BytesMut;
use overlap::io::{AsyncReadBufExt, AsyncWriteExt};
use support::within;

const HANG: Duration = Duration::from_secs(20);

/// Bytes already in the buffer stay; what is read is appended after them; the end of the
/// stream is 0, to either kind of buffer.
#[test]
fn appends_after_the_bytes_held_and_gives_zero_at_the_end() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, mut b) = support::tcp_pair().await;
            a.write_all(b"one").await.unwrap();
            let mut buf = BytesMut::from(&b"zero "[..]);
            assert_eq!(b.read_buf(&mut buf).await.unwrap(), 3);
            assert_eq!(buf, b"zero one"[..]);
            a.write_all(b"two").await.unwrap();
            let mut vec = b"held ".to_vec();
            assert_eq!(b.read_buf(&mut vec).await.unwrap(), 3);
            assert_eq!(vec, b"held two");
            drop(a);
            assert_eq!(b.read_buf(&mut buf).await.unwrap(), 0);
            assert_eq!(b.read_buf(&mut vec).await.unwrap(), 0);
            assert_eq!((&buf[..], &vec[..]), (&b"zero one"[..], &b"held two"[..]));
        },
        "read_buf",
    ));
}

/// A buffer with no spare room is given some (64 bytes, as `bytes` makes), so a read never
/// returns 0 for lack of room; a `Vec` with room takes up to its spare capacity and no
/// more than 64 KiB in one read.
#[test]
fn a_full_buffer_is_given_room_and_a_vec_is_offered_at_most_64_kib() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, mut b) = support::tcp_pair().await;
            let sent = support::pattern_seeded(200, 1);
            a.write_all(&sent).await.unwrap();
            let mut vec = Vec::new();
            let n = b.read_buf(&mut vec).await.unwrap();
            assert!((1..=200).contains(&n), "{n}");
            assert!(vec.capacity() >= 64);
            let mut full = BytesMut::with_capacity(0);
            let m = b.read_buf(&mut full).await.unwrap();
            assert!(m >= 1, "{m}");
            let mut got = vec.clone();
            got.extend_from_slice(&full);
            assert_eq!(got, sent[..n + m]);

            let big = support::pattern_seeded(300 * 1024, 2);
            a.write_all(&big).await.unwrap();
            let mut expect = sent[n + m..].to_vec();
            expect.extend_from_slice(&big);
            let mut vec = Vec::with_capacity(1 << 20);
            while vec.len() < expect.len() {
                let k = b.read_buf(&mut vec).await.unwrap();
                assert!((1..=64 * 1024).contains(&k), "one read took {k}");
            }
            assert!(vec == expect);
        },
        "room",
    ));
}

/// A megabyte each way read to the end with `read_buf` loops, as a tokio program reads a
/// stream into a `BytesMut`: every byte, in order, to both kinds of buffer.
#[test]
fn a_megabyte_read_to_the_end_with_read_buf() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, mut b) = support::tcp_pair().await;
            let data = support::pattern_seeded(1 << 20, 3);
            let writer = {
                let data = data.clone();
                overlap::spawn(async move {
                    a.write_all(&data).await.unwrap();
                    a.write_all(&data).await.unwrap();
                    a.close().await.unwrap();
                })
            };
            let mut buf = BytesMut::with_capacity(4096);
            while buf.len() < data.len() {
                assert_ne!(b.read_buf(&mut buf).await.unwrap(), 0, "ended early");
            }
            let mut vec = buf.split_off(data.len()).to_vec();
            while b.read_buf(&mut vec).await.unwrap() != 0 {}
            writer.await.unwrap();
            assert!(buf == data[..], "the BytesMut's megabyte");
            assert!(vec == data, "the Vec's megabyte");
        },
        "a megabyte",
    ));
}

/// Dropped before any byte comes (under a timeout), it has read nothing and the buffer is
/// as it was; the bytes sent after go to the next call.
#[test]
fn dropped_while_waiting_it_leaves_the_buffer_as_it_was() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, mut b) = support::tcp_pair().await;
            let mut buf = BytesMut::from(&b"kept"[..]);
            let mut vec = b"kept".to_vec();
            let waited =
                overlap::time::timeout(Duration::from_millis(20), b.read_buf(&mut buf)).await;
            assert!(waited.is_err());
            let waited =
                overlap::time::timeout(Duration::from_millis(20), b.read_buf(&mut vec)).await;
            assert!(waited.is_err());
            assert_eq!((&buf[..], &vec[..]), (&b"kept"[..], &b"kept"[..]));
            a.write_all(b"!").await.unwrap();
            assert_eq!(b.read_buf(&mut vec).await.unwrap(), 1);
            assert_eq!(vec, b"kept!");
        },
        "cancel",
    ));
}

/// Over a pipe too: `read_buf` works on any futures-io reader.
#[test]
fn reads_a_pipe() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
            tx.write_all(b"through a pipe").await.unwrap();
            drop(tx);
            let mut buf = BytesMut::new();
            while rx.read_buf(&mut buf).await.unwrap() != 0 {}
            assert_eq!(buf, b"through a pipe"[..]);
        },
        "pipe",
    ));
}

/// UDP's `recv_buf_from` and `recv_buf` append each datagram after the bytes held, report
/// the sender, cut a datagram longer than the room (64 bytes for a full buffer) as `recv`
/// does, and leave the buffer as it was when dropped while waiting.
#[test]
fn udp_datagrams_appended_cut_to_the_room_and_cancel_safe() {
    overlap::block_on(within(
        HANG,
        async {
            let a = overlap::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let b = overlap::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let mut vec = b"[".to_vec();
            vec.reserve(2000);
            a.send_to(b"first", b_addr).await.unwrap();
            assert_eq!(b.recv_buf_from(&mut vec).await.unwrap(), (5, a_addr));
            assert_eq!(vec, b"[first");

            let long = support::pattern_seeded(100, 4);
            a.send_to(&long, b_addr).await.unwrap();
            let mut full = BytesMut::with_capacity(0);
            assert_eq!(b.recv_buf_from(&mut full).await.unwrap(), (64, a_addr));
            assert_eq!(full, long[..64]);

            b.connect(a_addr).await.unwrap();
            let waited =
                overlap::time::timeout(Duration::from_millis(20), b.recv_buf(&mut vec)).await;
            assert!(waited.is_err());
            assert_eq!(
                vec, b"[first",
                "a dropped receive leaves the buffer as it was"
            );
            a.send_to(b"second", b_addr).await.unwrap();
            assert_eq!(b.recv_buf(&mut vec).await.unwrap(), 6);
            assert_eq!(vec, b"[firstsecond");
        },
        "udp",
    ));
}

/// A Unix datagram socket's `recv_buf_from` and `recv_buf` append as UDP's do.
#[test]
fn unix_datagrams_appended() {
    overlap::block_on(within(
        HANG,
        async {
            let (a, b) = overlap::net::UnixDatagram::pair().unwrap();
            a.send(b"one").await.unwrap();
            a.send(b"two").await.unwrap();
            let mut buf = BytesMut::from(&b"<"[..]);
            let (n, _from) = b.recv_buf_from(&mut buf).await.unwrap();
            assert_eq!(n, 3);
            let mut vec = Vec::new();
            assert_eq!(b.recv_buf(&mut vec).await.unwrap(), 3);
            assert_eq!((&buf[..], &vec[..]), (&b"<one"[..], &b"two"[..]));
        },
        "unix datagrams",
    ));
}

/// `try_read_buf` on TCP and Unix streams, their halves and a pipe: `WouldBlock` with the
/// buffer untouched when nothing is there, the bytes appended once readable, 0 at the end.
#[test]
fn try_read_buf_appends_what_is_there_now() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, b) = support::tcp_pair().await;
            let mut buf = BytesMut::from(&b"tcp:"[..]);
            let err = b.try_read_buf(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
            assert_eq!(buf, b"tcp:"[..]);
            a.write_all(b"now").await.unwrap();
            let n = loop {
                b.readable().await.unwrap();
                match b.try_read_buf(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    res => break res.unwrap(),
                }
            };
            assert_eq!((n, &buf[..]), (3, &b"tcp:now"[..]));
            drop(a);
            b.readable().await.unwrap();
            assert_eq!(b.try_read_buf(&mut buf).unwrap(), 0);

            let (mut ua, mut ub) = overlap::net::UnixStream::pair().unwrap();
            ua.write_all(b"unix").await.unwrap();
            let (read_half, _write_half) = ub.split();
            let mut vec = Vec::new();
            read_half.readable().await.unwrap();
            assert_eq!(read_half.try_read_buf(&mut vec).unwrap(), 4);
            assert_eq!(vec, b"unix");

            let (mut tx, rx) = overlap::pipe::pipe().unwrap();
            tx.write_all(b"|pipe").await.unwrap();
            rx.readable().await.unwrap();
            assert_eq!(rx.try_read_buf(&mut vec).unwrap(), 5);
            assert_eq!(vec, b"unix|pipe");
        },
        "try_read_buf",
    ));
}

/// The datagram sockets' `try_recv_buf_from` and `try_recv_buf`: `WouldBlock` with the
/// buffer untouched when no datagram is queued, then the datagram appended (with its
/// sender), cut to the room as `recv_buf` cuts it.
#[test]
fn try_recv_buf_appends_a_queued_datagram() {
    overlap::block_on(within(
        HANG,
        async {
            let a = overlap::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let b = overlap::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let mut buf = BytesMut::from(&b"udp:"[..]);
            let err = b.try_recv_buf_from(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
            assert_eq!(
                buf,
                b"udp:"[..],
                "a receive that found nothing changed the buffer"
            );
            a.send_to(b"queued", b_addr).await.unwrap();
            let got = loop {
                b.readable().await.unwrap();
                match b.try_recv_buf_from(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    res => break res.unwrap(),
                }
            };
            assert_eq!((got, &buf[..]), ((6, a_addr), &b"udp:queued"[..]));

            b.connect(a_addr).await.unwrap();
            let long = support::pattern_seeded(100, 5);
            a.send_to(&long, b_addr).await.unwrap();
            let mut full = Vec::new();
            let n = loop {
                b.readable().await.unwrap();
                match b.try_recv_buf(&mut full) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    res => break res.unwrap(),
                }
            };
            assert_eq!(
                (n, &full[..]),
                (64, &long[..64]),
                "not cut to the 64 bytes of room"
            );

            let (ua, ub) = overlap::net::UnixDatagram::pair().unwrap();
            let mut vec = b"unix:".to_vec();
            assert!(ub.try_recv_buf(&mut vec).is_err());
            assert_eq!(vec, b"unix:");
            ua.send(b"dgram").await.unwrap();
            ub.readable().await.unwrap();
            let (n, _from) = ub.try_recv_buf_from(&mut vec).unwrap();
            assert_eq!((n, &vec[..]), (5, &b"unix:dgram"[..]));
        },
        "try_recv_buf",
    ));
}
