//! A socket handed to the wrong wrapper. Before, each was accepted and then waited for ever
//! or lost data:
//! - a listening socket made a stream or a datagram socket never turns readable or
//!   writable for a `read`/`write`/`recv`, and a connected (or never listening) one made a
//!   listener turns readable for an `accept` only when data comes (std's blocking calls fail
//!   at once with `EINVAL`/`ENOTCONN`);
//! - a Unix seqpacket or datagram socket made a `UnixStream` returns one message per read,
//!   short of the buffer, which a stream read takes to mean the queue is empty: a second
//!   queued message waited until a third came;
//! - a socket of the other family (a Unix datagram socket made a `UdpSocket`, a TCP
//!   listener made a `UnixListener`...) fails each `recv_from` or `accept` only after the
//!   kernel has handed over the datagram or connection, which is lost.
//!
//! - a datagram socket made a `TcpSocket` failed `listen` with the kernel's `EOPNOTSUPP`
//!   ("Operation not supported"), naming neither the wrapper nor the socket.
//!
//! Now `from_std` (and `TryFrom<OwnedFd>`, which goes through it) refuses them with
//! `InvalidInput` naming what the socket is, closes the fd it was given, and leaves the
//! socket's mode alone for the dups that share it.

mod support;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net as std_unix;
use std::time::Duration;

use overlap::net::{
    TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixSocket,
    UnixStream,
};
use support::{open_fds, within};

/// A fresh socket path in the temp dir, unique per test and process.
fn sock_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "overlap-adopt-wrong-{}-{name}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}

/// Whether `fd`'s open file description is in non-blocking mode.
fn non_blocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer; the fd is open for the call.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "{}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// A Unix socket pair of type `ty` (`SOCK_SEQPACKET`...), blocking, close-on-exec.
fn unix_pair(ty: libc::c_int) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds socketpair writes.
    let res =
        unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) };
    assert_eq!(res, 0, "{}", io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A blocking, close-on-exec pipe: (read end, write end).
fn blocking_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let res = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(res, 0, "{}", io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// `res` is an `InvalidInput` error whose message contains `state` (what the socket is).
fn refused<T>(what: &str, res: io::Result<T>, state: &str) {
    match res {
        Ok(_) => panic!("{what}: accepted a socket of the wrong kind"),
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
            assert!(e.to_string().contains(state), "{what}: {e}");
        }
    }
}

/// One test, so that no other test in this process opens fds while the counts are taken.
#[test]
fn sockets_of_the_wrong_kind_are_refused_and_closed() {
    overlap::block_on(async {
        let before = open_fds();
        a_listening_socket_is_refused_as_a_stream_or_datagram_socket();
        assert_eq!(open_fds(), before, "an fd leaked");
        a_socket_that_is_not_listening_is_refused_as_a_listener();
        assert_eq!(open_fds(), before, "an fd leaked");
        a_socket_of_another_type_or_family_is_refused();
        assert_eq!(open_fds(), before, "an fd leaked");
        a_socket_made_from_an_fd_of_another_kind_is_refused().await;
        assert_eq!(open_fds(), before, "an fd leaked");
        an_fd_that_is_not_a_socket_is_refused();
        assert_eq!(open_fds(), before, "an fd leaked");
        sockets_in_the_right_state_are_still_adopted().await;
    });
}

fn a_listening_socket_is_refused_as_a_stream_or_datagram_socket() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let kept = tcp.try_clone().unwrap();
    refused(
        "TcpStream::from_std",
        TcpStream::from_std(std::net::TcpStream::from(OwnedFd::from(tcp))),
        "listening",
    );
    assert!(!non_blocking(&kept), "the dup's mode was changed");
    refused(
        "UdpSocket::try_from",
        UdpSocket::try_from(OwnedFd::from(kept)),
        "listening",
    );

    let path = sock_path("listening");
    let unix = std_unix::UnixListener::bind(&path).unwrap();
    let kept = unix.try_clone().unwrap();
    refused(
        "UnixStream::from_std",
        UnixStream::from_std(std_unix::UnixStream::from(OwnedFd::from(unix))),
        "listening",
    );
    refused(
        "UnixDatagram::try_from",
        UnixDatagram::try_from(OwnedFd::from(kept)),
        "listening",
    );
    std::fs::remove_file(&path).unwrap();
}

