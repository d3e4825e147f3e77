//! `Scripted`: a reader and writer that plays a script of steps, for driving the codecs'
//! `FramedRead`/`FramedWrite`/`Framed` one poll at a time (the ports of tokio-util's codec
//! tests, whose mocks do the same).
//!
//! Reading, each `poll_read` takes the next step: `Data` gives its bytes (as many as fit;
//! the rest stays the next step), `Pending` is `Pending` (the waker is woken, so an awaiting
//! task polls again), `Fail` is its error, an empty script is end of file. Writing, `Data`
//! is the bytes the writer expects next (the write must start with them; it takes that
//! many), `Pending` and `Fail` as for reads, an empty script a write of 0 bytes. A `Flush`
//! or `Close` step is taken by `poll_flush`/`poll_close`, which, with none first, succeed
//! without taking a step (unless a `Pending` or `Fail` comes first: they are taken).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_util::io::{AsyncRead, AsyncWrite};

/// One step of a [`Scripted`].
#[derive(Debug)]
pub enum Step {
    /// Bytes read, or expected written.
    Data(Vec<u8>),
    /// The call is `Pending` (after waking its waker).
    Pending,
    /// The call fails with this error.
    Fail(io::Error),
    /// A `poll_flush`.
    Flush,
    /// A `poll_close`.
    Close,
}

/// A read step of these bytes.
pub fn data(bytes: &[u8]) -> Step {
    Step::Data(bytes.to_vec())
}

/// A step that fails with an error of this kind.
pub fn fail(kind: io::ErrorKind) -> Step {
    Step::Fail(io::Error::new(kind, "scripted failure"))
}

/// A reader and writer playing a script.
#[derive(Debug, Default)]
pub struct Scripted {
    pub steps: VecDeque<Step>,
    /// How many `poll_read` calls were made.
    pub reads: usize,
    /// The length of the buffer each `poll_read` was given.
    pub read_sizes: Vec<usize>,
    /// How many `poll_flush` calls succeeded.
    pub flushes: usize,
    /// Whether a `poll_close` succeeded.
    pub closed: bool,
}

impl Scripted {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Scripted {
        Scripted {
            steps: steps.into_iter().collect(),
            ..Scripted::default()
        }
    }

    /// Whether every step was played.
    pub fn is_done(&self) -> bool {
        self.steps.is_empty()
    }

    /// Takes a `Pending` or `Fail` step at the front, if there is one.
    fn take_pending_or_fail(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Error>> {
        match self.steps.front() {
            Some(Step::Pending) => {
                self.steps.pop_front();
                cx.waker().wake_by_ref();
                Some(Poll::Pending)
            }
            Some(Step::Fail(_)) => match self.steps.pop_front() {
                Some(Step::Fail(e)) => Some(Poll::Ready(e)),
                _ => unreachable!(),
            },
            _ => None,
        }
    }
}

impl AsyncRead for Scripted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.reads += 1;
        self.read_sizes.push(buf.len());
        if let Some(p) = self.take_pending_or_fail(cx) {
            return p.map(Err);
        }
        match self.steps.pop_front() {
            None => Poll::Ready(Ok(0)),
            Some(Step::Data(mut bytes)) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                if n < bytes.len() {
                    bytes.drain(..n);
                    self.steps.push_front(Step::Data(bytes));
                }
                Poll::Ready(Ok(n))
            }
            Some(other) => panic!("a read met the step {other:?}"),
        }
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(p) = self.take_pending_or_fail(cx) {
            return p.map(Err);
        }
        match self.steps.pop_front() {
            None => Poll::Ready(Ok(0)),
            Some(Step::Data(want)) => {
                assert!(
                    buf.starts_with(&want),
                    "expected a write of {want:?}, got {buf:?}"
                );
                Poll::Ready(Ok(want.len()))
            }
            Some(other) => panic!("a write met the step {other:?}"),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(p) = self.take_pending_or_fail(cx) {
            return p.map(Err);
        }
        if let Some(Step::Flush) = self.steps.front() {
            self.steps.pop_front();
        }
        self.flushes += 1;
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(p) = self.take_pending_or_fail(cx) {
            return p.map(Err);
        }
        if let Some(Step::Close) = self.steps.front() {
            self.steps.pop_front();
        }
        self.closed = true;
        Poll::Ready(Ok(()))
    }
}

/// A context whose waker does nothing, for polling by hand.
pub fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// One `poll_next` of `stream` with a waker that does nothing.
pub fn poll_next<S: futures_util::Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    Pin::new(stream).poll_next(&mut noop_cx())
}
