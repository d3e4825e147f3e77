//! The runtime thread's state: run queue, task registry, reactor, timers, counters.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use super::remote_task::RemoteSpawn;
use super::shared::{RemoteEntry, Shared};
use super::Config;
use crate::blocking::{BlockingPool, PoolConfig};
use crate::metrics::RuntimeMetrics;
use crate::reactor::Reactor;
use crate::slab::Slab;
use crate::sys::eventfd::EventFd;
use crate::task::raw::{take_poll_panic, CellCredit, Polled, RemoteOp, Repr, TaskPtr};
use crate::task::state::{CANCELLED, COMPLETE};
use crate::task::JoinHandle;
use crate::time::Timers;

use super::spin::{SpinPolicy, REMOTE_SPIN};

mod shutdown;

/// With the clock paused and a blocking job running, how long the loop sleeps before it
/// looks again whether the job has ended (one nobody awaits wakes nothing when it does).
const PAUSED_BLOCKING_RECHECK: Duration = Duration::from_millis(1);

/// What the end of a runtime's shutdown waits for on its blocking pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolWait {
    /// Durable work (file writes), for up to [`DURABLE_WAIT`]: what dropping a runtime does.
    Durable,
    /// Every running job, for up to this long (`Runtime::shutdown_timeout`).
    All(Duration),
    /// Nothing (`Runtime::shutdown_background`).
    Nothing,
}

/// Wakes in a row that may run through the LIFO slot before the run queue gets a turn.
const LIFO_STREAK: u32 = 3;
/// Room an empty run queue keeps when the loop goes idle (64 KiB of task pointers): a burst of
/// woken tasks gives its memory back, a steady load keeps what it uses.
const RUN_QUEUE_KEEP: usize = 8192;

/// Everything the runtime thread owns. Reached through the thread-local context while the
/// runtime runs, and through `Runtime` otherwise.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    run_queue: RefCell<VecDeque<TaskPtr>>,
    /// The task woken last by the task being polled. It runs next, while its waker's data
    /// is still in cache (a message passed from task to task is handled at once); at most
    /// [`LIFO_STREAK`] times in a row, so the run queue is never starved.
    lifo: Cell<Option<TaskPtr>>,
    /// The task being polled, if any.
    running: Cell<Option<TaskPtr>>,
    /// The task whose future is being dropped outside a poll (aborted, or at shutdown), if
    /// any: with `running`, what `task::try_id` reports. Kept apart from `running`, which
    /// also steers wakes into the LIFO slot.
    dropping: Cell<Option<TaskPtr>>,
    /// Every task whose future is not finished. Its entry is one of the task's references.
    tasks: RefCell<Slab<TaskPtr>>,
    reactor: Rc<Reactor>,
    timers: Rc<Timers>,
    pub(crate) config: Config,
    remote_buf: RefCell<Vec<RemoteEntry>>,
    spawn_buf: RefCell<Vec<RemoteSpawn>>,
    counters: Counters,
    spin: SpinPolicy,
    /// What this runtime's reader of the signal self-pipe has handed out, once the reader
    /// runs (see `signal`).
    pub(crate) signals_handed: RefCell<Option<Rc<crate::signal::HandedOut>>>,
    /// The shutdown has cancelled every task: nothing runs a task spawned from now on.
    closed: Cell<bool>,
    /// Tasks that yielded (`yield_now`), to run after the next look at I/O and timers. They
    /// are marked `SCHEDULED`, as if queued: the entry is a claim on the task, and a wake
    /// meanwhile does not queue it twice.
    deferred: RefCell<Vec<TaskPtr>>,
    /// The stand-in task of the `block_on` running now, if any (see `main_task.rs`).
    main: Cell<Option<TaskPtr>>,
    /// The `block_on` future yielded, when `deferred` held this many tasks: it is woken
    /// after the loop's next look at I/O and timers, behind every task ready by then and
    /// those that yielded before it, and ahead of those that yielded after it, as a task
    /// that yields is.
    main_deferred: Cell<Option<usize>>,
    /// Run-queue pops left before the yielded `block_on` future is woken.
    main_after: Cell<Option<usize>>,
    /// The units of `shared`'s cell count the loop holds for the cells it will allocate;
    /// cells freed on this thread while the loop runs give theirs back here.
    cell_credit: CellCredit,
}

impl Drop for Core {
    fn drop(&mut self) {
        // Cells freed from now on give their units back to the shared count.
        self.cell_credit.release_all(&self.shared);
    }
}

