//! `spawn_blocking`: run blocking work on the pool and await it from a task.

mod pool;
mod remote;

pub(crate) mod completion;

use std::cell::Cell;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use completion::completion;

pub use pool::DurableWork;
use pool::Finish;
pub(crate) use pool::{BlockingPool, Hook, PoolConfig, ThreadName};
pub(crate) use remote::spawn_on_pool;

use crate::task::{Id, JoinHandle};
use crate::RemoteJoinHandle;

thread_local! {
    /// On a pool thread running a `spawn_blocking` closure: the ID of the task relaying its
    /// result, which `task::try_id` reports there (the closure is that task's work).
    static JOB_TASK: Cell<Option<Id>> = const { Cell::new(None) };
}

/// The ID of the task whose `spawn_blocking` closure runs on this thread, if any.
pub(crate) fn job_task_id() -> Option<Id> {
    JOB_TASK.try_with(Cell::get).ok().flatten()
}

/// Runs `f` with `id` as the current blocking job's task ID, restoring the previous one
/// even if `f` panics.
fn with_job_task<R>(id: Id, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Id>);
    impl Drop for Restore {
        fn drop(&mut self) {
            JOB_TASK.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(JOB_TASK.with(|t| t.replace(Some(id))));
    f()
}

/// Runs a job's `f` on this pool thread: with `handle` as the current handle and `id` as
/// the current task ID, catching its panic. The caller marks the thread as looking for
/// work ([`Finish::done`]) before it hands the result over (so the task's next job finds
/// it free), or, when nobody can take the result, once it has dropped it (a drop that may
/// block: until it ends, the thread is not free).
fn run_job<R>(id: Id, handle: &crate::Handle, f: impl FnOnce() -> R) -> std::thread::Result<R> {
    catch_unwind(AssertUnwindSafe(|| {
        with_job_task(id, || handle.run_as_current(f))
    }))
}

/// What a job's handle says when no pool thread exists and none could be started.
pub(crate) fn no_thread_message(err: &io::Error) -> String {
    format!("spawn_blocking: could not start a blocking thread: {err}")
}

/// What a job sends back: its return value or panic, or the error that kept it from running.
type Outcome<R> = Result<std::thread::Result<R>, io::Error>;

/// Runs `f` on the runtime's blocking thread pool and returns a handle to its result.
///
/// Use it for work that would stall the event loop: blocking syscalls, file I/O, CPU-heavy
/// computation, host-name resolution. Threads start on demand up to
/// [`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads) (default 512);
/// further jobs wait in a queue. An idle thread exits after
/// [`Builder::blocking_keep_alive`](crate::Builder::blocking_keep_alive) (default 10 s).
/// The job's completion wakes the event loop through the runtime's cross-thread wake path.
///
/// Round trips are kept short: a thread that finishes a job looks for the next one for about
/// 50 µs before it parks, and while jobs run the event loop watches for their results for as
/// long before it sleeps in epoll. Both stop doing so when it has not paid lately (long
/// jobs), so they do not burn a CPU the jobs need.
///
/// - A panic in `f` makes the handle yield a panic [`JoinError`](crate::JoinError).
/// - If no pool thread exists and none can be started (the kernel refuses with `EAGAIN`),
///   the handle yields a panic `JoinError` whose message carries that error; if some thread
///   exists, the job simply waits for it.
/// - Jobs beyond the pool's thread limit wait in line, first in first out. So a job that
///   blocks its thread until a job it queued itself (through
///   [`Handle::spawn_blocking`](crate::Handle::spawn_blocking)) has run can wait for ever
///   once every thread is taken by such waits (with a one-thread pool, at once): hand the
///   inner work to a task, or do it in the job itself.
/// - Dropping the handle never stops `f`. Aborting it makes it report cancelled, at the
///   runtime's next turn; a job that has not started by then is dropped without running
///   (tokio's may be too), while one that runs goes on to its end and its result is
///   dropped.
/// - Dropping the runtime drops jobs still queued (never started) and lets running ones
///   finish detached; it does not wait for them (unlike tokio, whose runtime drop does).
///   Await the handle for work that must finish, or end the runtime with
///   [`Runtime::shutdown_timeout`](crate::Runtime::shutdown_timeout). (The exception is overlap's own file
///   and standard-stream writes: the drop waits up to 10 s for the write job of a
///   `fs::File`, [`io::stdout`](crate::io::stdout) or [`io::stderr`](crate::io::stderr),
///   whose bytes a process exiting right after would otherwise lose.)
/// - Inside `f`, [`Handle::current`](crate::Handle::current) is the spawning runtime's
///   handle, so the job can start async work there, [`task::id`](crate::task::id)
///   is the returned handle's [`id`](JoinHandle::id), and [`time::now`](crate::time::now)
///   reads the spawning runtime's clock, [paused](crate::time::pause) or not, as tokio's
///   blocking threads do (see [Paused time](crate::time#paused-time-for-tests)).
/// - The result reaches the handle through a task of the spawning runtime: await the
///   handle there (see [`JoinHandle`]).
/// - The job cannot take most of overlap's [`sync`](crate::sync) channel ends along (they
///   are not `Send`). To stream values from a long job to a task (or from a task to a
///   job), use [`sync::mpsc::cross_thread`](crate::sync::mpsc::cross_thread), whose ends
///   are `Send`: the job calls tokio's `tx.blocking_send(v)` (or `rx.blocking_recv()`),
///   held back while the channel is full. Or run one job per item and forward each result
///   from a task.
///
/// # Panics
/// When called outside a runtime, including on a blocking-pool thread inside a job: there,
/// use [`Handle::spawn_blocking`](crate::Handle::spawn_blocking).
///
/// ```
/// overlap::block_on(async {
///     let sum = overlap::spawn_blocking(|| (1..=100u32).sum::<u32>()).await.unwrap();
///     assert_eq!(sum, 5050);
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    spawn_job(f)
}

