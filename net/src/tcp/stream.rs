//! `TcpStream`: a connected TCP socket.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{Context, Poll};

use overlap_runtime::io::{read_into_now, ReadBufTarget};
use overlap_runtime::{AsyncFd, Direction};

use super::split::{split, split_owned, OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::io::{
    impl_readiness, poll_read_stream, poll_write_stream, poll_write_vectored_stream,
    try_read_vectored_stream, try_stream, try_write_vectored_stream,
};
use crate::resolve::{try_each, ToSocketAddrs};
use crate::sys::{SockAddr, Socket};

/// A TCP connection on the reactor, readable and writable through futures-io's
/// [`AsyncRead`](futures_util::io::AsyncRead) and [`AsyncWrite`](futures_util::io::AsyncWrite).
///
/// Reads and writes never return `WouldBlock` or `Interrupted`: they wait for the socket
/// instead. Writes use `MSG_NOSIGNAL`, so writing to a reset connection fails with
/// `BrokenPipe` or `ConnectionReset` instead of killing the process with `SIGPIPE`.
///
/// - After the peer shuts down its write side, reads return `Ok(0)`, and keep returning it;
///   writes go on working until the peer closes completely.
/// - [`AsyncWriteExt::close`](futures_util::io::AsyncWriteExt::close) (`poll_close`) shuts
///   down the write side only; the peer reads EOF and can still send.
/// - Dropping the stream closes the socket.
/// - Vectored reads and writes are one `recvmsg` or `sendmsg` over the slices (up to 1,024
///   of them, from the first non-empty one), the halves' too.
/// - One task may read while another writes (see [`TcpStream::split`] and
///   [`TcpStream::into_split`]); several tasks waiting to read (or to write) are all woken
///   by the next edge.
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt};
/// use overlap::net::{TcpListener, TcpStream};
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let server = overlap::spawn(async move {
///         let (mut conn, _) = listener.accept().await?;
///         let mut buf = [0u8; 5];
///         conn.read_exact(&mut buf).await?;
///         conn.write_all(&buf).await?;
///         std::io::Result::Ok(())
///     });
///
///     let mut stream = TcpStream::connect(addr).await?;
///     stream.write_all(b"hello").await?;
///     let mut reply = [0u8; 5];
///     stream.read_exact(&mut reply).await?;
///     assert_eq!(&reply, b"hello");
///     server.await.unwrap()?;
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct TcpStream {
    pub(crate) io: AsyncFd<Socket>,
}

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn.
    ///
    /// A refused port fails promptly with `ConnectionRefused`; with no local port free toward
    /// `addr` (the ephemeral range used up) it fails with `AddrNotAvailable` saying so. Host
    /// names are resolved on the blocking pool. Dropping the future before it completes
    /// closes the half-open socket, so `connect` can be put under a timeout.
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        try_each(addr, |a| async move {
            let sock = Socket::new(SockAddr::domain_of(&a), libc::SOCK_STREAM)?;
            TcpStream::connect_socket(sock, a).await
        })
        .await
    }

    pub(crate) async fn connect_socket(sock: Socket, addr: SocketAddr) -> io::Result<TcpStream> {
        let io = overlap_runtime::AsyncFd::new(sock)?;
        crate::connect::connect_registered(&io, &SockAddr::from(addr))
            .await
            .map_err(|e| crate::sock_errors::tcp_no_local_port(io.get_ref(), addr, e))?;
        Ok(TcpStream { io })
    }

    /// Registers a connected socket (already non-blocking).
    pub(crate) fn from_socket(sock: Socket) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: AsyncFd::new(sock)?,
        })
    }

    /// Wraps a connected std stream, switching it to non-blocking mode.
    ///
    /// Must be called inside a runtime; outside one it fails, and leaves the socket's mode
    /// (shared with its dups) as it was. A listening socket, or one that is not an IPv4 or
    /// IPv6 stream socket, is refused with `InvalidInput` (the reads and writes of a
    /// listening one would wait for ever), as is an fd that is no socket at all (a pipe, a
    /// file, an eventfd).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        let sock = Socket::from_owned(OwnedFd::from(stream));
        crate::adopt::TCP_STREAM.check(&sock)?;
        Ok(TcpStream {
            io: crate::io::register_nonblocking(sock)?,
        })
    }

    /// Removes the stream from the reactor and returns it as a std stream, still in
    /// non-blocking mode (call `set_nonblocking(false)` to block on it).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        Ok(std::net::TcpStream::from(self.io.into_inner().into_owned()))
    }

    /// The address of the remote end.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()?.to_inet()
    }

    /// The local address of this end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()?.to_inet()
    }

    /// The bytes written to the stream that the peer has not acknowledged yet: those still
    /// to be sent and those on their way (`SIOCOUTQ`). Bytes written minus these are the
    /// bytes the peer's kernel has taken, which a writer waiting for room cannot see
    /// otherwise: the kernel reports the socket writable again only once a good part of
    /// its send buffer is free. 0 while the connection is being set up.
    pub fn unacknowledged(&self) -> io::Result<usize> {
        self.io.get_ref().unacknowledged()
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Reads data without removing it from the receive queue, waiting until some arrives.
    /// Returns 0 at EOF, and at once for an empty `buf` (as a read does; to wait for data
    /// without taking any, use [`readable`](Self::readable)).
    ///
    /// Cancel-safe: it takes nothing from the queue, so dropping it loses no data.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        overlap_runtime::own_waits(|cx| self.poll_peek(cx, buf)).await
    }

    /// [`peek`](Self::peek) as a poll function: the bytes at the head of the receive queue
    /// copied into `buf` and left there, 0 at end of file (or for an empty `buf`), or
    /// `Pending` with the waker of `cx` stored until some arrive.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use overlap::io::AsyncWriteExt;
    /// use overlap::net::{TcpListener, TcpStream};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"hi").await?;
    ///     let mut buf = [0u8; 8];
    ///     let n = poll_fn(|cx| server.poll_peek(cx, &mut buf)).await?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     assert_eq!(server.try_read(&mut buf)?, 2, "still queued");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let peek = |s: &Socket| s.recv(buf, libc::MSG_PEEK);
        crate::io::poll_read_with(&self.io, cx, peek, |_| false)
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
    /// once, without a syscall (as `poll_read`). Pairs with [`readable`](Self::readable),
    /// for code that drives its own loop:
    ///
    /// ```
    /// use std::io::{self, ErrorKind};
    /// use overlap::io::AsyncWriteExt;
    /// use overlap::net::{TcpListener, TcpStream};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"ping").await?;
    ///     let mut buf = [0u8; 16];
    ///     let n = loop {
    ///         server.readable().await?;
    ///         match server.try_read(&mut buf) {
    ///             Ok(n) => break n,
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
    ///             Err(e) => return Err(e),
    ///         }
    ///     };
    ///     assert_eq!(&buf[..n], b"ping");
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_stream(&self.io, Direction::Read, buf.len(), |s| s.recv(buf, 0))
    }

    /// Writes what fits now, without waiting: `WouldBlock` if nothing does (or the socket is
    /// not known to be writable: a new socket is not, until the loop has seen its first
    /// edge). An empty `buf` is `Ok(0)` at once, without a syscall. Pairs with
    /// [`writable`](Self::writable).
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        try_stream(&self.io, Direction::Write, buf.len(), |s| s.send(buf))
    }

    /// Like [`try_read`](Self::try_read), filling `bufs` in order with one `recvmsg`:
    /// `WouldBlock` if nothing is there (or the socket is not known to be readable), `Ok(0)`
    /// at end of file or when every slice is empty. Pairs with [`readable`](Self::readable).
    ///
    /// ```
    /// use std::io::{self, ErrorKind, IoSliceMut};
    /// use overlap::io::AsyncWriteExt;
    /// use overlap::net::{TcpListener, TcpStream};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     client.write_all(b"headbody").await?;
    ///     let (mut head, mut body) = ([0u8; 4], [0u8; 16]);
    ///     let n = loop {
    ///         server.readable().await?;
    ///         let mut bufs = [IoSliceMut::new(&mut head), IoSliceMut::new(&mut body)];
    ///         match server.try_read_vectored(&mut bufs) {
    ///             Ok(n) => break n,
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
    ///             Err(e) => return Err(e),
    ///         }
    ///     };
    ///     assert_eq!((n, &head, &body[..4]), (8, b"head", &b"body"[..]));
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        try_read_vectored_stream(&self.io, bufs)
    }

    /// Like [`try_write`](Self::try_write), sending `bufs` in order with one `sendmsg` (up to
    /// 1024 slices): `WouldBlock` if nothing fits now (or the socket is not known to be
    /// writable). It may write only part of the data. Pairs with
    /// [`writable`](Self::writable).
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        try_write_vectored_stream(&self.io, bufs)
    }

    /// Shuts down the read side, the write side or both (`shutdown(2)`); does not wait.
    ///
    /// After `Shutdown::Write` the peer reads EOF, and this side can still read what the
    /// peer sends. tokio's `stream.shutdown().await` (its `AsyncWriteExt::shutdown`) is
    /// `stream.close().await` here (futures' `AsyncWriteExt::close`), which shuts the write
    /// side the same way, on the stream and on its write halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        crate::io::shutdown(&self.io, how)
    }

    /// Borrowed halves, for reading and writing from two futures at once (for example in a
    /// `select` or a `join` within one task).
    ///
    /// With futures' `AsyncReadExt` in scope, `stream.split()` on a `TcpStream` value
    /// resolves to `AsyncReadExt::split` (which takes the stream by value and locks), so
    /// write `TcpStream::split(&mut stream)`:
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::net::{TcpListener, TcpStream};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut a = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut b, _) = listener.accept().await?;
    ///     let (mut rd, mut wr) = TcpStream::split(&mut a);
    ///     let (sent, got) = overlap::join!(wr.write_all(b"x"), async {
    ///         b.write_all(b"y").await?;
    ///         let mut buf = [0u8; 1];
    ///         rd.read_exact(&mut buf).await.map(|_| buf)
    ///     });
    ///     sent?;
    ///     assert_eq!(&got?, b"y");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn split(&mut self) -> (ReadHalf<'_>, WriteHalf<'_>) {
        split(self)
    }

    /// Owned halves, for reading and writing from two tasks. Dropping (or closing) the
    /// write half shuts down the write side; [`OwnedReadHalf::reunite`] puts them back
    /// together.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        split_owned(self)
    }

    pub(crate) fn poll_read_priv(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        poll_read_stream(&self.io, cx, buf)
    }

    pub(crate) fn poll_read_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        crate::io::poll_read_vectored_stream(&self.io, cx, bufs)
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

    /// Whether closing the socket resets the connection (a zero `SO_LINGER`): then a
    /// dropped write half must not send a FIN ahead of that reset.
    pub(crate) fn resets_on_close(&self) -> bool {
        self.io.get_ref().resets_on_close()
    }
}

