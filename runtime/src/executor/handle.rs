//! `Handle`: spawning onto a runtime from any thread.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use super::context::{entered_depth, in_driving_block_on, with_current};
use super::remote_task::{remote_task, JoinSlot};
use super::shared::Shared;
use crate::blocking::{no_thread_message, Aborted};
use crate::task::{Id, JoinError};

thread_local! {
    /// On a blocking-pool thread running a `spawn_blocking` job, or in `Handle::block_on`:
    /// the runtime whose handle is current there, with how many runtimes were entered on
    /// this thread when it was set (one entered after it is the current one instead).
    static BLOCKING_JOB_OF: std::cell::RefCell<Option<(Arc<Shared>, usize)>> =
        const { std::cell::RefCell::new(None) };
}

/// The current runtime's clock now, as [`time::now`](crate::time::now) reads it, on the
/// same terms as [`Handle::try_current`]: where a blocking job of a runtime (or a
/// [`Handle::block_on`]) runs and no runtime was entered since, that runtime's clock, read
/// across threads; in a runtime entered on this thread, its own; `None` outside any.
pub(crate) fn clock_now() -> Option<std::time::Instant> {
    // `try_with`: called from a thread-local's destructor, it finds no job.
    let job = BLOCKING_JOB_OF.try_with(|s| match s.try_borrow().as_deref() {
        Ok(Some((shared, depth))) if entered_depth() <= *depth => Some(shared.clock.now()),
        _ => None,
    });
    job.ok()
        .flatten()
        .or_else(|| with_current(|core| core.timers().now()))
}

/// Panics for a call to `what`, which needs a runtime's thread, made where no runtime runs.
/// On a blocking-pool thread or in [`Handle::block_on`], where [`Handle::current`] works,
/// the message says so and names `instead`, the call through the handle that works there;
/// anywhere else it says the call was made outside of a runtime.
#[track_caller]
pub(crate) fn no_runtime_here(what: &str, instead: &str) -> ! {
    if Handle::try_current().is_some() {
        panic!(
            "{what} called on a blocking-pool thread (or in `Handle::block_on`), which runs \
             no runtime: use `{instead}`"
        );
    }
    panic!(
        "{what} called outside of a runtime: call it from a future run by `overlap::block_on` \
         or `Runtime::block_on`"
    )
}

/// A handle to a runtime that any thread may hold: it is `Send`, `Sync` and cheap to clone.
///
/// [`Handle::spawn`] starts a `Send` future as a task on that runtime from any thread: a
/// thread that accepts connections can hand each one to one of several runtimes, a blocking
/// worker can start async work. The task runs on the runtime's thread like any other, at the
/// runtime's next turn; a runtime asleep in `epoll_wait` is woken for it (several spawns
/// before it wakes cost one eventfd write).
///
/// A handle does not keep its runtime alive: once the [`Runtime`](crate::Runtime) is dropped,
/// [`spawn`](Handle::spawn) drops the future at once, on the calling thread, and its
/// [`RemoteJoinHandle`] reports cancelled.
///
/// ```
/// let rt = overlap::Runtime::new().unwrap();
/// let handle = rt.handle();
/// let from_thread = std::thread::spawn(move || handle.spawn(async { 6 * 7 }))
///     .join()
///     .unwrap();
/// assert_eq!(rt.block_on(from_thread).unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

