//! `UnixDatagram`: Unix-domain datagram sockets.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap_runtime::{AsyncFd, Direction};

use super::SocketAddr;
use crate::io::{
    impl_readiness, poll_read_with, poll_recv_datagram, poll_send_datagram, read_io, try_now,
    write_io,
};
use crate::sys::{SockAddr, Socket};

/// A Unix datagram socket: reliable, ordered, message-preserving, local only.
///
/// Each receive takes one whole datagram: one longer than the buffer is cut to its length,
/// and the rest is lost (as with UDP; [`next_datagram_len`](Self::next_datagram_len) gives a
/// datagram's length before it is taken). An empty datagram is received as 0 bytes, which is
/// no end of file: a datagram socket has none.
///
/// ```
/// use overlap::net::UnixDatagram;
///
/// overlap::block_on(async {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"one").await?;
///     a.send(b"two!").await?;
///     let mut buf = [0u8; 16];
///     assert_eq!(b.recv(&mut buf).await?, 3);
///     assert_eq!(b.recv(&mut buf).await?, 4);
///     assert_eq!(&buf[..4], b"two!");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct UnixDatagram {
    pub(super) io: AsyncFd<Socket>,
}

impl UnixDatagram {
    /// A socket bound to `path` (the file is created; remove it when done). Fails with
    /// `AddrInUse` if a file exists at `path` (the error names it; a socket's file stays
    /// after the socket is dropped, so remove one an earlier run left), with `NotFound`
    /// naming it if its directory does not exist, and with `InvalidInput` for a path no
    /// socket address can hold (see [`UnixSocket::bind`](super::UnixSocket::bind)). Must be
    /// called inside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let addr = SockAddr::unix(path)?;
        let sock = Socket::new(libc::AF_UNIX, libc::SOCK_DGRAM)?;
        sock.bind(&addr)
            .map_err(|e| crate::sock_errors::unix_bind_failed(path, e))?;
        super::unlink_on_error(path, UnixDatagram::from_socket(sock))
    }

    /// A socket bound to no address: it can send, but nothing can reply to it, since its
    /// address stays unnamed even once it connects, unless it asks for credentials
    /// ([`set_passcred`](Self::set_passcred)): the kernel then gives it an abstract name
    /// of five hex digits as it sends or connects, which receivers see and can answer. To
    /// receive, [`bind`](Self::bind) a socket, or make both ends with [`pair`](Self::pair).
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_socket(Socket::new(libc::AF_UNIX, libc::SOCK_DGRAM)?)
    }

    /// A connected pair of datagram sockets (`socketpair`).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = Socket::pair(libc::AF_UNIX, libc::SOCK_DGRAM)?;
        Ok((UnixDatagram::from_socket(a)?, UnixDatagram::from_socket(b)?))
    }

    /// Registers a non-blocking datagram socket.
    pub(crate) fn from_socket(sock: Socket) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: AsyncFd::new(sock)?,
        })
    }

    /// Wraps a std socket, switching it to non-blocking mode. Must be called inside a
    /// runtime; outside one it fails, and leaves the socket's mode (shared with its dups) as
    /// it was. A socket that is not a Unix-domain datagram socket (one passed in as an fd)
    /// is refused with `InvalidInput`, as is an fd that is no socket at all (a pipe, a
    /// file, an eventfd).
    pub fn from_std(socket: StdUnixDatagram) -> io::Result<UnixDatagram> {
        let sock = Socket::from_owned(OwnedFd::from(socket));
        crate::adopt::UNIX_DATAGRAM.check(&sock)?;
        UnixDatagram::adopt(sock)
    }

    /// Registers a datagram socket that may be in blocking mode, then makes it non-blocking
    /// (see `register_nonblocking`).
    pub(crate) fn adopt(sock: Socket) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: crate::io::register_nonblocking(sock)?,
        })
    }

    /// Sets the default destination for [`send`](Self::send) and, from now on, the only
    /// socket that can send here: another's send or connect to this socket fails with
    /// `PermissionDenied`, saying so. Datagrams queued before the connect stay, whatever
    /// their sender, and [`recv`](Self::recv) returns them first. Does not block. A `path`
    /// where a socket of another type listens (a stream one) is refused with
    /// `InvalidInput`, and one whose socket is connected to another with
    /// `PermissionDenied`.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        self.io
            .get_ref()
            .connect(&SockAddr::unix(path)?)
            .map_err(|e| super::other_type_at(path, "datagram", e))
    }

    /// Sends a datagram to the connected peer, waiting while its queue is full.
    ///
    /// The wait ends when the peer reads or closes its socket. A peer that only shuts down
    /// its read side, leaving its queue full, sends no wakeup: the send keeps waiting, as a
    /// blocking `send` would. Put it under
    /// [`timeout`](overlap_runtime::time::timeout) if the peer may do that. A peer that
    /// has since connected to another socket takes nothing from this one: the send fails
    /// with `PermissionDenied`, naming the peer's path.
    ///
    /// Cancel-safe: dropped before it completes, it has sent nothing.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let sent = write_io(&self.io, |s| s.send(buf)).await;
        sent.map_err(|e| self.peer_taken(e))
    }

    /// Receives a datagram.
    ///
    /// A datagram socket has no end of file: when the other end of a [`pair`](Self::pair),
    /// or the socket this one [`connect`](Self::connect)ed to, closes, the kernel tells no
    /// waiting receive (epoll reports nothing), so it waits for ever, as a blocking `recv`
    /// would; only a [`send`](Self::send) learns it, as `ConnectionRefused`. Put the receive
    /// under [`timeout`](overlap_runtime::time::timeout) if the peer may go away.
    ///
    /// Cancel-safe: dropped while it waits, it has taken no datagram from the queue.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_io(&self.io, |s| s.recv(buf, 0)).await
    }

    /// Sends a datagram to the socket bound at `path`.
    ///
    /// When the receiver's queue is full, the kernel says `EAGAIN` but arranges no wake-up
    /// for a sender not connected to it. So this retries after a short sleep (1 ms, doubling
    /// up to 64 ms) until the receiver makes room, rather than spinning; put it under a
    /// timeout if the receiver may never read. A connected socket's [`send`](Self::send)
    /// waits for the receiver's room directly.
    ///
    /// The retries are timed by the sleep alone, not by this socket's write readiness: a
    /// failed send raises `EPOLLOUT` here only while this socket's own send buffer is at most
    /// a quarter full, and datagrams it queued at another, slow receiver may keep it fuller
    /// than that for ever.
    ///
    /// A `path` where a socket of another type listens (a stream one) is refused with
    /// `InvalidInput`, and one whose socket is connected to another with `PermissionDenied`
    /// (naming the path, where the kernel says "Operation not permitted"). Polled under
    /// another runtime than the one the socket is registered with, or outside any, it fails
    /// with an `Other` error and sends nothing, as the socket's other calls do.
    ///
    /// Cancel-safe: dropped before it completes, it has sent nothing.
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        self.send_to_with(path.as_ref(), |s, addr| s.send_to(buf, addr))
            .await
    }

    /// [`send_to`](Self::send_to)'s retries around `send`, one `sendto` to the address of
    /// `path`.
    pub(super) async fn send_to_with(
        &self,
        path: &Path,
        mut send: impl FnMut(&Socket, &SockAddr) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let addr = SockAddr::unix(path)?;
        let mut delay = Duration::from_millis(1);
        loop {
            // A send that never blocks still lets other tasks run.
            std::future::poll_fn(overlap_runtime::coop_poll_proceed).await;
            // Each round: the future may have moved to another runtime since the last.
            self.io.check_runtime()?;
            match send(self.io.get_ref(), &addr) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::io::pause_before_retry(&self.io, delay).await?;
                    delay = (delay * 2).min(Duration::from_millis(64));
                }
                sent => return sent.map_err(|e| super::other_type_at(path, "datagram", e)),
            }
        }
    }

    recv_buf_methods!(
        SocketAddr,
        256 * 1024,
        "256 KiB, more than a default socket buffer lets a Unix datagram be",
    );

    /// Receives a datagram and the sender's address (unnamed if it is not bound).
    ///
    /// Cancel-safe: dropped while it waits, it has taken no datagram from the queue.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        read_io(&self.io, |s| {
            s.with_std(|d: &StdUnixDatagram| d.recv_from(buf))
        })
        .await
    }

    /// Receives the next datagram without removing it from the queue.
    ///
    /// Cancel-safe: it takes nothing from the queue.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_io(&self.io, |s| s.recv(buf, libc::MSG_PEEK)).await
    }

    /// The whole length of the datagram at the head of the queue, waiting for one to arrive;
    /// the datagram stays queued. A buffer of that length takes it uncut, where `recv` would
    /// cut a longer datagram to its buffer with no sign (as systemd sizes the datagrams on
    /// its notify socket). An empty datagram has length 0: a datagram queued, not none.
    ///
    /// Cancel-safe: it takes nothing from the queue.
    ///
    /// ```
    /// use overlap::net::UnixDatagram;
    ///
    /// overlap::block_on(async {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     a.send(&[1u8; 5000]).await?;
    ///     let mut buf = vec![0u8; b.next_datagram_len().await?];
    ///     assert_eq!(b.recv(&mut buf).await?, 5000);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn next_datagram_len(&self) -> io::Result<usize> {
        read_io(&self.io, Socket::peek_datagram_len).await
    }

    /// [`next_datagram_len`](Self::next_datagram_len) as a poll function: `Pending` (with
    /// the waker stored) until a datagram is queued.
    pub fn poll_next_datagram_len(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        poll_read_with(&self.io, cx, Socket::peek_datagram_len, |_| false)
    }

    /// The whole length of the datagram at the head of the queue if one is queued, without
    /// waiting: `WouldBlock` otherwise. The datagram stays queued.
    pub fn try_next_datagram_len(&self) -> io::Result<usize> {
        try_now(&self.io, Direction::Read, Socket::peek_datagram_len)
    }

    /// Deregisters the socket and hands back the std socket (still in non-blocking mode).
    pub fn into_std(self) -> io::Result<StdUnixDatagram> {
        Ok(StdUnixDatagram::from(self.io.into_inner().into_owned()))
    }

    /// Receives a datagram if one is queued, without waiting: `WouldBlock` otherwise. Pairs
    /// with [`readable`](Self::readable).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_now(&self.io, Direction::Read, |s| s.recv(buf, 0))
    }

    /// Sends a datagram to the connected peer if it can go now, without waiting:
    /// `WouldBlock` otherwise (the peer's queue is full). Pairs with
    /// [`writable`](Self::writable).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        try_now(&self.io, Direction::Write, |s| s.send(buf)).map_err(|e| self.peer_taken(e))
    }

    /// Receives a datagram and the sender's address if one is queued, without waiting.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        try_now(&self.io, Direction::Read, |s| {
            s.with_std(|d: &StdUnixDatagram| d.recv_from(buf))
        })
    }

    /// Sends a datagram to the socket bound at `path` if it can go now: `WouldBlock` if the
    /// receiver's queue is full. No wake-up comes when it drains (see
    /// [`send_to`](Self::send_to)), so retry after a pause, not after
    /// [`writable`](Self::writable); for the same reason this always makes the syscall and
    /// leaves the socket's own readiness alone. A `path` where a socket of another type
    /// listens is refused with `InvalidInput`, and a call under another runtime than the
    /// socket's (or outside any) with `Other`, as in `send_to`.
    pub fn try_send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        let addr = SockAddr::unix(path)?;
        self.io.check_runtime()?;
        loop {
            match self.io.get_ref().send_to(buf, &addr) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                res => return res.map_err(|e| super::other_type_at(path, "datagram", e)),
            }
        }
    }

    /// [`recv`](Self::recv) as a poll function, for hand-written futures and streams.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        poll_recv_datagram(&self.io, cx, buf)
    }

    /// [`send`](Self::send) as a poll function.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_send_datagram(&self.io, cx, buf).map_err(|e| self.peer_taken(e))
    }

    /// A connected send's `EPERM` (the peer has connected to another socket since) in our
    /// words, naming the peer's path if it has one (see
    /// [`unix_peer_taken`](crate::sock_errors::unix_peer_taken)).
    pub(super) fn peer_taken(&self, err: io::Error) -> io::Error {
        if err.raw_os_error() != Some(libc::EPERM) {
            return err;
        }
        let peer = self.peer_addr().ok();
        crate::sock_errors::unix_peer_taken(peer.as_ref().and_then(|a| a.as_pathname()), err)
    }

    /// [`recv_from`](Self::recv_from) as a poll function.
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let recv = |s: &Socket| s.with_std(|d: &StdUnixDatagram| d.recv_from(buf));
        poll_read_with(&self.io, cx, recv, |_| false)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io
            .get_ref()
            .with_std(|d: &StdUnixDatagram| d.local_addr())
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io
            .get_ref()
            .with_std(|d: &StdUnixDatagram| d.peer_addr())
    }

    /// Shuts down reading, writing or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        crate::io::shutdown(&self.io, how)
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

crate::impl_socket_fd!(
    UnixDatagram,
    std::os::unix::net::UnixDatagram,
    "a Unix datagram socket"
);

impl_readiness!(
    UnixDatagram,
    "try_recv",
    "try_send",
    poll_recv_ready,
    poll_send_ready
);

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
