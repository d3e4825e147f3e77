//! The blocking thread pool: threads on demand, a shared FIFO queue, idle threads expire.
//!
//! A thread that finishes a job first *searches* for the next one: it spins (yielding the
//! CPU) for a few microseconds, watching the queue length, before it parks on the condvar.
//! A caller awaiting one job after another (`fs::read` in a loop) therefore finds a thread
//! already looking and pays no futex wake-up, and a burst of jobs does not start threads
//! that a searching one would serve.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long a thread that just finished a job looks for the next one before parking.
const SEARCH: Duration = Duration::from_micros(50);

/// Threads clean-up work may start past the pool's limit (see
/// [`BlockingPool::execute_cleanup`]).
const CLEANUP_OVERFLOW: usize = 16;

/// A queued job. It is called once: with `Ok` to run, or with the error that prevents it
/// from ever running (no thread could be started), so it can report that to its handle.
pub(crate) type Job = Box<dyn FnOnce(Result<&Finish<'_>, &io::Error>) + Send + 'static>;

/// Settings fixed at runtime creation.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) stack_size: Option<usize>,
    pub(crate) thread_name: ThreadName,
    /// Run on each pool thread when it starts, and when it stops.
    pub(crate) on_start: Option<Hook>,
    pub(crate) on_stop: Option<Hook>,
}

/// What pool threads are named: one name for all (`Builder::thread_name`), or a name asked
/// of a function for each thread as it is started (`Builder::thread_name_fn`).
#[derive(Clone)]
pub(crate) enum ThreadName {
    Fixed(String),
    Computed(Arc<dyn Fn() -> String + Send + Sync>),
}

impl ThreadName {
    /// The name of the next thread. A function that panics, or returns a name with a NUL
    /// byte (which no thread can have), fails the thread's start with an error saying so,
    /// as a refused thread creation does: the panic goes no further than here.
    fn next(&self) -> io::Result<String> {
        let name = match self {
            ThreadName::Fixed(name) => return Ok(name.clone()),
            ThreadName::Computed(f) => match catch_unwind(AssertUnwindSafe(|| f())) {
                Ok(name) => name,
                Err(payload) => {
                    crate::unwind::drop_payload(payload);
                    return Err(io::Error::other("Builder::thread_name_fn panicked"));
                }
            },
        };
        if name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Builder::thread_name_fn returned a name with a NUL byte",
            ));
        }
        Ok(name)
    }
}

impl fmt::Debug for ThreadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadName::Fixed(name) => fmt::Debug::fmt(name, f),
            ThreadName::Computed(_) => f.write_str("thread_name_fn(..)"),
        }
    }
}

/// A callback run on pool threads (`Builder::on_thread_start` and `on_thread_stop`).
#[derive(Clone)]
pub(crate) struct Hook(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl Hook {
    /// Runs it; a panic in it is caught, so the thread goes on (or stops) all the same,
    /// and so is one of the panic's payload when it is dropped: the thread must reach its
    /// worker loop (or its stop's bookkeeping) whatever the hook does.
    fn run(&self) {
        crate::unwind::contain(|| (self.0)());
    }
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hook(..)")
    }
}

/// A handle to the pool; the runtime owns one and shuts it down when dropped.
#[derive(Clone)]
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    work: Condvar,
    /// `state.queue.len()`, readable without the lock by searching threads.
    queued: AtomicUsize,
    /// Jobs taken off the queue and not yet finished.
    running: AtomicUsize,
    /// Jobs ever queued.
    jobs: AtomicU64,
    /// Signalled when the last [`DurableWork`] ends, and after shutdown when the last
    /// running job ends or the last thread stops.
    quiet: Condvar,
    /// Searches in a row that found nothing: past two, threads park at once, except every
    /// 16th search, which probes whether searching pays again.
    search_misses: AtomicUsize,
    config: PoolConfig,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads alive (running a job, searching or idle).
    threads: usize,
    /// Threads waiting on the condvar.
    idle: usize,
    /// Threads that finished a job and look at the queue again before parking.
    searching: usize,
    /// Notifications sent to idle threads and not yet taken, so one queued job does not
    /// wake two threads and a burst does not start threads that idle ones could serve.
    notified: usize,
    shutdown: bool,
    /// [`DurableWork`] guards alive.
    durable: usize,
    /// Threads started whose body has not returned: `threads`, and those that left the
    /// worker loop and still run their stop hook.
    unstopped: usize,
    /// The threads started, to see (and join) their end at shutdown; pruned of finished
    /// ones whenever a thread starts.
    handles: Vec<thread::JoinHandle<()>>,
}

