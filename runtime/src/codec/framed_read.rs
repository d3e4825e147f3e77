//! `FramedRead`: a reader and a decoder as a `Stream` of frames.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::io::AsyncRead;
use futures_util::sink::Sink;
use pin_project_lite::pin_project;

use super::framed_impl::{ReadFrame, INITIAL_CAPACITY};
use super::{BytesMut, Decoder, FramedParts};

pin_project! {
    /// A reader (any futures-io [`AsyncRead`]: a socket, a read half, a pipe end) with a
    /// [`Decoder`], as a [`Stream`] of `Result<D::Item, D::Error>`: tokio-util's
    /// `FramedRead`.
    ///
    /// It reads more only when the decoder finds no whole frame in what it has. At end of
    /// file it calls [`decode_eof`](Decoder::decode_eof) until that gives `None`, then the
    /// stream ends (`None`). An error (the decoder's, or the reader's, converted with
    /// `From<io::Error>`) is given out once, and the next poll ends the stream; as with
    /// tokio-util's, a stream polled again after that reads on (a codec such as
    /// [`LinesCodec`](super::LinesCodec) can go on after its error).
    ///
    /// Cancel-safe: `next()` may be dropped at any point (a `select!` branch that lost, a
    /// timeout) and no byte is lost, since everything read and not yet decoded stays in the
    /// read buffer, and the decoder's own state in the decoder.
    ///
    /// ```
    /// use overlap::codec::{FramedRead, LinesCodec};
    /// use overlap::io::AsyncWriteExt;
    /// use overlap::stream::StreamExt;
    ///
    /// overlap::block_on(async {
    ///     let (mut tx, rx) = overlap::pipe::pipe()?;
    ///     tx.write_all(b"one\ntwo\r\nthree").await?;
    ///     drop(tx); // end of file: the last line needs no newline
    ///     let lines: Vec<String> = FramedRead::new(rx, LinesCodec::new())
    ///         .map(|line| line.unwrap())
    ///         .collect()
    ///         .await;
    ///     assert_eq!(lines, ["one", "two", "three"]);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub struct FramedRead<R, D> {
        #[pin]
        inner: R,
        decoder: D,
        state: ReadFrame,
    }
}

impl<R, D> FramedRead<R, D> {
    /// Decodes what `inner` reads with `decoder`, through an 8 KiB read buffer.
    pub fn new(inner: R, decoder: D) -> FramedRead<R, D> {
        FramedRead::with_capacity(inner, decoder, INITIAL_CAPACITY)
    }

    /// The same with a read buffer of `capacity` bytes to start with (it grows as a frame
    /// needs). It bounds neither the buffer nor a read: each read is offered at least
    /// 8 KiB of room, where tokio-util's offers what the buffer has spare (for chunks of
    /// at most a size, use [`ReaderStream::with_capacity`](super::ReaderStream::with_capacity)).
    pub fn with_capacity(inner: R, decoder: D, capacity: usize) -> FramedRead<R, D> {
        FramedRead {
            inner,
            decoder,
            state: ReadFrame::with_capacity(capacity),
        }
    }

