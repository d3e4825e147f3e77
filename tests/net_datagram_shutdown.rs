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
