//! Networking for overlap: TCP, UDP and Unix-domain sockets on the runtime's epoll reactor.
//!
//! Most users reach these types as `overlap::net`.
//!
//! - Every socket is created `SOCK_NONBLOCK | SOCK_CLOEXEC` (with `socket`, `socketpair` and
//!   `accept4` flags, never a later `fcntl`). A socket adopted (`from_std`,
//!   `TryFrom<OwnedFd>`) is made non-blocking but keeps the close-on-exec flag it came
//!   with, as tokio's does: one a service manager passed (socket activation) or an `exec`
//!   left open is inheritable, so a program that spawns children sets `FD_CLOEXEC` on it
//!   itself, as `sd_listen_fds` does (see [`TcpListener::from_std`]).
//! - `EAGAIN`/`EWOULDBLOCK` and `EINTR` never reach the caller: operations wait for the
//!   reactor and retry.
//! - Writes use `MSG_NOSIGNAL`: a reset peer is an error, not a `SIGPIPE`.
//! - Connecting is non-blocking (`EINPROGRESS`, then `SO_ERROR` once writable) and can be
//!   cancelled by dropping the future; host names are resolved on the blocking pool.
//! - Stream reads that come back short skip the `EAGAIN` round: an echo round trip costs one
//!   `recv`, one `send` and a share of one `epoll_wait`.
//!
//! # Cancellation
//! Every `async fn` here but `connect` makes its syscall only when it is about to return, so
//! dropping its future before it completes (in a `select!`, under `time::timeout`) loses
//! nothing: no connection was taken by `accept`, no datagram or byte was consumed by `recv`,
//! `recv_from`, `peek` or a read, nothing was sent by `send` or `send_to`, and a dropped
//! `connect` closes its socket. The futures-io helpers built from several calls are another matter:
//! `read_exact` and `read_line` dropped halfway lose the bytes they had taken, and a
//! `write_all` dropped halfway has sent part of its buffer without saying how much (a
//! timeout around it leaves the stream in the middle of a message; see the second example).
//!
//! ```
//! use overlap::io::{AsyncReadExt, AsyncWriteExt};
//! use overlap::net::{TcpListener, TcpStream};
//!
//! overlap::block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     overlap::spawn(async move {
//!         let (mut conn, _) = listener.accept().await.unwrap();
//!         let mut buf = vec![0u8; 1024];
//!         loop {
//!             let n = conn.read(&mut buf).await.unwrap();
//!             if n == 0 { break; }
//!             conn.write_all(&buf[..n]).await.unwrap();
//!         }
//!     });
//!     let mut stream = TcpStream::connect(addr).await?;
//!     stream.write_all(b"echo").await?;
//!     let mut reply = [0u8; 4];
//!     stream.read_exact(&mut reply).await?;
//!     assert_eq!(&reply, b"echo");
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```
//!
//! A `write_all` cut short by a timeout has sent a part of its buffer:
//!
//! ```
//! use std::time::Duration;
//! use overlap::io::{AsyncReadExt, AsyncWriteExt};
//!
//! overlap::block_on(async {
//!     let (mut a, mut b) = overlap::net::UnixStream::pair()?;
//!     let big = vec![7u8; 8 << 20]; // far more than the socket buffers hold
//!     let cut = overlap::time::timeout(Duration::from_millis(1), a.write_all(&big)).await;
//!     assert!(cut.is_err(), "nobody reads: the write cannot finish");
//!     drop(a);
//!     let mut sent = Vec::new();
//!     b.read_to_end(&mut sent).await?;
//!     assert!(!sent.is_empty() && sent.len() < big.len(), "a part went out");
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```

#[macro_use]
mod recv_buf;

mod adopt;
mod connect;
mod io;
mod listener_streams;
mod resolve;
mod sock_errors;
mod split;
mod sys;
pub mod tcp;
mod udp;
mod udp_batch;
mod udp_framed;
mod udp_options;
pub mod unix;

pub use listener_streams::{TcpListenerStream, UnixListenerStream};
pub use resolve::{lookup_host, ToSocketAddrs};
#[cfg(feature = "count-syscalls")]
pub use sys::counters::{syscall_counts, SyscallCounts};
pub use tcp::{
    Incoming, OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, TcpKeepalive, TcpListener,
    TcpSocket, TcpStream, WriteHalf,
};
pub use udp::UdpSocket;
pub use udp_batch::{Datagram, RecvBatch};
pub use udp_framed::UdpFramed;
pub use unix::{UnixDatagram, UnixListener, UnixSocket, UnixStream};

/// Implements the fd traits every registered socket type shares: `AsRawFd`, `AsFd`,
/// `TryFrom<OwnedFd>` and `TryFrom` the std socket type (register the fd, switching it to
/// non-blocking mode; need a runtime), and `From<T> for OwnedFd` (deregisters and hands the
/// fd back, still non-blocking).
/// The type must have an `io` field of the crate's registered-socket type and a `from_std`.
/// A listener's (`listening` last) `Registered` refuses [`Direction::Write`] with
/// `InvalidInput`, as a pipe's read end does: a listening socket never becomes writable,
/// so a `sendfile` or `splice` given it as its destination would wait for ever.
///
/// [`Direction::Write`]: overlap_runtime::Direction::Write
#[macro_export]
#[doc(hidden)]
macro_rules! impl_socket_fd {
    ($ty:ident, $std:path, $what:literal, listening) => {
        $crate::impl_socket_fd!(@fd $ty, $std, $what);
        $crate::impl_socket_fd!(@registered $ty, true);
    };
    ($ty:ident, $std:path, $what:literal) => {
        $crate::impl_socket_fd!(@fd $ty, $std, $what);
        $crate::impl_socket_fd!(@registered $ty, false);
    };
    (@registered $ty:ident, $listening:literal) => {
        impl ::overlap_runtime::Registered for $ty {
            /// A listening socket fails with `InvalidInput` for
            /// [`Direction::Write`](::overlap_runtime::Direction::Write): it never becomes
            /// writable, so waiting for it would never end (say, a `File::send_to` or a
            /// `splice` given it as its destination).
            fn poll_readiness(
                &self,
                cx: &mut ::std::task::Context<'_>,
                dir: ::overlap_runtime::Direction,
            ) -> ::std::task::Poll<::std::io::Result<::overlap_runtime::ReadyEvent>> {
                if $listening && dir == ::overlap_runtime::Direction::Write {
                    return ::std::task::Poll::Ready(Err(::std::io::Error::new(
                        ::std::io::ErrorKind::InvalidInput,
                        "a listening socket cannot be written to",
                    )));
                }
                self.io.poll_readiness(cx, dir)
            }

            fn clear_readiness(&self, event: ::overlap_runtime::ReadyEvent) {
                self.io.clear_readiness(event)
            }
        }
    };
    (@fd $ty:ident, $std:path, $what:literal) => {
        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                ::std::os::fd::AsRawFd::as_raw_fd(&self.io)
            }
        }

        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(self.io.get_ref())
            }
        }

        impl TryFrom<::std::os::fd::OwnedFd> for $ty {
            type Error = ::std::io::Error;

            #[doc = concat!("Registers ", $what, " fd, switching it to non-blocking mode. Must be called inside a runtime.")]
            fn try_from(fd: ::std::os::fd::OwnedFd) -> ::std::io::Result<$ty> {
                $ty::from_std(<$std>::from(fd))
            }
        }

        impl TryFrom<$std> for $ty {
            type Error = ::std::io::Error;

            #[doc = concat!("Registers ", $what, ", switching it to non-blocking mode: `from_std`, under the name tokio and smol also give it. Must be called inside a runtime.")]
            fn try_from(socket: $std) -> ::std::io::Result<$ty> {
                $ty::from_std(socket)
            }
        }

        impl From<$ty> for ::std::os::fd::OwnedFd {
            #[doc = concat!("Deregisters ", $what, " and hands back its fd (still non-blocking).")]
            fn from(socket: $ty) -> ::std::os::fd::OwnedFd {
                socket.io.into_inner().into_owned()
            }
        }
    };
}

/// Defines the `Incoming` stream of a listener type: each item is one `poll_accept` result
/// without the peer address. Never terminated: a failed accept is an item, not the end.
macro_rules! impl_incoming {
    ($listener:ident, $stream:ident) => {
        #[doc = concat!("The stream of connections returned by [`", stringify!($listener), "::incoming`].")]
        #[derive(Debug)]
        #[must_use = "streams do nothing unless polled"]
        pub struct Incoming<'a> {
            listener: &'a $listener,
        }

        impl ::futures_core::Stream for Incoming<'_> {
            type Item = ::std::io::Result<$stream>;

            fn poll_next(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Option<Self::Item>> {
                let res = ::futures_core::ready!(self.listener.poll_accept(cx));
                ::std::task::Poll::Ready(Some(res.map(|(stream, _)| stream)))
            }
        }

        #[doc = concat!("Never terminated: a failed accept is an item, not the end (see [`", stringify!($listener), "::accept`]).")]
        impl ::futures_core::FusedStream for Incoming<'_> {
            fn is_terminated(&self) -> bool {
                false
            }
        }
    };
}
pub(crate) use impl_incoming;
