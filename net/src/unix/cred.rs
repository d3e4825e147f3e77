//! The sender's credentials with each message (`SO_PASSCRED`, `SCM_CREDENTIALS`) on
//! [`UnixDatagram`] and [`UnixStream`].

use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use overlap_runtime::AsyncFd;

use super::{SocketAddr, UCred, UnixDatagram, UnixStream};
use crate::io::read_io;
use crate::sys::{SockAddr, Socket};

/// Turns `SO_PASSCRED` on or off.
fn set_passcred(sock: &Socket, on: bool) -> io::Result<()> {
    sock.setsockopt(libc::SOL_SOCKET, libc::SO_PASSCRED, libc::c_int::from(on))
}

/// Whether `SO_PASSCRED` is on.
fn passcred(sock: &Socket) -> io::Result<bool> {
    let on: libc::c_int = sock.getsockopt(libc::SOL_SOCKET, libc::SO_PASSCRED)?;
    Ok(on != 0)
}

/// Waits until `io` is readable and receives one message with the credentials it carried,
/// writing the sender's address into `from` if given. Descriptors sent with the message are
/// closed: this call has no use for them.
async fn recv_cred(
    io: &AsyncFd<Socket>,
    buf: &mut [u8],
    mut from: Option<&mut SockAddr>,
) -> io::Result<(usize, Option<UCred>)> {
    let mut fds: Vec<OwnedFd> = Vec::new();
    let got = read_io(io, |s| {
        if let Some(from) = from.as_deref_mut() {
            *from = SockAddr::empty();
        }
        s.recv_from_with_fds(buf, &mut fds, from.as_deref_mut())
    })
    .await?;
    Ok((got.len, ucred(got.cred)))
}

/// The credentials a message carried, `None` if the kernel attached none (see [`is_none`]).
fn ucred(got: Option<libc::ucred>) -> Option<UCred> {
    got.filter(|c| !is_none(c)).map(|c| UCred {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    })
}

/// Whether `c` is what the kernel reports for a message it attached no credentials to
/// (queued before `SO_PASSCRED` was set): pid 0 and the overflow user and group ids, the
/// ones an id with no mapping reads as (`/proc/sys/kernel/overflowuid`, `overflowgid`;
/// 65534 unless changed).
fn is_none(c: &libc::ucred) -> bool {
    static OVERFLOW: OnceLock<(u32, u32)> = OnceLock::new();
    let (uid, gid) = *OVERFLOW.get_or_init(|| {
        let read = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(65534)
        };
        (read("overflowuid"), read("overflowgid"))
    });
    c.pid == 0 && c.uid == uid && c.gid == gid
}

