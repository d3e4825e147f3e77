//! `FramedWrite`: a writer and an encoder as a `Sink` of items.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::io::AsyncWrite;
use futures_util::sink::Sink;
use pin_project_lite::pin_project;

use super::framed_impl::{WriteFrame, INITIAL_CAPACITY};
use super::{BytesMut, Encoder, FramedParts};

pin_project! {
    /// A writer (any futures-io [`AsyncWrite`]) with an [`Encoder`], as a futures
    /// [`Sink`] of items: tokio-util's `FramedWrite`. Send with
    /// [`SinkExt`](futures_util::sink::SinkExt)'s `send` (encode, then write everything
    /// out), or `feed` several and `flush` once.
    ///
    /// Each item is encoded into the write buffer. `poll_ready` writes the buffer out once
    /// it holds the backpressure boundary (8 KiB unless
    /// [`set_backpressure_boundary`](FramedWrite::set_backpressure_boundary) says otherwise)
    /// or more, so against a peer that does not read, sending stops there rather than
    /// buffering without bound; `poll_flush` writes all of it and flushes the writer;
    /// `poll_close` does that, then closes the writer (a socket's write side is shut
    /// down). A send or flush dropped midway loses nothing: what was not written stays in
    /// the buffer for the next flush.
    ///
    /// An encoder of several item types (`LinesCodec` takes `String` and `&str`,
    /// `BytesCodec` and `LengthDelimitedCodec` `BytesMut`, `Vec<u8>` and `&[u8]`) makes the
    /// sink one of each, so a `flush` or `close` with no item to tell which needs it named:
    /// `SinkExt::<&str>::close(&mut sink)`, as with tokio-util.
    ///
    /// ```
    /// use overlap::codec::{FramedWrite, LinesCodec};
    /// use overlap::io::AsyncReadExt;
    /// use overlap::sink::SinkExt;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = overlap::pipe::pipe()?;
    ///     let mut lines = FramedWrite::new(tx, LinesCodec::new());
    ///     lines.feed("one").await?;
    ///     lines.send("two").await?; // both written here
    ///     // LinesCodec encodes both String and &str: name the one `close` is for.
    ///     SinkExt::<&str>::close(&mut lines).await?;
    ///     let mut got = String::new();
    ///     rx.read_to_string(&mut got).await?;
    ///     assert_eq!(got, "one\ntwo\n");
    ///     Ok::<_, Box<dyn std::error::Error>>(())
    /// })
    /// .unwrap();
    /// ```
    pub struct FramedWrite<W, E> {
        #[pin]
        inner: W,
        encoder: E,
        state: WriteFrame,
    }
}

impl<W, E> FramedWrite<W, E> {
    /// Encodes items with `encoder` and writes them to `inner`.
    pub fn new(inner: W, encoder: E) -> FramedWrite<W, E> {
        FramedWrite::with_capacity(inner, encoder, INITIAL_CAPACITY)
    }

    /// The same with a write buffer of `capacity` bytes to start with.
    pub fn with_capacity(inner: W, encoder: E, capacity: usize) -> FramedWrite<W, E> {
        FramedWrite {
            inner,
            encoder,
            state: WriteFrame::with_capacity(capacity),
        }
    }

    /// The writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The writer, to use directly: bytes written to it here go before any still in the
    /// write buffer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The writer, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut W> {
        self.project().inner
    }

    /// The writer back; encoded bytes not yet written are dropped (flush first).
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// The encoder.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// The encoder, to change its settings between items.
    pub fn encoder_mut(&mut self) -> &mut E {
        &mut self.encoder
    }

    /// The same writer and buffered bytes with another encoder made from this one.
    pub fn map_encoder<C>(self, map: impl FnOnce(E) -> C) -> FramedWrite<W, C> {
        FramedWrite {
            inner: self.inner,
            encoder: map(self.encoder),
            state: self.state,
        }
    }

    /// The encoder, from a pinned `FramedWrite` (inside a `poll_*` of your own).
    pub fn encoder_pin_mut(self: Pin<&mut Self>) -> &mut E {
        self.project().encoder
    }

    /// The writer, the encoder and the encoded bytes not yet written (`write_buf`;
    /// `read_buf` is empty), as tokio-util's: unlike
    /// [`into_inner`](FramedWrite::into_inner), nothing encoded is lost.
    ///
    /// ```
    /// use overlap::codec::{FramedWrite, LinesCodec};
    /// use overlap::sink::SinkExt;
    ///
    /// overlap::block_on(async {
    ///     let mut lines = FramedWrite::new(Vec::new(), LinesCodec::new());
    ///     lines.feed("not yet written").await?; // encoded, not written out
    ///     let parts = lines.into_parts();
    ///     assert_eq!(parts.write_buf, "not yet written\n");
    ///     assert!(parts.io.is_empty());
    ///     Ok::<_, Box<dyn std::error::Error>>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn into_parts(self) -> FramedParts<W, E> {
        FramedParts::from_buffers(self.inner, self.encoder, BytesMut::new(), self.state.buffer)
    }

    /// Encoded bytes not yet written.
    pub fn write_buffer(&self) -> &BytesMut {
        &self.state.buffer
    }

    /// Encoded bytes not yet written, to change.
    pub fn write_buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.state.buffer
    }

    /// The buffered size at which `poll_ready` writes the buffer out before taking another
    /// item.
    pub fn backpressure_boundary(&self) -> usize {
        self.state.backpressure_boundary
    }

    /// Sets the buffered size at which `poll_ready` writes the buffer out first (8 KiB by
    /// default; 0 writes each item out before the next is taken).
    pub fn set_backpressure_boundary(&mut self, boundary: usize) {
        self.state.backpressure_boundary = boundary;
    }
}

impl<W: AsyncWrite, E: Encoder<I>, I> Sink<I> for FramedWrite<W, E> {
    type Error = E::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E::Error>> {
        let this = self.project();
        this.state.poll_ready(this.inner, cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), E::Error> {
        let this = self.project();
        this.state.start_send(this.encoder, item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E::Error>> {
        let this = self.project();
        this.state.poll_flush(this.inner, cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E::Error>> {
        let this = self.project();
        this.state.poll_close(this.inner, cx).map_err(Into::into)
    }
}

/// A `FramedWrite` over a writer that is also a [`Stream`] is that stream too: its items
/// come straight from the writer, as with tokio-util's (the encoder plays no part).
impl<W: Stream, E> Stream for FramedWrite<W, E> {
    type Item = W::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<W::Item>> {
        self.project().inner.poll_next(cx)
    }
}

impl<W: fmt::Debug, E: fmt::Debug> fmt::Debug for FramedWrite<W, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedWrite")
            .field("inner", &self.inner)
            .field("encoder", &self.encoder)
            .field("buffer", &self.state.buffer)
            .field("backpressure_boundary", &self.state.backpressure_boundary)
            .finish()
    }
}
