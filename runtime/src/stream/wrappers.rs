//! tokio-stream's `wrappers`: the channels, the interval, the signal and a reader's lines
//! as [`Stream`]s.
//!
//! overlap's [`mpsc::Receiver`], [`Interval`], [`Signal`] and futures-io's [`Lines`] are
//! streams already; their
//! wrappers are here so that code written with tokio-stream's names builds unchanged. The
//! [`broadcast`] and [`watch`] receivers are not streams themselves (a stream of a broadcast
//! must say what a lagging receiver lost, and one of a watch which value to start from):
//! [`BroadcastStream`] and [`WatchStream`] make them so.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use futures_util::io::{AsyncBufRead, Lines};

use crate::signal::Signal;
use crate::sync::broadcast::{self, RecvError};
use crate::sync::{mpsc, watch};
use crate::time::{Instant, Interval};

/// An [`mpsc::Receiver`] as a [`Stream`] (tokio-stream's `ReceiverStream`): the receiver is
/// one already, so this only carries tokio-stream's name and methods. The stream ends once
/// every sender is gone and the queue is empty.
///
/// ```
/// use overlap::stream::wrappers::ReceiverStream;
/// use overlap::stream::StreamExt;
/// use overlap::sync::mpsc;
///
/// overlap::block_on(async {
///     let (tx, rx) = mpsc::channel(4);
///     overlap::spawn(async move {
///         for i in 0..3 {
///             tx.send(i).await.unwrap();
///         }
///     });
///     let got: Vec<i32> = ReceiverStream::new(rx).collect().await;
///     assert_eq!(got, [0, 1, 2]);
/// });
/// ```
#[derive(Debug)]
pub struct ReceiverStream<T> {
    inner: mpsc::Receiver<T>,
}

/// tokio-stream's `UnboundedReceiverStream`: overlap's unbounded receiver is the same type
/// as the bounded one, and so is its stream.
pub type UnboundedReceiverStream<T> = ReceiverStream<T>;

impl<T> ReceiverStream<T> {
    /// Wraps `receiver`.
    pub fn new(receiver: mpsc::Receiver<T>) -> ReceiverStream<T> {
        ReceiverStream { inner: receiver }
    }

    /// The receiver back.
    pub fn into_inner(self) -> mpsc::Receiver<T> {
        self.inner
    }

    /// Closes the channel to further sends; the values already queued are still yielded.
    pub fn close(&mut self) {
        self.inner.close();
    }
}

impl<T> Stream for ReceiverStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().inner.poll_recv(cx)
    }
}

impl<T> AsRef<mpsc::Receiver<T>> for ReceiverStream<T> {
    fn as_ref(&self) -> &mpsc::Receiver<T> {
        &self.inner
    }
}

impl<T> AsMut<mpsc::Receiver<T>> for ReceiverStream<T> {
    fn as_mut(&mut self) -> &mut mpsc::Receiver<T> {
        &mut self.inner
    }
}

impl<T> From<mpsc::Receiver<T>> for ReceiverStream<T> {
    fn from(receiver: mpsc::Receiver<T>) -> ReceiverStream<T> {
        ReceiverStream::new(receiver)
    }
}

/// The wrappers' error types, under the module path tokio-stream gives them
/// (`tokio_stream::wrappers::errors::BroadcastStreamRecvError`); they are also at the
/// `wrappers` root.
pub mod errors {
    pub use super::BroadcastStreamRecvError;
}

/// What a [`BroadcastStream`] yields in place of values its receiver lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BroadcastStreamRecvError {
    /// The receiver lagged behind and this many values were dropped before it read them;
    /// the stream goes on from the oldest value still held.
    Lagged(u64),
}

impl fmt::Display for BroadcastStreamRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BroadcastStreamRecvError::Lagged(n) => {
                write!(f, "the receiver lagged behind and lost {n} values")
            }
        }
    }
}

impl std::error::Error for BroadcastStreamRecvError {}

