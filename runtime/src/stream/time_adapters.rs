//! The stream adapters that need the runtime's timers: tokio-stream's `timeout`,
//! `timeout_repeating`, `throttle` and `chunks_timeout`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::merge::{MapWhile, Merge};
use crate::time::{self, Elapsed, Interval, Sleep};

/// Time limits on a stream's items: tokio-stream's timer adapters, for any [`Stream`].
/// (futures-util's [`StreamExt`](futures_util::StreamExt) has no timers; this trait sits
/// beside it, and its method names do not clash with it.) It also carries the two other
/// methods of tokio-stream's `StreamExt` that futures-util's lacks, [`merge`](Self::merge)
/// and [`map_while`](Self::map_while), so importing both traits gives all of tokio-stream's.
///
/// Each adapter makes its timer when it is made, so make it inside a runtime. A duration too
/// long to add to the clock (`Duration::MAX`, as "no limit") is counted as by
/// [`sleep`](time::sleep): a deadline that never comes.
pub trait StreamTimeExt: Stream {
    /// Each item as `Ok`, and an `Err(Elapsed)` when `duration` passes with no item: counted
    /// from when the adapter is made, then from each item. After an `Elapsed` it waits for
    /// the next item without another limit (the stream goes on; stop at the first `Err` to
    /// give up).
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::stream::{self, StreamExt, StreamTimeExt};
    ///
    /// overlap::block_on(async {
    ///     let slow = stream::iter([1, 2]).then(|n| async move {
    ///         if n == 2 {
    ///             overlap::time::sleep(Duration::from_millis(50)).await;
    ///         }
    ///         n
    ///     });
    ///     let got: Vec<_> = slow.timeout(Duration::from_millis(10)).collect().await;
    ///     assert_eq!(got.len(), 3);
    ///     assert_eq!(got[0], Ok(1));
    ///     assert!(got[1].is_err(), "the second item took longer than the limit");
    ///     assert_eq!(got[2], Ok(2));
    /// });
    /// ```
    fn timeout(self, duration: Duration) -> Timeout<Self>
    where
        Self: Sized,
    {
        Timeout {
            stream: self,
            deadline: time::sleep(duration),
            duration,
            armed: true,
        }
    }

    /// Each item as `Ok`, and an `Err(Elapsed)` at every tick of `interval` that finds no
    /// item; each item [`reset`](Interval::reset)s the interval. (An [`interval`](time::interval)'s
    /// first tick is at once; start it with [`interval_at`](time::interval_at) one period
    /// ahead to allow a whole period before the first `Err`.)
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::stream::{self, StreamExt, StreamTimeExt};
    /// use overlap::time::{interval_at, Instant};
    ///
    /// overlap::block_on(async {
    ///     let period = Duration::from_millis(5);
    ///     let ticks = interval_at(Instant::now() + period, period);
    ///     let silent = stream::pending::<u32>().timeout_repeating(ticks);
    ///     let errors: Vec<_> = silent.take(3).collect().await;
    ///     assert!(errors.iter().all(Result::is_err));
    /// });
    /// ```
    fn timeout_repeating(self, interval: Interval) -> TimeoutRepeating<Self>
    where
        Self: Sized,
    {
        TimeoutRepeating {
            stream: self,
            interval,
        }
    }

    /// At most one item per `duration`: after each item the next waits until `duration` has
    /// passed since it. Nothing is dropped (a faster stream is slowed down, its items wait
    /// in it); the first item is not delayed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::stream::{self, StreamExt, StreamTimeExt};
    /// use overlap::time::Instant;
    ///
    /// overlap::block_on(async {
    ///     let start = Instant::now();
    ///     let got: Vec<_> = stream::iter(0..3).throttle(Duration::from_millis(5)).collect().await;
    ///     assert_eq!(got, [0, 1, 2]);
    ///     assert!(start.elapsed() >= Duration::from_millis(10));
    /// });
    /// ```
    fn throttle(self, duration: Duration) -> Throttle<Self>
    where
        Self: Sized,
    {
        Throttle {
            stream: self,
            delay: time::sleep(Duration::ZERO),
            duration,
            waited: true,
        }
    }

