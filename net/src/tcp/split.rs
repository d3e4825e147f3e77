//! Read and write halves of a `TcpStream`.
//!
//! The reactor keeps one waker per direction, so one half may wait for readability while the
//! other waits for writability without stealing each other's wakeups.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::stream::TcpStream;

/// The reading half of a borrowed [`TcpStream`], from [`TcpStream::split`].
#[derive(Debug)]
pub struct ReadHalf<'a>(&'a TcpStream);

/// The writing half of a borrowed [`TcpStream`], from [`TcpStream::split`].
///
/// `close` shuts down the write side of the stream.
#[derive(Debug)]
pub struct WriteHalf<'a>(&'a TcpStream);

pub(crate) fn split(stream: &mut TcpStream) -> (ReadHalf<'_>, WriteHalf<'_>) {
    (ReadHalf(stream), WriteHalf(stream))
}

/// The reading half of a [`TcpStream`], from [`TcpStream::into_split`]; may move to another
/// task than the write half.
#[derive(Debug)]
pub struct OwnedReadHalf {
    inner: Rc<TcpStream>,
}

/// The writing half of a [`TcpStream`], from [`TcpStream::into_split`].
///
/// Dropping it (or calling `close`) shuts down the write side, so the peer reads EOF; the
/// read half keeps working.
#[derive(Debug)]
pub struct OwnedWriteHalf {
    inner: Rc<TcpStream>,
    shutdown_on_drop: bool,
}

pub(crate) fn split_owned(stream: TcpStream) -> (OwnedReadHalf, OwnedWriteHalf) {
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

/// Returned by [`OwnedReadHalf::reunite`] when the halves come from different streams; it
/// gives both back.
#[derive(Debug)]
pub struct ReuniteError(pub OwnedReadHalf, pub OwnedWriteHalf);

impl fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same TcpStream")
    }
}

impl Error for ReuniteError {}

impl OwnedReadHalf {
    /// Puts the halves back together into the original stream, without shutting anything
    /// down. Fails if they come from different streams.
    pub fn reunite(self, mut other: OwnedWriteHalf) -> Result<TcpStream, ReuniteError> {
        if !Rc::ptr_eq(&self.inner, &other.inner) {
            return Err(ReuniteError(self, other));
        }
        other.shutdown_on_drop = false;
        let inner = other.inner.clone();
        drop(other);
        drop(self);
        Ok(Rc::try_unwrap(inner).expect("both halves were just dropped"))
    }

    /// Reads without consuming, waiting for data (see [`TcpStream::peek`]).
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }
}

impl OwnedWriteHalf {
    /// Puts the halves back together (see [`OwnedReadHalf::reunite`]).
    pub fn reunite(self, other: OwnedReadHalf) -> Result<TcpStream, ReuniteError> {
        other.reunite(self)
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            // Nothing to report to: a failure means the connection is already gone.
            let _ = self.inner.shutdown_write();
        }
    }
}

/// Address accessors forwarded to the stream.
macro_rules! half_common {
    ($($t:ty),*) => {$(
        impl $t {
            /// The address of the remote end.
            pub fn peer_addr(&self) -> io::Result<SocketAddr> {
                self.stream().peer_addr()
            }

            /// The local address of this end.
            pub fn local_addr(&self) -> io::Result<SocketAddr> {
                self.stream().local_addr()
            }
        }
    )*};
}

impl ReadHalf<'_> {
    fn stream(&self) -> &TcpStream {
        self.0
    }
}
impl WriteHalf<'_> {
    fn stream(&self) -> &TcpStream {
        self.0
    }
}
impl OwnedReadHalf {
    fn stream(&self) -> &TcpStream {
        &self.inner
    }
}
impl OwnedWriteHalf {
    fn stream(&self) -> &TcpStream {
        &self.inner
    }
}

half_common!(ReadHalf<'_>, WriteHalf<'_>, OwnedReadHalf, OwnedWriteHalf);

/// The stream's fd and readiness, so a half can be used where an fd is wanted (for example
/// with `overlap::pipe`'s `splice`).
mod fd_impls {
    use super::*;
    use overlap_runtime::{Direction, ReadyEvent, Registered};
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

    macro_rules! fd_impl {
        ($($t:ty),*) => {$(
            impl AsRawFd for $t {
                fn as_raw_fd(&self) -> RawFd {
                    self.stream().as_raw_fd()
                }
            }

            impl AsFd for $t {
                fn as_fd(&self) -> BorrowedFd<'_> {
                    self.stream().as_fd()
                }
            }

            impl Registered for $t {
                fn poll_readiness(
                    &self,
                    cx: &mut Context<'_>,
                    dir: Direction,
                ) -> Poll<io::Result<ReadyEvent>> {
                    self.stream().poll_readiness(cx, dir)
                }

                fn clear_readiness(&self, event: ReadyEvent) {
                    self.stream().clear_readiness(event)
                }
            }
        )*};
    }

    fd_impl!(ReadHalf<'_>, WriteHalf<'_>, OwnedReadHalf, OwnedWriteHalf);
}

// Each half implements only its own direction.
mod read_impls {
    use super::*;
    use futures_util::io::AsyncRead;
    use std::pin::Pin;

    impl AsyncRead for ReadHalf<'_> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.stream().poll_read_priv(cx, buf)
        }
    }

    impl AsyncRead for OwnedReadHalf {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            self.stream().poll_read_priv(cx, buf)
        }
    }
}

mod write_impls {
    use super::*;
    use futures_util::io::AsyncWrite;
    use std::pin::Pin;

    macro_rules! write_impl {
        ($($t:ty),*) => {$(
            impl AsyncWrite for $t {
                fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                    self.stream().poll_write_priv(cx, buf)
                }
                fn poll_write_vectored(
                    self: Pin<&mut Self>,
                    cx: &mut Context<'_>,
                    bufs: &[io::IoSlice<'_>],
                ) -> Poll<io::Result<usize>> {
                    self.stream().poll_write_vectored_priv(cx, bufs)
                }
                fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    Poll::Ready(Ok(()))
                }
                fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                    Poll::Ready(self.stream().shutdown_write())
                }
            }
        )*};
    }

    write_impl!(WriteHalf<'_>, OwnedWriteHalf);
}
