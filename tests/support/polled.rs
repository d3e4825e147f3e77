//! A future polled by hand with a waker that records its wakes (tokio-test's
//! `task::spawn`): for asserting exactly which waiter a step woke.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::WakeCount;

/// `fut`, ready to be polled by hand. See [`Polled`].
pub fn polled<F: Future>(fut: F) -> Polled<F> {
    Polled {
        fut: Some(Box::pin(fut)),
        wakes: Arc::default(),
    }
}

/// A future polled by hand; its waker counts wakes since the last poll.
pub struct Polled<F> {
    /// `None` once cancelled.
    fut: Option<Pin<Box<F>>>,
    wakes: Arc<WakeCount>,
}

impl<F: Future> Polled<F> {
    /// Polls the future once, forgetting earlier wakes.
    ///
    /// # Panics
    /// If it was [cancelled](Polled::cancel).
    pub fn poll(&mut self) -> Poll<F::Output> {
        self.wakes.0.store(0, Ordering::SeqCst);
        let waker = Waker::from(self.wakes.clone());
        let fut = self.fut.as_mut().expect("polled after cancel");
        fut.as_mut().poll(&mut Context::from_waker(&waker))
    }

    /// Polls once expecting `Pending`, runs `step`, checks that it woke the future and
    /// polls again: what that second poll gives.
    pub fn woken_by(&mut self, step: impl FnOnce()) -> Poll<F::Output> {
        assert!(self.poll().is_pending(), "ready before the step");
        step();
        assert!(self.is_woken(), "the step did not wake it");
        self.poll()
    }

    /// Drops the future, keeping the record of wakes: whether its waker is woken later
    /// still shows.
    pub fn cancel(&mut self) {
        self.fut = None;
    }

    /// Whether the future's waker was woken since the last poll.
    pub fn is_woken(&self) -> bool {
        self.wakes.0.load(Ordering::SeqCst) > 0
    }
}

/// Polls `fut` once from the task awaiting this (with that task's waker): whether it is
/// ready at once.
pub async fn poll_once<F: Future + Unpin>(mut fut: F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut fut).poll(cx))).await
}

/// A task by hand (tokio-test's `task::spawn(())`): polls any future it is given, kept
/// wherever the test keeps it, with one waker that counts its wakes.
#[derive(Default)]
pub struct ManualTask(Arc<WakeCount>);

impl ManualTask {
    /// Polls `fut` with this task's waker, forgetting earlier wakes.
    pub fn poll<F: Future + ?Sized>(&self, fut: Pin<&mut F>) -> Poll<F::Output> {
        self.0 .0.store(0, Ordering::SeqCst);
        let waker = Waker::from(self.0.clone());
        fut.poll(&mut Context::from_waker(&waker))
    }

    /// Whether its waker was woken since the last poll.
    pub fn is_woken(&self) -> bool {
        self.0 .0.load(Ordering::SeqCst) > 0
    }

    /// How many references to its waker are alive besides its own.
    pub fn wakers_held(&self) -> usize {
        Arc::strong_count(&self.0) - 1
    }
}

/// Polls `fut` with `task`'s waker, expecting it to wait.
pub fn wait_on<F: Future + ?Sized>(task: &ManualTask, fut: Pin<&mut F>) {
    assert!(task.poll(fut).is_pending(), "ready at once");
}

/// Polls a fresh future once, checks that it waits, and drops it: the task that polled it,
/// to ask whether anything still holds its waker.
pub fn abandon_slot<F: Future>(fut: F) -> ManualTask {
    let task = ManualTask::default();
    let mut fut = Box::pin(fut);
    wait_on(&task, fut.as_mut());
    drop(fut);
    task
}

/// [`abandon_slot`] for a wait that owns its entry (it waited in a line, which it left):
/// nothing may keep the dropped future's waker.
pub fn abandon<F: Future>(fut: F) {
    let held = abandon_slot(fut).wakers_held();
    assert_eq!(held, 0, "the dropped wait left its waker behind");
}

/// Abandons `$wait` (a fresh future each time) a thousand times, each polled by a task
/// of its own: those tasks, to ask which wakers are still held.
#[macro_export]
macro_rules! abandoned_a_thousand {
    ($wait:expr) => {
        (0..1000)
            .map(|_| $crate::support::abandon_slot($wait))
            .collect::<Vec<$crate::support::ManualTask>>()
    };
}

/// Whether any of `tasks` was woken.
pub fn any_woken(tasks: &[ManualTask]) -> bool {
    tasks.iter().any(ManualTask::is_woken)
}

/// How many of `tasks` have a waker still held somewhere (each counted once, however many
/// references to it are kept): after a thousand abandoned waits, at most the one slot's.
pub fn tasks_still_held(tasks: &[ManualTask]) -> usize {
    tasks.iter().filter(|task| task.wakers_held() > 0).count()
}

/// Polls `f` once, whatever it returns, then drops it (abandoning whatever job it started).
pub async fn poll_once_then_drop<F: Future>(f: F) {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        let _ = f.as_mut().poll(cx);
        Poll::Ready(())
    })
    .await
}
