//! `JoinSet`: a set of tasks awaited in the order they finish.

use std::fmt;
use std::future::{poll_fn, Future};
use std::task::{Context, Poll, Waker};

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::{spawn, AbortHandle, JoinError, JoinHandle};

/// A set of tasks on the current runtime, whose outputs come out in the order the tasks
/// finish.
///
/// Dropping the set **aborts** every task still in it (their futures are dropped at the
/// runtime's next turn); [`detach_all`](JoinSet::detach_all) lets them run on instead. Only
/// tasks that are woken are looked at when waiting, so a set of many tasks costs nothing
/// per idle task.
///
/// ```
/// use overlap::JoinSet;
///
/// overlap::block_on(async {
///     let mut set = JoinSet::new();
///     for i in 0..10u64 {
///         set.spawn(async move { i * i });
///     }
///     let mut sum = 0;
///     while let Some(out) = set.join_next().await {
///         sum += out.unwrap();
///     }
///     assert_eq!(sum, 285);
/// });
/// ```
pub struct JoinSet<T> {
    tasks: FuturesUnordered<JoinHandle<T>>,
    /// The waker of the last `poll_join_next`, which `try_join_next` hands on so that it
    /// does not replace the one a waiting future stored.
    waiter: Option<Waker>,
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: FuturesUnordered::new(),
            waiter: None,
        }
    }

    /// Spawns `future` on the current runtime as a task of this set. The returned
    /// [`AbortHandle`] can stop that one task (it then comes out of
    /// [`join_next`](JoinSet::join_next) as cancelled); ignoring it is fine.
    ///
    /// # Panics
    /// Outside a runtime, like [`spawn`](crate::spawn).
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        let task = spawn(future);
        let handle = task.abort_handle();
        self.tasks.push(task);
        handle
    }

    /// The number of tasks in the set: running, or finished but not yet joined.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task to finish and removes it from the set: `Some(Ok(output))`,
    /// `Some(Err(_))` if it panicked or was aborted, or `None` once the set is empty.
    ///
    /// Cancel-safe: dropping the future (in a `select`, say) loses no output; a task that
    /// finished meanwhile is still returned by the next call.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Takes the output of a task that has already finished, without waiting: `None` if no
    /// task has finished yet (or the set is empty).
    ///
    /// ```
    /// use overlap::JoinSet;
    ///
    /// overlap::block_on(async {
    ///     let mut set = JoinSet::new();
    ///     set.spawn(async { 1 });
    ///     assert!(set.try_join_next().is_none(), "the task has not run yet");
    ///     overlap::yield_now().await;
    ///     assert_eq!(set.try_join_next().unwrap().unwrap(), 1);
    /// });
    /// ```
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        // Polled with the waker of the last `poll_join_next`, so that a future waiting there
        // (one that called this in between) is still woken; nobody waits if there is none.
        let waker = self.waiter.clone();
        let mut cx = Context::from_waker(waker.as_ref().unwrap_or(Waker::noop()));
        match self.tasks.poll_next_unpin(&mut cx) {
            Poll::Ready(out) => out,
            Poll::Pending => None,
        }
    }

    /// Waits for every task and returns their outputs, in the order they finished.
    ///
    /// # Panics
    /// If a task panicked, its panic resumes here (the other tasks are aborted when the set
    /// drops); if a task was aborted, this panics with a message saying so.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(res) = self.join_next().await {
            match res {
                Ok(v) => out.push(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => panic!("JoinSet::join_all: a task was aborted"),
            }
        }
        out
    }

    /// [`join_next`](JoinSet::join_next) as a poll function, for hand-written futures.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        match &self.waiter {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waiter = Some(cx.waker().clone()),
        }
        self.tasks.poll_next_unpin(cx)
    }

    /// Asks every task in the set to stop; each then comes out of
    /// [`join_next`](JoinSet::join_next) as a cancelled [`JoinError`] (or with its output, if
    /// it had already finished).
    pub fn abort_all(&mut self) {
        for task in self.tasks.iter() {
            task.abort();
        }
    }

    /// Aborts every task and waits until all have stopped, dropping their outputs.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Empties the set without stopping its tasks: they run on, detached, and their outputs
    /// are dropped.
    pub fn detach_all(&mut self) {
        // Dropping a handle detaches its task.
        self.tasks = FuturesUnordered::new();
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for task in self.tasks.iter() {
            task.abort();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}