/// Like [`spawn_blocking`], except that when no pool thread exists and none can be started,
/// the handle yields `Ok(Err(..))` with that error (kind `Other`, the OS error in its
/// message) instead of a panic `JoinError`: no panic is raised, so no panic hook runs and a
/// program built with `panic = "abort"` goes on. For overlap's own I/O on the pool
/// (`Unblock`, the standard streams, `overlap-fs`, `overlap-net`'s host name lookups), whose
/// operations report this as an `io::Error`.
///
/// The result goes straight to the returned handle, whichever runtime (or none) awaits it,
/// and with no task relaying it: a file used by one runtime after another never waits for
/// the first one to run. Also callable inside a blocking job, where
/// [`Handle::current`](crate::Handle::current) is the job's runtime.
///
/// Polled within the same task poll that spawned the job, the handle returns `Pending`
/// (waking at once if the job is already done), as the relay task of `spawn_blocking`
/// makes it: an operation dropped after the poll that started its job never took the job's
/// result, however fast the job, so its owner (a `File`, an `Unblock`) always finds it,
/// and what a dropped operation did is the same on a loaded machine as on an idle one.
/// Polled first in a later poll (a `File`'s next write looking at the previous one's job),
/// it returns the result at once.
///
/// Unlike `spawn_blocking`'s, a job aborted before it starts still runs: aborting only
/// makes its result be dropped, since the job may write bytes that a `write` already
/// reported as accepted. If the runtime shuts down before the job starts, the job is
/// dropped unrun and the handle reports cancelled.
///
/// # Panics
/// Outside a runtime (and outside a blocking job).
#[doc(hidden)]
#[track_caller]
pub fn spawn_blocking_or_error<F, R>(f: F) -> RemoteJoinHandle<io::Result<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let Some(handle) = crate::Handle::try_current() else {
        panic!("{OUTSIDE_RUNTIME}")
    };
    handle.spawn_pool_job(
        move || Ok(f()),
        Aborted::Run,
        |err, _| {
            Ok(Err(io::Error::other(format!(
                "could not start a blocking thread: {err}"
            ))))
        },
    )
}

/// What a job whose handle was aborted before it started does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aborted {
    /// It is dropped without running.
    Skip,
    /// It runs all the same, its result dropped.
    Run,
}

/// The panic message of a blocking spawn outside any runtime.
const OUTSIDE_RUNTIME: &str = "overlap::spawn_blocking called outside of a runtime: call it \
    from a future run by `overlap::block_on` or `Runtime::block_on`, or through a `Handle`";