// Everything a handle reaches is kept consistent across a panic (the remote queue is a
// mutex whose every critical section leaves it whole), as for tokio's `Handle`.
impl std::panic::UnwindSafe for Handle {}
impl std::panic::RefUnwindSafe for Handle {}

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Handle {
        Handle { shared }
    }

    /// The handle of the runtime running on this thread.
    ///
    /// # Panics
    /// Outside a runtime; see [`Handle::try_current`].
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let handle = overlap::Handle::current();
    ///     let task = handle.spawn(async { "spawned" });
    ///     assert_eq!(task.await.unwrap(), "spawned");
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> Handle {
        Handle::try_current().unwrap_or_else(|| {
            panic!(
                "overlap::Handle::current called outside of a runtime: call it from a future \
                 run by `overlap::block_on` or `Runtime::block_on`, or use `Runtime::handle`"
            )
        })
    }

    /// The handle of the runtime running on this thread, or `None` outside a runtime. On a
    /// blocking-pool thread, while it runs a [`spawn_blocking`](crate::spawn_blocking) job,
    /// it is the handle of the runtime that spawned the job, so blocking work can start
    /// async work there. That work must run *on* the runtime (`spawn`, `spawn_with`):
    /// timers, sockets and signals belong to the runtime's thread, so a `sleep` or
    /// `connect` polled on the pool thread by another executor panics or fails with an
    /// `Other` error (tokio's blocking threads allow it).
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let task = overlap::spawn_blocking(|| {
    ///         overlap::Handle::current().spawn(async { "from the pool" })
    ///     });
    ///     let remote = task.await.unwrap();
    ///     assert_eq!(remote.await.unwrap(), "from the pool");
    /// });
    /// ```
    pub fn try_current() -> Option<Handle> {
        // `try_with`: called from a thread-local's destructor, it finds nothing.
        let job = BLOCKING_JOB_OF
            .try_with(|s| s.borrow().clone())
            .ok()
            .flatten();
        match job {
            // Set inside every runtime entered now (a `Handle::block_on` under another
            // runtime's `enter` guard): it is the innermost.
            Some((shared, depth)) if entered_depth() <= depth => Some(Handle::new(shared)),
            job => with_current(|core| Handle::new(core.shared.clone()))
                .or_else(|| job.map(|(shared, _)| Handle::new(shared))),
        }
    }

    /// Runs `future` to completion on the calling thread, blocking it meanwhile, with this
    /// handle as [`Handle::current`]: for synchronous code on another thread (a
    /// [`spawn_blocking`](crate::spawn_blocking) job, a library's own thread) that needs the
    /// result of async work on the runtime.
    ///
    /// The future is polled here, not on the runtime's thread, and it does not drive the
    /// runtime; [`time::now`](crate::time::now) there reads the runtime's clock, paused or
    /// not. Timers, sockets and the other I/O types belong to the runtime's thread, so
    /// work that uses them is started there with [`spawn`](Handle::spawn) or
    /// [`spawn_with`](Handle::spawn_with) and its [`RemoteJoinHandle`] awaited here; the
    /// runtime's thread must be in `block_on` for that work to run (the same limit as
    /// tokio's `Handle::block_on` on a current-thread runtime). Futures that need no reactor
    /// (a `RemoteJoinHandle`, `futures` channels) can be awaited directly. On the runtime's
    /// own thread, outside `block_on`, the runtime's tasks cannot run while this blocks:
    /// use [`Runtime::block_on`](crate::Runtime::block_on) there.
    ///
    /// # Panics
    /// On a thread inside a runtime's `block_on` (in a task, or the `block_on` future
    /// itself): blocking there would stop that runtime's loop, so the call panics instead of
    /// deadlocking. A panic in `future` propagates to the caller.
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let job = overlap::spawn_blocking(|| {
    ///         // Synchronous code on a pool thread that needs async work done.
    ///         let handle = overlap::Handle::current();
    ///         let task = handle.spawn_with(|| async {
    ///             overlap::time::sleep(std::time::Duration::from_millis(1)).await;
    ///             "timed on the runtime"
    ///         });
    ///         handle.block_on(task).unwrap()
    ///     });
    ///     assert_eq!(job.await.unwrap(), "timed on the runtime");
    /// });
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if in_driving_block_on() {
            panic!(
                "overlap::Handle::block_on called on a thread running a runtime's `block_on`: \
                 blocking it would stop that runtime's loop; `.await` the future instead"
            );
        }
        self.run_as_current(|| park_until_ready(future))
    }

    /// This handle's runtime's blocking pool.
    pub(crate) fn blocking_pool(&self) -> &crate::blocking::BlockingPool {
        &self.shared.blocking
    }

    /// Runs `f` (a blocking job spawned from this handle's runtime) with this handle as
    /// [`Handle::current`] on the calling pool thread.
    pub(crate) fn run_as_current<R>(&self, f: impl FnOnce() -> R) -> R {
        /// Puts the previous value back even if `f` panics.
        struct Restore(Option<(Arc<Shared>, usize)>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                BLOCKING_JOB_OF.with(|s| *s.borrow_mut() = prev);
            }
        }
        let current = (self.shared.clone(), entered_depth());
        let prev = BLOCKING_JOB_OF.with(|s| s.replace(Some(current)));
        let _restore = Restore(prev);
        f()
    }

    /// Spawns `future` as a task on this handle's runtime, from any thread.
    ///
    /// The task is polled only on the runtime's thread. Called there, it is queued at once, as
    /// [`spawn`](crate::spawn) would; from another thread it is queued remotely and the
    /// runtime's loop is woken. Dropping the returned [`RemoteJoinHandle`] detaches the task.
    ///
    /// If the runtime is gone (or is being dropped), `future` is dropped on this thread
    /// without being polled, and the handle reports cancelled. A task still pending when its
    /// runtime is dropped is dropped on the runtime's thread and reports cancelled too.
    ///
    /// The future must be `Send` because it is made on this thread. overlap's I/O types are
    /// not `Send` (they belong to one runtime's reactor), so a task that does I/O is started
    /// with [`spawn_with`](Handle::spawn_with) instead.
    pub fn spawn<F>(&self, future: F) -> RemoteJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_with(move || future)
    }

    /// Spawns the future that `make` returns as a task on this handle's runtime, from any
    /// thread. `make` is sent to the runtime's thread and called there, inside the task, so
    /// the future it makes need not be `Send`: it may hold sockets, `Rc`s and `RefCell`s.
    ///
    /// Otherwise as [`spawn`](Handle::spawn); a panic in `make` is reported like a panic in
    /// the future, and if the task never runs, `make` is dropped without being called.
    ///
    /// Handing accepted connections to other runtimes, each on its own thread:
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::net::TcpStream;
    ///
    /// let worker = overlap::Runtime::new().unwrap();
    /// let to_worker = worker.handle();
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = listener.local_addr().unwrap();
    /// let acceptor = std::thread::spawn(move || {
    ///     let (conn, _) = listener.accept().unwrap();
    ///     // A std socket is `Send`; the overlap one is made on the worker's thread.
    ///     to_worker.spawn_with(move || async move {
    ///         let mut conn = TcpStream::from_std(conn)?;
    ///         conn.write_all(b"hello from the worker").await
    ///     })
    /// });
    /// let mut client = std::net::TcpStream::connect(addr).unwrap();
    /// let served = acceptor.join().unwrap();
    /// worker.block_on(served).unwrap().unwrap();
    /// let mut greeting = String::new();
    /// std::io::Read::read_to_string(&mut client, &mut greeting).unwrap();
    /// assert_eq!(greeting, "hello from the worker");
    /// ```
    pub fn spawn_with<F, Fut>(&self, make: F) -> RemoteJoinHandle<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let (job, slot) = remote_task(make);
        let home = Arc::as_ptr(&self.shared);
        if with_current(|core| std::ptr::eq(core.shared_ptr(), home)) == Some(true) {
            with_current(move |core| job.start(core));
        } else {
            // From another thread, or from inside another runtime. A closed runtime hands
            // the job back: dropping it here cancels the task, which never runs.
            drop(self.shared.push_spawn(job));
        }
        RemoteJoinHandle {
            slot,
            done: false,
            started_in: None,
        }
    }

    /// Runs `f` on this handle's runtime's blocking pool, from any thread: what
    /// [`spawn_blocking`](crate::spawn_blocking) does inside the runtime, for a thread that
    /// has none, such as a pool thread running a blocking job.
    ///
    /// The job goes straight onto the pool, and its result straight to the returned
    /// handle: nobody needs to drive the runtime's loop meanwhile, so a thread can
    /// `Handle::block_on` it. Inside `f`, [`Handle::current`] is this handle, and
    /// [`time::now`](crate::time::now) reads this handle's runtime's clock, paused or not.
    ///
    /// - A panic in `f` makes the handle yield a panic [`JoinError`](crate::JoinError); so
    ///   does a pool that has no thread and cannot start one (the message carries the error).
    /// - Aborting the handle makes it report cancelled at once. A job that has not started
    ///   yet is then dropped without running; one that runs goes on to its end, its result
    ///   dropped. Dropping the handle never stops the job.
    /// - If the runtime is shut down, or shuts down before the job starts, `f` is dropped
    ///   without running and the handle reports cancelled.
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let outer = overlap::spawn_blocking(|| {
    ///         // On a pool thread: `overlap::spawn_blocking` needs a runtime's thread.
    ///         overlap::Handle::current().spawn_blocking(|| 6 * 7)
    ///     });
    ///     let inner = outer.await.unwrap();
    ///     assert_eq!(inner.await.unwrap(), 42);
    /// });
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> RemoteJoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.spawn_pool_job(f, Aborted::Skip, |err, id| {
            Err(JoinError::panic(Box::new(no_thread_message(err)), id))
        })
    }

    /// Queues `f` on this handle's runtime's pool, its result going straight to the
    /// returned handle: [`Handle::spawn_blocking`] with a choice of what an abort before
    /// the start does (`aborted`) and of the result when no pool thread can be started
    /// (`no_thread`). With [`Aborted::Run`] (overlap's own I/O jobs), the handle polled in
    /// the very poll that started the job waits, even if a fast job is done by then (see
    /// [`spawn_blocking_or_error`](crate::spawn_blocking_or_error)).
    pub(crate) fn spawn_pool_job<F, R>(
        &self,
        f: F,
        aborted: Aborted,
        no_thread: fn(&io::Error, Id) -> Result<R, JoinError>,
    ) -> RemoteJoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot = crate::blocking::spawn_on_pool(
            &self.shared.blocking,
            self.clone(),
            f,
            aborted,
            no_thread,
        );
        RemoteJoinHandle {
            slot,
            done: false,
            started_in: (aborted == Aborted::Run).then(super::core::poll_seq),
        }
    }
}

