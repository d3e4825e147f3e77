//! One direction of an in-memory stream: the bounded buffer, the two ends' wakers and the
//! read, write and close steps that [`duplex`](super::duplex) and
//! [`simplex`](super::simplex) share.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Bytes written by one end, waiting for the other to read them.
pub(super) struct Pipe {
    buf: VecDeque<u8>,
    max: usize,
    /// The writing end closed (or dropped): the reader gets end of file once drained.
    write_closed: bool,
    /// The reading end dropped: writes fail with `BrokenPipe`.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// What a write fails with, in the words of the stream type it goes through.
pub(super) struct Refusals {
    /// The reading end is gone.
    pub(super) reader_gone: &'static str,
    /// The writing end was closed (`poll_close`) and is written again.
    pub(super) closed: &'static str,
}

impl Pipe {
    /// A pipe holding at most `max_buf_size` bytes (at least 1), for two ends to share.
    pub(super) fn shared(max_buf_size: usize) -> Rc<RefCell<Pipe>> {
        Rc::new(RefCell::new(Pipe {
            buf: VecDeque::new(),
            max: max_buf_size.max(1),
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        }))
    }

    /// Bytes written and not read yet.
    pub(super) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// Stores `cx`'s waker in `slot` unless an equivalent one is there.
fn park(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// Wakes the waker taken out of a pipe, after its borrow ended (a waker may run user code).
fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// Moves buffered bytes into `buf`; end of file once the writer closed and all is read.
pub(super) fn poll_read(
    pipe: &RefCell<Pipe>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    let mut pipe = pipe.borrow_mut();
    if pipe.buf.is_empty() {
        if pipe.write_closed {
            return Poll::Ready(Ok(0));
        }
        park(&mut pipe.reader, cx);
        return Poll::Pending;
    }
    let n = buf.len().min(pipe.buf.len());
    for (dst, src) in buf.iter_mut().zip(pipe.buf.drain(..n)) {
        *dst = src;
    }
    let writer = pipe.writer.take();
    drop(pipe);
    wake(writer);
    Poll::Ready(Ok(n))
}

/// Appends the bytes of `bufs`, in order, as far as the buffer has room; waits while it
/// is full.
pub(super) fn poll_write(
    pipe: &RefCell<Pipe>,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
    refusals: &Refusals,
) -> Poll<io::Result<usize>> {
    let mut pipe = pipe.borrow_mut();
    if pipe.read_closed {
        let e = io::Error::new(io::ErrorKind::BrokenPipe, refusals.reader_gone);
        return Poll::Ready(Err(e));
    }
    if pipe.write_closed {
        let e = io::Error::new(io::ErrorKind::BrokenPipe, refusals.closed);
        return Poll::Ready(Err(e));
    }
    if bufs.iter().all(|b| b.is_empty()) {
        return Poll::Ready(Ok(0));
    }
    let room = pipe.max - pipe.buf.len();
    if room == 0 {
        park(&mut pipe.writer, cx);
        return Poll::Pending;
    }
    let mut n = 0;
    for b in bufs {
        let take = (room - n).min(b.len());
        pipe.buf.extend(&b[..take]);
        n += take;
        if n == room {
            break;
        }
    }
    let reader = pipe.reader.take();
    drop(pipe);
    wake(reader);
    Poll::Ready(Ok(n))
}

/// Ends the writing direction: the reader reads what is left, then end of file.
///
/// The writer's own waker is taken out too (and woken: a write waiting for room fails at
/// once from now on), so that the reading end, which keeps the pipe, does not keep a task
/// that waited on a full buffer, then dropped its end, alive for as long as it lives.
pub(super) fn close_write(pipe: &RefCell<Pipe>) {
    let (reader, writer) = {
        let mut pipe = pipe.borrow_mut();
        pipe.write_closed = true;
        (pipe.reader.take(), pipe.writer.take())
    };
    wake(reader);
    wake(writer);
}

/// The reader is gone: bytes nobody will read are dropped, and writes fail from now on.
/// Its own waker is dropped, as [`close_write`] takes the writer's.
pub(super) fn close_read(pipe: &RefCell<Pipe>) {
    let (writer, own) = {
        let mut pipe = pipe.borrow_mut();
        pipe.read_closed = true;
        pipe.buf = VecDeque::new();
        (pipe.writer.take(), pipe.reader.take())
    };
    // Outside the borrow: dropping a waker may run user code.
    drop(own);
    wake(writer);
}

/// `AsyncRead` for a type whose reads come out of the pipe in its field `$pipe`.
macro_rules! read_from_pipe {
    ($ty:ty, $pipe:ident) => {
        impl futures_util::io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                // Budgeted like the channels: an always-ready read loop must yield now
                // and then.
                $crate::coop::budgeted(cx, |cx| {
                    $crate::io::memory_pipe::poll_read(&self.$pipe, cx, buf)
                })
            }
        }
    };
}

/// `AsyncWrite` for a type whose writes go into the pipe in its field `$pipe`, refused in
/// the words of `$refusals` (a [`Refusals`]).
macro_rules! write_to_pipe {
    ($ty:ty, $pipe:ident, $refusals:expr) => {
        impl futures_util::io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let bufs = [std::io::IoSlice::new(buf)];
                $crate::coop::budgeted(cx, |cx| {
                    $crate::io::memory_pipe::poll_write(&self.$pipe, cx, &bufs, &$refusals)
                })
            }

            /// Copies the slices in order, as many bytes as fit, in one call.
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $crate::coop::budgeted(cx, |cx| {
                    $crate::io::memory_pipe::poll_write(&self.$pipe, cx, bufs, &$refusals)
                })
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                $crate::io::memory_pipe::close_write(&self.$pipe);
                std::task::Poll::Ready(Ok(()))
            }
        }
    };
}

pub(super) use {read_from_pipe, write_to_pipe};
