//! `HyperIo`: hyper's I/O traits over any futures-io stream, so hyper runs on overlap.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use overlap::io::{AsyncRead, AsyncWrite};

/// How much one read asks the stream for (at most; less if hyper's buffer has less room).
const SCRATCH: usize = 8 * 1024;

/// A futures-io stream (an overlap `TcpStream`, `UnixStream`, a TLS stream...) seen through
/// hyper's `Read` and `Write`.
///
/// hyper hands reads an uninitialized buffer, which a futures-io read cannot take without
/// `unsafe`; the bytes land in a small scratch buffer first and are copied over. Writes go
/// straight through, vectored (one `sendmsg` for a response's head and body).
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
    scratch: Box<[u8]>,
}

impl<T> HyperIo<T> {
    pub fn new(inner: T) -> HyperIo<T> {
        HyperIo {
            inner,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        }
    }
}

impl<T: AsyncRead + Unpin> Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(this.scratch.len());
        let scratch = &mut this.scratch[..want];
        match Pin::new(&mut this.inner).poll_read(cx, scratch) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&scratch[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}