/// Wakes a thread parked in [`park_until_ready`]. The flag is this call's own: the thread's
/// park token is shared by every `park_until_ready` on it, and a nested call (a
/// `Handle::block_on` inside another's future) consumes a wake meant for the outer one.
struct Unparker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Polls `future` on this thread until it is ready, parking the thread between polls until
/// its waker is called. A wake before the park leaves the flag set, so it is never lost,
/// not even to a nested call parking meanwhile; a spurious unpark only parks again.
pub(crate) fn park_until_ready<F: Future>(future: F) -> F::Output {
    let unparker = Arc::new(Unparker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(unparker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        while !unparker.woken.swap(false, Ordering::Acquire) {
            thread::park();
        }
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("runtime", &Arc::as_ptr(&self.shared))
            .finish()
    }
}

/// Awaits a task spawned with [`Handle::spawn`]; unlike [`JoinHandle`](crate::JoinHandle) it
/// is `Send`, so it can be awaited, aborted or dropped on any thread (in any runtime, or in
/// none: it needs no reactor).
///
/// It resolves to the task's output, or to a [`JoinError`] if the task panicked
/// ([`is_panic`](JoinError::is_panic)) or was aborted, or its runtime dropped it
/// ([`is_cancelled`](JoinError::is_cancelled)). Dropping it detaches the task; an output or
/// error it holds unread is dropped with it, and a destructor of that which panics (a
/// panic payload's, say) is contained there, as a `JoinHandle`'s drop contains it. Awaiting
/// `&mut handle` (in a `select!`, under a timeout) is cancel-safe, as with a `JoinHandle`:
/// the output waits for a later await.
///
/// # Panics
/// Polled again after it returned the result (it is a `FusedFuture`).
///
/// ```
/// let rt = overlap::Runtime::new().unwrap();
/// let task = rt.handle().spawn(async { 6 * 7 });
/// // Another thread awaits it, in a runtime of its own...
/// let waiter = std::thread::spawn(move || overlap::block_on(task).unwrap());
/// // ...while this one runs the task's runtime until that thread has the output.
/// let out = rt.block_on(rt.spawn_blocking(move || waiter.join().unwrap()));
/// assert_eq!(out.unwrap(), 42);
/// ```
///
/// A wait given up loses nothing:
///
/// ```
/// use std::time::Duration;
/// use overlap::sync::mpsc::cross_thread;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = cross_thread::channel::<u32>(1);
///     let handle = overlap::Handle::current();
///     let mut task = handle.spawn_with(move || async move { rx.recv().await });
///     let early = overlap::time::timeout(Duration::from_millis(1), &mut task).await;
///     assert!(early.is_err(), "nothing sent yet");
///     tx.send(7).await.unwrap();
///     assert_eq!(task.await.unwrap(), Some(7));
/// });
/// ```
pub struct RemoteJoinHandle<T> {
    slot: Arc<dyn JoinSlot<T>>,
    /// The result was returned: the handle is terminated (`FusedFuture`).
    done: bool,
    /// For overlap's own I/O jobs until the first poll: the loop poll (`core::poll_seq`)
    /// that started the job. Polled in that same poll, the handle waits whatever the output:
    /// an I/O operation that starts a pool job and polls it at once returns `Pending`, so
    /// dropping it then always leaves the job's result to the operation's owner (a `File`),
    /// never to the dropped future, however fast the job ran. (First polled under another
    /// runtime whose count happens to be equal, it waits once for nothing, waking itself.)
    started_in: Option<u64>,
}

impl<T> RemoteJoinHandle<T> {
    /// Asks the task to stop, from any thread. Its future is dropped on the runtime's thread
    /// at the runtime's next turn (also while it waits on I/O or a timer), and the handle then
    /// reports cancelled. A task that already finished keeps its output.
    ///
    /// ```
    /// let rt = overlap::Runtime::new().unwrap();
    /// let task = rt.handle().spawn(std::future::pending::<()>());
    /// task.abort();
    /// assert!(rt.block_on(task).unwrap_err().is_cancelled());
    /// ```
    pub fn abort(&self) {
        self.slot.abort();
    }

    /// Whether the task has finished: returned, panicked, or been cancelled.
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }

    /// [`abort`](RemoteJoinHandle::abort) for an owner about to drop the handle with it
    /// (an `Unblock` dropped mid-job): the waker of the handle's last poll goes first, so
    /// that the abort, which settles a blocking job's handle as cancelled at once, does
    /// not wake a task whose wait is gone.
    pub(crate) fn abort_unwatched(&self) {
        self.slot.release_waiter();
        self.slot.abort();
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// Spends a unit of the polling task's cooperative budget when the output is ready, as
    /// a `JoinHandle` does (no budget applies on a thread that runs no runtime).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // The output is gone: a second answer would be a made-up one (as tokio, say so).
        assert!(
            !this.done,
            "RemoteJoinHandle polled after it returned the task's result"
        );
        if this.started_in.take() == Some(super::core::poll_seq()) {
            if this.slot.register(cx) {
                // Done already: polled again at once, it returns the output.
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        let out = crate::coop::budgeted(cx, |cx| this.slot.poll_output(cx));
        this.done = out.is_ready();
        out
    }
}

// A panic while a handle is held leaves its task and its result slot as they were (as
// tokio's `JoinHandle`): the output is still there for a later await.
impl<T> std::panic::UnwindSafe for RemoteJoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for RemoteJoinHandle<T> {}

/// Detaches the task (or job), and lets go of the waker its last poll left. An output (or
/// error) already there and never read is dropped here, as a `JoinHandle`'s drop does it:
/// a destructor of it that panics (a panic payload's, say) is contained, not unwound into
/// whatever drops the handle.
impl<T> Drop for RemoteJoinHandle<T> {
    fn drop(&mut self) {
        if !self.done {
            self.slot.release_waiter();
            if let Some(unread) = self.slot.take_unread() {
                crate::unwind::contain(move || drop(unread));
            }
        }
    }
}

/// Terminated once it has returned the task's result.
impl<T> futures_core::FusedFuture for RemoteJoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