impl UnixDatagram {
    /// Asks the kernel to attach the sender's credentials to each datagram received from
    /// now on (`SO_PASSCRED`), for [`recv_with_cred`](Self::recv_with_cred) and
    /// [`recv_from_with_cred`](Self::recv_from_with_cred) to return: the process id, user
    /// id and group id of the process that sent it, checked by the kernel (a sender may
    /// claim other ids only with the privilege to). A notify socket uses them to tell which
    /// service wrote, where the sender's address (often unnamed) says nothing.
    ///
    /// Datagrams queued before it was set come without them (the kernel attaches them as
    /// it queues a datagram, when either end asks). Setting it also gives an unbound
    /// socket that sends an abstract address of its own (the kernel's autobind).
    ///
    /// ```
    /// use overlap::net::UnixDatagram;
    ///
    /// overlap::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     b.set_passcred(true)?;
    ///     a.send(b"READY=1").await?;
    ///     let mut buf = [0u8; 64];
    ///     let (n, cred) = b.recv_with_cred(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"READY=1");
    ///     assert_eq!(cred.unwrap().pid, std::process::id() as i32);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_passcred(&self, on: bool) -> io::Result<()> {
        set_passcred(self.io.get_ref(), on)
    }

    /// Whether the sender's credentials come with each datagram (`SO_PASSCRED`; see
    /// [`set_passcred`](Self::set_passcred)).
    pub fn passcred(&self) -> io::Result<bool> {
        passcred(self.io.get_ref())
    }

    /// Receives one datagram into `buf` (cut to its length, as [`recv`](Self::recv) does)
    /// and the credentials of the process that sent it, `None` if it carried none
    /// (`SO_PASSCRED` is off, or was when it was queued; see
    /// [`set_passcred`](Self::set_passcred)). Descriptors sent with it are closed, as by
    /// `recv`.
    ///
    /// The pid is as this process's pid namespace sees the sender: 0 for one it cannot see
    /// (the user and group ids are real then). The kernel says "none attached" as pid 0
    /// with the overflow ids (65534, "nobody"), which this call returns as `None`: a
    /// sender running as nobody from a pid namespace this one cannot see reads the same.
    ///
    /// Cancel-safe: dropped while it waits, it has taken no datagram.
    pub async fn recv_with_cred(&self, buf: &mut [u8]) -> io::Result<(usize, Option<UCred>)> {
        recv_cred(&self.io, buf, None).await
    }

    /// Like [`recv_with_cred`](Self::recv_with_cred), also returning the sender's address
    /// (unnamed if it is not bound), as [`recv_from`](Self::recv_from) does.
    ///
    /// Cancel-safe: dropped while it waits, it has taken no datagram.
    pub async fn recv_from_with_cred(
        &self,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Option<UCred>)> {
        let mut from = SockAddr::empty();
        let (len, cred) = recv_cred(&self.io, buf, Some(&mut from)).await?;
        let addr = from.to_unix().ok_or_else(|| {
            io::Error::other(
                "a datagram came from an address that is no Unix socket path std can hold",
            )
        })?;
        Ok((len, addr, cred))
    }

    /// Receives one datagram into `buf` (cut to its length, as [`recv`](Self::recv) does),
    /// appending to `fds` the descriptors that came with it (`SCM_RIGHTS`), and the
    /// credentials of the process that sent it (`SCM_CREDENTIALS`; `None` as
    /// [`recv_with_cred`](Self::recv_with_cred) says), all from one `recvmsg`: what a
    /// service manager's notify socket needs for an `FDSTORE=1` message, whose descriptors
    /// it keeps only if the sender is the service's process. Two calls cannot do it:
    /// `recv_with_cred` closes the descriptors, and
    /// [`recv_with_fds`](Self::recv_with_fds) drops the credentials.
    ///
    /// A datagram whose descriptors the process had no room for fails as
    /// [`recv_with_fds`](Self::recv_with_fds) does, the datagram taken and none of its
    /// descriptors kept. Cancel-safe: dropped while it waits, it has taken no datagram.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use overlap::net::UnixDatagram;
    ///
    /// overlap::block_on(async {
    ///     let (service, manager) = UnixDatagram::pair()?;
    ///     manager.set_passcred(true)?;
    ///     let conn = std::fs::File::open("/dev/null")?;
    ///     service.send_with_fds(b"FDSTORE=1\nFDNAME=conn", &[conn.as_fd()]).await?;
    ///     let (mut buf, mut fds) = ([0u8; 64], Vec::new());
    ///     let (n, cred) = manager.recv_with_fds_and_cred(&mut buf, &mut fds).await?;
    ///     assert_eq!(&buf[..n], b"FDSTORE=1\nFDNAME=conn");
    ///     assert_eq!(fds.len(), 1);
    ///     assert_eq!(cred.unwrap().pid, std::process::id() as i32);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn recv_with_fds_and_cred(
        &self,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> io::Result<(usize, Option<UCred>)> {
        let first_new = fds.len();
        let got = read_io(&self.io, |s| s.recv_from_with_fds(buf, fds, None)).await?;
        let cred = ucred(got.cred);
        let len = super::fds::whole(got, fds, first_new)?;
        Ok((len, cred))
    }
}

impl UnixStream {
    /// Asks the kernel to attach the sender's credentials to the bytes received from now on
    /// (`SO_PASSCRED`), for [`recv_with_cred`](Self::recv_with_cred) to return. On a stream,
    /// [`peer_cred`](Self::peer_cred) gives the peer's credentials as they were when it
    /// connected; these are the ones of whoever wrote each part, which differ when the
    /// peer's socket was handed to another process.
    pub fn set_passcred(&self, on: bool) -> io::Result<()> {
        set_passcred(self.io.get_ref(), on)
    }

    /// Whether the sender's credentials come with the bytes received (`SO_PASSCRED`).
    pub fn passcred(&self) -> io::Result<bool> {
        passcred(self.io.get_ref())
    }

    /// Reads bytes into `buf` and the credentials of the process that wrote them, `None`
    /// if they carried none (`SO_PASSCRED` is off, or was when they came; read the pid as
    /// [`UnixDatagram::recv_with_cred`] says); 0 bytes at end of file
    /// (and at once for an empty `buf`). A read stops where the writer's credentials
    /// change, so the bytes of one call all come from one writer. Descriptors sent with
    /// the bytes are closed, as by a plain `read`.
    ///
    /// Cancel-safe: dropped while it waits, it has taken nothing.
    pub async fn recv_with_cred(&self, buf: &mut [u8]) -> io::Result<(usize, Option<UCred>)> {
        if buf.is_empty() {
            return Ok((0, None));
        }
        recv_cred(&self.io, buf, None)
            .await
            .map_err(super::stream::no_peer)
    }
}
