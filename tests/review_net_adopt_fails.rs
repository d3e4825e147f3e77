//! A socket handed to overlap (`from_std`, `TryFrom`, or `TcpSocket`/`UnixSocket` made from
//! an fd) that then fails to register (here: outside any runtime) must leave its open file
//! description blocking, as it was. `O_NONBLOCK` belongs to the description, which every
//! `dup` of the socket shares (a `try_clone` the caller kept, a listener a service manager
//! handed down): left non-blocking by a call that failed, their blocking `accept`, `recv`
//! and `send` start failing with `WouldBlock`. Inside a runtime the same calls do make the
//! description non-blocking, as documented.

mod support;

use std::future::Future;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net as std_unix;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use overlap::net::{
    TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixSocket,
    UnixStream,
};

/// Whether `fd`'s open file description is non-blocking.
fn non_blocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "{}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// A fresh blocking socket, as code outside overlap would make one.
fn blocking_socket(domain: libc::c_int, ty: libc::c_int) -> OwnedFd {
    // SAFETY: socket takes only integers.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// An abstract Unix socket name unique to this process and `what` (no file to clean up).
fn abstract_name(what: &str) -> String {
    format!("\0overlap-review-net-adopt-{}-{what}", std::process::id())
}

/// Polls `fut` once, with no runtime around it; it must be done by then.
fn poll_outside<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a call outside any runtime waited instead of failing"),
    }
}

/// Hands the dup `kept` of a blocking socket to `adopt`, which must fail, and checks that
/// the description is still blocking.
fn check_failed(what: &str, kept: RawFd, adopt: impl FnOnce() -> io::Result<()>) {
    assert!(
        !non_blocking(kept),
        "{what}: the socket was not blocking to begin with"
    );
    let err = adopt().expect_err(&format!("{what} succeeded outside a runtime"));
    assert_eq!(err.kind(), io::ErrorKind::Other, "{what}: {err}");
    assert!(
        !non_blocking(kept),
        "{what} failed, yet left the socket's shared description non-blocking"
    );
}

