//! Read and write halves of a `TcpStream` (see `crate::split`).

use std::net::SocketAddr;

use super::stream::TcpStream;

crate::split::stream_halves!(TcpStream, SocketAddr);

impl OwnedReadHalf {
    /// Reads without consuming, waiting for data (see [`TcpStream::peek`]).
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }
}