    /// The reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The reader, to use directly: bytes read from it here bypass the read buffer.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The reader, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut R> {
        self.project().inner
    }

    /// The reader back; bytes read and not yet decoded are dropped (see
    /// [`read_buffer`](FramedRead::read_buffer)).
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }

    /// The decoder, to change its settings between frames.
    pub fn decoder_mut(&mut self) -> &mut D {
        &mut self.decoder
    }

    /// The same reader and buffered bytes with another decoder made from this one.
    pub fn map_decoder<C>(self, map: impl FnOnce(D) -> C) -> FramedRead<R, C> {
        FramedRead {
            inner: self.inner,
            decoder: map(self.decoder),
            state: self.state,
        }
    }

    /// The decoder, from a pinned `FramedRead` (inside a `poll_next` of your own).
    pub fn decoder_pin_mut(self: Pin<&mut Self>) -> &mut D {
        self.project().decoder
    }

    /// Bytes read and not yet decoded.
    pub fn read_buffer(&self) -> &BytesMut {
        &self.state.buffer
    }

    /// Bytes read and not yet decoded, to change.
    pub fn read_buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.state.buffer
    }

    /// The reader, the decoder and the bytes read and not yet decoded (`read_buf`;
    /// `write_buf` is empty), as tokio-util's: unlike [`into_inner`](FramedRead::into_inner),
    /// nothing read ahead is lost.
    ///
    /// ```
    /// use overlap::codec::{BytesCodec, Framed, FramedParts, FramedRead, LinesCodec};
    /// use overlap::stream::StreamExt;
    ///
    /// overlap::block_on(async {
    ///     let wire: &[u8] = b"HELLO\nraw bytes";
    ///     let mut lines = FramedRead::new(wire, LinesCodec::new());
    ///     assert_eq!(lines.next().await.unwrap()?, "HELLO");
    ///     // "raw bytes" came in the same read: it is in `read_buf`.
    ///     let parts = lines.into_parts();
    ///     let mut raw_parts = FramedParts::new::<&[u8]>(parts.io, BytesCodec::new());
    ///     raw_parts.read_buf = parts.read_buf;
    ///     let mut raw = Framed::from_parts(raw_parts);
    ///     assert_eq!(raw.next().await.unwrap()?, "raw bytes");
    ///     Ok::<_, Box<dyn std::error::Error>>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn into_parts(self) -> FramedParts<R, D> {
        FramedParts::from_buffers(self.inner, self.decoder, self.state.buffer, BytesMut::new())
    }
}

impl<R: AsyncRead, D: Decoder> Stream for FramedRead<R, D> {
    type Item = Result<D::Item, D::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        this.state.poll_next(this.inner, this.decoder, cx)
    }
}

/// A `FramedRead` over a reader that is also a [`Sink`] is that sink too: items go
/// straight to the reader, as with tokio-util's (the decoder plays no part).
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// use overlap::codec::{FramedRead, LinesCodec};
/// use overlap::io::AsyncRead;
/// use overlap::sink::{Sink, SinkExt};
/// use overlap::stream::StreamExt;
///
/// /// Reads its lines; takes replies.
/// struct Peer {
///     incoming: &'static [u8],
///     replies: Vec<String>,
/// }
///
/// impl AsyncRead for Peer {
///     fn poll_read(
///         mut self: Pin<&mut Self>,
///         cx: &mut Context<'_>,
///         buf: &mut [u8],
///     ) -> Poll<std::io::Result<usize>> {
///         Pin::new(&mut self.incoming).poll_read(cx, buf)
///     }
/// }
///
/// impl Sink<String> for Peer {
///     type Error = std::io::Error;
///     fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
///     fn start_send(mut self: Pin<&mut Self>, reply: String) -> std::io::Result<()> {
///         self.replies.push(reply);
///         Ok(())
///     }
///     fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
///     fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
///         Poll::Ready(Ok(()))
///     }
/// }
///
/// overlap::block_on(async {
///     let peer = Peer { incoming: b"ping\n", replies: Vec::new() };
///     let mut framed = FramedRead::new(peer, LinesCodec::new());
///     let line = framed.next().await.unwrap()?;
///     framed.send(format!("{line} back")).await?; // to the peer, not through the codec
///     assert_eq!(framed.get_ref().replies, ["ping back"]);
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })
/// .unwrap();
/// ```
impl<R: Sink<I>, D, I> Sink<I> for FramedRead<R, D> {
    type Error = R::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        self.project().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), R::Error> {
        self.project().inner.start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), R::Error>> {
        self.project().inner.poll_close(cx)
    }
}

impl<R: fmt::Debug, D: fmt::Debug> fmt::Debug for FramedRead<R, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedRead")
            .field("inner", &self.inner)
            .field("decoder", &self.decoder)
            .field("eof", &self.state.eof)
            .field("is_readable", &self.state.is_readable)
            .field("buffer", &self.state.buffer)
            .finish()
    }
}
