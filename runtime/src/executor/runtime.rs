//! `Runtime`, `Builder` and the event loop of `block_on`.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::context::{with_current, EnterGuard};
use super::core::{Core, PoolWait};
use super::handle::Handle;
use super::Config;
use crate::blocking::ThreadName;
use crate::metrics::RuntimeMetrics;
use crate::task::{JoinHandle, MainTask};

/// A single-threaded runtime: an executor for `!Send` tasks, an epoll reactor and timers.
///
/// Tasks run only on the thread that calls [`Runtime::block_on`], and only while it runs.
///
/// A `Runtime` is not `Send`, where tokio's is: it stays on the thread that built it, with
/// its tasks, timers and I/O objects. A program with a runtime per thread builds each one on
/// its own thread and sends back its [`Handle`](crate::Handle), which is `Send`, rather
/// than building them all first and moving each into its thread:
///
/// ```
/// let (handle_tx, handle_rx) = std::sync::mpsc::channel();
/// let (stop, stopped) = overlap::sync::mpsc::cross_thread::channel::<()>(1);
/// let worker = std::thread::spawn(move || {
///     let rt = overlap::Runtime::new().unwrap();
///     handle_tx.send(rt.handle()).unwrap();
///     let mut stopped = stopped;
///     rt.block_on(async move { stopped.recv().await });
/// });
/// let handle = handle_rx.recv().unwrap();
/// let answer = handle.spawn(async { 6 * 7 });
/// assert_eq!(handle.block_on(answer).unwrap(), 42);
/// drop(stop);
/// worker.join().unwrap();
/// ```
///
/// ```compile_fail
/// let rt = overlap::Runtime::new().unwrap();
/// std::thread::spawn(move || rt.block_on(async {})); // `Runtime` is not `Send`
/// ```
///
/// Dropping a `Runtime` drops every task's future that has not finished, on the dropping
/// thread, with this runtime current even when dropped inside another's `block_on` (a
/// [`spawn`](crate::spawn) from one of those destructors lands here, and is dropped in turn
/// without being polled). Their `JoinHandle`s then report cancelled, or a panic if the
/// future's destructor panicked, as after an abort; the drop itself does not unwind. It
/// closes its epoll fd and eventfd once no I/O handle uses them any more, and makes later
/// wakes of its tasks do nothing. Blocking jobs not yet started are dropped; running ones
/// finish detached: the drop does not wait for them (tokio's does), except for overlap's own
/// file and standard-stream writes (`fs::File`, `io::stdout`, `io::stderr`), which it waits
/// for for up to 10 s so that a process exiting right after keeps the bytes a `write`
/// accepted. To choose the wait, use [`shutdown_timeout`](Runtime::shutdown_timeout) or
/// [`shutdown_background`](Runtime::shutdown_background) instead.
///
/// Memory after a burst: the sync primitives' wait lines, a `JoinSet` emptied by joining
/// its tasks, and the run queue give a burst's room back once it is over. The table of registered fds, the registry of tasks
/// and the timer wheel do not shrink: they keep room for the most fds ever registered, tasks
/// ever alive and timers ever pending at once (about 150, 16 and 64 bytes each, rounded up
/// to a power of two: 2.7 MB once 10,000 connections, each with its task, have come and gone;
/// 64 MB after a million timers), and reuse it for later ones, where tokio frees each entry
/// as it goes. The kept room makes the next burst cheaper: a million timers register about
/// twice as fast as into an empty wheel.
///
/// ```
/// let rt = overlap::Runtime::new().unwrap();
/// let handle = rt.spawn(async { 1 + 1 });
/// assert_eq!(rt.block_on(handle).unwrap(), 2);
/// ```
pub struct Runtime {
    core: Rc<Core>,
    /// What the drop waits for on the blocking pool.
    pool_wait: Cell<PoolWait>,
}

// A panic caught around `block_on` (or any call) leaves the runtime consistent: its tasks
// catch their own panics, and a panicking `block_on` future is dropped like any other, so
// the runtime goes on serving afterwards (tokio's `Runtime` is unwind-safe too).
impl std::panic::UnwindSafe for Runtime {}
impl std::panic::RefUnwindSafe for Runtime {}

