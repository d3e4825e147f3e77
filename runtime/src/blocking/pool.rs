//! The blocking thread pool: threads on demand, a shared FIFO queue, idle threads expire.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// A queued job. It is called once: with `None` to run, or with the error that prevents it
/// from ever running (no thread could be started), so it can report that to its handle.
pub(crate) type Job = Box<dyn FnOnce(Option<&io::Error>) + Send + 'static>;

/// Settings fixed at runtime creation.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) stack_size: Option<usize>,
}

/// A handle to the pool; the runtime owns one and shuts it down when dropped.
#[derive(Clone)]
pub(crate) struct BlockingPool {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    work: Condvar,
    config: PoolConfig,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads alive (running a job or idle).
    threads: usize,
    /// Threads waiting on the condvar.
    idle: usize,
    /// Notifications sent to idle threads and not yet taken, so one queued job does not
    /// wake two threads and a burst does not start threads that idle ones could serve.
    notified: usize,
    shutdown: bool,
}

/// Counters of the pool, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    pub(crate) threads: usize,
    pub(crate) idle: usize,
    pub(crate) queued: usize,
}

impl BlockingPool {
    pub(crate) fn new(config: PoolConfig) -> BlockingPool {
        BlockingPool {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
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
        }
    }

    /// Queues `job`: wakes an idle thread, or starts one if below the limit, or leaves it
    /// queued for the next thread that frees up. After shutdown the job is handed back.
    pub(crate) fn execute(&self, job: Job) -> Result<(), Job> {
        let mut st = self.inner.lock();
        if st.shutdown {
            return Err(job);
        }
        st.queue.push_back(job);
        if st.idle > st.notified {
            st.notified += 1;
            self.inner.work.notify_one();
            return Ok(());
        }
        if st.threads >= self.inner.config.max_threads {
            return Ok(()); // runs when a thread frees up
        }
        st.threads += 1;
        drop(st);
        if let Err(err) = self.start_thread() {
            let mut st = self.inner.lock();
            st.threads -= 1;
            if st.threads > 0 {
                return Ok(()); // a live thread will get to the queued job
            }
            // No thread exists and none can be started: fail every queued job now rather
            // than leave its handle waiting forever.
            let failed: Vec<Job> = st.queue.drain(..).collect();
            drop(st);
            for job in failed {
                job(Some(&err));
            }
        }
        Ok(())
    }

    fn start_thread(&self) -> io::Result<()> {
        let mut builder = thread::Builder::new().name("overlap-blocking".into());
        if let Some(size) = self.inner.config.stack_size {
            builder = builder.stack_size(size);
        }
        let inner = self.inner.clone();
        builder.spawn(move || inner.worker())?;
        Ok(())
    }

    /// Drops every queued job and tells idle threads to exit. Running jobs finish on their
    /// threads, detached; nothing here waits for them.
    pub(crate) fn shutdown(&self) {
        let queued = {
            let mut st = self.inner.lock();
            st.shutdown = true;
            std::mem::take(&mut st.queue)
        };
        self.inner.work.notify_all();
        drop(queued);
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
                drop(st);
                // The job catches its own panics (see `spawn_blocking`); a stray one must
                // not kill this thread's bookkeeping either.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(None)));
                st = self.lock();
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
}

impl fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingPool")
            .field("stats", &self.stats())
            .finish()
    }
}
