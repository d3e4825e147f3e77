//! `UnixStream`: a connected Unix stream socket.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap_runtime::io::{read_into_now, ReadBufTarget};
use overlap_runtime::{AsyncFd, Direction};

use super::split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use super::{SocketAddr, UCred};
use crate::io::{
    impl_readiness, poll_read_unix_stream, poll_write_stream, poll_write_vectored_stream,
    try_read_vectored_stream, try_stream, try_write_vectored_stream,
};
use crate::sys::{SockAddr, Socket};

/// A connected Unix stream socket, with futures-io's `AsyncRead` and `AsyncWrite`.
///
/// Behaves like [`TcpStream`](crate::TcpStream): no `WouldBlock`, `MSG_NOSIGNAL` writes,
/// `close` shuts down the write side, reads after EOF return 0 again, vectored reads and
/// writes are one syscall over the slices.
///
/// One case the kernel does not report: a write waiting for room in a full send buffer is
/// not woken when the peer shuts down its *read* side (Linux's poll shows neither
/// writability nor a hang-up then, though a blocking `send` would fail with `EPIPE`). The
/// write stays pending until the peer closes the socket or reads; tokio's waits the same
/// way. Put writes to a peer that may do this under a
/// [`timeout`](overlap_runtime::time::timeout).
///
/// # Passing file descriptors
///
/// [`send_with_fds`](Self::send_with_fds) attaches descriptors to bytes (`SCM_RIGHTS`) and
/// [`recv_with_fds`](Self::recv_with_fds) takes them (close-on-exec), and
/// [`try_send_with_fds`](Self::try_send_with_fds) and
/// [`try_recv_with_fds`](Self::try_recv_with_fds) do so without waiting; tokio has no such
/// calls, and a tokio program's own `sendmsg`/`recvmsg` through [`try_io`](Self::try_io)
/// works here too. The halves of a split stream lend it for these calls:
/// `read_half.as_ref().recv_with_fds(..)`. Hand a received socket to its wrapper's
/// `TryFrom<OwnedFd>`, which checks its kind (`tests/port_user7_hot_restart/handoff.rs`
/// does this for a server's hot upgrade). The stream's other reads (`read`, `try_read`, the halves') take the bytes that
/// came with fds and leave the fds to the kernel, which closes them: nothing is left open,
/// and nothing is received. A read ends at such a message, short of its buffer, and the
/// next one reads on.
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::UnixStream;
///
/// overlap::block_on(async {
///     let (mut a, mut b) = UnixStream::pair()?;
///     a.write_all(b"ping").await?;
///     a.close().await?;
///     let mut got = Vec::new();
///     b.read_to_end(&mut got).await?;
///     assert_eq!(got, b"ping");
///     assert_eq!(b.peer_cred()?.pid, std::process::id() as i32);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct UnixStream {
    pub(super) io: AsyncFd<Socket>,
}

