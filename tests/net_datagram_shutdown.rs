//! A datagram socket shut down for reading: what is queued still arrives, then a receive
//! fails at once with `NotConnected` instead of spinning (the kernel keeps saying `EAGAIN`
//! while epoll keeps reporting the hang-up).

mod support;

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::net::{UdpSocket, UnixDatagram};
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn a_unix_datagram_shut_for_reading_delivers_the_queue_then_fails() {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.send(b"queued").await.unwrap();
    b.shutdown(Shutdown::Read).unwrap();
    let before = overlap::metrics().task_polls;
    let mut buf = [0u8; 16];
    let n = within(HANG, b.recv(&mut buf), "recv hung").await.unwrap();
    assert_eq!(&buf[..n], b"queued");
    let err = within(HANG, b.recv(&mut buf), "recv hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    let err = within(HANG, b.recv_from(&mut buf), "recv_from hung")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    // No spinning on the way: a handful of polls of this one task, not thousands.
    let polls = overlap::metrics().task_polls - before;
    assert!(polls < 10, "{polls} polls");
}

#[overlap::test]
async fn a_udp_socket_shut_for_reading_fails_instead_of_spinning() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // Connected (to itself, on loopback), or shutdown says ENOTCONN.
    sock.connect(sock.local_addr().unwrap()).await.unwrap();
    // SAFETY: a plain syscall on a socket this test owns.
    let rc = unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_RD) };
    assert_eq!(rc, 0);
    let mut buf = [0u8; 16];
    for err in [
        within(HANG, sock.recv_from(&mut buf), "recv_from hung")
            .await
            .unwrap_err(),
        within(HANG, sock.recv(&mut buf), "recv hung")
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    }
}

/// The `readable` + `try_recv` loop the docs recommend ends the same way: `readable`
/// returns at once (the hang-up stays), so a `try_recv` that said `WouldBlock` would make
/// the loop spin for ever.
async fn readable_try_recv_loop<F, R>(mut readable: F, mut try_recv: R) -> ErrorKind
where
    F: AsyncFnMut() -> std::io::Result<()>,
    R: FnMut(&mut [u8]) -> std::io::Result<usize>,
{
    let mut buf = [0u8; 16];
    for _ in 0..10_000 {
        readable().await.unwrap();
        match try_recv(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return e.kind(),
            Ok(n) => panic!("received {n} bytes from nobody"),
        }
    }
    panic!("readable() returned and try_recv said WouldBlock 10,000 times in a row");
}

#[overlap::test]
async fn readable_then_try_recv_on_a_shut_unix_datagram_fails() {
    let (a, _b) = UnixDatagram::pair().unwrap();
    a.shutdown(Shutdown::Read).unwrap();
    let kind = readable_try_recv_loop(async || a.readable().await, |buf| a.try_recv(buf)).await;
    assert_eq!(kind, ErrorKind::NotConnected);
}

#[overlap::test]
async fn readable_then_try_recv_on_a_shut_udp_socket_fails() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(sock.local_addr().unwrap()).await.unwrap();
    // SAFETY: a plain syscall on a socket this test owns.
    let rc = unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_RD) };
    assert_eq!(rc, 0);
    let kind = readable_try_recv_loop(
        async || sock.readable().await,
        |buf| sock.try_recv_from(buf).map(|(n, _)| n),
    )
    .await;
    assert_eq!(kind, ErrorKind::NotConnected);
}