fn a_socket_that_is_not_listening_is_refused_as_a_listener() {
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = std::net::TcpStream::connect(peer.local_addr().unwrap()).unwrap();
    let kept = stream.try_clone().unwrap();
    refused(
        "TcpListener::from_std",
        TcpListener::from_std(std::net::TcpListener::from(OwnedFd::from(stream))),
        "not listening",
    );
    assert!(!non_blocking(&kept), "the dup's mode was changed");
    drop((kept, peer));

    let (a, b) = std_unix::UnixStream::pair().unwrap();
    refused(
        "UnixListener::from_std",
        UnixListener::from_std(std_unix::UnixListener::from(OwnedFd::from(a))),
        "not listening",
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    refused(
        "TcpListener::try_from",
        TcpListener::try_from(OwnedFd::from(udp)),
        "IPv4 datagram socket",
    );
    drop(b);
}

fn a_socket_of_another_type_or_family_is_refused() {
    let (a, b) = unix_pair(libc::SOCK_SEQPACKET);
    let kept = a.try_clone().unwrap();
    refused(
        "UnixStream::try_from",
        UnixStream::try_from(a),
        "a Unix-domain seqpacket socket",
    );
    assert!(!non_blocking(&kept), "the dup's mode was changed");
    refused(
        "UnixDatagram::try_from",
        UnixDatagram::try_from(b),
        "a Unix-domain seqpacket socket",
    );
    drop(kept);

    let (a, b) = std_unix::UnixDatagram::pair().unwrap();
    refused(
        "UnixStream::try_from",
        UnixStream::try_from(OwnedFd::from(a)),
        "a Unix-domain datagram socket",
    );
    refused(
        "UdpSocket::try_from",
        UdpSocket::try_from(OwnedFd::from(b)),
        "a Unix-domain datagram socket",
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    refused(
        "UnixDatagram::try_from",
        UnixDatagram::try_from(OwnedFd::from(udp)),
        "an IPv4 datagram socket",
    );

    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    refused(
        "UnixListener::try_from",
        UnixListener::try_from(OwnedFd::from(tcp)),
        "a listening IPv4 stream socket",
    );
    let path = sock_path("family");
    let unix = std_unix::UnixListener::bind(&path).unwrap();
    refused(
        "TcpListener::try_from",
        TcpListener::try_from(OwnedFd::from(unix)),
        "a listening Unix-domain stream socket",
    );
    std::fs::remove_file(&path).unwrap();
    let (a, b) = std_unix::UnixStream::pair().unwrap();
    refused(
        "TcpStream::from_std",
        TcpStream::from_std(std::net::TcpStream::from(OwnedFd::from(a))),
        "a Unix-domain stream socket",
    );
    drop(b);
}

/// `TcpSocket` and `UnixSocket` take any fd (`From<OwnedFd>`); what they turn it into is
/// checked as `from_std` checks it. Before, a UDP socket connected as a `TcpStream` (whose
/// reads strand a second queued datagram), a Unix socket listened as a `TcpListener` and a
/// TCP one as a `UnixListener` (whose accepts fail on the address, losing the connection),
/// and a UDP socket became a `UnixDatagram` (whose `recv_from` loses the datagram).
async fn a_socket_made_from_an_fd_of_another_kind_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let res = within(
        Duration::from_secs(10),
        TcpSocket::from(OwnedFd::from(udp)).connect(addr),
        "connect",
    )
    .await;
    refused("TcpSocket::connect", res, "an IPv4 datagram socket");
    drop(listener);

    let unix = UnixSocket::new_stream().unwrap();
    unix.bind(format!("\0overlap-adopt-wrong-{}", std::process::id()))
        .unwrap();
    refused(
        "TcpSocket::listen",
        TcpSocket::from(OwnedFd::from(unix)).listen(8),
        "a listening Unix-domain stream socket",
    );

    // A datagram socket cannot listen: refused before `listen(2)`, whose `EOPNOTSUPP`
    // ("Operation not supported") named neither the wrapper nor the socket.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    refused(
        "TcpSocket::listen of a UDP socket",
        TcpSocket::from(OwnedFd::from(udp)).listen(8),
        "an IPv4 datagram socket",
    );
    let (dgram, _peer) = unix_pair(libc::SOCK_DGRAM);
    refused(
        "TcpSocket::listen of a Unix datagram socket",
        TcpSocket::from(dgram).listen(8),
        "a Unix-domain datagram socket",
    );

    let tcp = TcpSocket::new_v4().unwrap();
    tcp.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    refused(
        "UnixSocket::listen",
        UnixSocket::from(OwnedFd::from(tcp)).listen(8),
        "a listening IPv4 stream socket",
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    refused(
        "UnixSocket::datagram",
        UnixSocket::from(OwnedFd::from(udp)).datagram(),
        "an IPv4 datagram socket",
    );
}

/// An fd that is no socket at all (what a service manager's fd 3 may turn out to be, or a
/// bogus fd received over `SCM_RIGHTS`). Before, a pipe or an eventfd was taken as any
/// wrapper and registered: an `accept` or `recv` on it waited for ever (an eventfd at 0
/// never turns readable) or failed only then with `ENOTSOCK`, and a regular file, a
/// directory or `/dev/null` was refused with epoll's bare `EPERM` ("Operation not
/// permitted"), which named neither the wrapper nor the fd. Each is now `InvalidInput`
/// saying what the fd is, and a blocking pipe is left blocking.
fn an_fd_that_is_not_a_socket_is_refused() {
    type Adopt = fn(OwnedFd) -> io::Result<()>;
    let wrappers: [(&str, Adopt); 6] = [
        ("TcpListener", |fd| TcpListener::try_from(fd).map(drop)),
        ("TcpStream", |fd| TcpStream::try_from(fd).map(drop)),
        ("UdpSocket", |fd| UdpSocket::try_from(fd).map(drop)),
        ("UnixListener", |fd| UnixListener::try_from(fd).map(drop)),
        ("UnixStream", |fd| UnixStream::try_from(fd).map(drop)),
        ("UnixDatagram", |fd| UnixDatagram::try_from(fd).map(drop)),
    ];
    let dir = support::TempDir::new("adopt-not-a-socket");
    std::fs::write(dir.join("file"), b"x").unwrap();
    for (wrapper, adopt) in wrappers {
        let (r, w) = blocking_pipe();
        let kept = r.try_clone().unwrap();
        refused(wrapper, adopt(r), "not a pipe or FIFO");
        assert!(
            !non_blocking(&kept),
            "{wrapper}: the pipe's mode was changed"
        );
        drop((kept, w));
        refused(wrapper, adopt(support::eventfd()), "not a socket");
        let file = std::fs::File::open(dir.join("file")).unwrap();
        refused(wrapper, adopt(OwnedFd::from(file)), "not a regular file");
        let file = std::fs::File::open(dir.path()).unwrap();
        refused(wrapper, adopt(OwnedFd::from(file)), "not a directory");
        let file = std::fs::File::open("/dev/null").unwrap();
        refused(
            wrapper,
            adopt(OwnedFd::from(file)),
            "not a character device",
        );
    }
    // `TcpSocket` and `UnixSocket` take any fd, and check it as they listen or connect,
    // where `listen(2)` failed with the kernel's `ENOTSOCK`.
    let (r, _w) = blocking_pipe();
    refused(
        "TcpSocket::listen",
        TcpSocket::from(r).listen(8),
        "not a pipe or FIFO",
    );
    refused(
        "UnixSocket::listen",
        UnixSocket::from(support::eventfd()).listen(8),
        "(fd ",
    );
}

/// The sockets in the right state are still taken, and work.
async fn sockets_in_the_right_state_are_still_adopted() {
    let listener =
        TcpListener::from_std(std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let stream = TcpStream::from_std(client).unwrap();
    let (_server, peer) = within(Duration::from_secs(10), listener.accept(), "accept")
        .await
        .unwrap();
    assert_eq!(peer, stream.local_addr().unwrap());
    // IPv6 is as good as IPv4, where the host has it.
    if let Ok(v6) = std::net::TcpListener::bind("[::1]:0") {
        TcpListener::from_std(v6).unwrap();
    }

    let path = sock_path("right");
    let unix = UnixListener::from_std(std_unix::UnixListener::bind(&path).unwrap()).unwrap();
    let client = UnixStream::from_std(std_unix::UnixStream::connect(&path).unwrap()).unwrap();
    within(Duration::from_secs(10), unix.accept(), "unix accept")
        .await
        .unwrap();
    drop(client);
    let (a, b) = std_unix::UnixDatagram::pair().unwrap();
    let (a, b) = (
        UnixDatagram::from_std(a).unwrap(),
        UnixDatagram::from_std(b).unwrap(),
    );
    a.send(b"x").await.unwrap();
    let mut buf = [0u8; 2];
    let n = within(Duration::from_secs(10), b.recv(&mut buf), "recv")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"x");
    std::fs::remove_file(&path).unwrap();
}
