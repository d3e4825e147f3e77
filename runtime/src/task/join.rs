//! `JoinHandle` and `JoinError`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::abort::AbortHandle;
use super::id::Id;
use super::raw::TaskPtr;
use super::state::OUTPUT_TAKEN;

/// `!Send` (the `Rc`) and covariant in `T` without owning one.
type HandleMarker<T> = (Rc<()>, fn() -> T);

/// An owned permission to await a spawned task's output.
///
/// `JoinHandle<T>` is a future resolving to `Result<T, JoinError>`: `Ok` with the task's
/// output, or a [`JoinError`] if the task panicked or was aborted.
///
/// Dropping a `JoinHandle` *detaches* the task: it keeps running, and its output is dropped
/// when it completes. Use [`JoinHandle::abort`] to stop it instead. Awaiting `&mut handle`
/// (in a `select!`, under a timeout) is cancel-safe: the output waits for a later await.
///
/// The handle belongs to the runtime's thread (it is `!Send`), like the task it points at.
/// Await it on that runtime: awaited while another runtime on the same thread runs, it
/// completes only once the task's own runtime runs again (this holds for
/// [`spawn_blocking`](crate::spawn_blocking) handles too, whose result is relayed by a
/// task of the runtime that spawned the job).
///
/// # Panics
/// Polled again after it returned the result (it is a `FusedFuture`: `select!` and other
/// combinators check [`is_terminated`](futures_core::FusedFuture::is_terminated) first).
///
/// ```
/// let out = overlap::block_on(async {
///     let handle = overlap::spawn(async { 6 * 7 });
///     handle.await.unwrap()
/// });
/// assert_eq!(out, 42);
/// ```
pub struct JoinHandle<T> {
    task: TaskPtr,
    _marker: PhantomData<HandleMarker<T>>,
}

impl<T> JoinHandle<T> {
    /// # Safety
    /// `task` must be a task whose future outputs `T`, and the caller hands over the
    /// JoinHandle reference counted at allocation.
    pub(crate) unsafe fn from_task(task: TaskPtr) -> JoinHandle<T> {
        JoinHandle {
            task,
            _marker: PhantomData,
        }
    }

    /// Asks the task to stop. Its future is dropped on the runtime thread at the runtime's
    /// next turn (also when it is waiting on I/O or a timer), and awaiting this handle then
    /// gives a cancelled [`JoinError`] (a panic one if the future's destructor panicked, as
    /// with tokio). A task that already finished keeps its output.
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let handle = overlap::spawn(std::future::pending::<()>());
    ///     handle.abort();
    ///     assert!(handle.await.unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Lets the task run on without this handle: the same as dropping it, spelled as smol's
    /// `Task::detach` for code moving over (`overlap::spawn(fut).detach()`). The task's
    /// output is dropped when it completes.
    ///
    /// Unlike smol's `Task`, whose drop *cancels* the task, a dropped `JoinHandle` always
    /// detaches it (as tokio's does): call [`abort`](JoinHandle::abort) to stop a task, or
    /// keep tasks in a [`JoinSet`](crate::JoinSet), which aborts them when it is dropped.
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let (tx, rx) = overlap::sync::oneshot::channel();
    ///     overlap::spawn(async move { tx.send(7).unwrap() }).detach();
    ///     assert_eq!(rx.await.unwrap(), 7);
    /// });
    /// ```
    pub fn detach(self) {
        drop(self);
    }

    /// Whether the task has finished: returned, panicked, or been cancelled.
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let handle = overlap::spawn(async {});
    ///     assert!(!handle.is_finished(), "spawned, not run yet");
    ///     overlap::yield_now().await; // lets it run
    ///     assert!(handle.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.task.is_complete()
    }

    /// The task's [`Id`]: the one [`task::id`](crate::task::id) returns inside it. No other
    /// existing task has it while this handle lives (see [`Id`] on reuse).
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let handle = overlap::spawn(async { overlap::task::id() });
    ///     let id = handle.id();
    ///     assert_eq!(handle.abort_handle().id(), id);
    ///     assert_eq!(handle.await.unwrap(), id);
    /// });
    /// ```
    pub fn id(&self) -> Id {
        Id::of(self.task)
    }

    /// A claim on the task's cell that any thread may hold and drop (see
    /// `waker::shared_claim`): it keeps the task's ID from being reused.
    pub(crate) fn shared_claim(&self) -> std::task::Waker {
        super::waker::shared_claim(self.task)
    }

    /// A handle that can stop the task but not await it; clone it to give several parts
    /// of a program that power. See [`AbortHandle`].
    pub fn abort_handle(&self) -> AbortHandle {
        // A waker is a claim on the task cell that releases itself correctly from anywhere.
        let claim = super::waker::claim(self.task);
        // Its `is_finished` may be asked on any thread.
        self.task.share_finish();
        // SAFETY: `claim` is a waker of this very task, made by the task system.
        unsafe { AbortHandle::new(self.task, claim) }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// Spends a unit of the task's cooperative budget when the output is ready (as tokio's
    /// does), so a loop joining many finished tasks lets the others run now and then.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        crate::coop::budgeted(cx, |cx| this.poll_unbudgeted(cx))
    }
}

