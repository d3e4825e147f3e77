//! Networking for overlap: TCP, UDP and Unix-domain sockets on the runtime's epoll reactor.
//!
//! Most users reach these types as `overlap::net`.
//!
//! - Every socket is created `SOCK_NONBLOCK | SOCK_CLOEXEC` (with `socket`, `socketpair` and
//!   `accept4` flags, never a later `fcntl`).
//! - `EAGAIN`/`EWOULDBLOCK` and `EINTR` never reach the caller: operations wait for the
//!   reactor and retry.
//! - Writes use `MSG_NOSIGNAL`: a reset peer is an error, not a `SIGPIPE`.
//! - Connecting is non-blocking (`EINPROGRESS`, then `SO_ERROR` once writable) and can be
//!   cancelled by dropping the future; host names are resolved on the blocking pool.
//! - Stream reads that come back short skip the `EAGAIN` round: an echo round trip costs one
//!   `recv`, one `send` and a share of one `epoll_wait`.
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

mod connect;
mod io;
mod resolve;
mod sys;
mod tcp;
mod udp;
pub mod unix;

pub use resolve::ToSocketAddrs;
#[cfg(feature = "count-syscalls")]
pub use sys::counters::{syscall_counts, SyscallCounts};
pub use tcp::{
    Incoming, OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, TcpListener, TcpSocket,
    TcpStream, WriteHalf,
};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
