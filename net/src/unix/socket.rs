//! `UnixSocket`: a Unix socket to bind before it connects, listens or turns into a datagram
//! socket.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::Path;

use super::{SocketAddr, UnixDatagram, UnixListener, UnixStream};
use crate::adopt::Kind;
use crate::sys::{SockAddr, Socket};

/// A Unix-domain socket that is neither connected nor listening yet: bind it to an address
/// of your choosing, then make it a [`UnixListener`] ([`listen`](Self::listen)), a
/// [`UnixStream`] ([`connect`](Self::connect)) or a [`UnixDatagram`]
/// ([`datagram`](Self::datagram)).
///
/// The one-call constructors cover the usual cases: `UnixListener::bind(path)` is
/// `new_stream`, `bind(path)`, `listen(1024)`; `UnixDatagram::bind(path)` is `new_datagram`,
/// `bind(path)`, `datagram()`; `UnixStream::connect(path)` is `new_stream`, `connect(path)`.
/// What only this type does is connect a stream from a bound address, which the server then
/// sees as its peer's:
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::UnixSocket;
///
/// overlap::block_on(async {
///     let dir = std::env::temp_dir().join(format!("overlap-doc-unix-socket-{}", std::process::id()));
///     let _ = std::fs::remove_dir_all(&dir); // left over by an earlier run that failed
///     std::fs::create_dir_all(&dir)?;
///     let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
///
///     let server = UnixSocket::new_stream()?;
///     server.bind(&server_path)?;
///     let listener = server.listen(16)?;
///
///     let client = UnixSocket::new_stream()?;
///     client.bind(&client_path)?;
///     let mut stream = client.connect(&server_path).await?;
///     let (mut conn, peer) = listener.accept().await?;
///     assert_eq!(peer.as_pathname(), Some(client_path.as_path()));
///
///     stream.write_all(b"hello").await?;
///     let mut buf = [0u8; 5];
///     conn.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hello");
///
///     // Binding creates the socket files; nothing removes them but you.
///     std::fs::remove_dir_all(&dir)?;
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
///
/// Every socket is made `SOCK_NONBLOCK | SOCK_CLOEXEC`; dropping it closes it. Options this
/// type has no method for can be set on its fd ([`AsFd`]) before it is turned into
/// something else.
pub struct UnixSocket {
    sock: Socket,
    /// Made from an fd, which may be any socket: `listen`, `connect` and `datagram` check
    /// its family too (see `crate::adopt`), as `from_std` would.
    from_fd: bool,
}

impl UnixSocket {
    /// A new Unix stream socket (`socket(AF_UNIX, SOCK_STREAM)`), for
    /// [`listen`](Self::listen) or [`connect`](Self::connect).
    pub fn new_stream() -> io::Result<UnixSocket> {
        Ok(UnixSocket {
            sock: Socket::new(libc::AF_UNIX, libc::SOCK_STREAM)?,
            from_fd: false,
        })
    }