/// Configures a [`Runtime`]. Its methods take `&mut self`, as tokio's do: chain them, or
/// set the builder up statement by statement; [`build`](Builder::build) leaves it as it
/// was, to build another runtime with the same settings.
///
/// ```
/// let rt = overlap::Runtime::builder().event_interval(31).build().unwrap();
/// rt.block_on(async {});
///
/// let mut builder = overlap::Runtime::builder();
/// builder.thread_name("io-pool");
/// if std::env::var_os("MY_APP_SMALL").is_some() {
///     builder.max_blocking_threads(4);
/// }
/// let rt = builder.build().unwrap();
/// # drop(rt);
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    config: Config,
}

impl Builder {
    /// A builder with default settings.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The same as [`Builder::new`], under tokio's name: every overlap runtime runs its tasks
    /// on the thread that calls [`Runtime::block_on`], as tokio's current-thread runtime does.
    ///
    /// ```
    /// use overlap::runtime::Builder;
    ///
    /// let rt = Builder::new_current_thread().enable_all().build().unwrap();
    /// assert_eq!(rt.block_on(async { 6 * 7 }), 42);
    /// ```
    pub fn new_current_thread() -> Builder {
        Builder::new()
    }

    /// Does nothing, for code written for tokio: the reactor and the timers are always on.
    pub fn enable_all(&mut self) -> &mut Builder {
        self
    }

    /// Does nothing, for code written for tokio: the reactor is always on.
    pub fn enable_io(&mut self) -> &mut Builder {
        self
    }

    /// Does nothing, for code written for tokio: the timers are always on.
    pub fn enable_time(&mut self) -> &mut Builder {
        self
    }

    /// How many task polls may run between two looks at the reactor (and timers) while tasks
    /// keep being ready. Default 61. Lower favours I/O latency, higher favours throughput.
    /// `0` is taken as `1`: the reactor is looked at after every task poll.
    pub fn event_interval(&mut self, polls: u32) -> &mut Builder {
        self.config.event_interval = polls.max(1) as usize;
        self
    }

    /// How many events one `epoll_wait` fetches. Default 1024. `0` is taken as `1`, and
    /// more than 1,048,576 as that many (the buffer is allocated when the runtime is built);
    /// events past it wait for the next look, none is lost.
    pub fn max_events(&mut self, events: usize) -> &mut Builder {
        self.config.max_events = events.clamp(1, 1 << 20);
        self
    }

    /// The most threads the blocking pool starts. Default 512. `0` is taken as `1` (a pool
    /// needs a thread to run anything); `usize::MAX` sets no limit.
    pub fn max_blocking_threads(&mut self, threads: usize) -> &mut Builder {
        self.config.max_blocking_threads = threads.max(1);
        self
    }

    /// How long an idle blocking-pool thread lingers before it exits. Default 10 s.
    /// [`thread_keep_alive`](Builder::thread_keep_alive) is the same, under tokio's name.
    pub fn blocking_keep_alive(&mut self, keep_alive: Duration) -> &mut Builder {
        self.config.blocking_keep_alive = keep_alive;
        self
    }

    /// [`blocking_keep_alive`](Builder::blocking_keep_alive) under tokio's name: how long an
    /// idle blocking-pool thread lingers before it exits (default 10 s), for a tokio
    /// builder moving over unchanged. As in tokio, it concerns the pool's threads only,
    /// the runtime's own being the thread that calls [`Runtime::block_on`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::runtime::Builder;
    ///
    /// let rt = Builder::new_current_thread()
    ///     .max_blocking_threads(8)
    ///     .thread_keep_alive(Duration::from_millis(50))
    ///     .enable_all()
    ///     .build()
    ///     .unwrap();
    /// let answer = rt.block_on(async { overlap::spawn_blocking(|| 6 * 7).await });
    /// assert_eq!(answer.unwrap(), 42);
    /// ```
    pub fn thread_keep_alive(&mut self, keep_alive: Duration) -> &mut Builder {
        self.blocking_keep_alive(keep_alive)
    }

    /// Stack size, in bytes, of blocking-pool threads. Default: the standard library's (2 MiB
    /// unless `RUST_MIN_STACK` says otherwise). A size below the least a thread needs is
    /// raised to it; one the kernel refuses (more than the address space can map) fails each
    /// blocking job, as when no thread can be started, with an error naming the size.
    pub fn thread_stack_size(&mut self, bytes: usize) -> &mut Builder {
        self.config.blocking_stack_size = Some(bytes);
        self
    }

