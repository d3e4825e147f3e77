//! Unix-domain sockets: streams, listeners and datagrams, named by filesystem paths (or by
//! abstract names starting with a NUL byte), and [`UnixSocket`] to set one up by hand.

mod cred;
mod datagram;
mod fds;
mod listener;
mod socket;
mod split;
mod stream;

use std::io;

pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use socket::UnixSocket;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub use std::os::unix::net::SocketAddr;
pub use stream::UnixStream;

use crate::sys::Socket;

/// The credentials of the process at the other end of a Unix socket (`SO_PEERCRED`), as
/// they were when it connected (or created the pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UCred {
    /// The peer's process id.
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

impl UCred {
    /// The peer's effective user id (the `uid` field, under the method name tokio uses).
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's effective group id (the `gid` field).
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The peer's process id (the `pid` field); always `Some` on Linux. The `Option` is the
    /// shape tokio gives it, for platforms that cannot tell.
    pub fn pid(&self) -> Option<i32> {
        Some(self.pid)
    }
}

/// `SO_PEERCRED`, or `NotConnected` for a socket with no peer: the kernel answers that with
/// no error and credentials it has none of (pid 0, uid and gid `(uid_t)-1`, which no real
/// credentials carry: an id with no mapping in our user namespace reads as the overflow id).
pub(crate) fn peer_cred(sock: &Socket) -> io::Result<UCred> {
    let c: libc::ucred = sock.getsockopt(libc::SOL_SOCKET, libc::SO_PEERCRED)?;
    let none = libc::uid_t::MAX;
    if c.uid == none && c.gid == none {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "the socket has no peer, so no peer credentials",
        ));
    }
    Ok(UCred {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    })
}

/// After a successful `bind` to `path`: if setting the socket up failed afterwards (outside a
/// runtime, say), removes the socket file the bind created, so that binding the path again
/// does not fail with `AddrInUse`. Abstract names (a leading NUL) have no file.
fn unlink_on_error<T>(path: &std::path::Path, res: io::Result<T>) -> io::Result<T> {
    use std::os::unix::ffi::OsStrExt;
    if res.is_err() && path.as_os_str().as_bytes().first() != Some(&0) {
        let _ = std::fs::remove_file(path);
    }
    res
}

/// The kernel's `EPROTOTYPE` for a `connect` or `send_to` from a Unix socket of type `ours`
/// ("stream", "datagram") to the socket at `path`, which is of another type, as
/// `InvalidInput` naming both ("Protocol wrong type for socket" names neither, and has no
/// `ErrorKind` a caller can match). A datagram socket's `EPERM` is reworded too (see
/// `unix_peer_taken`), and a path with no socket (see `unix_unreachable`); any other error
/// is passed on.
fn other_type_at(path: &std::path::Path, ours: &str, err: io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(libc::EPROTOTYPE) => {}
        Some(libc::EPERM) if ours == "datagram" => {
            return crate::sock_errors::unix_peer_taken(Some(path), err)
        }
        _ => return crate::sock_errors::unix_unreachable(path, err),
    }
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("the socket at {path:?} is not a {ours} socket, the only type a Unix {ours} socket can reach"),
    )
}
