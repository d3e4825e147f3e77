//! Read and write halves of a `UnixStream` (see `crate::split`).

use super::stream::UnixStream;
use super::SocketAddr;

crate::split::stream_halves!(UnixStream, SocketAddr);
