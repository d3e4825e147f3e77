//! `UnixStream::peer_cred` on a stream socket with no peer (an unconnected socket handed
//! over with `from_std`/`TryFrom`, which they take) fails with `NotConnected`. The kernel
//! answers `SO_PEERCRED` there with no error and the credentials it has none of: pid 0, and
//! uid and gid `(uid_t)-1`, which used to be returned as if they were the peer's.
//! Connected sockets still get their peer's credentials, also once the peer has closed.

mod support;

use std::io::{self, ErrorKind};
use std::os::fd::{FromRawFd, OwnedFd};

use overlap::net::{UnixListener, UnixStream};
use support::TempDir;

/// A Unix stream socket that is not connected, as code outside overlap may hand one over.
fn unconnected_stream() -> OwnedFd {
    // SAFETY: socket takes only integers.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn me() -> (i32, u32, u32) {
    // SAFETY: getpid, geteuid and getegid take no arguments and cannot fail.
    unsafe { (libc::getpid(), libc::geteuid(), libc::getegid()) }
}

#[overlap::test]
async fn a_stream_with_no_peer_has_no_credentials() {
    let lone = UnixStream::try_from(unconnected_stream()).unwrap();
    let err = lone.peer_cred().expect_err("credentials of no peer");
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    assert!(err.to_string().contains("no peer"), "{err}");
    let std_lone = std::os::unix::net::UnixStream::from(unconnected_stream());
    let lone = UnixStream::from_std(std_lone).unwrap();
    assert_eq!(
        lone.peer_cred().unwrap_err().kind(),
        ErrorKind::NotConnected
    );
}

#[overlap::test]
async fn connected_streams_have_their_peers_credentials_even_once_it_is_gone() {
    let (pid, uid, gid) = me();
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    let cred = a.peer_cred().unwrap();
    assert_eq!((cred.pid, cred.uid, cred.gid), (pid, uid, gid));

    let dir = TempDir::new("review-unix-peer-cred");
    let path = dir.join("listener.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = UnixStream::connect(&path).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    for s in [&client, &server] {
        let cred = s.peer_cred().unwrap();
        assert_eq!((cred.pid(), cred.uid(), cred.gid()), (Some(pid), uid, gid));
    }
}
