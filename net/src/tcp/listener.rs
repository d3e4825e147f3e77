//! `TcpListener`: a listening TCP socket.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{ready, Context, Poll};

use overlap_runtime::AsyncFd;

use super::stream::TcpStream;
use crate::resolve::{try_each, ToSocketAddrs};
use crate::sys::{SockAddr, Socket};

/// The backlog `bind` asks for; the kernel caps it at `net.core.somaxconn`.
pub(crate) const DEFAULT_BACKLOG: i32 = 1024;

/// A TCP socket listening for connections.
///
/// ```
/// use overlap::net::TcpListener;
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let client = overlap::spawn(async move { overlap::net::TcpStream::connect(addr).await });
///     let (stream, peer) = listener.accept().await?;
///     assert_eq!(stream.peer_addr()?, peer);
///     client.await.unwrap()?;
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Running out of file descriptors
///
/// When the process (`EMFILE`) or the system (`ENFILE`) has no descriptor left, `accept`
/// returns that error and the pending connection stays in the kernel's queue. The listener is
/// not harmed: once descriptors are freed, the next `accept` takes it. Retrying at once would
/// only spin (each retry spends the task's cooperative budget, so other tasks still run, but
/// the CPU burns), so back off briefly:
///
/// ```
/// use std::time::Duration;
/// use overlap::net::TcpListener;
///
/// /// Whether an accept error means "no descriptors or memory left right now".
/// fn is_resource_exhausted(e: &std::io::Error) -> bool {
///     matches!(
///         e.raw_os_error(),
///         Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
///     )
/// }
///
/// async fn serve(listener: TcpListener) -> std::io::Result<()> {
///     loop {
///         match listener.accept().await {
///             Ok((stream, _)) => {
///                 overlap::spawn(async move { drop(stream) });
///             }
///             // Let other tasks finish and close their sockets, then try again.
///             Err(e) if is_resource_exhausted(&e) => {
///                 overlap::time::sleep(Duration::from_millis(10)).await
///             }
///             Err(e) => return Err(e),
///         }
///     }
/// }
/// # let _ = serve;
/// ```
pub struct TcpListener {
    io: AsyncFd<Socket>,
}

