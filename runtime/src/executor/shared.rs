//! The part of a runtime other threads may touch: the remote run queue and the eventfd.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sys::eventfd::EventFd;
use crate::task::raw::{RemoteOp, TaskPtr};

/// State shared between the runtime thread and any thread holding one of its wakers.
#[derive(Debug)]
pub(crate) struct Shared {
    remote: Mutex<Remote>,
    /// Mirrors `Remote::notified` for a lock-free look. Invariant (kept under the lock):
    /// the queue is non-empty only while this is true, so reading `false` means there is
    /// nothing to drain.
    notified: AtomicBool,
    pub(crate) remote_wakes: AtomicU64,
    pub(crate) eventfd_writes: AtomicU64,
}

/// One remote-queue entry: a task and what to do with it.
pub(crate) type RemoteEntry = (TaskPtr, RemoteOp);

#[derive(Debug)]
struct Remote {
    queue: Vec<RemoteEntry>,
    /// `None` once the runtime is dropped: wakes are ignored and the fd is closed when the
    /// last in-flight notifier lets go of it.
    eventfd: Option<Arc<EventFd>>,
    /// The loop is spinning in [`Shared::spin_for_remote`]: a wake only sets `notified`,
    /// with no eventfd write, since the loop is watching that flag.
    spinning: bool,
}

impl Shared {
    pub(crate) fn new(eventfd: EventFd) -> Shared {
        Shared {
            remote: Mutex::new(Remote {
                queue: Vec::new(),
                eventfd: Some(Arc::new(eventfd)),
                spinning: false,
            }),
            notified: AtomicBool::new(false),
            remote_wakes: AtomicU64::new(0),
            eventfd_writes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Remote> {
        // A panic while holding this lock can only come from an allocation failure; the data
        // is a plain queue and stays consistent, so poisoning is ignored.
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `op` for `task` from outside owner context and wakes the loop (see
    /// `task/waker.rs`). Once the runtime is gone, applies it here instead, under the lock
    /// that then guards every task's local references; returns true if that took the last
    /// claim on the cell, which the caller must then free (not here: the cell may hold the
    /// last reference to this very `Shared`).
    #[must_use = "the caller must free the cell when this returns true"]
    pub(crate) fn push_remote(&self, task: TaskPtr, op: RemoteOp) -> bool {
        let mut r = self.lock();
        if r.eventfd.is_none() {
            return apply_closed(task, op);
        }
        r.queue.push((task, op));
        if op != RemoteOp::Release {
            self.remote_wakes.fetch_add(1, Ordering::Relaxed);
        }
        let efd = self.claim_notify(&r);
        drop(r);
        self.write_eventfd(efd);
        false
    }

    /// Under the lock: decides whether this wake must write the eventfd (the first since the
    /// loop last drained) and returns the fd to write to.
    fn claim_notify(&self, r: &Remote) -> Option<Arc<EventFd>> {
        if self.notified.load(Ordering::Relaxed) {
            return None;
        }
        if r.spinning {
            self.notified.store(true, Ordering::Release);
            return None;
        }
        let efd = r.eventfd.clone()?;
        self.notified.store(true, Ordering::Release);
        Some(efd)
    }

    /// Writes the eventfd *outside* the lock: the loop it wakes may run at once (same CPU)
    /// and would otherwise block on the lock we still hold, costing two more context
    /// switches. The `Arc` keeps the fd open even if the runtime closes it meanwhile.
    fn write_eventfd(&self, efd: Option<Arc<EventFd>>) {
        if let Some(efd) = efd {
            self.eventfd_writes.fetch_add(1, Ordering::Relaxed);
            efd.notify();
        }
    }

    /// Spins (yielding the CPU each round) for at most `limit`, waiting for a remote wake.
    /// Returns whether one arrived; the caller then drains without sleeping in epoll.
    ///
    /// Used while blocking-pool jobs are running: their results usually come back within
    /// microseconds, and an idle vCPU parked in `epoll_wait` takes far longer to wake than
    /// one that is still running.
    pub(crate) fn spin_for_remote(&self, limit: Duration) -> bool {
        {
            let mut r = self.lock();
            if self.notified.load(Ordering::Acquire) || r.eventfd.is_none() {
                return self.notified.load(Ordering::Acquire);
            }
            r.spinning = true;
        }
        let deadline = Instant::now() + limit;
        loop {
            std::thread::yield_now();
            if self.notified.load(Ordering::Acquire) || Instant::now() >= deadline {
                let mut r = self.lock();
                // From here on, wakes write the eventfd again.
                r.spinning = false;
                return self.notified.load(Ordering::Acquire);
            }
        }
    }

    /// Whether remote wakes may be waiting (lock-free hint; see the field's invariant).
    pub(crate) fn maybe_pending(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Takes every remotely queued task. Clears `notified` in the same critical section, so
    /// a wake that lands after this drain writes the eventfd again and the loop cannot sleep
    /// through it.
    pub(crate) fn take_remote(&self, into: &mut Vec<RemoteEntry>) {
        let mut r = self.lock();
        self.notified.store(false, Ordering::Release);
        into.append(&mut r.queue);
    }

    /// The raw eventfd, for registration with epoll.
    pub(crate) fn eventfd_raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.lock().eventfd.as_ref().map_or(-1, |e| e.as_raw_fd())
    }

    /// Shuts the remote path: later wakes are ignored and the eventfd is closed. The entries
    /// still queued are applied here, and from now on every task's local references are
    /// touched only under this lock. Called by the runtime thread once no task of it is left
    /// in its local run queue.
    pub(crate) fn close(&self) {
        let mut r = self.lock();
        r.eventfd = None;
        let queue = std::mem::take(&mut r.queue);
        let free: Vec<TaskPtr> = queue
            .into_iter()
            .filter(|&(task, op)| apply_closed(task, op))
            .map(|(task, _)| task)
            .collect();
        drop(r);
        for task in free {
            // SAFETY: `apply_closed` took the last claim on each of these cells.
            unsafe { task.dealloc() };
        }
    }
}

/// Applies `op` to a task of a closed runtime, under its queue's lock: a wake does nothing
/// but give up its queued bit, a release drops the local reference it carries. Returns
/// whether that was the last claim, so the caller must free the cell after unlocking (the
/// cell holds an `Arc` to this very `Shared`).
fn apply_closed(task: TaskPtr, op: RemoteOp) -> bool {
    match op {
        RemoteOp::Wake => task.clear_remote(),
        RemoteOp::Release => task.ref_dec_closed(),
        RemoteOp::WakeRelease => {
            // At most one of the two can be the last claim; evaluate both.
            let a = task.ref_dec_closed();
            let b = task.clear_remote();
            a || b
        }
    }
}