/// A [`broadcast::Receiver`] as a [`Stream`] of `Result<T, BroadcastStreamRecvError>`
/// (tokio-stream's): each value in turn, an `Err(Lagged(n))` where the receiver lost `n`
/// values (the stream goes on after it), and the end once every sender is gone and
/// everything sent has been read.
///
/// ```
/// use overlap::stream::wrappers::{BroadcastStream, BroadcastStreamRecvError};
/// use overlap::stream::StreamExt;
/// use overlap::sync::broadcast;
///
/// overlap::block_on(async {
///     let (tx, rx) = broadcast::channel(2);
///     let mut stream = BroadcastStream::new(rx);
///     for i in 0..4 {
///         tx.send(i).unwrap();
///     }
///     drop(tx);
///     assert_eq!(stream.next().await, Some(Err(BroadcastStreamRecvError::Lagged(2))));
///     assert_eq!(stream.next().await, Some(Ok(2)));
///     assert_eq!(stream.next().await, Some(Ok(3)));
///     assert_eq!(stream.next().await, None);
/// });
/// ```
pub struct BroadcastStream<T> {
    // `None` once the stream has ended.
    inner: Option<broadcast::Receiver<T>>,
}

impl<T: Clone> BroadcastStream<T> {
    /// Wraps `receiver`: the stream yields what it has not read yet, then what is sent.
    pub fn new(receiver: broadcast::Receiver<T>) -> BroadcastStream<T> {
        BroadcastStream {
            inner: Some(receiver),
        }
    }
}

impl<T: Clone> Stream for BroadcastStream<T> {
    type Item = Result<T, BroadcastStreamRecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(receiver) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match std::task::ready!(receiver.poll_recv(cx)) {
            Ok(value) => Poll::Ready(Some(Ok(value))),
            Err(RecvError::Lagged(n)) => {
                Poll::Ready(Some(Err(BroadcastStreamRecvError::Lagged(n))))
            }
            Err(RecvError::Closed) => {
                // Let the channel's other receivers see one fewer at once.
                this.inner = None;
                Poll::Ready(None)
            }
        }
    }
}

impl<T: Clone> FusedStream for BroadcastStream<T> {
    fn is_terminated(&self) -> bool {
        self.inner.is_none()
    }
}

impl<T> fmt::Debug for BroadcastStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastStream")
            .field("ended", &self.inner.is_none())
            .finish()
    }
}

/// A [`watch::Receiver`] as a [`Stream`] of the watched value (tokio-stream's): a clone of
/// the value each time it changes, and the end once every sender is gone. Changes made
/// between two polls are seen as one, the latest (a watch keeps only the last value).
/// [`new`](WatchStream::new) starts with the value current when first polled;
/// [`from_changes`](WatchStream::from_changes) waits for the first change.
///
/// ```
/// use overlap::stream::wrappers::WatchStream;
/// use overlap::stream::StreamExt;
/// use overlap::sync::watch;
///
/// overlap::block_on(async {
///     let (tx, rx) = watch::channel("starting");
///     let mut states = WatchStream::new(rx);
///     assert_eq!(states.next().await, Some("starting"));
///     tx.send("ready").unwrap();
///     tx.send("serving").unwrap(); // seen with the one before as a single change
///     assert_eq!(states.next().await, Some("serving"));
///     drop(tx);
///     assert_eq!(states.next().await, None);
/// });
/// ```
pub struct WatchStream<T> {
    // `None` once the stream has ended.
    inner: Option<watch::Receiver<T>>,
    // Whether the next poll yields the current value without waiting for a change.
    yield_current: bool,
}

impl<T: Clone> WatchStream<T> {
    /// Wraps `receiver`: the first item is the current value, then each change.
    pub fn new(receiver: watch::Receiver<T>) -> WatchStream<T> {
        WatchStream {
            inner: Some(receiver),
            yield_current: true,
        }
    }

    /// Wraps `receiver`: the first item is the first change not yet seen by `receiver`.
    pub fn from_changes(receiver: watch::Receiver<T>) -> WatchStream<T> {
        WatchStream {
            inner: Some(receiver),
            yield_current: false,
        }
    }
}

impl<T: Clone> Stream for WatchStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let Some(receiver) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if std::mem::take(&mut this.yield_current) {
            return Poll::Ready(Some(receiver.borrow_and_update().clone()));
        }
        match std::task::ready!(crate::coop::budgeted(cx, |cx| receiver.poll_changed(cx))) {
            Ok(()) => Poll::Ready(Some(receiver.borrow_and_update().clone())),
            Err(watch::RecvError) => {
                this.inner = None;
                Poll::Ready(None)
            }
        }
    }
}