    /// The name of blocking-pool threads. Default `overlap-blocking`. A name with a NUL byte
    /// makes [`build`](Builder::build) fail with `InvalidInput`. The last of this and
    /// [`thread_name_fn`](Builder::thread_name_fn) called is the one that counts.
    pub fn thread_name(&mut self, name: impl Into<String>) -> &mut Builder {
        self.config.blocking_thread_name = ThreadName::Fixed(name.into());
        self
    }

    /// Names each blocking-pool thread with what `f` returns, called on the thread that
    /// starts it (the one that queued the job) just before. It replaces
    /// [`thread_name`](Builder::thread_name), as that replaces it: the last called counts.
    ///
    /// A panic in `f`, or a name with a NUL byte, does not escape: that thread is not
    /// started, as when the system refuses a thread. A job that would have run on it waits
    /// for a thread already running, or fails with an error naming `thread_name_fn` when
    /// there is none.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let rt = overlap::Runtime::builder()
    ///     .thread_name_fn(|| {
    ///         static NEXT: AtomicUsize = AtomicUsize::new(0);
    ///         format!("file-io-{}", NEXT.fetch_add(1, Ordering::Relaxed))
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let name = rt.block_on(async {
    ///     overlap::spawn_blocking(|| std::thread::current().name().map(String::from)).await
    /// });
    /// assert!(name.unwrap().unwrap().starts_with("file-io-"));
    /// ```
    pub fn thread_name_fn(
        &mut self,
        f: impl Fn() -> String + Send + Sync + 'static,
    ) -> &mut Builder {
        self.config.blocking_thread_name = ThreadName::Computed(Arc::new(f));
        self
    }

    /// Runs `f` on each blocking-pool thread as it starts, before any job (to set a
    /// thread-local, pin the thread, start a tracing span). A panic in `f` is caught and
    /// ignored (so is one of its payload's destructor): the thread goes on to its jobs.
    /// `f` runs outside any runtime: [`Handle::try_current`] is `None` there, where tokio's
    /// hooks see their runtime.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let count = started.clone();
    /// let rt = overlap::Runtime::builder()
    ///     .thread_name("file-io")
    ///     .on_thread_start(move || {
    ///         count.fetch_add(1, Ordering::SeqCst);
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let name = rt.block_on(async {
    ///     overlap::spawn_blocking(|| std::thread::current().name().map(String::from)).await
    /// });
    /// assert_eq!(name.unwrap().as_deref(), Some("file-io"));
    /// assert!(started.load(Ordering::SeqCst) >= 1);
    /// ```
    pub fn on_thread_start(&mut self, f: impl Fn() + Send + Sync + 'static) -> &mut Builder {
        self.config.on_thread_start = Some(crate::blocking::Hook(Arc::new(f)));
        self
    }

    /// Runs `f` on each blocking-pool thread as it stops (idle past its keep-alive, or the
    /// runtime shut down), after its last job. A panic in `f` is caught and ignored (so is
    /// one of its payload's destructor): the thread still counts as stopped. As the start
    /// hook, `f` runs outside any runtime.
    ///
    /// Dropping the runtime does not wait for its pool threads: a thread finishing a job
    /// then runs `f` later, and not at all if the process exits first.
    /// [`Runtime::shutdown_timeout`] waits for every thread's `f` (within its timeout).
    pub fn on_thread_stop(&mut self, f: impl Fn() + Send + Sync + 'static) -> &mut Builder {
        self.config.on_thread_stop = Some(crate::blocking::Hook(Arc::new(f)));
        self
    }

    /// Starts the runtime with its clock [paused](crate::time::pause), for tests: timers then
    /// fire when `time::advance` moves the clock, or at once when nothing else is left to
    /// do. Default `false`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = overlap::Runtime::builder().start_paused(true).build().unwrap();
    /// let real = std::time::Instant::now();
    /// rt.block_on(overlap::time::sleep(Duration::from_secs(600)));
    /// assert!(real.elapsed() < Duration::from_secs(60));
    /// ```
    pub fn start_paused(&mut self, paused: bool) -> &mut Builder {
        self.config.start_paused = paused;
        self
    }

    /// Creates a runtime with these settings: an epoll fd and an eventfd, both close-on-exec.
    /// The builder is left as it was.
    pub fn build(&mut self) -> io::Result<Runtime> {
        if matches!(&self.config.blocking_thread_name, ThreadName::Fixed(name) if name.contains('\0'))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a thread name cannot contain a NUL byte",
            ));
        }
        Ok(Runtime {
            core: Rc::new(Core::new(self.config.clone())?),
            pool_wait: Cell::new(PoolWait::Durable),
        })
    }
}

impl Runtime {
    /// A runtime with default settings.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A [`Builder`] to configure a runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Runs `future` to completion on this thread, running spawned tasks, I/O and timers
    /// meanwhile. Tasks still pending when it returns stay in the runtime and run again at the
    /// next `block_on`. A panic in `future` propagates to the caller.
    ///
    /// # Panics
    /// If a `block_on` is already running on this thread: called from one of its tasks or
    /// from its future (a task must `.await`, not block). A [`Runtime::enter`] guard alone
    /// does not count: `block_on` runs under one, of this runtime or another.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _enter = EnterGuard::enter(&self.core);
        let core = &*self.core;
        // Time went by since the last call: deadlines passed meanwhile are past at once.
        core.timers().refresh_clock();
        let main = MainTask::new(&core.shared);
        // Lets the future's `yield_now` wait behind the ready tasks; unset when this returns
        // or unwinds, before `main` goes.
        struct MainSet<'a>(&'a Core);
        impl Drop for MainSet<'_> {
            fn drop(&mut self) {
                self.0.set_main(None);
            }
        }
        core.set_main(Some(main.task()));
        let _main_set = MainSet(core);
        let mut future = pin!(future);
        loop {
            if main.take_woken() {
                let budget = crate::coop::poll_budget();
                core.count_main_poll();
                let poll = main.with_waker(|w| future.as_mut().poll(&mut Context::from_waker(w)));
                drop(budget);
                if let Poll::Ready(out) = poll {
                    return out;
                }
            }
            let ran = core.run_batch();
            // Block only when nothing is ready: no task ran a full batch and main is not woken.
            core.park(ran < core.config.event_interval && !main.is_woken());
        }
    }

    /// Makes this runtime the current one on this thread until the guard drops, without
    /// running it: [`spawn`](crate::spawn), sockets, timers and [`AsyncFd`](crate::AsyncFd)
    /// made meanwhile belong to it, and run at its next [`block_on`](Runtime::block_on) (which
    /// may be called while the guard lives). For setting things up from synchronous code.
    ///
    /// Guards nest, with `block_on` calls too: the current runtime is always the one entered
    /// last among those still entered, whatever order the guards drop in. Meant for
    /// synchronous code: a guard held across an `.await` inside another runtime's `block_on`
    /// makes the timers, sockets and tasks created meanwhile belong to this runtime, which
    /// runs them only when it is driven.
    ///
    /// ```
    /// let rt = overlap::Runtime::new()?;
    /// let task = {
    ///     let _guard = rt.enter();
    ///     overlap::spawn(async { 6 * 7 }) // no runtime is running: it waits for block_on
    /// };
    /// assert_eq!(rt.block_on(task).unwrap(), 42);
    ///
    /// let _guard = rt.enter();
    /// assert_eq!(rt.block_on(async { 7 }), 7, "block_on runs while a guard lives");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn enter(&self) -> RuntimeGuard<'_> {
        RuntimeGuard {
            _guard: EnterGuard::replace(&self.core),
            _runtime: PhantomData,
        }
    }

    /// Spawns a task on this runtime from outside it; it runs during the next `block_on`.
    pub fn spawn<F: Future + 'static>(&self, future: F) -> JoinHandle<F::Output> {
        self.core.spawn(future)
    }

    /// Runs `f` on this runtime's blocking pool, as [`spawn_blocking`](crate::spawn_blocking)
    /// does inside it; callable from outside the runtime (the handle is awaited in a later
    /// `block_on`).
    ///
    /// ```
    /// let rt = overlap::Runtime::new()?;
    /// let job = rt.spawn_blocking(|| 6 * 7);
    /// assert_eq!(rt.block_on(job).unwrap(), 42);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let _enter = self.enter();
        crate::spawn_blocking(f)
    }

    /// A snapshot of this runtime's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.core.metrics()
    }

    /// A [`Handle`] to this runtime, for spawning onto it from other threads.
    pub fn handle(&self) -> Handle {
        Handle::new(self.core.shared.clone())
    }

    /// Shuts the runtime down as dropping it does, then waits until every blocking job
    /// still running ([`spawn_blocking`](crate::spawn_blocking) work, file operations) has
    /// finished, and the clean-up work its dropped tasks left (a file's unwritten bytes, a
    /// lingering socket's close) too, and then until every pool thread has stopped (its
    /// [`on_thread_stop`](Builder::on_thread_stop) hook run and its thread-locals dropped,
    /// as tokio's does), all for at most `timeout`. Jobs not yet started are dropped without
    /// running. A job still running after `timeout` finishes detached, on its pool thread.
    /// The one wait `timeout` does not bound: once every thread has left its work in time,
    /// each is joined, so a thread-local destructor of a pool thread that blocks holds this
    /// call until it returns.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let rt = overlap::Runtime::new().unwrap();
    /// let done = Arc::new(AtomicBool::new(false));
    /// let flag = done.clone();
    /// let (started_tx, started) = std::sync::mpsc::channel();
    /// rt.block_on(async move {
    ///     // The job is handed to the pool at once; dropping its handle detaches it.
    ///     drop(overlap::spawn_blocking(move || {
    ///         started_tx.send(()).unwrap();
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         flag.store(true, Ordering::SeqCst);
    ///     }));
    /// });
    /// started.recv().unwrap(); // a pool thread runs it, with or without the loop
    /// rt.shutdown_timeout(Duration::from_secs(60));
    /// assert!(done.load(Ordering::SeqCst));
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) {
        self.pool_wait.set(PoolWait::All(timeout));
        drop(self);
    }

    /// Shuts the runtime down as dropping it does, without waiting for any blocking job,
    /// not even a file's write: running jobs finish detached on their pool threads. For a
    /// runtime dropped from inside another one, where blocking is not allowed.
    ///
    /// ```
    /// let rt = overlap::Runtime::new().unwrap();
    /// let task = rt.spawn(std::future::pending::<()>());
    /// rt.shutdown_background();
    /// assert!(task.is_finished());
    /// ```
    pub fn shutdown_background(self) {
        self.pool_wait.set(PoolWait::Nothing);
        drop(self);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Enter so that wakes and spawns from dropped futures land on this runtime, whichever
        // runtime (if any) is running on this thread.
        let _enter = EnterGuard::replace(&self.core);
        self.core.shutdown(self.pool_wait.get());
    }
}