    /// The items in batches: a batch is given out when it holds `max_size` items, or when
    /// `duration` has passed since its first item arrived, or when the stream ends (with
    /// what it holds, if anything). No batch is empty. A `max_size` of `usize::MAX` batches
    /// by time only (room is set aside for at most 1,024 items at a time, however large
    /// `max_size` is).
    ///
    /// # Panics
    ///
    /// If `max_size` is 0.
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::stream::{self, StreamExt, StreamTimeExt};
    ///
    /// overlap::block_on(async {
    ///     let batches: Vec<Vec<u32>> = stream::iter(0..7)
    ///         .chunks_timeout(3, Duration::from_secs(60))
    ///         .collect()
    ///         .await;
    ///     assert_eq!(batches, [vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
    /// });
    /// ```
    fn chunks_timeout(self, max_size: usize, duration: Duration) -> ChunksTimeout<Self>
    where
        Self: Sized,
    {
        assert!(
            max_size > 0,
            "chunks_timeout: a batch holds at least one item"
        );
        ChunksTimeout {
            stream: self,
            ended: false,
            deadline: None,
            duration,
            items: Vec::new(),
            max_size,
        }
    }

    /// tokio-stream's `merge`: the items of both streams as each comes, ending when both
    /// have ended (one ended, the other goes on alone). When both have items, they take
    /// turns: after an item from one, the other is asked first, so neither starves the
    /// other. (futures-util's `stream::select(a, b)` does the same; this is tokio-stream's
    /// name for it.)
    ///
    /// ```
    /// use overlap::stream::{self, StreamExt, StreamTimeExt};
    ///
    /// overlap::block_on(async {
    ///     let merged: Vec<u32> = stream::iter([1, 3, 5, 7, 9])
    ///         .merge(stream::iter([2, 4]))
    ///         .collect()
    ///         .await;
    ///     assert_eq!(merged, [1, 2, 3, 4, 5, 7, 9]);
    /// });
    /// ```
    fn merge<U: Stream<Item = Self::Item>>(self, other: U) -> Merge<Self, U>
    where
        Self: Sized,
    {
        Merge::new(self, other)
    }

    /// tokio-stream's `map_while`: each item through `f` while it gives `Some`; the first
    /// `None` ends the stream, and the stream under it is not polled again.
    ///
    /// ```
    /// use overlap::stream::{self, StreamExt, StreamTimeExt};
    ///
    /// overlap::block_on(async {
    ///     let words = stream::iter(["1", "2", "stop", "4"]);
    ///     let numbers: Vec<u32> = words.map_while(|w| w.parse::<u32>().ok()).collect().await;
    ///     assert_eq!(numbers, [1, 2]);
    /// });
    /// ```
    fn map_while<T, F: FnMut(Self::Item) -> Option<T>>(self, f: F) -> MapWhile<Self, F>
    where
        Self: Sized,
    {
        MapWhile::new(self, f)
    }
}

impl<S: Stream + ?Sized> StreamTimeExt for S {}

/// `duration` from now, as `sleep(duration)` counts it: a duration too long to add to the
/// clock (`Duration::MAX`, as "no limit") is an instant that never comes, not an overflow.
fn after_now(duration: Duration) -> time::Instant {
    time::deadline_after(time::now(), duration)
}

pin_project! {
    /// The stream of [`StreamTimeExt::timeout`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Timeout<S> {
        #[pin]
        stream: S,
        deadline: Sleep,
        duration: Duration,
        // Whether the deadline counts (until it has fired once with no item since).
        armed: bool,
    }
}

impl<S: Stream> Stream for Timeout<S> {
    type Item = Result<S::Item, Elapsed>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if let Poll::Ready(item) = this.stream.poll_next(cx) {
            if item.is_some() {
                this.deadline.reset(after_now(*this.duration));
                *this.armed = true;
            }
            return Poll::Ready(item.map(Ok));
        }
        if *this.armed {
            ready!(Pin::new(this.deadline).poll(cx));
            *this.armed = false;
            return Poll::Ready(Some(Err(Elapsed::new())));
        }
        Poll::Pending
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Between two items (and before the first) there may be one `Elapsed`.
        let (low, high) = self.stream.size_hint();
        (low, high.and_then(|h| h.checked_mul(2)?.checked_add(1)))
    }
}

impl<S: FusedStream> FusedStream for Timeout<S> {
    fn is_terminated(&self) -> bool {
        self.stream.is_terminated()
    }
}

impl<S: fmt::Debug> fmt::Debug for Timeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("stream", &self.stream)
            .field("duration", &self.duration)
            .finish()
    }
}

pin_project! {
    /// The stream of [`StreamTimeExt::timeout_repeating`].
    #[must_use = "streams do nothing unless polled"]
    #[derive(Debug)]
    pub struct TimeoutRepeating<S> {
        #[pin]
        stream: S,
        interval: Interval,
    }
}

