//! `Framed`: one stream and one codec, decoding what is read and encoding what is sent.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::io::{AsyncRead, AsyncWrite};
use futures_util::sink::Sink;
use pin_project_lite::pin_project;

use super::framed_impl::{ReadFrame, WriteFrame, INITIAL_CAPACITY};
use super::{BytesMut, Decoder, Encoder};

pin_project! {
    /// A stream that reads and writes (a `TcpStream`, a `UnixStream`, a
    /// [`DuplexStream`](crate::io::DuplexStream)) with a codec that decodes and encodes:
    /// tokio-util's `Framed`, a [`Stream`] of `Result<U::Item, U::Error>` as
    /// [`FramedRead`](super::FramedRead) and a [`Sink`] of items as
    /// [`FramedWrite`](super::FramedWrite), with the same rules (reads only when the
    /// decoder needs more, an error then the end, a write buffer bounded by the
    /// backpressure boundary; `next()` is cancel-safe).
    ///
    /// To read in one task and write in another, split it with
    /// [`StreamExt::split`](futures_util::stream::StreamExt::split), whose halves share it
    /// through a lock (each half waits while the other is being polled, never longer).
    ///
    /// ```
    /// use overlap::codec::{Framed, LinesCodec};
    /// use overlap::net::{TcpListener, TcpStream};
    /// use overlap::sink::SinkExt;
    /// use overlap::stream::StreamExt;
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(listener.local_addr()?).await?;
    ///     let (server, _) = listener.accept().await?;
    ///     // An echo server, one line at a time, upper-cased.
    ///     overlap::spawn(async move {
    ///         let mut lines = Framed::new(server, LinesCodec::new());
    ///         while let Some(Ok(line)) = lines.next().await {
    ///             lines.send(line.to_uppercase()).await.unwrap();
    ///         }
    ///     });
    ///     let mut client = Framed::new(client, LinesCodec::new());
    ///     client.send("hello").await?;
    ///     assert_eq!(client.next().await.transpose()?.as_deref(), Some("HELLO"));
    ///     Ok::<_, Box<dyn std::error::Error>>(())
    /// })
    /// .unwrap();
    /// ```
    pub struct Framed<T, U> {
        #[pin]
        inner: T,
        codec: U,
        read: ReadFrame,
        write: WriteFrame,
    }
}

/// A [`Framed`]'s pieces: the stream, the codec and both buffers, to move a connection from
/// one codec to another without losing bytes read ahead (a handshake in lines, then binary
/// frames): [`Framed::into_parts`], change them, then [`Framed::from_parts`].
///
/// ```
/// use overlap::codec::{BytesCodec, Framed, FramedParts, LinesCodec};
/// use overlap::io::{duplex, AsyncWriteExt};
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let (mut peer, io) = duplex(64);
///     peer.write_all(b"HELLO\nraw bytes").await?;
///     let mut lines = Framed::new(io, LinesCodec::new());
///     assert_eq!(lines.next().await.unwrap()?, "HELLO");
///     // "raw bytes" came in the same read: it is in the read buffer, and moves along.
///     let parts = lines.into_parts();
///     let mut raw_parts = FramedParts::new::<&[u8]>(parts.io, BytesCodec::new());
///     raw_parts.read_buf = parts.read_buf;
///     raw_parts.write_buf = parts.write_buf;
///     let mut raw = Framed::from_parts(raw_parts);
///     assert_eq!(raw.next().await.unwrap()?, b"raw bytes"[..]);
///     Ok::<_, Box<dyn std::error::Error>>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct FramedParts<T, U> {
    /// The stream.
    pub io: T,
    /// The codec.
    pub codec: U,
    /// Bytes read and not yet decoded.
    pub read_buf: BytesMut,
    /// Encoded bytes not yet written.
    pub write_buf: BytesMut,
}

impl<T, U> FramedParts<T, U> {
    /// Parts with empty buffers. The item type `I` that `codec` encodes is named here, as in
    /// tokio-util (`FramedParts::new::<MyItem>(io, codec)`).
    pub fn new<I>(io: T, codec: U) -> FramedParts<T, U>
    where
        U: Encoder<I>,
    {
        FramedParts {
            io,
            codec,
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
        }
    }
}

impl<T, U> FramedParts<T, U> {
    /// Parts with these buffers, for the codec types' own `into_parts`.
    pub(crate) fn from_buffers(
        io: T,
        codec: U,
        read_buf: BytesMut,
        write_buf: BytesMut,
    ) -> FramedParts<T, U> {
        FramedParts {
            io,
            codec,
            read_buf,
            write_buf,
        }
    }
}

