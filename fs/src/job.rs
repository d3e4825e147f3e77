//! One blocking job on the runtime's pool, awaited as a future.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use overlap_runtime::RemoteJoinHandle;

/// A job running (or queued) on the blocking pool.
///
/// Dropping it does not stop the job: it runs to the end on its pool thread and its result
/// is dropped there. That is what cancelling any fs future means.
pub(crate) struct Job<T> {
    /// `Err` if no pool thread could be started for the job; `Ok(None)` only from a job
    /// that was [abandoned](Job::abandon) before it started. `None` for a job made outside
    /// any runtime, which never runs.
    handle: Option<RemoteJoinHandle<io::Result<Option<T>>>>,
    /// [`QUEUED`], [`STARTED`] or [`ABANDONED`]: whichever of the job and
    /// [`abandon`](Job::abandon) moves it from `QUEUED` first wins.
    state: Arc<AtomicU8>,
}

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// Queues `f` on the current runtime's blocking pool. Outside a runtime (and outside a
/// blocking job) there is no pool: `f` is dropped unrun, and the job fails with an `Other`
/// error saying so, as one whose pool could start no thread does.
pub(crate) fn spawn<T, F>(f: F) -> Job<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let state = Arc::new(AtomicU8::new(QUEUED));
    if overlap_runtime::Handle::try_current().is_none() {
        return Job {
            handle: None,
            state,
        };
    }
    let claim = state.clone();
    let handle = overlap_runtime::spawn_blocking_or_error(move || {
        let go = claim
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        go.then(f)
    });
    Job {
        handle: Some(handle),
        state,
    }
}

impl<T> Job<T> {
    /// Polls for the job's value. The pool's failure to start a thread for the job comes
    /// back as its `io::Error`; a job dropped because the runtime shut down becomes one too.
    /// (Jobs here only call std, which does not panic on I/O errors.)
    pub(crate) fn poll_value(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let Some(handle) = &mut self.handle else {
            return Poll::Ready(Err(io::Error::other(
                "the file operation did not run: it was polled outside an overlap runtime \
                 (there is no blocking pool to run it on)",
            )));
        };
        match ready!(Pin::new(handle).poll(cx)) {
            Ok(Ok(Some(v))) => Poll::Ready(Ok(v)),
            Ok(Err(no_thread)) => Poll::Ready(Err(no_thread)),
            Ok(Ok(None)) => Poll::Ready(Err(io::Error::other("the file operation was abandoned"))),
            // The runtime's shutdown dropped the job before it started: a started job
            // reports its own result, wherever it is awaited.
            Err(e) if e.is_cancelled() => Poll::Ready(Err(io::Error::other(
                "the runtime shut down before the file operation ran",
            ))),
            Err(e) => Poll::Ready(Err(io::Error::other(e.to_string()))),
        }
    }
}

impl<T> Job<T> {
    /// Whether the job was made outside any runtime (it never runs, and fails saying so).
    pub(crate) fn outside_runtime(&self) -> bool {
        self.handle.is_none()
    }

    /// Makes sure the job never runs, if it has not started: true if so, and it can be
    /// submitted again without running twice; false if it started (its effects, such as
    /// moving the fd's offset, happened or are happening).
    pub(crate) fn abandon(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl<T> Future for Job<io::Result<T>> {
    type Output = io::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        self.poll_value(cx).map(|r| r.and_then(|r| r))
    }
}

impl<T> fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("handle", &self.handle).finish()
    }
}

/// Runs `f` on the pool and awaits its result.
pub(crate) async fn run<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    spawn(f).await
}

/// Runs `f` on the pool and awaits its result, as [`run`] does, except that `f` never runs
/// if the future is dropped while its job is still queued. For opens: a `File::create`
/// dropped by a timeout before its turn then makes no file that a caller cleaning up after
/// the timeout (removing the path it named) would miss. A job already started runs on.
pub(crate) async fn run_unless_dropped_queued<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    AbandonOnDrop(spawn(f)).await
}

/// A [`Job`] [abandoned](Job::abandon) when dropped: if it has not started, it never runs.
struct AbandonOnDrop<T>(Job<T>);

impl<T> Future for AbandonOnDrop<io::Result<T>> {
    type Output = io::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbandonOnDrop<T> {
    fn drop(&mut self) {
        // Once the job has completed this is a no-op: its state is no longer `QUEUED`.
        self.0.abandon();
    }
}
