//! A socket handed to the wrong wrapper: a listening socket made a stream or a datagram
//! socket, a connected (or never listening) one made a listener. Before, each was accepted
//! and then waited for ever: a listening socket never turns readable or writable for a
//! `read`/`write`/`recv`, and a connected one turns readable for an `accept` only when data
//! comes (std's blocking calls fail at once with `EINVAL`/`ENOTCONN`). Now `from_std` (and
//! `TryFrom<OwnedFd>`, which goes through it) refuses them with `InvalidInput`, closes the fd
//! it was given, and leaves the socket's mode alone for the dups that share it.

mod support;

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net as std_unix;
use std::time::Duration;

use overlap::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
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

/// `res` is an `InvalidInput` error that names the socket's state.
fn refused<T>(what: &str, res: io::Result<T>, state: &str) {
    match res {
        Ok(_) => panic!("{what}: accepted a socket in the wrong state"),
        Err(e) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
            assert!(e.to_string().contains(state), "{what}: {e}");
        }
    }
}

/// One test, so that no other test in this process opens fds while the counts are taken.
#[test]
fn sockets_in_the_wrong_state_are_refused_and_closed() {
    overlap::block_on(async {
        let before = open_fds();
        a_listening_socket_is_refused_as_a_stream_or_datagram_socket();
        assert_eq!(open_fds(), before, "an fd leaked");
        a_socket_that_is_not_listening_is_refused_as_a_listener();
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
        "not listening",
    );
    drop(b);
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