impl<S: Stream> Stream for TimeoutRepeating<S> {
    type Item = Result<S::Item, Elapsed>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if let Poll::Ready(item) = this.stream.poll_next(cx) {
            if item.is_some() {
                this.interval.reset();
            }
            return Poll::Ready(item.map(Ok));
        }
        ready!(this.interval.poll_tick(cx));
        Poll::Ready(Some(Err(Elapsed::new())))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Any number of `Elapsed` may come between the items.
        (self.stream.size_hint().0, None)
    }
}

impl<S: FusedStream> FusedStream for TimeoutRepeating<S> {
    fn is_terminated(&self) -> bool {
        self.stream.is_terminated()
    }
}

pin_project! {
    /// The stream of [`StreamTimeExt::throttle`].
    #[must_use = "streams do nothing unless polled"]
    pub struct Throttle<S> {
        #[pin]
        stream: S,
        delay: Sleep,
        duration: Duration,
        // Whether the delay since the last item has passed.
        waited: bool,
    }
}

impl<S> Throttle<S> {
    /// The throttled stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The throttled stream. Taking items from it directly skips the throttle.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The throttled stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: Stream> Stream for Throttle<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        if !*this.waited {
            ready!(Pin::new(&mut *this.delay).poll(cx));
            *this.waited = true;
        }
        let item = ready!(this.stream.poll_next(cx));
        if item.is_some() && !this.duration.is_zero() {
            this.delay.reset(after_now(*this.duration));
            *this.waited = false;
        }
        Poll::Ready(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

impl<S: FusedStream> FusedStream for Throttle<S> {
    fn is_terminated(&self) -> bool {
        self.stream.is_terminated()
    }
}

impl<S: fmt::Debug> fmt::Debug for Throttle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("stream", &self.stream)
            .field("duration", &self.duration)
            .finish()
    }
}

/// The most items a [`ChunksTimeout`] sets room aside for when a batch starts; a larger batch
/// grows as a `Vec` does.
const RESERVED_ITEMS: usize = 1024;

pin_project! {
    /// The stream of [`StreamTimeExt::chunks_timeout`].
    #[must_use = "streams do nothing unless polled"]
    pub struct ChunksTimeout<S: Stream> {
        #[pin]
        stream: S,
        // Whether the inner stream has ended (it is not polled again).
        ended: bool,
        // When the batch being filled is due: made with its first item.
        deadline: Option<Sleep>,
        duration: Duration,
        items: Vec<S::Item>,
        max_size: usize,
    }
}

impl<S: Stream> Stream for ChunksTimeout<S> {
    type Item = Vec<S::Item>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<S::Item>>> {
        let mut this = self.project();
        while !*this.ended {
            match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    if this.items.is_empty() {
                        let due = after_now(*this.duration);
                        match this.deadline {
                            Some(deadline) => deadline.reset(due),
                            None => *this.deadline = Some(time::sleep_until(due)),
                        }
                        // Room for a full batch, up to a bound: a `max_size` of
                        // `usize::MAX` ("by time only") would overflow, and a large one
                        // would hold that much memory for each batch a deadline cuts short.
                        this.items
                            .reserve_exact((*this.max_size).min(RESERVED_ITEMS));
                    }
                    this.items.push(item);
                    if this.items.len() >= *this.max_size {
                        return Poll::Ready(Some(std::mem::take(this.items)));
                    }
                }
                Poll::Ready(None) => *this.ended = true,
                Poll::Pending => break,
            }
        }
        if this.items.is_empty() {
            return if *this.ended {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        }
        if !*this.ended {
            if let Some(deadline) = this.deadline {
                ready!(Pin::new(deadline).poll(cx));
            }
        }
        Poll::Ready(Some(std::mem::take(this.items)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let held = usize::from(!self.items.is_empty());
        if self.ended {
            return (held, Some(held));
        }
        let (low, high) = self.stream.size_hint();
        let pending = self.items.len();
        let low = (low.saturating_add(pending)).div_ceil(self.max_size);
        (low, high.and_then(|h| h.checked_add(pending)))
    }
}

impl<S: Stream> FusedStream for ChunksTimeout<S> {
    fn is_terminated(&self) -> bool {
        self.ended && self.items.is_empty()
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for ChunksTimeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunksTimeout")
            .field("stream", &self.stream)
            .field("held", &self.items.len())
            .field("max_size", &self.max_size)
            .field("duration", &self.duration)
            .finish()
    }
}