#[test]
fn failed_adoptions_outside_a_runtime_leave_the_socket_blocking() {
    // TCP: a connected pair and a listener, all blocking std sockets.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    let (server, _) = std_listener.accept().unwrap();
    let kept_server = server.try_clone().unwrap();
    check_failed("TcpStream::from_std", kept_server.as_raw_fd(), || {
        TcpStream::from_std(server).map(drop)
    });
    let kept_listener = std_listener.try_clone().unwrap();
    check_failed("TcpListener::from_std", kept_listener.as_raw_fd(), || {
        TcpListener::from_std(std_listener).map(drop)
    });

    // UDP, through `TryFrom<OwnedFd>` (which is `from_std`).
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let kept_udp = udp.try_clone().unwrap();
    check_failed("UdpSocket::try_from(OwnedFd)", kept_udp.as_raw_fd(), || {
        UdpSocket::try_from(OwnedFd::from(udp)).map(drop)
    });

    // Unix: a stream pair, a datagram pair and a listener.
    let (stream, mut stream_peer) = std_unix::UnixStream::pair().unwrap();
    let kept_stream = stream.try_clone().unwrap();
    check_failed("UnixStream::from_std", kept_stream.as_raw_fd(), || {
        UnixStream::from_std(stream).map(drop)
    });
    let (dgram, dgram_peer) = std_unix::UnixDatagram::pair().unwrap();
    let kept_dgram = dgram.try_clone().unwrap();
    check_failed("UnixDatagram::from_std", kept_dgram.as_raw_fd(), || {
        UnixDatagram::from_std(dgram).map(drop)
    });
    use std::os::linux::net::SocketAddrExt;
    let name = std_unix::SocketAddr::from_abstract_name(abstract_name("listener")).unwrap();
    let unix_listener = std_unix::UnixListener::bind_addr(&name).unwrap();
    let kept_unix_listener = unix_listener.try_clone().unwrap();
    check_failed(
        "UnixListener::from_std",
        kept_unix_listener.as_raw_fd(),
        || UnixListener::from_std(unix_listener).map(drop),
    );

    // Sockets set up by hand from an fd, then turned into registered ones.
    let fd = blocking_socket(libc::AF_UNIX, libc::SOCK_DGRAM);
    let kept = fd.try_clone().unwrap();
    check_failed("UnixSocket::datagram", kept.as_raw_fd(), || {
        UnixSocket::from(fd).datagram().map(drop)
    });
    let fd = blocking_socket(libc::AF_UNIX, libc::SOCK_STREAM);
    let kept = fd.try_clone().unwrap();
    check_failed("UnixSocket::listen", kept.as_raw_fd(), || {
        let sock = UnixSocket::from(fd);
        sock.bind(abstract_name("unix-socket-listen"))?;
        sock.listen(16).map(drop)
    });
    let fd = blocking_socket(libc::AF_UNIX, libc::SOCK_STREAM);
    let kept = fd.try_clone().unwrap();
    check_failed("UnixSocket::connect", kept.as_raw_fd(), || {
        poll_outside(UnixSocket::from(fd).connect(abstract_name("listener"))).map(drop)
    });
    let fd = blocking_socket(libc::AF_INET, libc::SOCK_STREAM);
    let kept = fd.try_clone().unwrap();
    check_failed("TcpSocket::listen", kept.as_raw_fd(), || {
        let sock = TcpSocket::from(fd);
        sock.bind("127.0.0.1:0".parse().unwrap())?;
        sock.listen(16).map(drop)
    });
    let fd = blocking_socket(libc::AF_INET, libc::SOCK_STREAM);
    let kept = fd.try_clone().unwrap();
    check_failed("TcpSocket::connect", kept.as_raw_fd(), || {
        poll_outside(TcpSocket::from(fd).connect(addr)).map(drop)
    });

    // The kept dups still work as blocking sockets: a read waits for the data rather than
    // failing with `WouldBlock`.
    let mut kept_server = kept_server;
    client.write_all(b"tcp").unwrap();
    let mut buf = [0u8; 3];
    kept_server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"tcp");
    let mut kept_stream = kept_stream;
    stream_peer.write_all(b"unix").unwrap();
    let mut buf = [0u8; 4];
    kept_stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"unix");
    dgram_peer.send(b"dgram").unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(kept_dgram.recv(&mut buf).unwrap(), 5);
}

#[test]
fn adoptions_inside_a_runtime_make_the_socket_non_blocking() {
    overlap::block_on(async {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let kept_udp = udp.try_clone().unwrap();
        let _udp = UdpSocket::from_std(udp).unwrap();
        assert!(non_blocking(kept_udp.as_raw_fd()), "UdpSocket::from_std");

        let (stream, _peer) = std_unix::UnixStream::pair().unwrap();
        let kept_stream = stream.try_clone().unwrap();
        let _stream = UnixStream::try_from(stream).unwrap();
        assert!(
            non_blocking(kept_stream.as_raw_fd()),
            "UnixStream::try_from"
        );

        let fd = blocking_socket(libc::AF_UNIX, libc::SOCK_DGRAM);
        let kept = fd.try_clone().unwrap();
        let _dgram = UnixSocket::from(fd).datagram().unwrap();
        assert!(non_blocking(kept.as_raw_fd()), "UnixSocket::datagram");

        let fd = blocking_socket(libc::AF_INET, libc::SOCK_STREAM);
        let kept = fd.try_clone().unwrap();
        let sock = TcpSocket::from(fd);
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(16).unwrap();
        assert!(non_blocking(kept.as_raw_fd()), "TcpSocket::listen");

        // A connect from a blocking fd does not block the loop, and the connection works.
        let fd = blocking_socket(libc::AF_INET, libc::SOCK_STREAM);
        let kept = fd.try_clone().unwrap();
        let to = listener.local_addr().unwrap();
        let connecting = support::within(
            std::time::Duration::from_secs(20),
            TcpSocket::from(fd).connect(to),
            "a connect from a blocking fd",
        );
        let _client = connecting.await.unwrap();
        assert!(non_blocking(kept.as_raw_fd()), "TcpSocket::connect");
        listener.accept().await.unwrap();
    });
}
