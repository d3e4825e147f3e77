//! `ReaderStream`: a reader as a stream of the chunks its reads bring (tokio-util's
//! `io::ReaderStream`).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_util::io::AsyncRead;
use pin_project_lite::pin_project;

use super::BytesMut;

/// How much one read asks for unless [`ReaderStream::with_capacity`] says otherwise.
const DEFAULT_CAPACITY: usize = 4096;

pin_project! {
    /// A reader as a [`Stream`] of the chunks its reads bring, each a [`BytesMut`] of at
    /// most the capacity (4 KiB unless [`with_capacity`](ReaderStream::with_capacity) says
    /// otherwise), as tokio-util's `ReaderStream` (whose chunks are `Bytes`). The stream
    /// ends (`None`) at the reader's end of file; a read error is yielded once and the
    /// stream ends after it, the reader dropped. A read that fails with `Interrupted` is
    /// retried (the task is woken at once), where tokio-util's yields it and ends: overlap's
    /// readers never give it, and another reader's was an interruption, not an end. For the other way round (a stream of byte
    /// chunks as a reader, tokio-util's `StreamReader`), use `TryStreamExt::into_async_read`
    /// from `overlap::stream`.
    ///
    /// Cancel-safe: a `next()` dropped before it completes loses nothing (a read either
    /// brought its bytes, which the next call yields, or took none).
    ///
    /// ```
    /// use overlap::codec::ReaderStream;
    /// use overlap::io::AsyncWriteExt;
    /// use overlap::stream::StreamExt;
    ///
    /// overlap::block_on(async {
    ///     let (mut tx, rx) = overlap::pipe::pipe()?;
    ///     overlap::spawn(async move { tx.write_all(&[7u8; 10_000]).await });
    ///     let mut chunks = ReaderStream::with_capacity(rx, 1024);
    ///     let mut total = 0;
    ///     while let Some(chunk) = chunks.next().await {
    ///         let chunk = chunk?;
    ///         assert!(chunk.len() <= 1024 && chunk.iter().all(|&b| b == 7));
    ///         total += chunk.len();
    ///     }
    ///     assert_eq!(total, 10_000);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    #[derive(Debug)]
    pub struct ReaderStream<R> {
        #[pin]
        reader: Option<R>,
        buf: BytesMut,
        capacity: usize,
    }
}

impl<R: AsyncRead> ReaderStream<R> {
    /// Chunks of at most 4 KiB from `reader`.
    pub fn new(reader: R) -> ReaderStream<R> {
        ReaderStream::with_capacity(reader, DEFAULT_CAPACITY)
    }

    /// Chunks of at most `capacity` bytes (at least 1) from `reader`.
    pub fn with_capacity(reader: R, capacity: usize) -> ReaderStream<R> {
        ReaderStream {
            reader: Some(reader),
            buf: BytesMut::new(),
            capacity: capacity.max(1),
        }
    }
}

impl<R: AsyncRead> Stream for ReaderStream<R> {
    type Item = io::Result<BytesMut>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let Some(reader) = this.reader.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let read = this
            .buf
            .poll_read_from(reader, cx, *this.capacity, *this.capacity);
        match ready!(read) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Err(e) => {
                this.reader.set(None);
                Poll::Ready(Some(Err(e)))
            }
            Ok(0) => {
                this.reader.set(None);
                Poll::Ready(None)
            }
            Ok(_) => Poll::Ready(Some(Ok(this.buf.split()))),
        }
    }
}
