//! TCP: listeners, streams, their halves, and unconnected sockets to configure first.
//!
//! Everything here is also at the crate root (`overlap::net::TcpStream`); this module gives
//! the halves tokio's paths too (`overlap::net::tcp::OwnedReadHalf`).

mod keepalive;
mod listener;
mod socket;
mod split;
mod stream;
mod stream_options;

pub use keepalive::TcpKeepalive;
pub(crate) use listener::DEFAULT_BACKLOG;
pub use listener::{Incoming, TcpListener};
pub use socket::TcpSocket;
pub use split::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, WriteHalf};
pub(crate) use stream::impl_stream_io;
pub use stream::TcpStream;
