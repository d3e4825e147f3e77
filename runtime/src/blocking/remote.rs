//! [`Handle::spawn_blocking`](crate::Handle::spawn_blocking): a job queued on the pool from
//! any thread, its result handed straight to a `RemoteJoinHandle`. No task on the
//! runtime's thread relays it, so the job runs and reports even while nobody drives the
//! runtime's loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use super::completion::OnceSlot;
use super::pool::{BlockingPool, Finish};
use super::{run_job, Aborted};
use crate::executor::JoinSlot;
use crate::task::{Id, JoinError};
use crate::Handle;

/// What the job and its handle share: the output, and whether the handle gave up on it.
struct JobCell<R> {
    output: Mutex<OnceSlot<Result<R, JoinError>>>,
    /// Set by `abort`: a job that has not started yet is dropped unrun, if the job was
    /// queued with [`Aborted::Skip`].
    aborted: AtomicBool,
}

impl<R> JobCell<R> {
    fn lock(&self) -> MutexGuard<'_, OnceSlot<Result<R, JoinError>>> {
        // Only plain field moves happen under this lock; a poisoned one is still consistent.
        self.output.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ID `task::id` reports inside the job and its `JoinError`s carry: the cell's
    /// address, unique among tasks while the job or its handle holds the cell.
    fn id(&self) -> Id {
        Id::of_allocation(self)
    }

    /// Stores the output (`None`: cancelled) unless one is settled already, and wakes
    /// whoever awaits the handle, outside the lock. An output nobody will take (the handle
    /// was aborted) is dropped outside the lock too: its drop may block (an `Unblock`'s
    /// value), and the handle, on the event loop, must not wait for it.
    fn settle(&self, output: Option<Result<R, JoinError>>) {
        let mut slot = self.lock();
        if slot.is_closed() {
            drop(slot);
            drop(output);
            return;
        }
        let waker = slot.close_with(output);
        drop(slot);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether nobody will take an output: the handle was aborted (the cell is settled,
    /// cancelled) or dropped (`report`, the job's hold, is the last one).
    fn is_unwanted(&self, report: &Report<R>) -> bool {
        Arc::strong_count(&report.0) == 1 || self.lock().is_closed()
    }
}

/// The job's hold on the cell: dropped without reporting (the runtime's shutdown dropped
/// the queued job, or the pool refused it), it reports cancelled.
struct Report<R>(Arc<JobCell<R>>);

impl<R> Drop for Report<R> {
    fn drop(&mut self) {
        self.0.settle(None);
    }
}

/// A queued job's work and its report, in the order they drop in.
struct Unrun<F, R> {
    f: F,
    report: Report<R>,
}

/// Queues `f` on `pool`, to run with `handle` as the current handle; returns the handle's
/// view of the result. `aborted` says what an abort before the job starts does;
/// `no_thread` makes the result when no pool thread exists and none can be started.
pub(crate) fn spawn_on_pool<F, R>(
    pool: &BlockingPool,
    handle: Handle,
    f: F,
    aborted: Aborted,
    no_thread: fn(&std::io::Error, Id) -> Result<R, JoinError>,
) -> Arc<dyn JoinSlot<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let cell = Arc::new(JobCell {
        output: Mutex::new(OnceSlot::new()),
        aborted: AtomicBool::new(false),
    });
    // One capture, `f` first: a job dropped unrun (the runtime's shutdown) drops `f`'s
    // captures before its `Report` tells the handle, so whatever they hand back (an
    // `Unblock`'s value) is in place when a waiter on another thread looks.
    let unrun = Unrun {
        f,
        report: Report(cell.clone()),
    };
    let job = Box::new(move |run: Result<&Finish<'_>, &std::io::Error>| {
        let Unrun { f, report } = unrun;
        let cell = &*report.0;
        let id = cell.id();
        match run {
            // Aborted before it started: dropped unrun, and the handle already says so.
            Ok(_) if aborted == Aborted::Skip && cell.aborted.load(Ordering::Acquire) => drop(f),
            Ok(finish) => {
                let value = run_job(id, &handle, f);
                let output = Some(value.map_err(|payload| JoinError::panic(payload, id)));
                if cell.is_unwanted(&report) {
                    // Nobody takes the output: it goes here, before the thread counts as
                    // free (its drop may block, and a job queued meanwhile must not wait
                    // behind it for this thread).
                    drop(output);
                    drop(report);
                    finish.done();
                } else {
                    // Free before the handle can see the output (it may be polled at any
                    // time): its task's next job then finds this thread looking for work.
                    finish.done();
                    cell.settle(output);
                    drop(report);
                }
            }
            Err(err) => {
                // Never to run: its captures' destructors run before the handle hears.
                drop(f);
                cell.settle(Some(no_thread(err, id)));
            }
        }
    });
    // Refused once the runtime is shut down: the job is dropped here, and its `Report`
    // says cancelled.
    drop(pool.execute(job));
    cell
}

impl<R: Send> JoinSlot<R> for JobCell<R> {
    fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<R, JoinError>> {
        let id = self.id();
        self.lock()
            .poll_take(cx)
            .map(|out| out.unwrap_or_else(|| Err(JoinError::cancelled(id))))
    }

    /// The handle reports cancelled at once. A job not started yet is then dropped unrun
    /// (with [`Aborted::Skip`]); a running one runs to its end, its result dropped.
    fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.settle(None);
    }

    fn is_finished(&self) -> bool {
        self.lock().is_closed()
    }

    fn release_waiter(&self) {
        let waker = self.lock().take_waker();
        drop(waker);
    }

    fn register(&self, cx: &Context<'_>) -> bool {
        self.lock().register(cx)
    }

    fn take_unread(&self) -> Option<Result<R, JoinError>> {
        self.lock().take_value()
    }
}