#[derive(Debug, Default)]
struct Counters {
    spawned: Cell<u64>,
    polls: Cell<u64>,
    /// Polls of the `block_on` future (not in `polls`, which the metrics report).
    main_polls: Cell<u64>,
    epoll_waits: Cell<u64>,
    futex_sleeps: Cell<u64>,
    events: Cell<u64>,
    budget_exhausted: Cell<u64>,
}

fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

/// Which poll of its loop the current runtime runs now (a task's or the `block_on`
/// future's): equal at two moments only if no poll started in between. `u64::MAX` outside
/// a runtime, where nothing moves it.
pub(crate) fn poll_seq() -> u64 {
    super::with_current(|core| core.counters.polls.get() + core.counters.main_polls.get())
        .unwrap_or(u64::MAX)
}

impl Core {
    /// Counts a poll of the `block_on` future (see [`poll_seq`]).
    pub(crate) fn count_main_poll(&self) {
        bump(&self.counters.main_polls, 1);
    }

    pub(crate) fn new(config: Config) -> io::Result<Core> {
        let blocking = BlockingPool::new(PoolConfig {
            max_threads: config.max_blocking_threads,
            keep_alive: config.blocking_keep_alive,
            stack_size: config.blocking_stack_size,
            thread_name: config.blocking_thread_name.clone(),
            on_start: config.on_thread_start.clone(),
            on_stop: config.on_thread_stop.clone(),
        });
        let shared = Arc::new(Shared::new(EventFd::new()?, blocking));
        let reactor = Rc::new(Reactor::new(shared.eventfd_raw(), config.max_events)?);
        let cell_credit = CellCredit::new(&shared);
        let timers = Rc::new(Timers::new(shared.clock.clone()));
        if config.start_paused {
            timers.pause();
        }
        Ok(Core {
            shared,
            run_queue: RefCell::new(VecDeque::with_capacity(256)),
            lifo: Cell::new(None),
            running: Cell::new(None),
            dropping: Cell::new(None),
            tasks: RefCell::new(Slab::new()),
            reactor,
            timers,
            config,
            remote_buf: RefCell::new(Vec::new()),
            spawn_buf: RefCell::new(Vec::new()),
            counters: Counters::default(),
            spin: SpinPolicy::new(),
            signals_handed: RefCell::new(None),
            closed: Cell::new(false),
            deferred: RefCell::new(Vec::new()),
            main: Cell::new(None),
            main_deferred: Cell::new(None),
            main_after: Cell::new(None),
            cell_credit,
        })
    }

    /// The loop's credit of cell units (see `task/raw/units.rs`).
    pub(crate) fn cell_credit(&self) -> &CellCredit {
        &self.cell_credit
    }

    pub(crate) fn reactor(&self) -> &Rc<Reactor> {
        &self.reactor
    }

    pub(crate) fn timers(&self) -> &Rc<Timers> {
        &self.timers
    }

    pub(crate) fn blocking(&self) -> &BlockingPool {
        &self.shared.blocking
    }

    pub(crate) fn count_budget_exhausted(&self) {
        bump(&self.counters.budget_exhausted, 1);
    }

    /// The `Shared` this runtime's tasks point at; identifies the runtime.
    pub(crate) fn shared_ptr(&self) -> *const Shared {
        Arc::as_ptr(&self.shared)
    }