impl<T, U> Framed<T, U> {
    /// Frames `inner` with `codec`, through 8 KiB read and write buffers.
    pub fn new(inner: T, codec: U) -> Framed<T, U> {
        Framed::with_capacity(inner, codec, INITIAL_CAPACITY)
    }

    /// The same with a read buffer of `capacity` bytes to start with; as with
    /// [`FramedRead::with_capacity`](super::FramedRead::with_capacity), each read is still
    /// offered at least 8 KiB of room.
    pub fn with_capacity(inner: T, codec: U, capacity: usize) -> Framed<T, U> {
        Framed {
            inner,
            codec,
            read: ReadFrame::with_capacity(capacity),
            write: WriteFrame::with_capacity(INITIAL_CAPACITY),
        }
    }

    /// A `Framed` from its pieces: the bytes in `read_buf` are decoded before anything is
    /// read, those in `write_buf` written out before any item sent.
    pub fn from_parts(parts: FramedParts<T, U>) -> Framed<T, U> {
        Framed {
            inner: parts.io,
            codec: parts.codec,
            read: ReadFrame::new(parts.read_buf),
            write: WriteFrame::new(parts.write_buf),
        }
    }

    /// The pieces back, buffers included (unlike [`into_inner`](Framed::into_inner)).
    pub fn into_parts(self) -> FramedParts<T, U> {
        FramedParts {
            io: self.inner,
            codec: self.codec,
            read_buf: self.read.buffer,
            write_buf: self.write.buffer,
        }
    }

    /// The stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The stream, to use directly (bypassing both buffers).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The stream, pinned.
    pub fn get_pin_mut(self: Pin<&mut Self>) -> Pin<&mut T> {
        self.project().inner
    }

    /// The stream back; buffered bytes are dropped (see [`into_parts`](Framed::into_parts)).
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// The codec.
    pub fn codec(&self) -> &U {
        &self.codec
    }

    /// The codec, to change its settings between frames.
    pub fn codec_mut(&mut self) -> &mut U {
        &mut self.codec
    }

    /// The codec, from a pinned `Framed` (inside a `poll_*` of your own).
    pub fn codec_pin_mut(self: Pin<&mut Self>) -> &mut U {
        self.project().codec
    }

    /// The same stream and buffers with another codec made from this one.
    pub fn map_codec<C>(self, map: impl FnOnce(U) -> C) -> Framed<T, C> {
        Framed {
            inner: self.inner,
            codec: map(self.codec),
            read: self.read,
            write: self.write,
        }
    }

    /// Bytes read and not yet decoded.
    pub fn read_buffer(&self) -> &BytesMut {
        &self.read.buffer
    }

    /// Bytes read and not yet decoded, to change.
    pub fn read_buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.read.buffer
    }

    /// Encoded bytes not yet written.
    pub fn write_buffer(&self) -> &BytesMut {
        &self.write.buffer
    }

    /// Encoded bytes not yet written, to change.
    pub fn write_buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.write.buffer
    }

    /// The buffered size at which `poll_ready` writes the buffer out before taking another
    /// item.
    pub fn backpressure_boundary(&self) -> usize {
        self.write.backpressure_boundary
    }

    /// Sets the buffered size at which `poll_ready` writes the buffer out first (8 KiB by
    /// default).
    pub fn set_backpressure_boundary(&mut self, boundary: usize) {
        self.write.backpressure_boundary = boundary;
    }
}

impl<T: AsyncRead, U: Decoder> Stream for Framed<T, U> {
    type Item = Result<U::Item, U::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        this.read.poll_next(this.inner, this.codec, cx)
    }
}

impl<T: AsyncWrite, U: Encoder<I>, I> Sink<I> for Framed<T, U> {
    type Error = U::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), U::Error>> {
        let this = self.project();
        this.write.poll_ready(this.inner, cx).map_err(Into::into)
    }

    fn start_send(self: Pin<&mut Self>, item: I) -> Result<(), U::Error> {
        let this = self.project();
        this.write.start_send(this.codec, item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), U::Error>> {
        let this = self.project();
        this.write.poll_flush(this.inner, cx).map_err(Into::into)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), U::Error>> {
        let this = self.project();
        this.write.poll_close(this.inner, cx).map_err(Into::into)
    }
}

impl<T: fmt::Debug, U: fmt::Debug> fmt::Debug for Framed<T, U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framed")
            .field("inner", &self.inner)
            .field("codec", &self.codec)
            .field("read_buffer", &self.read.buffer)
            .field("write_buffer", &self.write.buffer)
            .finish()
    }
}
