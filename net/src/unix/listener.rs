//! `UnixListener`: a listening Unix stream socket.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::task::{ready, Context, Poll};

use overlap_runtime::AsyncFd;

use super::{SocketAddr, UnixStream};
use crate::sys::{SockAddr, Socket};

/// A Unix stream socket listening for connections.
///
/// Binding creates the socket file; it is not removed when the listener is dropped (remove
/// it yourself, as with any Unix socket).
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::{UnixListener, UnixStream};
///
/// overlap::block_on(async {
///     let path = std::env::temp_dir().join(format!("overlap-doc-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path)?;
///     let mut client = UnixStream::connect(&path).await?;
///     let (mut server, _) = listener.accept().await?;
///     client.write_all(b"hi").await?;
///     let mut buf = [0u8; 2];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     std::fs::remove_file(&path)?;
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Running out of file descriptors
///
/// As with a [`TcpListener`](crate::TcpListener): when the process (`EMFILE`) or the system
/// (`ENFILE`) has no descriptor left, `accept` returns that error and the connection stays
/// queued in the kernel for the next `accept` once descriptors are freed. A loop that
/// retries at once only burns the CPU: sleep briefly on those errors, as the example under
/// [`TcpListener`](crate::TcpListener#running-out-of-file-descriptors) does.
pub struct UnixListener {
    io: AsyncFd<Socket>,
}

impl UnixListener {
    /// Creates a socket bound to `path` and listening (backlog 1024). Fails with
    /// `AddrInUse` if a file exists at `path` (the error names it; a socket's file stays
    /// after the socket is dropped, so remove one an earlier run left), with `NotFound`
    /// naming it if its directory does not exist, and with `InvalidInput` for a path no
    /// socket address can hold (see [`UnixSocket::bind`](super::UnixSocket::bind)). Must be
    /// called inside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let addr = SockAddr::unix(path)?;
        let sock = Socket::new(libc::AF_UNIX, libc::SOCK_STREAM)?;
        sock.bind(&addr)
            .map_err(|e| crate::sock_errors::unix_bind_failed(path, e))?;
        let listening = sock
            .listen(crate::tcp::DEFAULT_BACKLOG)
            .and_then(|()| AsyncFd::new(sock));
        let io = super::unlink_on_error(path, listening)?;
        Ok(UnixListener { io })
    }

    /// Wraps a listening std socket, switching it to non-blocking mode. Must be called
    /// inside a runtime; outside one it fails, and leaves the socket's mode (shared with its
    /// dups) as it was. A socket that is not a listening Unix-domain stream socket (a
    /// seqpacket one included) is refused with `InvalidInput`, as is an fd that is no
    /// socket at all (a pipe, a file, an eventfd).
    ///
    /// The fd's close-on-exec flag is left as it was: one passed by a service manager is
    /// inheritable, and stays so until the program sets `FD_CLOEXEC` (see
    /// [`TcpListener::from_std`](crate::TcpListener::from_std)).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        let sock = Socket::from_owned(OwnedFd::from(listener));
        crate::adopt::UNIX_LISTENER.check(&sock)?;
        UnixListener::adopt(sock)
    }

    /// Registers a listening socket that may be in blocking mode, then makes it
    /// non-blocking (see `register_nonblocking`).
    pub(crate) fn adopt(sock: Socket) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: crate::io::register_nonblocking(sock)?,
        })
    }

    /// Deregisters the listener and hands back the std socket (still in non-blocking mode).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        Ok(std::os::unix::net::UnixListener::from(
            self.io.into_inner().into_owned(),
        ))
    }

    /// The connections, as a stream that never ends (a failed accept is an item).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Waits for a connection; returns it with the peer's address (usually unnamed).
    ///
    /// Cancel-safe: dropped while it waits (a `timeout`, a `select!` branch that lost), it
    /// has accepted nothing, and the connection stays queued for the next `accept`.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        overlap_runtime::own_waits(|cx| self.poll_accept(cx)).await
    }

    /// The poll form of [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let (sock, addr) = ready!(crate::io::poll_read_with(
            &self.io,
            cx,
            |s| s.accept(),
            |_| false
        ))?;
        let stream = UnixStream::from_socket(sock)?;
        // `accept4` gave the peer's address already; asking again (`getpeername`) would cost
        // a syscall, and a refusal of it (a sandbox's) would lose the connection.
        let addr = match addr.to_unix() {
            Some(addr) => addr,
            None => stream.peer_addr()?,
        };
        Poll::Ready(Ok((stream, addr)))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io
            .get_ref()
            .with_std(|l: &std::os::unix::net::UnixListener| l.local_addr())
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

crate::impl_incoming!(UnixListener, UnixStream);

crate::impl_socket_fd!(
    UnixListener,
    std::os::unix::net::UnixListener,
    "a listening Unix socket",
    listening
);

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
