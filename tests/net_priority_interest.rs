//! `Interest::PRIORITY` and `Interest::ERROR` through the sockets' `ready`: a priority
//! wait ends on TCP urgent data (`send(MSG_OOB)` on loopback), never on plain data, and
//! sleeps again once the urgent byte is read and the readiness cleared; an error wait on a
//! connected UDP socket ends on the ICMP error of a send to a closed port, and on the
//! stream halves on a reset.

mod support;

use std::io::{self, ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, Interest};
use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::AsyncFd;
use support::{poll_once, send_urgent, settle, within};

const HANG: Duration = Duration::from_secs(30);

/// A loopback connection: a blocking std peer, and ours.
async fn conn() -> (std::net::TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().await.unwrap();
    (peer, ours)
}

/// `recv(MSG_OOB)`: the urgent byte, out of band.
fn recv_urgent(fd: &impl AsRawFd) -> io::Result<u8> {
    let mut byte = 0u8;
    // SAFETY: `byte` is one writable byte for the whole call.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_OOB | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(byte)
}

#[test]
fn a_priority_wait_ends_on_urgent_data_and_not_on_plain_data() {
    overlap::block_on(async {
        let (mut peer, ours) = conn().await;
        let ours = std::rc::Rc::new(ours);
        let waiter = overlap::spawn({
            let ours = ours.clone();
            async move { ours.ready(Interest::PRIORITY).await }
        });
        settle().await;
        peer.write_all(b"plain").unwrap();
        // The data's edge is in: a read wait ends (the data stays unread).
        within(HANG, ours.readable(), "no read edge").await.unwrap();
        settle().await;
        assert!(!waiter.is_finished(), "plain data ended a priority wait");

        send_urgent(peer.as_raw_fd(), b'!');
        let ready = within(HANG, waiter, "urgent data never ended the priority wait")
            .await
            .unwrap()
            .unwrap();
        assert!(ready.is_priority(), "{ready:?}");
        assert!(
            !ready.is_readable(),
            "a priority wait reports priority: {ready:?}"
        );
        // No read clears priority readiness: `try_io` does, once the call would block.
        assert_eq!(
            ours.try_io(Interest::PRIORITY, oob_of(&ours)).unwrap(),
            b'!'
        );
        assert!(ours.ready(Interest::PRIORITY).await.unwrap().is_priority());
        let err = ours.try_io(Interest::PRIORITY, oob_of(&ours)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(
            poll_once(Box::pin(ours.ready(Interest::PRIORITY)))
                .await
                .is_pending(),
            "priority readiness outlived a WouldBlock in try_io"
        );
        // The plain data is still there for a reader.
        let mut buf = [0u8; 5];
        (&*ours).read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"plain");

        // `async_io` waits for the next urgent byte.
        let next = overlap::spawn({
            let ours = ours.clone();
            async move { ours.async_io(Interest::PRIORITY, oob_of(&ours)).await }
        });
        settle().await;
        assert!(!next.is_finished());
        send_urgent(peer.as_raw_fd(), b'?');
        let got = within(HANG, next, "async_io missed the urgent byte").await;
        assert_eq!(got.unwrap().unwrap(), b'?');
    });
}

/// `recv(MSG_OOB)` on `sock`, saying `WouldBlock` when no urgent byte is there (`EINVAL`).
fn oob_of(sock: &TcpStream) -> impl FnMut() -> io::Result<u8> + '_ {
    move || match recv_urgent(sock) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Err(ErrorKind::WouldBlock.into()),
        res => res,
    }
}

/// Through `AsyncFd`, whose guard can clear: once the urgent byte is read and the guard
/// cleared, the next priority wait sleeps through plain data until the next urgent byte.
#[test]
fn a_cleared_priority_wait_sleeps_until_the_next_urgent_byte() {
    overlap::block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let fd = AsyncFd::new(ours).unwrap();

        for byte in [b'1', b'2'] {
            send_urgent(peer.as_raw_fd(), byte);
            let mut guard = within(HANG, fd.ready(Interest::PRIORITY), "no priority edge")
                .await
                .unwrap();
            assert!(guard.ready().is_priority(), "{:?}", guard.ready());
            assert_eq!(recv_urgent(fd.get_ref()).unwrap(), byte);
            guard.clear_ready_matching(overlap::io::Ready::PRIORITY);
            assert!(guard.ready().is_empty());
            drop(guard);
            assert!(
                poll_once(Box::pin(fd.ready(Interest::PRIORITY)))
                    .await
                    .is_pending(),
                "a cleared priority readiness ended the next wait"
            );
            peer.write_all(b"plain").unwrap();
            let mut read = fd.readable().await.unwrap();
            // A read wait still carries the note that urgent data was seen.
            assert!(read.ready().is_readable() && read.ready().is_priority());
            read.retain_ready();
            assert!(
                poll_once(Box::pin(fd.ready(Interest::PRIORITY)))
                    .await
                    .is_pending(),
                "plain data after the urgent byte ended a priority wait"
            );
            let mut buf = [0u8; 16];
            let n = io::Read::read(&mut fd.get_ref(), &mut buf).unwrap();
            assert_eq!(&buf[..n], b"plain");
        }
    });
}

#[test]
fn an_error_wait_on_a_connected_udp_socket_ends_on_the_icmp_error() {
    overlap::block_on(async {
        let gone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = gone.local_addr().unwrap();
        drop(gone);
        let sock = std::rc::Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        sock.connect(addr).await.unwrap();
        let waiter = overlap::spawn({
            let sock = sock.clone();
            async move { sock.ready(Interest::ERROR).await }
        });
        settle().await;
        // Writable all along: that does not end an error wait.
        sock.writable().await.unwrap();
        settle().await;
        assert!(!waiter.is_finished(), "writability ended the error wait");

        sock.send(b"anyone?").await.unwrap();
        let ready = within(HANG, waiter, "the ICMP error never ended the error wait")
            .await
            .unwrap()
            .unwrap();
        assert!(ready.is_error() && !ready.is_writable(), "{ready:?}");
        let err = sock.try_recv(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        // The error taken, a receive says WouldBlock, which forgets it: no spin.
        let err = sock.try_recv(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(poll_once(Box::pin(sock.ready(Interest::ERROR)))
            .await
            .is_pending());
    });
}

#[test]
fn an_error_wait_on_a_stream_half_ends_on_a_reset() {
    overlap::block_on(async {
        let (peer, mut ours) = conn().await;
        let (read_half, _write_half) = TcpStream::split(&mut ours);
        let wait = read_half.ready(Interest::ERROR);
        let mut wait = Box::pin(wait);
        assert!(poll_once(wait.as_mut()).await.is_pending());
        let peer = TcpStream::from_std(peer).unwrap();
        peer.set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer);
        let ready = within(HANG, wait, "the reset never ended the error wait")
            .await
            .unwrap();
        assert!(ready.is_error(), "{ready:?}");
    });
}