/// Work the runtime's drop waits for (for up to 10 s),
/// such as a file's write job: a job running when the runtime is dropped otherwise
/// finishes detached, and a process that exits right after cuts it short. Held by the job
/// from its submission to its end, wherever it runs; dropping it marks the end.
pub struct DurableWork {
    inner: Arc<Inner>,
}

impl Drop for DurableWork {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.durable -= 1;
        if st.durable == 0 {
            self.inner.quiet.notify_all();
        }
    }
}

impl fmt::Debug for DurableWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DurableWork(..)")
    }
}

/// Counters of the pool, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    pub(crate) threads: usize,
    pub(crate) idle: usize,
    pub(crate) queued: usize,
    pub(crate) running: usize,
    pub(crate) jobs: u64,
}

/// Given to a running job, which calls [`Finish::done`] just before it publishes its
/// result.
pub(crate) struct Finish<'a> {
    inner: &'a Inner,
    searching: Cell<bool>,
}

impl Finish<'_> {
    /// Marks this thread as searching for work *before* the job's result wakes the
    /// awaiting task: that task's next job then finds a thread counted as available,
    /// instead of racing it and starting a thread it does not need.
    pub(crate) fn done(&self) {
        if !self.searching.replace(true) {
            self.inner.lock().searching += 1;
        }
    }
}

