//! [`BufStream`]: tokio's buffered read-write stream, a `BufReader` over a `BufWriter`.

use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::io::{
    AsyncBufRead, AsyncRead, AsyncSeek, AsyncWrite, BufReader, BufWriter, IoSlice, IoSliceMut,
};
use pin_project_lite::pin_project;

pin_project! {
    /// A stream buffered both ways, as tokio's `io::BufStream`: reads are served from a read
    /// buffer (so `read_line`, `lines` and the other `AsyncBufReadExt` methods work), and
    /// writes gather in a write buffer until it fills or is flushed.
    ///
    /// It is futures-util's [`BufReader`] over a [`BufWriter`] over the stream, under one
    /// name. As with tokio's, reading does not flush: call `flush().await` after writing a
    /// request and before waiting for its answer, or the request waits in the buffer.
    /// Dropping it loses the bytes still in the write buffer (a drop cannot wait for a
    /// write): `flush` or `close` it first.
    ///
    /// # Cancel safety
    ///
    /// A write or flush cut short (by `time::timeout`, or a `select!` branch that lost)
    /// loses nothing the buffer took: a `flush` (or `close`) dropped midway keeps the bytes
    /// it had not sent, and the next one sends them, once and in order. A `write_all` of
    /// fewer bytes than the write buffer's capacity (8 KiB by default) is taken whole or not
    /// at all, so a dropped one never leaves a part of its message to go out; a longer one
    /// goes straight to the stream and, dropped midway, has sent an unknown part of itself,
    /// as on the stream (see `overlap::net`). A message written in several calls (a header,
    /// then a body) is whole only once the last call returns. On the read side, `read`,
    /// `fill_buf` and `lines` lose nothing, nor does `read_until` (the bytes it took stay in
    /// the caller's `Vec`: calling it again with the same `Vec` finishes the line), but
    /// `read_exact`, `read_line` and the number helpers
    /// ([`AsyncReadIntExt`](crate::io::AsyncReadIntExt)) lose the bytes they had taken. So a protocol client whose exchange was cut midway cannot tell where
    /// the stream stands: it closes the connection rather than reuse it (as a connection
    /// pool must, before giving the connection to the next user).
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt, BufStream};
    ///
    /// overlap::block_on(async {
    ///     let (near, mut far) = overlap::net::UnixStream::pair()?;
    ///     let mut conn = BufStream::with_capacity(64, 8 << 20, near);
    ///     let request = vec![7u8; 4 << 20]; // far more than the socket buffers hold
    ///     conn.write_all(&request).await?; // shorter than the buffer: taken whole
    ///     let cut = overlap::time::timeout(Duration::from_millis(1), conn.flush()).await;
    ///     assert!(cut.is_err(), "nobody reads: the flush cannot finish");
    ///     // The next flush sends the rest, while the peer reads.
    ///     let mut got = vec![0u8; request.len()];
    ///     let (sent, read) = overlap::join!(conn.flush(), far.read_exact(&mut got));
    ///     (sent?, read?);
    ///     assert!(got == request);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// ```
    /// use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
    /// use overlap::net::{TcpListener, TcpStream};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let mut conn = BufStream::new(TcpStream::connect(listener.local_addr()?).await?);
    ///     let (mut server, _) = listener.accept().await?;
    ///     // Two writes, one segment: nothing is sent before the flush.
    ///     conn.write_all(b"GET / HTTP/1.1\r\n").await?;
    ///     conn.write_all(b"\r\n").await?;
    ///     conn.flush().await?;
    ///     let mut request = [0u8; 18];
    ///     server.read_exact(&mut request).await?;
    ///     server.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await?;
    ///     let mut status = String::new();
    ///     conn.read_line(&mut status).await?;
    ///     assert_eq!(status, "HTTP/1.1 204 No Content\r\n");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    #[derive(Debug)]
    pub struct BufStream<RW> {
        #[pin]
        inner: BufReader<BufWriter<RW>>,
    }
}

impl<RW: AsyncRead + AsyncWrite> BufStream<RW> {
    /// Buffers `stream` both ways, with futures-util's default capacities (8 KiB each).
    pub fn new(stream: RW) -> BufStream<RW> {
        BufStream {
            inner: BufReader::new(BufWriter::new(stream)),
        }
    }

    /// Buffers `stream` with a read buffer of `reader_capacity` bytes (at least 1) and a
    /// write buffer of `writer_capacity` bytes (0 passes every write straight through).
    ///
    /// A `reader_capacity` of 0 is taken as 1: a buffer that holds nothing makes
    /// `read_line` and `lines` report end of file at once, the peer's bytes still unread
    /// (as futures-util's and tokio's `BufReader` do when given 0).
    pub fn with_capacity(
        reader_capacity: usize,
        writer_capacity: usize,
        stream: RW,
    ) -> BufStream<RW> {
        BufStream {
            inner: BufReader::with_capacity(
                reader_capacity.max(1),
                BufWriter::with_capacity(writer_capacity, stream),
            ),
        }
    }
}

impl<RW> BufStream<RW> {
    /// The stream underneath. Reading or writing it directly bypasses the buffers.
    pub fn get_ref(&self) -> &RW {
        self.inner.get_ref().get_ref()
    }

    /// The stream underneath, mutably. Reading or writing it directly bypasses the buffers.
    pub fn get_mut(&mut self) -> &mut RW {
        self.inner.get_mut().get_mut()
    }

    /// The stream underneath, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut RW> {
        self.project().inner.get_pin_mut().get_pin_mut()
    }

    /// The bytes read ahead from the stream and not yet consumed, without waiting for
    /// more (futures-util's `BufReader::buffer`; tokio's `BufStream` has no such call).
    /// A server about to hand the stream to a TLS handshake (SMTP's `STARTTLS`) looks here
    /// for bytes the client sent after the command: [`into_inner`](Self::into_inner)
    /// would drop them without a word.
    pub fn read_buffer(&self) -> &[u8] {
        self.inner.buffer()
    }

    /// The bytes written and not yet flushed to the stream (futures-util's
    /// `BufWriter::buffer`).
    pub fn write_buffer(&self) -> &[u8] {
        self.inner.get_ref().buffer()
    }

    /// The stream underneath. Bytes still in either buffer are lost (as with tokio's):
    /// flush before, and look at [`read_buffer`](Self::read_buffer) for bytes read ahead
    /// (consume them, or decide to drop them, first).
    pub fn into_inner(self) -> RW {
        self.inner.into_inner().into_inner()
    }
}

impl<RW: AsyncRead + AsyncWrite> AsyncRead for BufStream<RW> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_read(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_read_vectored(cx, bufs)
    }
}

impl<RW: AsyncRead + AsyncWrite> AsyncBufRead for BufStream<RW> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        self.project().inner.poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.project().inner.consume(amt)
    }
}

impl<RW: AsyncRead + AsyncWrite> AsyncWrite for BufStream<RW> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    /// Flushes the write buffer, then closes the stream's write side.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_close(cx)
    }
}

impl<RW: AsyncRead + AsyncWrite + AsyncSeek> AsyncSeek for BufStream<RW> {
    /// Flushes the write buffer and drops the read buffer, then seeks (a
    /// `SeekFrom::Current` offset counts from the position the reader has reached).
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        self.project().inner.poll_seek(cx, pos)
    }
}