    /// A new Unix datagram socket (`socket(AF_UNIX, SOCK_DGRAM)`), for
    /// [`datagram`](Self::datagram).
    ///
    /// ```
    /// use overlap::net::UnixSocket;
    ///
    /// overlap::block_on(async {
    ///     // Abstract names (a leading NUL byte) leave no file behind.
    ///     let name = format!("\0overlap-doc-unix-socket-dgram-{}", std::process::id());
    ///     let server = UnixSocket::new_datagram()?;
    ///     server.bind(&name)?;
    ///     let server = server.datagram()?;
    ///
    ///     let client = UnixSocket::new_datagram()?.datagram()?;
    ///     client.send_to(b"ping", &name).await?;
    ///     let mut buf = [0u8; 8];
    ///     let (n, _from) = server.recv_from(&mut buf).await?;
    ///     assert_eq!(&buf[..n], b"ping");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn new_datagram() -> io::Result<UnixSocket> {
        Ok(UnixSocket {
            sock: Socket::new(libc::AF_UNIX, libc::SOCK_DGRAM)?,
            from_fd: false,
        })
    }

    /// Binds the socket to `path`, creating the socket file there (it is not removed when
    /// the socket or what it becomes is dropped). A path starting with a NUL byte names an
    /// abstract socket instead, which has no file. Fails with `AddrInUse`, naming the path,
    /// if it exists (or the abstract name is bound), with `NotFound` naming it if its
    /// directory does not exist (other reasons the kernel cannot make the file there,
    /// such as `PermissionDenied`, name it too), and with `InvalidInput` for an empty
    /// path, one with a NUL inside, or one too long for a socket address (a path holds at
    /// most 107 bytes, an abstract name 107 after its NUL). A socket binds once: a second
    /// `bind` is refused with `InvalidInput` naming its path.
    pub fn bind(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        self.sock
            .bind(&SockAddr::unix(path)?)
            .map_err(|e| crate::sock_errors::unix_bind_failed(path, e))
            .map_err(|e| {
                let bound = self.local_addr().ok().filter(|a| !a.is_unnamed());
                crate::sock_errors::already_bound(e, bound.map(|a| format!("{a:?}")))
            })
    }

    /// The address the socket is bound to (unnamed if it is not).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.with_std(|s: &StdUnixDatagram| s.local_addr())
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Starts listening, with room for `backlog` connections not yet accepted, and registers
    /// the listener with the runtime. Must be called inside a runtime.
    ///
    /// A datagram socket cannot listen: it fails with `InvalidInput` (and is closed).
    pub fn listen(self, backlog: u32) -> io::Result<UnixListener> {
        self.expect_type(libc::SOCK_STREAM, "listen", &crate::adopt::UNIX_LISTENER)?;
        self.sock
            .listen(backlog.min(libc::c_int::MAX as u32) as libc::c_int)?;
        if self.from_fd {
            crate::adopt::UNIX_LISTENER.check(&self.sock)?;
        }
        // A socket made from an fd may be in blocking mode: its accepts would stall the loop.
        UnixListener::adopt(self.sock)
    }

    /// Connects to the socket at `path` (see [`UnixStream::connect`], whose way of waiting
    /// out a full backlog it shares). The connection comes from the address this socket was
    /// bound to, if any. Dropping the future closes the socket. A `path` where a socket of
    /// another type is bound is refused with `InvalidInput`, as in `UnixStream::connect`.
    ///
    /// A datagram socket cannot connect this way: it fails with `InvalidInput` (and is
    /// closed); connect the [`UnixDatagram`] instead.
    pub async fn connect(self, path: impl AsRef<Path>) -> io::Result<UnixStream> {
        self.expect_type(libc::SOCK_STREAM, "connect", &crate::adopt::UNIX_STREAM)?;
        if self.from_fd {
            crate::adopt::UNIX_STREAM.check(&self.sock)?;
        }
        let path = path.as_ref();
        let addr = SockAddr::unix(path)?;
        // As in `listen`: a blocking connect would stall the loop.
        let io = crate::io::register_nonblocking(self.sock)?;
        UnixStream::connect_socket(io, &addr)
            .await
            .map_err(|e| super::other_type_at(path, "stream", e))
    }

    /// Registers the socket with the runtime as a [`UnixDatagram`]. Must be called inside a
    /// runtime.
    ///
    /// A stream socket fails with `InvalidInput` (and is closed).
    pub fn datagram(self) -> io::Result<UnixDatagram> {
        self.expect_type(libc::SOCK_DGRAM, "datagram", &crate::adopt::UNIX_DATAGRAM)?;
        if self.from_fd {
            crate::adopt::UNIX_DATAGRAM.check(&self.sock)?;
        }
        UnixDatagram::adopt(self.sock)
    }

    /// The socket's type (`SO_TYPE`): `SOCK_STREAM`, `SOCK_DGRAM`, or another one for a
    /// socket made from an fd.
    fn socket_type(&self) -> io::Result<libc::c_int> {
        self.sock.getsockopt(libc::SOL_SOCKET, libc::SO_TYPE)
    }

    /// `Ok` if the socket is of type `want`; otherwise an `InvalidInput` error saying that
    /// `what` cannot be called on it, or, for an fd that is no socket at all, that `kind`
    /// needs a socket.
    fn expect_type(&self, want: libc::c_int, what: &str, kind: &Kind) -> io::Result<()> {
        if self.from_fd {
            kind.check_is_socket(&self.sock)?;
        }
        let ty = self.socket_type()?;
        if ty == want {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{what} cannot be called on a {} socket (it needs a {} socket)",
                type_name(ty),
                type_name(want)
            ),
        ))
    }
}

fn type_name(ty: libc::c_int) -> &'static str {
    match ty {
        libc::SOCK_STREAM => "stream",
        libc::SOCK_DGRAM => "datagram",
        libc::SOCK_SEQPACKET => "seqpacket",
        _ => "non-stream, non-datagram",
    }
}

impl fmt::Debug for UnixSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixSocket");
        if let Ok(ty) = self.socket_type() {
            d.field("type", &type_name(ty));
        }
        if let Ok(addr) = self.local_addr() {
            if !addr.is_unnamed() {
                d.field("addr", &addr);
            }
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

impl AsRawFd for UnixSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for UnixSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl From<OwnedFd> for UnixSocket {
    /// Takes a Unix socket fd as it is; [`listen`](Self::listen),
    /// [`connect`](Self::connect) and [`datagram`](Self::datagram) switch it to non-blocking
    /// mode, and refuse with `InvalidInput` a socket of another family (as `from_std` does).
    fn from(fd: OwnedFd) -> UnixSocket {
        UnixSocket {
            sock: Socket::from_owned(fd),
            from_fd: true,
        }
    }
}

impl From<UnixSocket> for OwnedFd {
    fn from(socket: UnixSocket) -> OwnedFd {
        socket.sock.into_owned()
    }
}

impl IntoRawFd for UnixSocket {
    fn into_raw_fd(self) -> RawFd {
        self.sock.into_owned().into_raw_fd()
    }
}