impl BlockingPool {
    pub(crate) fn new(config: PoolConfig) -> BlockingPool {
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                queued: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                jobs: AtomicU64::new(0),
                quiet: Condvar::new(),
                search_misses: AtomicUsize::new(0),
                config,
            }),
        }
    }

    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.inner.lock();
        PoolStats {
            threads: st.threads,
            idle: st.idle,
            queued: st.queue.len(),
            running: self.inner.running.load(Ordering::Acquire),
            jobs: self.inner.jobs.load(Ordering::Relaxed),
        }
    }

    /// Whether jobs are queued or running, so a result may come back soon.
    pub(crate) fn is_busy(&self) -> bool {
        self.inner.queued.load(Ordering::Acquire) + self.inner.running.load(Ordering::Acquire) > 0
    }

    /// Queues `job` and makes sure some thread will take it: a searching thread, an idle
    /// one (woken), or a new one if below the limit; otherwise it waits for the next thread
    /// that frees up. After shutdown the job is handed back.
    pub(crate) fn execute(&self, job: Job) -> Result<(), Job> {
        let st = self.inner.lock();
        if st.shutdown {
            return Err(job);
        }
        self.queue(st, job, 0);
        Ok(())
    }

    /// As [`execute`](Self::execute), also after shutdown: for clean-up work (a file's
    /// last bytes, a lingering close) that must run, and not on the runtime's thread. The
    /// threads it needs are started as for any job, and exit once idle. After shutdown, up
    /// to [`CLEANUP_OVERFLOW`] of them past the pool's limit, so that the work does not wait
    /// behind long jobs (the runtime's drop waits for it only so long); not before, where a
    /// thread past the limit would go on to serve ordinary jobs (a job queued then and
    /// dropped by the shutdown is queued again by its caller, see `spawn_blocking_detached`).
    pub(crate) fn execute_cleanup(&self, job: Job) {
        let st = self.inner.lock();
        let overflow = if st.shutdown { CLEANUP_OVERFLOW } else { 0 };
        self.queue(st, job, overflow);
    }

    /// Queues `job`, starting a thread for it if none is free and fewer than the pool's
    /// limit plus `overflow` run.
    fn queue(&self, mut st: MutexGuard<'_, State>, job: Job, overflow: usize) {
        st.queue.push_back(job);
        self.inner.queued.store(st.queue.len(), Ordering::Release);
        self.inner.jobs.fetch_add(1, Ordering::Relaxed);
        if st.queue.len() <= st.searching + st.notified {
            return; // a searching or already-woken thread will take it
        }
        if st.idle > st.notified {
            st.notified += 1;
            self.inner.work.notify_one();
            return;
        }
        // Saturating: a limit of `usize::MAX` means no limit, also with the overflow.
        if st.threads >= self.inner.config.max_threads.saturating_add(overflow) {
            return; // runs when a thread frees up
        }
        st.threads += 1;
        st.unstopped += 1;
        drop(st);
        if let Err(err) = self.start_thread() {
            let mut st = self.inner.lock();
            st.threads -= 1;
            st.unstopped -= 1;
            if st.threads > 0 {
                return; // a live thread will get to the queued job
            }
            // No thread exists and none can be started: fail every queued job now rather
            // than leave its handle waiting forever.
            let failed: Vec<Job> = st.queue.drain(..).collect();
            self.inner.queued.store(0, Ordering::Release);
            drop(st);
            for job in failed {
                job(Err(&err));
            }
        }
    }

    fn start_thread(&self) -> io::Result<()> {
        let config = &self.inner.config;
        let mut builder = thread::Builder::new().name(config.thread_name.next()?);
        if let Some(size) = config.stack_size {
            builder = builder.stack_size(size);
        }
        let inner = self.inner.clone();
        let handle = builder.spawn(move || {
            if let Some(hook) = &inner.config.on_start {
                hook.run();
            }
            inner.worker();
            if let Some(hook) = &inner.config.on_stop {
                hook.run();
            }
            let mut st = inner.lock();
            st.unstopped -= 1;
            if st.shutdown && st.unstopped == 0 {
                // A `shutdown_timeout` may wait for this (see `wait_stopped`).
                inner.quiet.notify_all();
            }
        });
        let handle = handle.map_err(|err| match config.stack_size {
            // The setting may be why (no thread can have that stack): say which it is.
            Some(size) => io::Error::other(format!(
                "{err}; its stack of {size} bytes was set with Builder::thread_stack_size"
            )),
            None => err,
        })?;
        let mut st = self.inner.lock();
        st.handles.retain(|h| !h.is_finished());
        st.handles.push(handle);
        Ok(())
    }

    /// Registers work that [`wait_durable`](Self::wait_durable) waits for, until the
    /// returned guard is dropped.
    pub(crate) fn durable(&self) -> DurableWork {
        self.inner.lock().durable += 1;
        DurableWork {
            inner: self.inner.clone(),
        }
    }

    /// Waits until no [`DurableWork`] is alive, for at most `limit`; returns whether none
    /// is. Bounded, so that a write blocked for good (a FIFO nobody reads) cannot hold the
    /// runtime's drop for ever.
    pub(crate) fn wait_durable(&self, limit: Duration) -> bool {
        self.wait_quiet(limit, |st| st.durable == 0)
    }

    /// After [`shutdown`](Self::shutdown): waits until no job runs or is queued any more
    /// (clean-up work the shutdown's dropped tasks left) and no [`DurableWork`] is alive,
    /// for at most `limit`; returns whether that came.
    pub(crate) fn wait_idle(&self, limit: Duration) -> bool {
        self.wait_quiet(limit, |st| {
            st.durable == 0
                && st.queue.is_empty()
                && self.inner.running.load(Ordering::Acquire) == 0
        })
    }

    /// After [`shutdown`](Self::shutdown): [`wait_idle`](Self::wait_idle), then waits until
    /// every thread has stopped (its stop hook run, its thread-locals dropped) within what
    /// is left of `limit`; returns whether that came. Threads still running then go on
    /// detached. (Past `limit`, only a thread-local destructor that blocks could hold it.)
    pub(crate) fn wait_stopped(&self, limit: Duration) -> bool {
        let start = Instant::now();
        let left = || limit.saturating_sub(start.elapsed());
        if !self.wait_idle(limit) || !self.wait_quiet(left(), |st| st.unstopped == 0) {
            return false;
        }
        // Every thread body has returned: what is left of each thread is its exit, where
        // its thread-local destructors run, which only a join sees end (as tokio's does).
        let handles = std::mem::take(&mut self.inner.lock().handles);
        for handle in handles {
            let _ = handle.join();
        }
        true
    }

    /// Waits on [`Inner::quiet`] until `done` holds, for at most `limit`.
    fn wait_quiet(&self, limit: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now().checked_add(limit);
        let mut st = self.inner.lock();
        while !done(&st) {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return false;
            }
            st = self
                .inner
                .quiet
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Drops every queued job and tells idle threads to exit. Running jobs finish on their
    /// threads, detached; nothing here waits for them.
    pub(crate) fn shutdown(&self) {
        let queued = {
            let mut st = self.inner.lock();
            st.shutdown = true;
            self.inner.queued.store(0, Ordering::Release);
            std::mem::take(&mut st.queue)
        };
        self.inner.work.notify_all();
        // Outside the lock: dropping a job runs its captures' destructors, one at a time
        // so that one that panics does not cut the runtime's shutdown short.
        for job in queued {
            crate::unwind::contain(|| drop(job));
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so a poisoned lock can only come from a panic in this
        // file's bookkeeping, which leaves the state consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn worker(&self) {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                self.running.fetch_add(1, Ordering::AcqRel);
                self.queued.store(st.queue.len(), Ordering::Release);
                drop(st);
                let finish = Finish {
                    inner: self,
                    searching: Cell::new(false),
                };
                // The job catches its own panics (see `spawn_blocking`); a stray one must
                // not kill this thread's bookkeeping either.
                crate::unwind::contain(|| job(Ok(&finish)));
                finish.done();
                self.running.fetch_sub(1, Ordering::AcqRel);
                self.search();
                st = self.lock();
                st.searching -= 1;
                if st.shutdown && self.running.load(Ordering::Acquire) == 0 {
                    // A `shutdown_timeout` may wait for this (under the lock, so it cannot
                    // miss it: see `wait_idle`).
                    self.quiet.notify_all();
                }
                continue;
            }
            if st.shutdown {
                break;
            }
            st.idle += 1;
            let (guard, wait) = self
                .work
                .wait_timeout(st, self.config.keep_alive)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if st.notified > 0 {
                st.notified -= 1;
                continue;
            }
            if wait.timed_out() && st.queue.is_empty() {
                break;
            }
        }
        st.threads -= 1;
    }

    /// Spins (yielding the CPU each round) until a job is queued or [`SEARCH`] passes,
    /// unless searching has not paid lately (see `search_misses`).
    fn search(&self) {
        let misses = self.search_misses.load(Ordering::Relaxed);
        if misses >= 2 {
            self.search_misses
                .store(misses.wrapping_add(1), Ordering::Relaxed);
            if misses % 16 != 0 {
                return;
            }
        }
        let deadline = Instant::now() + SEARCH;
        while self.queued.load(Ordering::Acquire) == 0 {
            if Instant::now() >= deadline {
                self.search_misses
                    .store(misses.max(1) + 1, Ordering::Relaxed);
                return;
            }
            thread::yield_now();
        }
        self.search_misses.store(0, Ordering::Relaxed);
    }
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPool")
            .field("stats", &self.stats())
            .finish()
    }
}
