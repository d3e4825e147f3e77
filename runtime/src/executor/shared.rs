//! The part of a runtime other threads may touch: the remote run queue (wakes, and futures
//! spawned through a [`Handle`](super::Handle)), and what wakes a sleeping loop (its eventfd,
//! or the condvar it sleeps on when it has no fd to watch).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::remote_task::RemoteSpawn;
use crate::blocking::BlockingPool;
use crate::sys::eventfd::EventFd;
use crate::task::raw::{RemoteOp, TaskPtr};
use crate::time::SharedClock;

/// State shared between the runtime thread and any thread holding one of its wakers.
#[derive(Debug)]
pub(crate) struct Shared {
    remote: Mutex<Remote>,
    /// Set under the lock by the first entry since the loop last drained, cleared under it
    /// by the drain. Invariant: the queue (wakes or spawns) is non-empty only while this is true, so a
    /// lock-free read of `false` means there is nothing to drain.
    notified: AtomicBool,
    /// What the loop sleeps on when it has no fd to watch (see [`Shared::sleep`]). In an
    /// `Arc` so that a wake can signal it after letting go of the lock (see `Notify`).
    wake_cv: Arc<Condvar>,
    pub(crate) remote_wakes: AtomicU64,
    pub(crate) eventfd_writes: AtomicU64,
    pub(crate) futex_wakes: AtomicU64,
    /// Units held by task cells and the loop's credit: while above zero, they hold one
    /// strong count of this `Arc` between them (see `task/raw/units.rs`).
    pub(crate) cells: AtomicUsize,
    /// The runtime's blocking pool, here so that a [`Handle`](super::Handle) can queue a job
    /// on it from any thread, with no turn of the loop in between.
    pub(crate) blocking: BlockingPool,
    /// The runtime's clock as other threads read it: its blocking jobs, through
    /// `time::now` (the runtime's thread reads its own copy, kept in step by its `Timers`).
    pub(crate) clock: Arc<SharedClock>,
}

/// How a wake must get the loop's attention, once the lock is released.
///
/// It owns what it signals: after the lock is released, the entry just queued may be the
/// waking thread's only claim on the runtime (a waker woken by value gives up its own), so
/// the loop may drain it, finish, and drop the runtime, `Shared` included, before the
/// signal is sent. Nothing reached through `Shared` may be touched then.
enum Notify {
    /// It needs nothing: the loop is running (and reads `notified` before it sleeps), or
    /// spinning on `notified`, or was already told.
    Nothing,
    /// It sleeps in `epoll_wait`: write the eventfd.
    EventFd(Arc<EventFd>),
    /// It sleeps on `wake_cv`.
    Condvar(Arc<Condvar>),
}

impl Notify {
    /// Signals the loop *outside* the lock: the loop it wakes may run at once (same CPU)
    /// and would otherwise block on the lock we still hold, costing two more context
    /// switches. The `Arc`s keep the eventfd open and the condvar alive even if the runtime
    /// is dropped meanwhile.
    fn send(self) {
        match self {
            Notify::Nothing => {}
            Notify::EventFd(efd) => efd.notify(),
            Notify::Condvar(cv) => cv.notify_one(),
        }
    }
}

/// What the loop is doing, as far as wakes are concerned. Changed only under the lock, and
/// set to a sleeping state only while `notified` is false, so a wake that sets `notified`
/// either sees the loop asleep (and wakes it) or is seen by the loop before it sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    Running,
    /// In [`Shared::spin_for_remote`], watching `notified`.
    Spinning,
    /// In [`Shared::sleep`], on `wake_cv`.
    Futex,
    /// Between [`Shared::enter_epoll_sleep`] and [`Shared::leave_epoll_sleep`].
    Epoll,
}

/// One remote-queue entry: a task and what to do with it.
pub(crate) type RemoteEntry = (TaskPtr, RemoteOp);

#[derive(Debug)]
struct Remote {
    queue: Vec<RemoteEntry>,
    spawns: Vec<RemoteSpawn>,
    /// False once the runtime began to shut down: spawns are handed back.
    spawns_open: bool,
    /// `None` once the runtime is dropped: wakes are ignored and the fd is closed when the
    /// last in-flight notifier lets go of it.
    eventfd: Option<Arc<EventFd>>,
    waiting: Waiting,
}

