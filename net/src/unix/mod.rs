//! Unix-domain sockets: streams, listeners and datagrams, named by filesystem paths (or by
//! abstract names starting with a NUL byte).

mod datagram;
mod listener;
mod split;
mod stream;

use std::io;

pub use datagram::UnixDatagram;
pub use listener::UnixListener;
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

pub(crate) fn peer_cred(sock: &Socket) -> io::Result<UCred> {
    let c: libc::ucred = sock.getsockopt(libc::SOL_SOCKET, libc::SO_PEERCRED)?;
    Ok(UCred {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    })
}
