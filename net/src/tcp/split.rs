//! Read and write halves of a `TcpStream` (see `crate::split`).

use std::net::SocketAddr;

use super::stream::TcpStream;

crate::split::stream_halves!(TcpStream, SocketAddr);

impl ReadHalf<'_> {
    /// Copies the data at the head of the receive queue into `buf` without removing it,
    /// waiting until some arrives; 0 at end of file (see [`TcpStream::peek`]). The next read
    /// returns the same bytes.
    ///
    /// Cancel-safe: it takes nothing from the queue, so dropping it loses no data.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::net::{TcpListener, TcpStream};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (mut server, _) = listener.accept().await?;
    ///     client.write_all(b"GET").await?;
    ///     let (mut rd, _wr) = TcpStream::split(&mut server);
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

    /// [`peek`](Self::peek) as a poll function (see [`TcpStream::poll_peek`]).
    pub fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.stream().poll_peek(cx, buf)
    }
}

impl OwnedReadHalf {
    /// Copies the data at the head of the receive queue into `buf` without removing it,
    /// waiting until some arrives; 0 at end of file (see [`TcpStream::peek`]). The next read
    /// returns the same bytes.
    ///
    /// Cancel-safe: it takes nothing from the queue, so dropping it loses no data.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.peek(buf).await
    }

    /// [`peek`](Self::peek) as a poll function (see [`TcpStream::poll_peek`]).
    pub fn poll_peek(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_peek(cx, buf)
    }
}