impl<T: Clone> FusedStream for WatchStream<T> {
    fn is_terminated(&self) -> bool {
        self.inner.is_none()
    }
}

impl<T> fmt::Debug for WatchStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream")
            .field("ended", &self.inner.is_none())
            .finish()
    }
}

/// An [`Interval`] as a [`Stream`] of the instants its ticks were scheduled for
/// (tokio-stream's `IntervalStream`; the interval is a stream already). It never ends.
#[derive(Debug)]
pub struct IntervalStream {
    inner: Interval,
}

impl IntervalStream {
    /// Wraps `interval`.
    pub fn new(interval: Interval) -> IntervalStream {
        IntervalStream { inner: interval }
    }

    /// The interval back.
    pub fn into_inner(self) -> Interval {
        self.inner
    }
}

impl Stream for IntervalStream {
    type Item = Instant;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Instant>> {
        self.get_mut().inner.poll_tick(cx).map(Some)
    }
}

impl AsRef<Interval> for IntervalStream {
    fn as_ref(&self) -> &Interval {
        &self.inner
    }
}

impl AsMut<Interval> for IntervalStream {
    fn as_mut(&mut self) -> &mut Interval {
        &mut self.inner
    }
}

/// A [`Signal`] as a [`Stream`] of its arrivals (tokio-stream's `SignalStream`; the signal
/// is a stream already).
#[derive(Debug)]
pub struct SignalStream {
    inner: Signal,
}

impl SignalStream {
    /// Wraps `signal`.
    pub fn new(signal: Signal) -> SignalStream {
        SignalStream { inner: signal }
    }

    /// The signal back.
    pub fn into_inner(self) -> Signal {
        self.inner
    }
}

impl Stream for SignalStream {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().inner.poll_recv(cx)
    }
}

impl AsRef<Signal> for SignalStream {
    fn as_ref(&self) -> &Signal {
        &self.inner
    }
}

impl AsMut<Signal> for SignalStream {
    fn as_mut(&mut self) -> &mut Signal {
        &mut self.inner
    }
}

pin_project_lite::pin_project! {
    /// A reader's [`Lines`] (from `AsyncBufReadExt::lines`) as a [`Stream`] of its lines
    /// (tokio-stream's `LinesStream`). futures-io's `Lines` is a stream already, where
    /// tokio's has only `next_line`: this carries tokio-stream's name and methods, so that
    /// `LinesStream::new(reader.lines())` builds unchanged. Each line comes without its
    /// `\n` (or `\r\n`); a last line without one comes too, then the end. As cancel-safe as
    /// the `Lines` itself: a line cut short stays in it.
    ///
    /// ```
    /// use overlap::io::{AsyncBufReadExt, BufReader};
    /// use overlap::stream::wrappers::LinesStream;
    /// use overlap::stream::StreamExt;
    ///
    /// overlap::block_on(async {
    ///     let reader = BufReader::new(&b"USER alice\r\nPASS secret\n"[..]);
    ///     let lines: Vec<String> = LinesStream::new(reader.lines())
    ///         .map(Result::unwrap)
    ///         .collect()
    ///         .await;
    ///     assert_eq!(lines, ["USER alice", "PASS secret"]);
    /// });
    /// ```
    #[derive(Debug)]
    pub struct LinesStream<R> {
        #[pin]
        inner: Lines<R>,
    }
}

impl<R> LinesStream<R> {
    /// Wraps `lines`.
    pub fn new(lines: Lines<R>) -> LinesStream<R> {
        LinesStream { inner: lines }
    }

    /// The `Lines` back, with what it read ahead.
    pub fn into_inner(self) -> Lines<R> {
        self.inner
    }

    /// The `Lines`, pinned.
    pub fn as_pin_mut(self: Pin<&mut Self>) -> Pin<&mut Lines<R>> {
        self.project().inner
    }
}

impl<R: AsyncBufRead> Stream for LinesStream<R> {
    type Item = io::Result<String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<String>>> {
        self.project().inner.poll_next(cx)
    }
}

impl<R> AsRef<Lines<R>> for LinesStream<R> {
    fn as_ref(&self) -> &Lines<R> {
        &self.inner
    }
}

impl<R> AsMut<Lines<R>> for LinesStream<R> {
    fn as_mut(&mut self) -> &mut Lines<R> {
        &mut self.inner
    }
}
