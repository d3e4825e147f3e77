//! The read and write state machines that `FramedRead`, `FramedWrite` and `Framed` share:
//! all their state lives in these structs, so a dropped `next()` or `send()` loses nothing.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::{AsyncRead, AsyncWrite};

use super::{BytesMut, Decoder, Encoder};

/// The read buffer's starting capacity, and the room made before each read.
pub(crate) const INITIAL_CAPACITY: usize = 8 * 1024;
/// The write buffer's default backpressure boundary.
pub(crate) const BACKPRESSURE_BOUNDARY: usize = INITIAL_CAPACITY;
/// The most bytes offered to one read (room is zeroed the first time it is offered: safe
/// code cannot hand a reader uninitialised memory).
const MAX_READ: usize = 64 * 1024;

/// The read side: bytes read and not yet decoded, and where the stream is.
#[derive(Debug)]
pub(crate) struct ReadFrame {
    pub(crate) buffer: BytesMut,
    /// The last read returned end of file.
    pub(crate) eof: bool,
    /// New bytes (or end of file) arrived since `decode` last returned `None`.
    pub(crate) is_readable: bool,
    /// The last item given out was an error: the next poll ends the stream.
    pub(crate) has_errored: bool,
    /// The buffer's length when `decode_eof` last failed taking nothing from it (a
    /// too-long frame's head left where it was), until the decoder next gives a frame or
    /// `None`, or a read returns: failing so again at once, it is not asked again.
    pub(crate) failed_untouched: Option<usize>,
}

impl ReadFrame {
    pub(crate) fn new(buffer: BytesMut) -> ReadFrame {
        ReadFrame {
            // Bytes already there (from `from_parts`) are decoded before any read.
            is_readable: !buffer.is_empty(),
            buffer,
            eof: false,
            has_errored: false,
            failed_untouched: None,
        }
    }

    pub(crate) fn with_capacity(capacity: usize) -> ReadFrame {
        ReadFrame::new(BytesMut::with_capacity(capacity))
    }

    /// `Stream::poll_next` for a decoder over `io`, as tokio-util's: decode what is
    /// buffered; read only when that gives `None`; at end of file call `decode_eof` until
    /// it gives `None`, then end; after an error (decoding or reading), end once.
    ///
    /// Polled on after an error, the stream reads on, as tokio-util's, except after an
    /// error of `decode_eof`: then it decodes on what is left (tokio-util's reads, finds
    /// the end again, and drops it), so the frames given out do not depend on whether the
    /// end of file came in the read before the error or after it. A `decode_eof` that
    /// fails again at once with nothing taken is not asked again: the stream ends.
    pub(crate) fn poll_next<T, D>(
        &mut self,
        mut io: Pin<&mut T>,
        decoder: &mut D,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<D::Item, D::Error>>>
    where
        T: AsyncRead,
        D: Decoder,
    {
        loop {
            if self.has_errored {
                // The error was given out: end the stream this once. A caller polling on
                // reads on, as tokio-util's does; after `decode_eof`'s error (the reader
                // at its end) it decodes on what is left, a line after a too-long one.
                self.is_readable &= self.eof;
                self.has_errored = false;
                return Poll::Ready(None);
            }
            if self.is_readable {
                let len_before = self.buffer.len();
                let decoded = if self.eof {
                    decoder.decode_eof(&mut self.buffer)
                } else {
                    decoder.decode(&mut self.buffer)
                };
                match decoded {
                    Ok(Some(frame)) => {
                        self.failed_untouched = None;
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Ok(None) => {
                        self.failed_untouched = None;
                        self.is_readable = false;
                        if self.eof {
                            // Polled again, the stream reads again (a tty may give more).
                            return Poll::Ready(None);
                        }
                    }
                    Err(e) => {
                        let untouched = self.buffer.len() == len_before;
                        if untouched && self.failed_untouched == Some(len_before) {
                            // `decode_eof`'s failure on the same bytes as the one given
                            // out: read on, which ends the stream.
                            self.is_readable = false;
                        } else {
                            self.failed_untouched = untouched.then_some(len_before);
                            return self.errored(e);
                        }
                    }
                }
            }
            // overlap's readers retry EINTR and wait out EAGAIN themselves: Pending here
            // means no bytes yet, and the reader woke us up when they come.
            let n = match self
                .buffer
                .poll_read_from(io.as_mut(), cx, INITIAL_CAPACITY, MAX_READ)
            {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return self.errored(e.into()),
            };
            self.failed_untouched = None;
            if n == 0 {
                if self.eof {
                    return Poll::Ready(None);
                }
                self.eof = true;
            } else {
                self.eof = false;
            }
            self.is_readable = true;
        }
    }

    fn errored<I, E>(&mut self, e: E) -> Poll<Option<Result<I, E>>> {
        self.has_errored = true;
        Poll::Ready(Some(Err(e)))
    }
}

/// The write side: encoded frames not yet written out.
#[derive(Debug)]
pub(crate) struct WriteFrame {
    pub(crate) buffer: BytesMut,
    pub(crate) backpressure_boundary: usize,
}

impl WriteFrame {
    pub(crate) fn new(buffer: BytesMut) -> WriteFrame {
        WriteFrame {
            buffer,
            backpressure_boundary: BACKPRESSURE_BOUNDARY,
        }
    }

    pub(crate) fn with_capacity(capacity: usize) -> WriteFrame {
        WriteFrame::new(BytesMut::with_capacity(capacity))
    }

    /// `Sink::poll_ready`: ready while the buffer is under the boundary; at or past it, the
    /// buffer is written out (all of it, then the writer flushed, as `poll_flush`). A call
    /// after such a write returned `Pending` is ready as soon as what is left is under the
    /// boundary, as tokio-util's: the buffer need not be empty.
    pub(crate) fn poll_ready<T: AsyncWrite>(
        &mut self,
        io: Pin<&mut T>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        if self.buffer.len() >= self.backpressure_boundary {
            self.poll_flush(io, cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    /// `Sink::start_send`: the item is encoded into the buffer.
    pub(crate) fn start_send<I, E: Encoder<I>>(
        &mut self,
        encoder: &mut E,
        item: I,
    ) -> Result<(), E::Error> {
        encoder.encode(item, &mut self.buffer)
    }

    /// `Sink::poll_flush`: writes the whole buffer, then flushes the writer. Each write
    /// drops what it took from the buffer, so a flush cut short resumes where it was.
    pub(crate) fn poll_flush<T: AsyncWrite>(
        &mut self,
        mut io: Pin<&mut T>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.buffer.is_empty() {
            let n = ready!(io.as_mut().poll_write(cx, &self.buffer))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "failed to write frame to transport",
                )));
            }
            self.buffer.advance(n);
        }
        io.poll_flush(cx)
    }

    /// `Sink::poll_close`: flushes, then closes the writer (`poll_close`, which shuts a
    /// socket's write side down).
    pub(crate) fn poll_close<T: AsyncWrite>(
        &mut self,
        mut io: Pin<&mut T>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.poll_flush(io.as_mut(), cx))?;
        io.poll_close(cx)
    }
}