    pub(crate) fn spawn<F: Future + 'static>(&self, future: F) -> JoinHandle<F::Output> {
        let task = TaskPtr::allocate(future, &self.shared, &self.cell_credit);
        if self.closed.get() {
            // Spawned by a destructor that the end of the shutdown ran: no loop will poll it.
            // Cancel it at once (dropping the future here) so its handle reports so. Nothing
            // else knows the task, so its local count needs no lock.
            task.set_cancelled();
            let err = self.cancel(task);
            task.finish(Some(err));
            task.ref_dec_local();
            // SAFETY: as below; the handle's reference is the one left.
            return unsafe { JoinHandle::from_task(task) };
        }
        let key = self.tasks.borrow_mut().insert(task);
        task.set_registry_key(key);
        self.run_queue.borrow_mut().push_back(task);
        bump(&self.counters.spawned, 1);
        // SAFETY: the task was allocated for `F`, whose output is `F::Output`, and `allocate`
        // counted the reference this handle takes over.
        unsafe { JoinHandle::from_task(task) }
    }

    /// Queues a task just marked scheduled. A task woken by the task being polled (not by
    /// itself: a yield must let the others run) takes the LIFO slot.
    pub(crate) fn push_local(&self, task: TaskPtr) {
        match self.running.get() {
            Some(running) if running != task => {
                if let Some(prev) = self.lifo.replace(Some(task)) {
                    self.push_back(prev);
                }
            }
            _ => self.push_back(task),
        }
    }

    /// The run queue's tail. Kept out of line: the common wake (into the LIFO slot) then
    /// needs no register saves for a call that may grow the queue.
    #[inline(never)]
    fn push_back(&self, task: TaskPtr) {
        self.run_queue.borrow_mut().push_back(task);
    }

    fn pop(&self) -> Option<TaskPtr> {
        self.lifo
            .take()
            .or_else(|| self.run_queue.borrow_mut().pop_front())
    }

    pub(crate) fn has_ready_tasks(&self) -> bool {
        self.lifo.get().is_some() || !self.run_queue.borrow().is_empty()
    }

    /// Runs one task taken off the run queue.
    #[inline(always)]
    fn run_task(&self, task: TaskPtr) {
        let Some(flags) = task.unschedule_local() else {
            return;
        };
        if flags & COMPLETE != 0 {
            return;
        }
        let budget = crate::coop::poll_budget();
        // Why the task failed, if it did (panicked or cancelled).
        let mut failure = None;
        let done = if flags & CANCELLED != 0 {
            failure = Some(self.cancel(task));
            true
        } else {
            bump(&self.counters.polls, 1);
            self.running.set(Some(task));
            let polled = task.poll();
            self.running.set(None);
            match polled {
                Polled::Pending => false,
                Polled::Returned => true,
                Polled::Panicked => {
                    failure = Some(take_poll_panic());
                    true
                }
            }
        };
        drop(budget);
        if done {
            self.complete(task, failure);
        }
    }

    /// Drops the task's future, with the task reported as the current one meanwhile
    /// (`task::try_id`), as while it is polled; returns the error to finish it with.
    #[cold]
    fn cancel(&self, task: TaskPtr) -> Repr {
        let outer = self.dropping.replace(Some(task));
        let err = task.cancel();
        self.dropping.set(outer);
        err
    }

    /// The task whose code runs now (polled, or its future dropped), for `task::try_id`.
    pub(crate) fn current_task(&self) -> Option<TaskPtr> {
        self.running.get().or(self.dropping.get())
    }

    /// The task's output is stored, or it failed with `failure`: mark it complete and drop
    /// the registry's reference.
    fn complete(&self, task: TaskPtr, failure: Option<Repr>) {
        task.finish(failure);
        self.tasks.borrow_mut().remove(task.registry_key());
        task.ref_dec_local();
    }

    /// Runs up to `event_interval` tasks. Returns how many ran.
    pub(crate) fn run_batch(&self) -> usize {
        let mut ran = 0;
        let mut streak = 0;
        while ran < self.config.event_interval {
            let mut main_turn = false;
            let task = match self.lifo.take() {
                // Past the streak the LIFO task still runs at once if nothing is queued:
                // there is nobody to be fair to.
                Some(task) if streak < LIFO_STREAK || self.run_queue.borrow().is_empty() => {
                    streak += 1;
                    task
                }
                lifo => {
                    streak = 0;
                    let mut queue = self.run_queue.borrow_mut();
                    if let Some(task) = lifo {
                        queue.push_back(task);
                    }
                    match queue.pop_front() {
                        Some(task) => {
                            main_turn = self.main_after.get().is_some() && self.main_turn_comes();
                            task
                        }
                        None => break,
                    }
                }
            };
            self.run_task(task);
            ran += 1;
            if main_turn {
                // The yielded `block_on` future's turn: it is polled next.
                break;
            }
        }
        ran
    }

    /// Counts one run-queue pop towards the yielded `block_on` future's turn; returns true,
    /// waking it, when this pop is the last task that was ahead of it.
    #[cold]
    #[inline(never)]
    fn main_turn_comes(&self) -> bool {
        match self.main_after.get() {
            Some(n) if n <= 1 => {
                self.main_after.set(None);
                self.wake_main();
                true
            }
            Some(n) => {
                self.main_after.set(Some(n - 1));
                false
            }
            None => false,
        }
    }

    fn wake_main(&self) {
        if let Some(main) = self.main.get() {
            main.schedule_local(self);
        }
    }

    /// `block_on` starts (`Some`) or ends (`None`) driving its future with stand-in `main`.
    pub(crate) fn set_main(&self, main: Option<TaskPtr>) {
        self.main.set(main);
        self.main_deferred.set(None);
        self.main_after.set(None);
    }

    /// Applies what other threads queued: wakes go to the local run queue, released
    /// references are dropped, futures spawned through a `Handle` become tasks. Returns
    /// whether there was anything.
    fn drain_remote(&self) -> bool {
        if !self.shared.maybe_pending() {
            return false;
        }
        let mut buf = self.remote_buf.borrow_mut();
        let mut spawns = self.spawn_buf.borrow_mut();
        self.shared.take_remote(&mut buf, &mut spawns);
        for job in spawns.drain(..) {
            job.start(self);
        }
        for (task, op) in buf.drain(..) {
            if op != RemoteOp::Release {
                // Scheduling first (a no-op for a complete task) keeps the cell alive through
                // the clear; a wake landing after the clear queues a new entry, so none is lost.
                task.schedule_local(self);
                let (last, abort) = task.clear_remote();
                if last {
                    // SAFETY: the queued bit was the last claim on the cell.
                    unsafe { task.dealloc() };
                    continue;
                }
                if abort {
                    // Asked for on another thread (`AbortHandle`); the task is queued, and
                    // its run drops the future.
                    task.set_cancelled();
                }
            }
            if op != RemoteOp::Wake {
                task.ref_dec_local();
            }
        }
        true
    }

    /// Polls the reactor and the timers once. Blocks (until the next timer, an fd event or a
    /// remote wake) only if `may_block` and no task is ready.
    pub(crate) fn park(&self, may_block: bool) {
        // What this drain wakes may include the `block_on` future, which `may_block` was
        // computed without: then the loop must not sleep.
        let drained = self.drain_remote();
        let deferred = !self.deferred.borrow().is_empty() || self.main_deferred.get().is_some();
        let mut timeout = if !may_block || drained || deferred || self.has_ready_tasks() {
            Some(Duration::ZERO)
        } else {
            self.timers
                .next_deadline()
                .map(|d| d.saturating_duration_since(self.timers.now()))
        };
        // With time paused, no timer comes due by waiting: with nothing to do, look at I/O
        // without blocking and, if nothing came, jump the clock to the next deadline.
        let mut auto_advance = None;
        if timeout != Some(Duration::ZERO) && self.timers.is_paused() {
            if self.shared.blocking.is_busy() {
                // A job's result is work to come: wait for it (or for I/O), not for timers.
                // Not unboundedly: a job whose handle was aborted or detached wakes nobody
                // when it ends, and the clock must then move on; look again shortly.
                timeout = Some(PAUSED_BLOCKING_RECHECK);
            } else if !self.timers.has_reachable() {
                // Only timers that never come: wait for I/O or a remote wake.
                timeout = None;
            } else if let Some(next) = self.timers.next_deadline() {
                auto_advance = Some(next);
                timeout = Some(Duration::ZERO);
            }
        }
        if timeout != Some(Duration::ZERO) {
            // Going idle: a burst's run queue gives back its room.
            let mut queue = self.run_queue.borrow_mut();
            if queue.is_empty() && queue.capacity() > RUN_QUEUE_KEEP {
                queue.shrink_to(RUN_QUEUE_KEEP);
            }
        }
        // A remote wake that is likely microseconds away is looked for briefly before
        // sleeping in epoll (see `SpinPolicy` and `Shared::spin_for_remote`).
        if timeout != Some(Duration::ZERO)
            && (self.shared.blocking.is_busy() || self.spin.remote_hot.get())
            && self.spin.should_spin()
        {
            let limit = timeout.map_or(REMOTE_SPIN, |t| t.min(REMOTE_SPIN));
            let spun_since = Instant::now();
            let woken = self.shared.spin_for_remote(limit);
            self.spin.record(woken);
            if woken {
                self.drain_remote();
                timeout = Some(Duration::ZERO);
            } else {
                // The spin used up part of the wait: the next timer is that much closer.
                timeout = timeout.map(|t| t.saturating_sub(spun_since.elapsed()));
            }
        }
        // Whether the wait brought anything: I/O events or remote wakes.
        let mut news = false;
        let mut sleep = timeout != Some(Duration::ZERO);
        if sleep && self.reactor.registered() == 0 {
            // No fd to watch: sleep on the remote queue's futex, which is cheaper to wake
            // than the eventfd plus epoll (see `Shared::sleep`).
            bump(&self.counters.futex_sleeps, 1);
            let slept_since = Instant::now();
            let woke_remote = self.shared.sleep(timeout);
            self.spin.slept(woke_remote, slept_since.elapsed());
        } else if sleep || self.reactor.registered() > 0 {
            // (With no fd registered, a non-blocking look at epoll could only report the
            // eventfd, whose news `drain_remote` already read from `notified`: no syscall.)
            if sleep && !self.shared.enter_epoll_sleep() {
                // A remote wake came in since the drain above: look, but do not block.
                sleep = false;
                timeout = Some(Duration::ZERO);
            }
            bump(&self.counters.epoll_waits, 1);
            let slept_since = sleep.then(Instant::now);
            let turned = self.reactor.turn(timeout);
            if sleep {
                self.shared.leave_epoll_sleep();
            }
            let (delivered, woke_remote) =
                turned.expect("epoll_wait failed on the runtime's own epoll fd");
            if let Some(t) = slept_since {
                self.spin.slept(woke_remote, t.elapsed());
            }
            bump(&self.counters.events, delivered as u64);
            news |= delivered > 0 || woke_remote;
        }
        // Whatever ended the wait, wakes that came in meanwhile are applied now.
        news |= self.drain_remote();
        if let Some(next) = auto_advance {
            if !news && !self.has_ready_tasks() {
                self.timers.auto_advance_to(next);
            }
        }
        // No clock read while no timer exists (`Timers::register` refreshes its own "now").
        if self.timers.active() > 0 {
            self.timers.turn(self.timers.now());
        }
        // The tasks that yielded go behind every task the I/O, remote wakes and timers woke.
        self.wake_deferred();
    }

    /// Sets the task being polled aside until after the loop's next look at I/O and timers,
    /// if `waker` is its own (the usual case for a `yield_now`); returns whether it did. Any
    /// other waker may belong to another executor, which would wait for ever: the caller
    /// wakes it at once instead.
    pub(crate) fn defer(&self, waker: &Waker) -> bool {
        let Some(task) = self.running.get() else {
            // The `block_on` future itself (polled with no task running).
            let Some(main) = self.main.get() else {
                return false;
            };
            if !crate::task::waker::is_own(waker, main) {
                return false;
            }
            if self.main_deferred.get().is_none() {
                self.main_deferred.set(Some(self.deferred.borrow().len()));
            }
            return true;
        };
        if !crate::task::waker::is_own(waker, task) {
            return false;
        }
        if task.mark_scheduled() {
            self.deferred.borrow_mut().push(task);
        }
        true
    }

    /// Queues the tasks set aside by [`defer`](Core::defer), behind those ready now.
    fn wake_deferred(&self) {
        // If the `block_on` future yielded, its place: behind the tasks ready now and those
        // that yielded before it (a task in the LIFO slot runs first anyway), ahead of those
        // that yielded after it.
        let main_place = self
            .main_deferred
            .take()
            .map(|yielded_before| self.run_queue.borrow().len() + yielded_before);
        let mut deferred = self.deferred.borrow_mut();
        if !deferred.is_empty() {
            self.run_queue.borrow_mut().extend(deferred.drain(..));
        }
        drop(deferred);
        match main_place {
            None => {}
            Some(0) => self.wake_main(),
            Some(n) => self.main_after.set(Some(n)),
        }
    }

    pub(crate) fn metrics(&self) -> RuntimeMetrics {
        let c = &self.counters;
        // One snapshot, so threads and queue length come from the same instant.
        let blocking = self.shared.blocking.stats();
        RuntimeMetrics {
            tasks_spawned: c.spawned.get(),
            tasks_alive: self.tasks.borrow().len() as u64,
            task_polls: c.polls.get(),
            epoll_waits: c.epoll_waits.get(),
            events_delivered: c.events.get(),
            remote_wakes: self.shared.remote_wakes.load(Ordering::Relaxed),
            eventfd_writes: self.shared.eventfd_writes.load(Ordering::Relaxed),
            futex_sleeps: c.futex_sleeps.get(),
            futex_wakes: self.shared.futex_wakes.load(Ordering::Relaxed),
            budget_exhausted: c.budget_exhausted.get(),
            registered_fds: self.reactor.registered() as u64,
            timers_active: self.timers.active() as u64,
            timers_fired: self.timers.fired(),
            blocking_threads: blocking.threads as u64,
            blocking_queued: blocking.queued as u64,
            blocking_running: blocking.running as u64,
            blocking_jobs: blocking.jobs,
        }
    }
}
