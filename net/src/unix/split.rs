//! Read and write halves of a `UnixStream` (see `crate::split`).

use super::stream::UnixStream;
use super::SocketAddr;

crate::split::stream_halves!(UnixStream, SocketAddr);

impl ReadHalf<'_> {
    /// Copies the data at the head of the receive queue into `buf` without removing it,
    /// waiting until some arrives; 0 at end of file (see [`UnixStream::peek`]). The next
    /// read returns the same bytes. Cancel-safe.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::net::UnixStream;
    ///
    /// overlap::block_on(async {
    ///     let (mut a, mut b) = UnixStream::pair()?;
    ///     a.write_all(b"GET").await?;
    ///     let (mut rd, _wr) = UnixStream::split(&mut b);
    ///     let mut first = [0u8; 1];
    ///     assert_eq!(rd.peek(&mut first).await?, 1);
    ///     let mut all = [0u8; 3];
    ///     rd.read_exact(&mut all).await?;
    ///     assert_eq!((&first, &all), (b"G", b"GET"));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream().peek(buf).await
    }
}

impl OwnedReadHalf {
    /// Copies the data at the head of the receive queue into `buf` without removing it,
    /// waiting until some arrives; 0 at end of file (see [`UnixStream::peek`]). Cancel-safe.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream().peek(buf).await
    }
}