impl UnixStream {
    /// Connects to the socket at `path`.
    ///
    /// A Unix `connect` never returns `EINPROGRESS` for a full backlog: it fails with
    /// `EAGAIN`, and no readiness edge tells when to retry. So this retries after a short
    /// sleep (1 ms, doubling up to 64 ms) until the listener makes room; put it under a
    /// timeout if the listener may never accept. Like the socket's other calls, a connect
    /// polled under another runtime than the one it started in (or outside any) fails with
    /// an `Other` error.
    ///
    /// A `path` where a socket of another type is bound (a datagram or seqpacket one) is
    /// refused with `InvalidInput`; one with nothing there fails with `NotFound`, and one
    /// with no socket bound (the file a dropped listener left, or an abstract name nobody
    /// holds) with `ConnectionRefused`, both naming the path.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let addr = SockAddr::unix(path)?;
        let sock = Socket::new(libc::AF_UNIX, libc::SOCK_STREAM)?;
        UnixStream::connect_socket(AsyncFd::new(sock)?, &addr)
            .await
            .map_err(|e| super::other_type_at(path, "stream", e))
    }

    /// Connects the registered, non-blocking stream socket `io` (fresh, or bound by a
    /// [`UnixSocket`](super::UnixSocket)) to `addr`, retrying a full backlog as
    /// [`connect`](Self::connect) describes. A refused `connect` leaves the socket as it was,
    /// so each retry uses the same one. Dropping the future closes it.
    pub(crate) async fn connect_socket(
        io: AsyncFd<Socket>,
        addr: &SockAddr,
    ) -> io::Result<UnixStream> {
        let mut delay = Duration::from_millis(1);
        loop {
            match crate::connect::connect_registered(&io, addr).await {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::io::pause_before_retry(&io, delay).await?;
                    delay = (delay * 2).min(Duration::from_millis(64));
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(UnixStream { io }),
            }
        }
    }

    /// A connected pair of sockets (`socketpair`). Must be called inside a runtime.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = Socket::pair(libc::AF_UNIX, libc::SOCK_STREAM)?;
        Ok((UnixStream::from_socket(a)?, UnixStream::from_socket(b)?))
    }

    pub(crate) fn from_socket(sock: Socket) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: AsyncFd::new(sock)?,
        })
    }

    /// Wraps a connected std stream, switching it to non-blocking mode. Must be called
    /// inside a runtime; outside one it fails, and leaves the socket's mode (shared with its
    /// dups) as it was. An unconnected stream socket is taken (its reads and writes fail
    /// with `NotConnected`); one that is not a Unix-domain stream socket, or that listens,
    /// is refused with `InvalidInput`: a listening one would wait for ever, and a
    /// seqpacket or datagram one would leave a second queued message unread until another
    /// came (a read returning short of its buffer is taken to have emptied the queue). So
    /// is an fd that is no socket at all (a pipe, a file, an eventfd).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        let sock = Socket::from_owned(OwnedFd::from(stream));
        crate::adopt::UNIX_STREAM.check(&sock)?;
        Ok(UnixStream {
            io: crate::io::register_nonblocking(sock)?,
        })
    }

    /// Removes the stream from the reactor and returns it as a std stream, still in
    /// non-blocking mode.
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
        Ok(std::os::unix::net::UnixStream::from(
            self.io.into_inner().into_owned(),
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io
            .get_ref()
            .with_std(|s: &std::os::unix::net::UnixStream| s.local_addr())
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io
            .get_ref()
            .with_std(|s: &std::os::unix::net::UnixStream| s.peer_addr())
    }

    /// The peer process's credentials (`SO_PEERCRED`), as they were when it connected; still
    /// there once it has closed. A socket that never connected (one handed over with
    /// [`from_std`](Self::from_std)) has none: `NotConnected`.
    ///
    /// ```
    /// use overlap::net::UnixStream;
    ///
    /// overlap::block_on(async {
    ///     let (a, _b) = UnixStream::pair()?;
    ///     let cred = a.peer_cred()?; // the peer is this very process
    ///     assert_eq!(cred.pid(), Some(std::process::id() as i32));
    ///     // SAFETY: `geteuid` takes no pointers and cannot fail.
    ///     assert_eq!(cred.uid(), unsafe { libc::geteuid() });
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn peer_cred(&self) -> io::Result<UCred> {
        super::peer_cred(self.io.get_ref())
    }

    /// Waits for data and copies it into `buf` without removing it from the queue. Returns
    /// 0 at EOF, and at once for an empty `buf` (as a read does: the kernel would wait for
    /// data that may never come).
    ///
    /// Cancel-safe: it takes nothing from the queue, so dropping it loses no data.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        crate::io::read_io(&self.io, |s| s.recv(buf, libc::MSG_PEEK))
            .await
            .map_err(no_peer)
    }

    /// [`try_read`](Self::try_read) appending to a `BytesMut` or `Vec<u8>` (tokio's
    /// `try_read_buf`), with the room of `AsyncReadBufExt::read_buf` (a full buffer is
    /// given 64 bytes, a `Vec` at most 64 KiB of its spare capacity): `WouldBlock` if
    /// nothing is there, `Ok(0)` at end of file; the buffer keeps its earlier bytes.
    pub fn try_read_buf<B: ReadBufTarget>(&self, buf: &mut B) -> io::Result<usize> {
        read_into_now(buf, |room| self.try_read(room))
    }

    /// Reads what is there now, without waiting: `WouldBlock` if nothing is (or the socket
    /// is not known to be readable), `Ok(0)` at end of file, and for an empty `buf` at
    /// once, without a syscall. Pairs with [`readable`](Self::readable), as [`TcpStream::try_read`](crate::TcpStream::try_read)
    /// shows. File descriptors sent along with the bytes are discarded.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_stream(&self.io, Direction::Read, buf.len(), |s| {
            s.recv_noting_truncation(buf).map(|(n, _)| n)
        })
        .map_err(no_peer)
    }

    /// Writes what fits now, without waiting: `WouldBlock` if nothing does (or the socket is
    /// not known to be writable). An empty `buf` is `Ok(0)` at once, without a syscall.
    /// Pairs with [`writable`](Self::writable).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        try_stream(&self.io, Direction::Write, buf.len(), |s| s.send(buf))
    }

    /// Like [`try_read`](Self::try_read), filling `bufs` in order with one `recvmsg`:
    /// `WouldBlock` if nothing is there (or the socket is not known to be readable), `Ok(0)`
    /// at end of file or when every slice is empty. File descriptors sent along with the
    /// bytes are discarded. Pairs with [`readable`](Self::readable).
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        try_read_vectored_stream(&self.io, bufs).map_err(no_peer)
    }

    /// Like [`try_write`](Self::try_write), sending `bufs` in order with one `sendmsg` (up to
    /// 1024 slices): `WouldBlock` if nothing fits now (or the socket is not known to be
    /// writable). It may write only part of the data. Pairs with
    /// [`writable`](Self::writable).
    ///
    /// ```
    /// use std::io::{self, IoSlice};
    /// use overlap::io::AsyncReadExt;
    /// use overlap::net::UnixStream;
    ///
    /// overlap::block_on(async {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     a.writable().await?;
    ///     let n = a.try_write_vectored(&[IoSlice::new(b"two "), IoSlice::new(b"parts")])?;
    ///     assert_eq!(n, 9, "an empty socket buffer takes it all");
    ///     let mut got = [0u8; 9];
    ///     b.read_exact(&mut got).await?;
    ///     assert_eq!(&got, b"two parts");
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        try_write_vectored_stream(&self.io, bufs)
    }

    /// Shuts down the read side, the write side or both; does not wait. tokio's
    /// `stream.shutdown().await` is `stream.close().await` here (futures'
    /// `AsyncWriteExt::close`), which shuts the write side.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        crate::io::shutdown(&self.io, how)
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Borrowed halves, for reading and writing from two futures at once within one task.
    ///
    /// With futures' `AsyncReadExt` in scope, `stream.split()` resolves to
    /// `AsyncReadExt::split` (which takes the stream by value and locks), so write
    /// `UnixStream::split(&mut stream)`.
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        super::split::split(self)
    }

    /// Owned halves, for reading and writing from two tasks. Dropping (or closing) the
    /// write half shuts down the write side; [`OwnedReadHalf::reunite`] puts them back
    /// together.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::net::UnixStream;
    ///
    /// overlap::block_on(async {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let (mut rd, wr) = a.into_split();
    ///     let writer = overlap::spawn(async move {
    ///         let mut wr = wr;
    ///         wr.write_all(b"from a task").await
    ///         // Dropping `wr` shuts the write side: `b` reads end of file.
    ///     });
    ///     b.write_all(b"hi").await?;
    ///     let mut two = [0u8; 2];
    ///     rd.read_exact(&mut two).await?;
    ///     let mut got = Vec::new();
    ///     b.read_to_end(&mut got).await?;
    ///     writer.await.unwrap()?;
    ///     assert_eq!((&two, got.as_slice()), (b"hi", &b"from a task"[..]));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        super::split::split_owned(self)
    }

    pub(crate) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_read_unix_stream(&self.io, cx, buf).map_err(no_peer)
    }

    pub(crate) fn poll_read_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        crate::io::poll_read_vectored_stream(&self.io, cx, bufs).map_err(no_peer)
    }

    pub(crate) fn poll_write_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_stream(&self.io, cx, buf)
    }

    pub(crate) fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        poll_write_vectored_stream(&self.io, cx, bufs)
    }

    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        crate::io::shutdown_write(&self.io)
    }

    /// Never: a Unix socket has no reset to send on close (see `TcpStream`'s).
    pub(crate) fn resets_on_close(&self) -> bool {
        false
    }
}

