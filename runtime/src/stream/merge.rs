//! tokio-stream's two `StreamExt` methods that neither need a timer nor exist in
//! futures-util: `merge` and `map_while` (the streams [`Merge`] and [`MapWhile`]; the
//! methods are on [`StreamTimeExt`](super::StreamTimeExt), beside the timer adapters).

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

pin_project! {
    /// The stream of [`StreamTimeExt::merge`](super::StreamTimeExt::merge).
    #[must_use = "streams do nothing unless polled"]
    pub struct Merge<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
        // Which has ended (it is not polled again).
        a_ended: bool,
        b_ended: bool,
        // Which is polled first next time: the other one after each item, for fairness.
        a_first: bool,
    }
}

impl<A, B> Merge<A, B> {
    pub(super) fn new(a: A, b: B) -> Merge<A, B> {
        Merge {
            a,
            b,
            a_ended: false,
            b_ended: false,
            a_first: true,
        }
    }
}

/// Polls one side of a [`Merge`] unless it has ended, noting when it ends.
fn poll_side<S: Stream>(
    stream: Pin<&mut S>,
    ended: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Option<S::Item>> {
    if *ended {
        return Poll::Ready(None);
    }
    let polled = stream.poll_next(cx);
    if let Poll::Ready(None) = polled {
        *ended = true;
    }
    polled
}

impl<A: Stream, B: Stream<Item = A::Item>> Stream for Merge<A, B> {
    type Item = A::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<A::Item>> {
        let mut this = self.project();
        for a_turn in [*this.a_first, !*this.a_first] {
            let polled = if a_turn {
                poll_side(this.a.as_mut(), this.a_ended, cx)
            } else {
                poll_side(this.b.as_mut(), this.b_ended, cx)
            };
            if let Poll::Ready(Some(item)) = polled {
                *this.a_first = !a_turn;
                return Poll::Ready(Some(item));
            }
        }
        if *this.a_ended && *this.b_ended {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let side = |ended: bool, hint: (usize, Option<usize>)| {
            if ended {
                (0, Some(0))
            } else {
                hint
            }
        };
        let (a_low, a_high) = side(self.a_ended, self.a.size_hint());
        let (b_low, b_high) = side(self.b_ended, self.b.size_hint());
        let high = match (a_high, b_high) {
            (Some(a), Some(b)) => a.checked_add(b),
            _ => None,
        };
        (a_low.saturating_add(b_low), high)
    }
}

impl<A: Stream, B: Stream<Item = A::Item>> FusedStream for Merge<A, B> {
    fn is_terminated(&self) -> bool {
        self.a_ended && self.b_ended
    }
}

impl<A: fmt::Debug, B: fmt::Debug> fmt::Debug for Merge<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Merge")
            .field("a", &self.a)
            .field("b", &self.b)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The stream of [`StreamTimeExt::map_while`](super::StreamTimeExt::map_while).
    #[must_use = "streams do nothing unless polled"]
    pub struct MapWhile<S, F> {
        #[pin]
        stream: S,
        f: F,
        // Whether `f` gave `None` or the stream ended (it is not polled again).
        ended: bool,
    }
}

impl<S, F> MapWhile<S, F> {
    pub(super) fn new(stream: S, f: F) -> MapWhile<S, F> {
        MapWhile {
            stream,
            f,
            ended: false,
        }
    }
}

impl<S: Stream, T, F: FnMut(S::Item) -> Option<T>> Stream for MapWhile<S, F> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        let mapped = ready!(this.stream.poll_next(cx)).and_then(this.f);
        *this.ended = mapped.is_none();
        Poll::Ready(mapped)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.ended {
            (0, Some(0))
        } else {
            // `f` may end it at any item.
            (0, self.stream.size_hint().1)
        }
    }
}

impl<S: Stream, T, F: FnMut(S::Item) -> Option<T>> FusedStream for MapWhile<S, F> {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<S: fmt::Debug, F> fmt::Debug for MapWhile<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapWhile")
            .field("stream", &self.stream)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