/// [`spawn_blocking`]'s body.
#[track_caller]
fn spawn_job<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (pool, handle) = crate::executor::with_current(|core| {
        (
            core.blocking().clone(),
            crate::Handle::new(core.shared.clone()),
        )
    })
    .unwrap_or_else(|| {
        if crate::Handle::try_current().is_none() {
            panic!("{OUTSIDE_RUNTIME}")
        }
        crate::executor::no_runtime_here(
            "overlap::spawn_blocking",
            "overlap::Handle::current().spawn_blocking(..)",
        )
    });
    let (tx, rx) = completion::<Outcome<R>>();
    let relay = crate::spawn(async move {
        match rx.await {
            Some(Ok(Ok(value))) => value,
            Some(Ok(Err(payload))) => resume_unwind(payload),
            Some(Err(err)) => panic!("{}", no_thread_message(&err)),
            None => panic!("spawn_blocking: the job was dropped before it ran"),
        }
    });
    // Inside `f`, `task::id()` is the relay task's ID. The job holds a claim on that task's
    // cell (an atomically counted waker), so the ID cannot pass to another task before the
    // job is over, even if the handle and the relay are gone.
    let id = relay.id();
    let claim = relay.shared_claim();
    // Refused only during the runtime's shutdown (a future's destructor spawning): the job
    // is dropped and the handle reports it, like every other job queued at that point.
    let _ = pool.execute(Box::new(move |run: Result<&Finish<'_>, &io::Error>| {
        let (outcome, finish) = match run {
            // Aborted (its relay task is gone) before it started: dropped unrun.
            Ok(_) if tx.is_abandoned() => {
                drop(f);
                return;
            }
            Ok(finish) => (Ok(run_job(id, &handle, f)), Some(finish)),
            Err(err) => {
                // Never to run: its captures' destructors run before the handle hears.
                drop(f);
                (Err(io::Error::new(err.kind(), err.to_string())), None)
            }
        };
        // Nobody may be waiting any more (the task was aborted or the runtime dropped); the
        // outcome is then dropped here, before the thread counts as free.
        tx.send_after(outcome, move || {
            drop(claim);
            if let Some(finish) = finish {
                finish.done();
            }
        });
    }));
    relay
}

/// Marks work on the current runtime's pool that the runtime's drop must wait for (up to
/// 10 s), until the returned guard is dropped: a file's (or stdout's) write job, whose bytes a process
/// exiting right after the drop would otherwise lose. The runtime is that of
/// [`Handle::try_current`](crate::Handle::try_current), the one whose pool
/// [`spawn_blocking_or_error`] queues on (inside a blocking job too); `None` outside any. Taken
/// while the runtime is being dropped (a task's file dropped with it), the guard still
/// counts: the drop's wait comes last.
///
/// A building block for overlap's own crates (`overlap-fs`).
#[doc(hidden)]
pub fn durable_work() -> Option<DurableWork> {
    crate::Handle::try_current().map(|handle| handle.blocking_pool().durable())
}

/// Runs `f` on the blocking pool with no handle, for clean-up work that must not be lost,
/// such as writing out the buffer of a file dropped without `flush`, or that may block,
/// such as closing a lingering socket.
///
/// It never blocks a runtime's thread: while the runtime is being dropped, its pool still
/// takes clean-up work (its threads exit once idle), which the drop waits for only if `f`
/// holds [`durable_work`]. Outside a runtime, or when no pool thread exists and none can be
/// started, `f` runs on the calling thread before this returns, so the work always happens.
/// A panic in `f` on a pool thread is caught and dropped; on the calling thread it
/// propagates.
///
/// This is a building block for overlap's own crates (`overlap-fs`, `overlap-net`);
/// applications want [`spawn_blocking`].
#[doc(hidden)]
pub fn spawn_blocking_detached<F>(f: F)
where
    F: FnOnce() + Send + 'static,
{
    let Some(pool) = crate::executor::with_current(|core| core.blocking().clone()) else {
        return f();
    };
    // Queued before the runtime's shutdown, the job may be dropped by it unrun: it then
    // queues itself again, on the shut-down pool, which still takes clean-up work.
    let mut work = Requeue(Some(f));
    // On a start failure the pool calls the job at once on this thread, with the error:
    // running it here is exactly the fallback we want.
    pool.execute_cleanup(Box::new(move |_run: Result<&Finish<'_>, &io::Error>| {
        if let Some(f) = work.0.take() {
            f();
        }
    }));
}

/// Clean-up work that hands itself to [`spawn_blocking_detached`] again if it is dropped
/// without running.
struct Requeue<F: FnOnce() + Send + 'static>(Option<F>);

impl<F: FnOnce() + Send + 'static> Drop for Requeue<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            spawn_blocking_detached(f);
        }
    }
}