/// `AsyncRead`/`AsyncWrite` for a stream type and for a shared reference to it, delegating
/// to its `poll_*_priv` methods.
macro_rules! impl_stream_io {
    ($($t:ty),*) => {$(
        impl futures_util::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_read_priv(cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_read_vectored_priv(cx, bufs)
            }
        }

        impl futures_util::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                self.poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(self.shutdown_write())
            }
        }
    )*};
}
pub(crate) use impl_stream_io;

impl_stream_io!(TcpStream, &TcpStream);

crate::impl_socket_fd!(TcpStream, std::net::TcpStream, "a connected TCP socket");

impl_readiness!(
    TcpStream,
    "try_read",
    "try_write",
    poll_read_ready,
    poll_write_ready,
    ready {
        ///
        /// ```
        /// use std::time::Duration;
        /// use overlap::io::Interest;
        /// use overlap::net::{TcpListener, TcpStream};
        ///
        /// overlap::block_on(async {
        ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
        ///     let peer = TcpStream::connect(listener.local_addr()?).await?;
        ///     let (ours, _) = listener.accept().await?;
        ///     // Nothing to read yet, but room to write.
        ///     let ready = ours.ready(Interest::READABLE | Interest::WRITABLE).await?;
        ///     assert!(ready.is_writable() && !ready.is_readable());
        ///
        ///     // An error-only wait sleeps through that; it ends when the peer resets the
        ///     // connection (SO_LINGER 0, then drop).
        ///     peer.set_linger(Some(Duration::ZERO))?;
        ///     drop(peer);
        ///     assert!(ours.ready(Interest::ERROR).await?.is_error());
        ///     let err = ours.take_error()?.expect("the reset is pending");
        ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        ///     std::io::Result::Ok(())
        /// })
        /// .unwrap();
        /// ```
    },
    try_io {
        ///
        /// TCP urgent data: a priority wait, then `recv(MSG_OOB)` under `try_io`.
        ///
        /// ```
        /// use std::io;
        /// use std::os::fd::AsRawFd;
        /// use overlap::io::Interest;
        /// use overlap::net::{TcpListener, TcpStream};
        ///
        /// /// `recv(MSG_OOB)`: the urgent byte, or `WouldBlock` if none is waiting.
        /// fn recv_urgent(sock: &TcpStream) -> io::Result<u8> {
        ///     let mut byte = 0u8;
        ///     let buf = (&mut byte as *mut u8).cast();
        ///     // SAFETY: `buf` is one writable byte.
        ///     if unsafe { libc::recv(sock.as_raw_fd(), buf, 1, libc::MSG_OOB) } < 0 {
        ///         let err = io::Error::last_os_error();
        ///         return match err.raw_os_error() {
        ///             Some(libc::EINVAL) => Err(io::ErrorKind::WouldBlock.into()),
        ///             _ => Err(err),
        ///         };
        ///     }
        ///     Ok(byte)
        /// }
        ///
        /// overlap::block_on(async {
        ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
        ///     let peer = TcpStream::connect(listener.local_addr()?).await?;
        ///     let (ours, _) = listener.accept().await?;
        ///     // SAFETY: the buffer is one readable byte.
        ///     let sent = unsafe { libc::send(peer.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        ///     assert_eq!(sent, 1);
        ///
        ///     assert!(ours.ready(Interest::PRIORITY).await?.is_priority());
        ///     assert_eq!(ours.try_io(Interest::PRIORITY, || recv_urgent(&ours))?, b'!');
        ///     // Taken: the next try says `WouldBlock`, which clears the priority readiness,
        ///     // so a later `ready(Interest::PRIORITY)` sleeps until the next urgent byte.
        ///     let again = ours.try_io(Interest::PRIORITY, || recv_urgent(&ours));
        ///     assert_eq!(again.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        ///     io::Result::Ok(())
        /// })
        /// .unwrap();
        /// ```
    },
    async_io {
        ///
        /// Waiting for the next TCP urgent byte (`recv_urgent` as in
        /// [`try_io`](Self::try_io)'s example):
        ///
        /// ```
        /// # use std::io;
        /// # use std::os::fd::AsRawFd;
        /// # fn recv_urgent(sock: &TcpStream) -> io::Result<u8> {
        /// #     let mut byte = 0u8;
        /// #     let buf = (&mut byte as *mut u8).cast();
        /// #     // SAFETY: `buf` is one writable byte.
        /// #     if unsafe { libc::recv(sock.as_raw_fd(), buf, 1, libc::MSG_OOB) } < 0 {
        /// #         let err = io::Error::last_os_error();
        /// #         return match err.raw_os_error() {
        /// #             Some(libc::EINVAL) => Err(io::ErrorKind::WouldBlock.into()),
        /// #             _ => Err(err),
        /// #         };
        /// #     }
        /// #     Ok(byte)
        /// # }
        /// use overlap::io::Interest;
        /// use overlap::net::{TcpListener, TcpStream};
        ///
        /// overlap::block_on(async {
        ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
        ///     let peer = TcpStream::connect(listener.local_addr()?).await?;
        ///     let (ours, _) = listener.accept().await?;
        ///     let ours = std::rc::Rc::new(ours);
        ///     let waiter = overlap::spawn({
        ///         let ours = ours.clone();
        ///         async move { ours.async_io(Interest::PRIORITY, || recv_urgent(&ours)).await }
        ///     });
        ///     overlap::task::yield_now().await; // the waiter sleeps: nothing urgent yet
        ///     // SAFETY: the buffer is one readable byte.
        ///     let sent = unsafe { libc::send(peer.as_raw_fd(), b"?".as_ptr().cast(), 1, libc::MSG_OOB) };
        ///     assert_eq!(sent, 1);
        ///     assert_eq!(waiter.await.unwrap()?, b'?');
        ///     io::Result::Ok(())
        /// })
        /// .unwrap();
        /// ```
    }
);

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(addr) = self.local_addr() {
            d.field("local", &addr);
        }
        if let Ok(addr) = self.peer_addr() {
            d.field("peer", &addr);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