impl<T> JoinHandle<T> {
    /// Polls for the output without the cooperative budget: for `JoinSet`, which spends it
    /// once per `join_next` and must not in `try_join_next`.
    pub(crate) fn poll_unbudgeted(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        // Its output is gone: waiting would never end, so say so (as tokio does).
        assert!(
            !futures_core::FusedFuture::is_terminated(&*self),
            "JoinHandle polled after it returned the task's result"
        );
        let mut out = Poll::Pending;
        // SAFETY: `from_task`'s contract makes `T` the task's output type.
        unsafe { self.task.poll_join(&mut out, cx.waker()) };
        out
    }
}

/// Terminated once it has returned the task's result.
impl<T> futures_core::FusedFuture for JoinHandle<T> {
    fn is_terminated(&self) -> bool {
        self.task.flags() & OUTPUT_TAKEN != 0
    }
}

// A panic while a handle is held leaves its task as it was (as tokio's `JoinHandle`).
impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.task.drop_join();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task produced no output: it panicked, or it was cancelled.
///
/// ```
/// overlap::block_on(async {
///     let handle = overlap::spawn(std::future::pending::<()>());
///     handle.abort();
///     let cancelled = handle.await.unwrap_err();
///     assert!(cancelled.is_cancelled() && !cancelled.is_panic());
///     assert!(cancelled.try_into_panic().is_err(), "no payload");
///
///     let panicked = overlap::spawn(async { panic!("boom") }).await.unwrap_err();
///     assert!(panicked.is_panic());
///     let payload = panicked.into_panic(); // for `std::panic::resume_unwind`
///     assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
/// });
/// ```
pub struct JoinError {
    repr: Repr,
    id: Id,
}

/// A `JoinError` without its task's ID, as a finished task's cell keeps it (see `raw.rs`).
pub(crate) enum Repr {
    Cancelled,
    Panic(Payload),
}

impl Repr {
    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Repr {
        Repr::Panic(Payload(payload))
    }
}

/// A panic payload, which makes `JoinError` `Sync` (as tokio's is, so that it converts into
/// `Box<dyn Error + Send + Sync>` and `anyhow::Error`).
pub(crate) struct Payload(Box<dyn Any + Send + 'static>);

// SAFETY: through `&Payload` the payload is only reached by `downcast_ref` to a `Sync` type,
// which reads nothing of it but its type id; everything else takes the payload by value.
unsafe impl Sync for Payload {}

impl Payload {
    fn downcast_ref<T: Any + Sync>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl JoinError {
    pub(crate) fn new(repr: Repr, id: Id) -> JoinError {
        JoinError { repr, id }
    }

    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError::new(Repr::Cancelled, id)
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>, id: Id) -> JoinError {
        JoinError::new(Repr::panic(payload), id)
    }

    /// The [`Id`] of the task that failed: the one its handles and
    /// [`task::id`](crate::task::id) inside it report, so that an error from
    /// [`JoinSet::join_next_with_id`](crate::JoinSet::join_next_with_id) says which task it
    /// was. (An error
    /// from a [`RemoteJoinHandle`](crate::RemoteJoinHandle) carries an ID of the remote
    /// spawn instead, unique among tasks while that handle lives.)
    ///
    /// ```
    /// overlap::block_on(async {
    ///     let handle = overlap::spawn(std::future::pending::<()>());
    ///     let id = handle.id();
    ///     handle.abort();
    ///     assert_eq!(handle.await.unwrap_err().id(), id);
    /// });
    /// ```
    pub fn id(&self) -> Id {
        self.id
    }

    /// True if the task was aborted, or dropped because its runtime shut down. For a
    /// [`JoinHandle`], not when dropping the future panicked: that makes a panic error (see
    /// [`JoinHandle::abort`]).
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to resume it with `std::panic::resume_unwind`.
    ///
    /// # Panics
    /// If the error is not a panic; see [`JoinError::try_into_panic`].
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("`JoinError::into_panic` called on a cancelled task's error")
    }

    /// The panic payload, or the error itself if the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p.0),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "task panicked: {msg}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("JoinError::Cancelled"),
            (Repr::Panic(_), Some(msg)) => write!(f, "JoinError::Panic({msg:?})"),
            (Repr::Panic(_), None) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(err: JoinError) -> io::Error {
        io::Error::other(err.to_string())
    }
}