/// The kernel's `EINVAL` for a read of a Unix stream socket that is not connected (handed
/// over unconnected: the wrappers make no other read it refuses so), as `NotConnected` in
/// our own words: "Invalid argument" blames the buffer. A write there is `ENOTCONN` already.
pub(super) fn no_peer(err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::EINVAL) {
        return err;
    }
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the Unix stream socket is not connected, so there is nothing to read",
    )
}

crate::tcp::impl_stream_io!(UnixStream, &UnixStream);

crate::impl_socket_fd!(
    UnixStream,
    std::os::unix::net::UnixStream,
    "a connected Unix stream socket"
);

impl_readiness!(
    UnixStream,
    "try_read",
    "try_write",
    poll_read_ready,
    poll_write_ready,
    ready {
        ///
        /// A peer that closes is a hang-up, not an error:
        ///
        /// ```
        /// use overlap::future::FutureExt;
        /// use overlap::io::Interest;
        /// use overlap::net::UnixStream;
        ///
        /// overlap::block_on(async {
        ///     let (a, b) = UnixStream::pair()?;
        ///     drop(b);
        ///     // A read wait sees it (a read would return 0)...
        ///     assert!(a.ready(Interest::READABLE).await?.is_read_closed());
        ///     // ...and an error-only wait does not end on it.
        ///     assert!(a.ready(Interest::ERROR).now_or_never().is_none());
        ///     std::io::Result::Ok(())
        /// })
        /// .unwrap();
        /// ```
    }
);

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