impl Shared {
    pub(crate) fn new(eventfd: EventFd, blocking: BlockingPool) -> Shared {
        Shared {
            remote: Mutex::new(Remote {
                queue: Vec::new(),
                spawns: Vec::new(),
                spawns_open: true,
                eventfd: Some(Arc::new(eventfd)),
                waiting: Waiting::Running,
            }),
            notified: AtomicBool::new(false),
            wake_cv: Arc::new(Condvar::new()),
            remote_wakes: AtomicU64::new(0),
            eventfd_writes: AtomicU64::new(0),
            futex_wakes: AtomicU64::new(0),
            cells: AtomicUsize::new(0),
            blocking,
            clock: Arc::new(SharedClock::new()),
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
        let how = self.claim_notify(&r);
        drop(r);
        // `self` may be freed from here on (see `Notify`).
        how.send();
        false
    }

    /// Queues a future spawned from another thread and wakes the loop, which spawns it at its
    /// next turn. Once the runtime is gone, hands it back (for the caller to drop: not under
    /// this lock, since dropping it may wake tasks).
    pub(crate) fn push_spawn(&self, future: RemoteSpawn) -> Result<(), RemoteSpawn> {
        let mut r = self.lock();
        if r.eventfd.is_none() || !r.spawns_open {
            return Err(future);
        }
        r.spawns.push(future);
        let how = self.claim_notify(&r);
        drop(r);
        how.send();
        Ok(())
    }

    /// Under the lock: decides how this wake gets the loop's attention (and counts it).
    /// Only the first wake since the loop last drained can cost a syscall, and only if the
    /// loop sleeps.
    fn claim_notify(&self, r: &Remote) -> Notify {
        if self.notified.load(Ordering::Relaxed) || r.eventfd.is_none() {
            return Notify::Nothing;
        }
        self.notified.store(true, Ordering::Release);
        match r.waiting {
            Waiting::Running | Waiting::Spinning => Notify::Nothing,
            Waiting::Futex => {
                self.futex_wakes.fetch_add(1, Ordering::Relaxed);
                Notify::Condvar(self.wake_cv.clone())
            }
            Waiting::Epoll => {
                self.eventfd_writes.fetch_add(1, Ordering::Relaxed);
                Notify::EventFd(r.eventfd.clone().expect("checked above"))
            }
        }
    }

    /// Sleeps until a remote wake or the timeout (`None`: no timeout). Returns whether a
    /// remote wake is waiting to be drained.
    ///
    /// Used instead of `epoll_wait` when the loop has no fd registered: waking a thread
    /// blocked on a futex costs less than an eventfd write plus an `epoll_wait` return. A
    /// wake that landed before the loop got here is seen under the lock, so none is lost.
    pub(crate) fn sleep(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let Some(mut r) = self.begin_wait(Waiting::Futex) else {
            return self.notified.load(Ordering::Acquire);
        };
        // `notified` only changes under the lock, which waiting releases; wake-ups without
        // it (spurious, or a timeout being reached) go round again or stop.
        while !self.notified.load(Ordering::Acquire) {
            r = match deadline {
                None => self.wake_cv.wait(r).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    let woken = self.wake_cv.wait_timeout(r, left);
                    woken.unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        r.waiting = Waiting::Running;
        self.notified.load(Ordering::Acquire)
    }

    /// The loop is about to block in `epoll_wait`: from now on a wake writes the eventfd.
    /// Returns false, changing nothing, if a wake is already waiting (then it must not block).
    pub(crate) fn enter_epoll_sleep(&self) -> bool {
        self.begin_wait(Waiting::Epoll).is_some()
    }

    /// The loop is back from `epoll_wait`: wakes no longer need the eventfd.
    pub(crate) fn leave_epoll_sleep(&self) {
        self.lock().waiting = Waiting::Running;
    }

    /// Under the lock, tells wakes the loop now waits `how`; or returns `None`, changing
    /// nothing, if a wake is already there (or the runtime closed): then it must not wait.
    fn begin_wait(&self, how: Waiting) -> Option<MutexGuard<'_, Remote>> {
        let mut r = self.lock();
        if self.notified.load(Ordering::Acquire) || r.eventfd.is_none() {
            return None;
        }
        r.waiting = how;
        Some(r)
    }

    /// Spins for at most `limit`, waiting for a remote wake: a busy wait of a few dozen
    /// pause instructions between looks, then a yield of the CPU (so a thread sharing it can
    /// run). Looking costs no syscall, so a wake is seen within nanoseconds of landing.
    /// Returns whether one arrived; the caller then drains without sleeping in epoll.
    ///
    /// Used when a remote wake is likely microseconds away (see `SpinPolicy` in `spin.rs`):
    /// an idle vCPU asleep in the kernel takes far longer to wake than one still running.
    pub(crate) fn spin_for_remote(&self, limit: Duration) -> bool {
        if self.begin_wait(Waiting::Spinning).is_none() {
            return self.notified.load(Ordering::Acquire);
        }
        let deadline = Instant::now() + limit;
        loop {
            // A short busy wait between looks costs no syscall; the yield every so often lets
            // a thread that shares this CPU run.
            for _ in 0..32 {
                if self.notified.load(Ordering::Relaxed) {
                    break;
                }
                std::hint::spin_loop();
            }
            if !self.notified.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            if self.notified.load(Ordering::Acquire) || Instant::now() >= deadline {
                let mut r = self.lock();
                // From here on, wakes leave it to the loop to look (it is running).
                r.waiting = Waiting::Running;
                return self.notified.load(Ordering::Acquire);
            }
        }
    }

    /// Whether remote wakes may be waiting (lock-free hint; see the field's invariant).
    pub(crate) fn maybe_pending(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Takes every remotely queued wake and spawn. Clears `notified` in the same critical
    /// section, so a wake that lands after this drain claims the loop's attention again and
    /// the loop cannot sleep through it.
    pub(crate) fn take_remote(&self, into: &mut Vec<RemoteEntry>, spawns: &mut Vec<RemoteSpawn>) {
        let mut r = self.lock();
        self.notified.store(false, Ordering::Release);
        // The caller's buffers come in empty: swapping them is O(1) under the lock (the
        // queue keeps the other buffer's capacity), where appending would copy every entry.
        take_all(into, &mut r.queue);
        take_all(spawns, &mut r.spawns);
    }

    /// The raw eventfd, for registration with epoll.
    pub(crate) fn eventfd_raw(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.lock().eventfd.as_ref().map_or(-1, |e| e.as_raw_fd())
    }

    /// The runtime begins to shut down: from now on `push_spawn` hands every future back.
    pub(crate) fn refuse_spawns(&self) {
        self.lock().spawns_open = false;
    }

    /// Shuts the remote path: later wakes are ignored and the eventfd is closed. The entries
    /// still queued are applied here, and from now on every task's local references are
    /// touched only under this lock. Called by the runtime thread once no task of it is left
    /// in its local run queue.
    pub(crate) fn close(&self) {
        let mut r = self.lock();
        r.eventfd = None;
        let spawns = std::mem::take(&mut r.spawns);
        let queue = std::mem::take(&mut r.queue);
        let free: Vec<TaskPtr> = queue
            .into_iter()
            .filter(|&(task, op)| apply_closed(task, op))
            .map(|(task, _)| task)
            .collect();
        drop(r);
        // Never polled: dropping them here cancels them (their handles report so).
        drop(spawns);
        for task in free {
            // SAFETY: `apply_closed` took the last claim on each of these cells.
            unsafe { task.dealloc() };
        }
    }
}

/// Moves everything in `from` to the end of `into`.
fn take_all<T>(into: &mut Vec<T>, from: &mut Vec<T>) {
    if into.is_empty() {
        std::mem::swap(into, from);
    } else {
        into.append(from);
    }
}

/// Applies `op` to a task of a closed runtime, under its queue's lock: a wake does nothing
/// but give up its queued bit, a release drops the local reference it carries. Returns
/// whether that was the last claim, so the caller must free the cell after unlocking (the
/// cell holds an `Arc` to this very `Shared`).
fn apply_closed(task: TaskPtr, op: RemoteOp) -> bool {
    match op {
        // The runtime has cancelled every task: an abort asked for has nothing left to do.
        RemoteOp::Wake => task.clear_remote().0,
        RemoteOp::Release => task.ref_dec_closed(),
        RemoteOp::WakeRelease => {
            // At most one of the two can be the last claim; evaluate both.
            let a = task.ref_dec_closed();
            let b = task.clear_remote().0;
            a || b
        }
    }
}