/// The guard of [`Runtime::enter`]: while it lives, its runtime is the current one on this
/// thread. Not `Send`: it belongs to the thread that made it.
#[must_use = "the runtime stays current only while the guard lives"]
pub struct RuntimeGuard<'a> {
    _guard: EnterGuard,
    _runtime: PhantomData<&'a Runtime>,
}

impl fmt::Debug for RuntimeGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeGuard").finish_non_exhaustive()
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("metrics", &self.metrics())
            .finish()
    }
}

/// Runs `future` to completion on a new runtime built for the current thread, then drops the
/// runtime (and any task still pending).
///
/// # Panics
/// If the runtime cannot be created (no fds left), or if a `block_on` is already running on
/// this thread (see [`Runtime::block_on`]).
///
/// ```
/// assert_eq!(overlap::block_on(async { 7 }), 7);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let rt = Runtime::new()
        .unwrap_or_else(|e| panic!("overlap::block_on: cannot create a runtime: {e}"));
    rt.block_on(future)
}

/// [`block_on`] on a runtime whose clock starts paused: what
/// `#[overlap::test(start_paused = true)]` expands to.
#[doc(hidden)]
pub fn block_on_start_paused<F: Future>(future: F) -> F::Output {
    let rt = Runtime::builder()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("overlap::block_on: cannot create a runtime: {e}"));
    rt.block_on(future)
}

/// A snapshot of the current runtime's counters.
///
/// # Panics
/// When called outside a runtime, as on a blocking-pool thread or in
/// [`Handle::block_on`](crate::Handle::block_on), which run none (there
/// `Handle::current().spawn(async { overlap::metrics() })` asks the runtime's thread).
pub fn metrics() -> RuntimeMetrics {
    with_current(Core::metrics).unwrap_or_else(|| {
        super::no_runtime_here(
            "overlap::metrics",
            "overlap::Handle::current().spawn(async { overlap::metrics() })",
        )
    })
}
