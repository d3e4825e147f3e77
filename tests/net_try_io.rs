//! `readable`/`writable` and the `try_*` calls on sockets: no waiting, `WouldBlock` when
//! nothing can move, and a `WouldBlock` clears the readiness so the next wait sleeps instead
//! of returning at once (no busy loop).

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{UdpSocket, UnixDatagram, UnixStream};
use overlap::{block_on, AsyncFd, Direction};
use support::{tcp_pair, within, TempDir};

const HANG: Duration = Duration::from_secs(30);

#[test]
fn tcp_try_read_says_would_block_until_data_then_reads_it_then_eof() {
    block_on(async {
        let (mut client, server) = tcp_pair().await;
        let mut buf = [0u8; 64];
        assert_eq!(
            server.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        // The WouldBlock left nothing ready: a wait now is pending, not a spin.
        assert!(server.readable().now_or_never().is_none());

        client.write_all(b"hello").await.unwrap();
        within(HANG, server.readable(), "no read edge")
            .await
            .unwrap();
        assert_eq!(server.try_read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");

        client.close().await.unwrap();
        within(HANG, server.readable(), "no EOF edge")
            .await
            .unwrap();
        assert_eq!(server.try_read(&mut buf).unwrap(), 0);
        assert_eq!(server.try_read(&mut buf).unwrap(), 0, "EOF repeats");
    });
}

#[test]
fn tcp_try_write_fills_the_buffer_then_writable_waits_for_the_peer_to_read() {
    block_on(async {
        let (mut client, server) = tcp_pair().await;
        let chunk = [7u8; 64 * 1024];
        // A new socket's readiness is unknown until the loop has seen its first edge.
        within(HANG, server.writable(), "a new socket is writable")
            .await
            .unwrap();
        let mut sent = 0usize;
        loop {
            match server.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("try_write: {e}"),
            }
            assert!(sent < 1 << 30, "the send buffer never filled");
        }
        assert!(sent > 0);
        assert!(
            server.writable().now_or_never().is_none(),
            "a full socket must not look writable"
        );
        // The peer drains everything; the writer is woken by room, not by polling.
        let reader = overlap::spawn(async move {
            let mut got = vec![0u8; sent];
            client.read_exact(&mut got).await.unwrap();
            assert!(got.iter().all(|&b| b == 7));
        });
        within(HANG, server.writable(), "no write edge")
            .await
            .unwrap();
        assert!(server.try_write(b"more").unwrap() > 0);
        reader.await.unwrap();
    });
}

#[test]
fn udp_try_send_and_try_recv_connected_and_not() {
    block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut buf = [0u8; 64];
        assert_eq!(
            b.try_recv_from(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert!(b.readable().now_or_never().is_none());

        within(HANG, a.writable(), "a new socket is writable")
            .await
            .unwrap();
        assert_eq!(a.try_send_to(b"one", b_addr).unwrap(), 3);
        within(HANG, b.readable(), "no datagram").await.unwrap();
        assert_eq!(b.try_recv_from(&mut buf).unwrap(), (3, a_addr));
        assert_eq!(&buf[..3], b"one");

        a.connect(b_addr).await.unwrap();
        b.connect(a_addr).await.unwrap();
        assert_eq!(a.try_send(b"two").unwrap(), 3);
        within(HANG, b.readable(), "no datagram").await.unwrap();
        assert_eq!(b.try_recv(&mut buf).unwrap(), 3);
        assert_eq!(
            b.try_recv(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
    });
}

#[test]
fn unix_stream_and_datagram_try_calls() {
    block_on(async {
        let (x, y) = UnixStream::pair().unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            y.try_read(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        within(HANG, x.writable(), "a fresh pair is writable")
            .await
            .unwrap();
        assert_eq!(x.try_write(b"abc").unwrap(), 3);
        within(HANG, y.readable(), "no read edge").await.unwrap();
        assert_eq!(y.try_read(&mut buf).unwrap(), 3);

        let dir = TempDir::new("try_io");
        let path = dir.join("sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let tx = UnixDatagram::unbound().unwrap();
        assert_eq!(
            rx.try_recv(&mut buf).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        assert_eq!(tx.try_send_to(b"hey", &path).unwrap(), 3);
        within(HANG, rx.readable(), "no datagram").await.unwrap();
        let (n, _from) = rx.try_recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hey");
    });
}

#[test]
fn async_fd_try_io_fails_outside_its_runtime() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let rt = overlap::Runtime::new().unwrap();
    let fd = rt.block_on(async { AsyncFd::new(a) }).unwrap();
    let err = block_on(async { fd.try_io(Direction::Read, |_| Ok(())) }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().contains("outside the runtime"), "{err}");
}
