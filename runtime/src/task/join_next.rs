//! The futures of `JoinSet::join_next` and `join_next_with_id`: fused, and finished while
//! the set is empty, so that `select!` skips them then.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::FusedFuture;

use super::{Id, JoinError, JoinSet};

/// The future of [`JoinSet::join_next`]: the next output, or `None` for an empty set.
///
/// It is a `FusedFuture` that counts as terminated while the set is empty (as well as once
/// it has returned), so a `select!` branch on `set.join_next()` is skipped while the set
/// holds no task, as tokio's `Some(done) = set.join_next() =>` branch is, instead of taking
/// `None` on every turn of the loop. Awaited directly, it gives `None` for an empty set at
/// once, as before. As with any terminated branch, a `select!` whose every branch is
/// terminated (here: only this one, on an empty set) goes to its `else =>` (or
/// `complete =>`) branch, and panics if it has none, as tokio's and futures-util's do.
///
/// ```
/// use overlap::future::FutureExt;
/// use overlap::sync::mpsc;
/// use overlap::JoinSet;
///
/// overlap::block_on(async {
///     let (tx, mut jobs) = mpsc::channel(4);
///     overlap::spawn(async move {
///         for n in 1..=3u32 {
///             tx.send(n).await.unwrap();
///         }
///     });
///     let mut set = JoinSet::new();
///     let mut outputs = Vec::new();
///     loop {
///         overlap::select! {
///             job = jobs.recv().fuse() => match job {
///                 Some(n) => drop(set.spawn(async move { n * n })),
///                 None => break,
///             },
///             // Skipped while the set is empty, as tokio's `Some(out) = ...` branch is.
///             out = set.join_next() => outputs.push(out.unwrap().unwrap()),
///         }
///     }
///     outputs.extend(set.join_all().await);
///     outputs.sort();
///     assert_eq!(outputs, [1, 4, 9]);
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct JoinNext<'a, T> {
    set: &'a mut JoinSet<T>,
    done: bool,
}

/// The future of [`JoinSet::join_next_with_id`]: fused as [`JoinNext`] is, and terminated
/// while the set is empty.
#[must_use = "futures do nothing unless polled"]
pub struct JoinNextWithId<'a, T> {
    set: &'a mut JoinSet<T>,
    done: bool,
}

impl<'a, T> JoinNext<'a, T> {
    pub(super) fn new(set: &'a mut JoinSet<T>) -> Self {
        JoinNext { set, done: false }
    }
}

impl<'a, T> JoinNextWithId<'a, T> {
    pub(super) fn new(set: &'a mut JoinSet<T>) -> Self {
        JoinNextWithId { set, done: false }
    }
}

impl<T: 'static> Future for JoinNext<'_, T> {
    type Output = Option<Result<T, JoinError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let res = this.set.poll_join_next(cx);
        this.done |= res.is_ready();
        res
    }
}

impl<T: 'static> Future for JoinNextWithId<'_, T> {
    type Output = Option<Result<(Id, T), JoinError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let res = this.set.poll_join_next_with_id(cx);
        this.done |= res.is_ready();
        res
    }
}

impl<T: 'static> FusedFuture for JoinNext<'_, T> {
    fn is_terminated(&self) -> bool {
        self.done || self.set.is_empty()
    }
}

impl<T: 'static> FusedFuture for JoinNextWithId<'_, T> {
    fn is_terminated(&self) -> bool {
        self.done || self.set.is_empty()
    }
}

impl<T: 'static> fmt::Debug for JoinNext<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinNext")
            .field("members", &self.set.len())
            .field("done", &self.done)
            .finish()
    }
}

impl<T: 'static> fmt::Debug for JoinNextWithId<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinNextWithId")
            .field("members", &self.set.len())
            .field("done", &self.done)
            .finish()
    }
}
