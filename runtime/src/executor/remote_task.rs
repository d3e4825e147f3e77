//! The one shared cell behind a spawn from another thread: it carries the maker to the
//! runtime thread, the abort request to the task, and the output back to the
//! `RemoteJoinHandle`.
//!
//! One allocation per spawn (made by the spawning thread) besides the task itself; the
//! remote queue holds it as a `dyn` [`RemoteJob`], the handle as a `dyn` [`JoinSlot`].

use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures_util::FutureExt;

use super::core::Core;
use crate::blocking::completion::OnceSlot;
use crate::task::{Id, JoinError};

/// What the runtime thread does with a queued spawn.
pub(crate) trait RemoteJob: Send + Sync {
    /// Runtime thread: spawns the task (which then makes the future), unless cancelled.
    fn start(self: Arc<Self>, core: &Core);
    /// The task will never start: drop the maker and report cancelled.
    fn cancel(&self);
}

/// What a `RemoteJoinHandle` sees of the cell.
pub(crate) trait JoinSlot<T>: Send + Sync {
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>>;
    fn abort(&self);
    fn is_finished(&self) -> bool;
    /// The handle is dropped: the waker of its last poll goes, rather than live on in
    /// the cell until the work ends.
    fn release_waiter(&self);
    /// Keeps the waker to wake once the output is settled, without taking it; true if it is
    /// settled already.
    fn register(&self, cx: &Context<'_>) -> bool;
    /// The handle is dropped unread: takes the output (or error) out if it is settled, for
    /// the handle to drop.
    fn take_unread(&self) -> Option<Result<T, JoinError>>;
}

/// A spawn waiting in the remote queue. Dropped unstarted (the runtime closed first), it
/// cancels its task.
pub(crate) struct RemoteSpawn(Option<Arc<dyn RemoteJob>>);

impl RemoteSpawn {
    /// Runtime thread: spawns the task on `core`.
    pub(crate) fn start(mut self, core: &Core) {
        if let Some(job) = self.0.take() {
            job.start(core);
        }
    }
}

impl Drop for RemoteSpawn {
    fn drop(&mut self) {
        if let Some(job) = self.0.take() {
            job.cancel();
        }
    }
}

impl std::fmt::Debug for RemoteSpawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteSpawn")
    }
}

/// Makes the cell for `make`: the queue entry and the handle's view of it.
pub(crate) fn remote_task<F, Fut>(make: F) -> (RemoteSpawn, Arc<dyn JoinSlot<Fut::Output>>)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let cell = Arc::new(RemoteCell {
        state: Mutex::new(State {
            make: Some(make),
            output: OnceSlot::new(),
            task: None,
        }),
        aborted: AtomicBool::new(false),
    });
    (RemoteSpawn(Some(cell.clone())), cell)
}

struct RemoteCell<F, T> {
    state: Mutex<State<F, T>>,
    /// Set by `abort`; the task looks at it before every poll of the future.
    aborted: AtomicBool,
}

struct State<F, T> {
    /// Until the task starts (or the spawn is cancelled).
    make: Option<F>,
    /// The output (or its absence: cancelled) and the waker of whoever awaits the handle.
    output: OnceSlot<Result<T, JoinError>>,
    /// The task's waker, for `abort`; stored at its first poll.
    task: Option<Waker>,
}

impl<F, T> RemoteCell<F, T> {
    fn lock(&self) -> MutexGuard<'_, State<F, T>> {
        // Only plain field moves happen under this lock (user code runs outside it), so a
        // poisoned one is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the output (`None`: there will be none, so the handle reports cancelled) unless
    /// one is already settled, and wakes the joiner.
    ///
    /// The task's own waker goes too, dropped here: settling happens on the runtime thread
    /// (or before the task existed), where dropping it is cheap, whereas the cell's last
    /// owner may be the handle on another thread.
    fn settle(&self, output: Option<Result<T, JoinError>>) {
        let (joiner, task) = {
            let mut s = self.lock();
            if s.output.is_closed() {
                return;
            }
            (s.output.close_with(output), s.task.take())
        };
        drop(task);
        // Woken outside the lock: the joiner may be polled on another thread at once.
        if let Some(w) = joiner {
            w.wake();
        }
    }

    /// Whether `abort` was called.
    fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// The task is about to wait: stores its waker for `abort` (the first time), then says
    /// whether an abort came in meanwhile. A task done at its first poll never pays for this.
    fn park_for_abort(&self, cx: &Context<'_>, registered: &mut bool) -> bool {
        if !*registered {
            *registered = true;
            // Stored before the flag is read again: an `abort` that sets the flag after
            // that read finds the waker.
            self.lock().task = Some(cx.waker().clone());
        }
        self.aborted()
    }
}

/// The task's hold on the cell: however the task ends (output, panic, abort, or its runtime
/// dropping it, polled or not), the handle is told.
struct Settle<F, T>(Arc<RemoteCell<F, T>>);

impl<F, T> Drop for Settle<F, T> {
    fn drop(&mut self) {
        self.0.settle(None);
    }
}

impl<F, Fut> RemoteJob for RemoteCell<F, Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    fn start(self: Arc<Self>, core: &Core) {
        let Some(make) = self.lock().make.take() else {
            return;
        };
        // Made out here, so that a task dropped before its first poll settles too.
        let settle = Settle(self);
        let task = async move {
            let cell = &*settle.0;
            // `make` runs inside the task, so its panics are caught like the future's.
            let mut run = pin!(AssertUnwindSafe(async move { make().await }).catch_unwind());
            let mut registered = false;
            let outcome = poll_fn(|cx| {
                if cell.aborted() {
                    return Poll::Ready(None);
                }
                match run.as_mut().poll(cx) {
                    Poll::Ready(out) => Poll::Ready(Some(out)),
                    Poll::Pending if cell.park_for_abort(cx, &mut registered) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match outcome {
                Some(Ok(out)) => cell.settle(Some(Ok(out))),
                Some(Err(payload)) => {
                    let id = Id::of_allocation(cell);
                    cell.settle(Some(Err(JoinError::panic(payload, id))))
                }
                // Aborted: `settle` reports cancelled once the future is dropped.
                None => {}
            }
        };
        // Detached: the output travels through the cell.
        drop(core.spawn(task));
    }

    fn cancel(&self) {
        let make = self.lock().make.take();
        if make.is_some() {
            // Dropped outside the lock: it may hold anything.
            drop(make);
            self.settle(None);
        }
    }
}

impl<F, T> JoinSlot<T> for RemoteCell<F, T>
where
    F: Send,
    T: Send,
{
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        self.lock()
            .output
            .poll_take(cx)
            .map(|out| out.unwrap_or_else(|| Err(JoinError::cancelled(Id::of_allocation(self)))))
    }

    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        // Not started yet (no waker): it sees the flag at its first poll.
        let task = self.lock().task.take();
        if let Some(w) = task {
            w.wake();
        }
    }

    fn is_finished(&self) -> bool {
        self.lock().output.is_closed()
    }

    fn release_waiter(&self) {
        let waker = self.lock().output.take_waker();
        drop(waker);
    }

    fn register(&self, cx: &Context<'_>) -> bool {
        self.lock().output.register(cx)
    }

    fn take_unread(&self) -> Option<Result<T, JoinError>> {
        self.lock().output.take_value()
    }
}