impl TcpListener {
    /// Binds to `addr` (trying each resolved address in turn) and listens, with
    /// `SO_REUSEADDR` on and a backlog of 1024 (connections past it wait rather than fail:
    /// see [`TcpSocket::listen`](crate::TcpSocket::listen), which takes another). Port 0
    /// picks a free port; see [`local_addr`](Self::local_addr). An address in use fails
    /// with `AddrInUse` naming it.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        try_each(addr, |a| async move {
            let sock = Socket::new(SockAddr::domain_of(&a), libc::SOCK_STREAM)?;
            sock.set_flag(libc::SOL_SOCKET, libc::SO_REUSEADDR, true)?;
            sock.bind(&SockAddr::from(a))
                .map_err(|e| crate::sock_errors::bind_in_use(a, e))?;
            sock.listen(DEFAULT_BACKLOG)?;
            TcpListener::from_socket(sock)
        })
        .await
    }

    pub(crate) fn from_socket(sock: Socket) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: AsyncFd::new(sock)?,
        })
    }

    /// Wraps a listening std socket, switching it to non-blocking mode. Must be called inside
    /// a runtime; outside one it fails, and leaves the socket's mode (shared with its dups)
    /// as it was. A socket that is not a listening IPv4 or IPv6 stream socket is refused
    /// with `InvalidInput` (the `accept` of a connected one would wait for data rather than
    /// fail), as is an fd that is no socket at all (a pipe, a file, an eventfd: a service
    /// manager's fd 3 that is not what the program was told, a bogus fd received over
    /// `SCM_RIGHTS`), where tokio's takes it and fails its `accept` with `ENOTSOCK`, or
    /// never wakes it.
    ///
    /// The fd's close-on-exec flag is left as it was (as tokio leaves it): a listener passed
    /// by a service manager is inheritable, and every child the program spawns would hold
    /// it, keeping the port open after the program exits, unless the program sets
    /// `FD_CLOEXEC` itself, as `sd_listen_fds` does.
    ///
    /// ```
    /// use std::os::fd::{AsRawFd, OwnedFd};
    /// use overlap::net::TcpListener;
    ///
    /// overlap::block_on(async {
    ///     // An inheritable listener, as socket activation passes one at fd 3.
    ///     let passed = std::net::TcpListener::bind("127.0.0.1:0")?;
    ///     let fd = passed.as_raw_fd();
    ///     // SAFETY: F_SETFD takes an integer; `fd` is open.
    ///     unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    ///     let listener = TcpListener::try_from(OwnedFd::from(passed))?;
    ///     // SAFETY: as above.
    ///     assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, 0, "still inheritable");
    ///     // SAFETY: as above; `listener` owns `fd` and keeps it open.
    ///     unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    ///     # drop(listener);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        let sock = Socket::from_owned(OwnedFd::from(listener));
        crate::adopt::TCP_LISTENER.check(&sock)?;
        TcpListener::adopt(sock)
    }

    /// Registers a listening socket that may be in blocking mode, then makes it
    /// non-blocking (see `register_nonblocking`).
    pub(crate) fn adopt(sock: Socket) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: crate::io::register_nonblocking(sock)?,
        })
    }

    /// Removes the listener from the reactor and returns it as a std listener, still in
    /// non-blocking mode.
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        Ok(std::net::TcpListener::from(
            self.io.into_inner().into_owned(),
        ))
    }

    /// Waits for a connection and returns it with the peer's address.
    ///
    /// The new socket is created non-blocking and close-on-exec in one `accept4`. Errors
    /// such as `EMFILE` are returned as they are; see the type's documentation for the
    /// back-off pattern. A listener shut down (`shutdown(2)` through any copy of it, in
    /// any process: every copy stops listening) fails with `InvalidInput` saying so, where
    /// the kernel says a bare "Invalid argument" (`EINVAL`, kept as the error's source for
    /// `overlap::io::raw_os_error`).
    ///
    /// Cancel-safe: dropped while it waits (a `timeout`, a `select!` branch that lost), it
    /// has accepted nothing, and the connection stays queued for the next `accept`.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        overlap_runtime::own_waits(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection: the poll form of [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (sock, addr) = ready!(crate::io::poll_read_with(&self.io, cx, accept_one, |_| {
            false
        }))?;
        let stream = TcpStream::from_socket(sock)?;
        Poll::Ready(Ok((stream, addr.to_inet()?)))
    }

    /// A stream of incoming connections: `accept` in a loop. It never ends; errors are
    /// yielded as items, and the stream can be polled again after one.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to (with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()?.to_inet()
    }

    /// Sets `IP_TTL` for the connections' packets: 1 to 255, anything else is refused
    /// with `InvalidInput`. On an IPv6 listener it sets the hop limit
    /// (`IPV6_UNICAST_HOPS`) too, which IPv6 packets carry.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl_option(libc::IP_TTL, ttl)
    }

    /// The `IP_TTL` setting.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl_option(libc::IP_TTL)
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

/// One `accept4`. `ECONNABORTED` (the peer reset the connection while it waited in the
/// queue) is turned into `Interrupted`, so the caller just tries the next one. `EMFILE` and
/// `ENFILE` are returned without clearing readiness: the connection is still queued.
/// `EINVAL` (the listener was shut down) is said in words.
fn accept_one(sock: &Socket) -> io::Result<(Socket, SockAddr)> {
    match sock.accept() {
        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {
            Err(io::Error::from(io::ErrorKind::Interrupted))
        }
        res => res.map_err(crate::sock_errors::not_listening),
    }
}

crate::impl_incoming!(TcpListener, TcpStream);

crate::impl_socket_fd!(
    TcpListener,
    std::net::TcpListener,
    "a listening TCP socket",
    listening
);

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
