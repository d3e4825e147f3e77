//! Read and write halves of a stream socket, generated for `TcpStream` (in `tcp/split.rs`)
//! and `UnixStream` (in `unix/split.rs`).
//!
//! The reactor keeps readers' and writers' wakers apart (and every waiter of a direction,
//! not just the last), so one half may wait for readability while the other waits for
//! writability without stealing each other's wakeups.

/// Defines `ReadHalf`, `WriteHalf`, `OwnedReadHalf`, `OwnedWriteHalf` and `ReuniteError` for
/// `$stream`, whose peer and local addresses are `$addr`s. The stream must have
/// `poll_read_priv`, `poll_write_priv`, `poll_write_vectored_priv`, `shutdown_write`,
/// `resets_on_close`, `peer_addr`, `local_addr`, `readable`, `writable`, `ready` and the `try_read*`/`try_write*` calls,
/// and implement `Registered`.
macro_rules! stream_halves {
    ($stream:ident, $addr:ty) => {
        use std::error::Error;
        use std::fmt;
        use std::io;
        use std::rc::Rc;
        use std::task::{Context, Poll};

        #[doc = concat!("The reading half of a borrowed [`", stringify!($stream), "`], from [`", stringify!($stream), "::split`].")]
        #[derive(Debug)]
        pub struct ReadHalf<'a>(&'a $stream);

        #[doc = concat!("The writing half of a borrowed [`", stringify!($stream), "`], from [`", stringify!($stream), "::split`].")]
        ///
        /// `close` shuts down the write side of the stream.
        #[derive(Debug)]
        pub struct WriteHalf<'a>(&'a $stream);

        pub(crate) fn split(stream: &mut $stream) -> (ReadHalf<'_>, WriteHalf<'_>) {
            (ReadHalf(stream), WriteHalf(stream))
        }

        #[doc = concat!("The reading half of a [`", stringify!($stream), "`], from [`", stringify!($stream), "::into_split`]; may move to another task than the write half.")]
        #[derive(Debug)]
        pub struct OwnedReadHalf {
            inner: Rc<$stream>,
        }

        #[doc = concat!("The writing half of a [`", stringify!($stream), "`], from [`", stringify!($stream), "::into_split`].")]
        ///
        /// Dropping it (or calling `close`) shuts down the write side, so the peer reads EOF;
        /// the read half keeps working. [`forget`](Self::forget) drops it without that, and
        /// so does the drop of a TCP stream's half whose linger time is zero
        /// (`set_zero_linger`): the connection is reset when the read half goes too, with no
        /// FIN ahead of the RST that a peer parked in a read could take for a clean end
        /// (tokio's write half sends that FIN). `close` still shuts the write side down.
        #[derive(Debug)]
        pub struct OwnedWriteHalf {
            inner: Rc<$stream>,
            shutdown_on_drop: bool,
        }

        pub(crate) fn split_owned(stream: $stream) -> (OwnedReadHalf, OwnedWriteHalf) {
            let inner = Rc::new(stream);
            (
                OwnedReadHalf {
                    inner: inner.clone(),
                },
                OwnedWriteHalf {
                    inner,
                    shutdown_on_drop: true,
                },
            )
        }

        /// Returned by [`OwnedReadHalf::reunite`] when the halves come from different
        /// streams; it gives both back.
        #[derive(Debug)]
        pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

        impl fmt::Display for ReuniteError {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(
                    "tried to reunite halves that are not from the same ",
                    stringify!($stream)
                ))
            }
        }

        impl Error for ReuniteError {}

        impl OwnedReadHalf {
            /// Puts the halves back together into the original stream, without shutting
            /// anything down. Fails if they come from different streams.
            pub fn reunite(self, mut other: OwnedWriteHalf) -> Result<$stream, ReuniteError> {
                if !Rc::ptr_eq(&self.inner, &other.inner) {
                    return Err(ReuniteError(self, other));
                }
                other.shutdown_on_drop = false;
                let inner = other.inner.clone();
                drop(other);
                drop(self);
                Ok(Rc::try_unwrap(inner).expect("both halves were just dropped"))
            }
        }

        impl OwnedWriteHalf {
            /// Puts the halves back together (see [`OwnedReadHalf::reunite`]).
            pub fn reunite(self, other: OwnedReadHalf) -> Result<$stream, ReuniteError> {
                other.reunite(self)
            }

            /// Drops the write half without shutting down the write side: the peer reads no
            /// end of file until the stream closes, when the read half is dropped too (at
            /// once, if it already was).
            pub fn forget(mut self) {
                self.shutdown_on_drop = false;
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                // A zero-linger stream is dropped to abort it: a FIN now would read as a
                // clean end at the peer before the reset the close sends.
                if self.shutdown_on_drop && !self.inner.resets_on_close() {
                    // Nothing to report to: a failure means the connection is already gone.
                    let _ = self.inner.shutdown_write();
                }
            }
        }

        impl ReadHalf<'_> {
            fn stream(&self) -> &$stream {
                self.0
            }
        }
        impl WriteHalf<'_> {
            fn stream(&self) -> &$stream {
                self.0
            }
        }
        impl OwnedReadHalf {
            fn stream(&self) -> &$stream {
                &self.inner
            }
        }
        impl OwnedWriteHalf {
            fn stream(&self) -> &$stream {
                &self.inner
            }
        }

        // Each half lends the stream, for the calls the halves do not forward.
        impl AsRef<$stream> for ReadHalf<'_> {
            fn as_ref(&self) -> &$stream {
                self.stream()
            }
        }
        impl AsRef<$stream> for WriteHalf<'_> {
            fn as_ref(&self) -> &$stream {
                self.stream()
            }
        }
        impl AsRef<$stream> for OwnedReadHalf {
            fn as_ref(&self) -> &$stream {
                self.stream()
            }
        }
        impl AsRef<$stream> for OwnedWriteHalf {
            fn as_ref(&self) -> &$stream {
                self.stream()
            }
        }

        $crate::split::stream_halves!(@common $addr; ReadHalf<'_>, WriteHalf<'_>, OwnedReadHalf, OwnedWriteHalf);
        $crate::split::stream_halves!(@read ReadHalf<'_>, OwnedReadHalf);
        $crate::split::stream_halves!(@write WriteHalf<'_>, OwnedWriteHalf);
    };

    // Addresses, the fd and its readiness, forwarded to the stream (so a half can be used
    // where an fd is wanted, for example with `overlap::pipe`'s `splice`).
    (@common $addr:ty; $($t:ty),*) => {$(
        impl $t {
            /// The address of the remote end.
            pub fn peer_addr(&self) -> io::Result<$addr> {
                self.stream().peer_addr()
            }

            /// The local address of this end.
            pub fn local_addr(&self) -> io::Result<$addr> {
                self.stream().local_addr()
            }

            /// Waits until the stream may be ready in one of the directions of `interest`,
            /// and tells which (see the stream's `ready`). Cancel-safe.
            pub async fn ready(
                &self,
                interest: overlap_runtime::Interest,
            ) -> io::Result<overlap_runtime::Ready> {
                self.stream().ready(interest).await
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.stream().as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.stream().as_fd()
            }
        }

        impl overlap_runtime::Registered for $t {
            fn poll_readiness(
                &self,
                cx: &mut Context<'_>,
                dir: overlap_runtime::Direction,
            ) -> Poll<io::Result<overlap_runtime::ReadyEvent>> {
                self.stream().poll_readiness(cx, dir)
            }

            fn clear_readiness(&self, event: overlap_runtime::ReadyEvent) {
                self.stream().clear_readiness(event)
            }
        }
    )*};

    // Each half implements only its own direction, and has the stream's readiness wait and
    // non-blocking calls for that direction.
    (@read $($t:ty),*) => {$(
        impl $t {
            /// Waits until the stream may be readable (see the stream's `readable`); pairs
            /// with [`try_read`](Self::try_read). Cancel-safe.
            pub async fn readable(&self) -> io::Result<()> {
                self.stream().readable().await
            }

            /// Reads what is there now, without waiting: `WouldBlock` if nothing is, `Ok(0)`
            /// at end of file (see the stream's `try_read`).
            pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.stream().try_read(buf)
            }

            /// [`try_read`](Self::try_read) appending to a `BytesMut` or `Vec<u8>` (see the
            /// stream's `try_read_buf`).
            pub fn try_read_buf<B: overlap_runtime::io::ReadBufTarget>(
                &self,
                buf: &mut B,
            ) -> io::Result<usize> {
                self.stream().try_read_buf(buf)
            }

            /// Like [`try_read`](Self::try_read), filling `bufs` in order with one
            /// `recvmsg` (see the stream's `try_read_vectored`).
            pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                self.stream().try_read_vectored(bufs)
            }
        }

        impl futures_util::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_read_priv(cx, buf)
            }

            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &mut [io::IoSliceMut<'_>],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_read_vectored_priv(cx, bufs)
            }
        }
    )*};

    (@write $($t:ty),*) => {$(
        impl $t {
            /// Waits until the stream may be writable (see the stream's `writable`); pairs
            /// with [`try_write`](Self::try_write). Cancel-safe.
            pub async fn writable(&self) -> io::Result<()> {
                self.stream().writable().await
            }

            /// Writes what fits now, without waiting: `WouldBlock` if nothing does (see the
            /// stream's `try_write`).
            pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                self.stream().try_write(buf)
            }

            /// Like [`try_write`](Self::try_write), sending `bufs` in order with one
            /// `sendmsg` (see the stream's `try_write_vectored`).
            pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                self.stream().try_write_vectored(bufs)
            }
        }

        impl futures_util::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.stream().poll_write_vectored_priv(cx, bufs)
            }

            fn poll_flush(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: std::pin::Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.stream().shutdown_write())
            }
        }
    )*};
}

pub(crate) use stream_halves;
