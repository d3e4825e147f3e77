//! `duplex`: a pair of connected in-memory streams, for testing protocol code without
//! sockets.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures_util::io::{AsyncRead, AsyncWrite};

/// One direction: bytes written by one end, waiting for the other to read them.
struct Pipe {
    buf: VecDeque<u8>,
    max: usize,
    /// The writing end closed (or dropped): the reader gets end of file once drained.
    write_closed: bool,
    /// The reading end dropped: writes fail with `BrokenPipe`.
    read_closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Pipe {
    fn new(max: usize) -> Pipe {
        Pipe {
            buf: VecDeque::new(),
            max,
            write_closed: false,
            read_closed: false,
            reader: None,
            writer: None,
        }
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

/// One end of a [`duplex`] pair: what it writes, the other end reads, and the other way
/// round. It implements futures-io's `AsyncRead` and `AsyncWrite`.
///
/// Each direction holds at most `max_buf_size` bytes; a writer finding it full waits for
/// the reader. `close` (`poll_close`) ends the writing direction: the other end reads what
/// is left, then end of file. Dropping an end closes both of its directions: the other end
/// reads what the dropped end wrote, then end of file, and its writes fail with
/// `BrokenPipe` (bytes it wrote that the dropped end never read are discarded). Not `Send`:
/// both ends belong to the tasks of one thread.
///
/// Vectored writes are native (what tokio calls `is_write_vectored`): one
/// `poll_write_vectored` copies the slices in order, as many bytes as the buffer has room
/// for, the last one partly if need be, and returns the total.
pub struct DuplexStream {
    read: Rc<RefCell<Pipe>>,
    write: Rc<RefCell<Pipe>>,
}

/// A pair of connected in-memory streams, each direction buffering up to `max_buf_size`
/// bytes (at least 1): a socket pair without sockets, for testing protocol code.
///
/// ```
/// use overlap::io::{duplex, AsyncReadExt, AsyncWriteExt};
///
/// overlap::block_on(async {
///     let (mut client, mut server) = duplex(64);
///     client.write_all(b"ping").await?;
///     let mut buf = [0u8; 4];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     drop(client);
///     assert_eq!(server.read(&mut buf).await?, 0, "end of file once the peer is gone");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn duplex(max_buf_size: usize) -> (DuplexStream, DuplexStream) {
    let max = max_buf_size.max(1);
    let a_to_b = Rc::new(RefCell::new(Pipe::new(max)));
    let b_to_a = Rc::new(RefCell::new(Pipe::new(max)));
    (
        DuplexStream {
            read: b_to_a.clone(),
            write: a_to_b.clone(),
        },
        DuplexStream {
            read: a_to_b,
            write: b_to_a,
        },
    )
}

impl AsyncRead for DuplexStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        // Budgeted like the channels: an always-ready read loop must yield now and then.
        crate::coop::budgeted(cx, |cx| self.get_mut().poll_read_now(cx, buf))
    }
}

impl DuplexStream {
    fn poll_read_now(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut pipe = self.read.borrow_mut();
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
}

impl AsyncWrite for DuplexStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let bufs = [IoSlice::new(buf)];
        crate::coop::budgeted(cx, |cx| self.get_mut().poll_write_now(cx, &bufs))
    }

    /// Copies the slices in order, as many bytes as fit, in one call.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        crate::coop::budgeted(cx, |cx| self.get_mut().poll_write_now(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let reader = {
            let mut pipe = self.write.borrow_mut();
            pipe.write_closed = true;
            pipe.reader.take()
        };
        wake(reader);
        Poll::Ready(Ok(()))
    }
}

impl Drop for DuplexStream {
    fn drop(&mut self) {
        let reader = {
            let mut pipe = self.write.borrow_mut();
            pipe.write_closed = true;
            pipe.reader.take()
        };
        let writer = {
            let mut pipe = self.read.borrow_mut();
            pipe.read_closed = true;
            // Bytes nobody will read go now.
            pipe.buf = VecDeque::new();
            pipe.writer.take()
        };
        wake(reader);
        wake(writer);
    }
}

impl fmt::Debug for DuplexStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuplexStream")
            .field("readable_bytes", &self.read.borrow().buf.len())
            .field("unread_written_bytes", &self.write.borrow().buf.len())
            .finish()
    }
}

impl DuplexStream {
    /// Appends the bytes of `bufs`, in order, as far as the buffer has room.
    fn poll_write_now(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = self.write.borrow_mut();
        if pipe.read_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the other end of the duplex stream is gone",
            )));
        }
        if pipe.write_closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "this end of the duplex stream was closed for writing",
            )));
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
}
