//! [`AbortOnDropHandle`]: a [`JoinHandle`] that aborts its task when dropped.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::future::FusedFuture;

use super::{AbortHandle, Id, JoinError, JoinHandle};

/// A [`JoinHandle`] that aborts its task when it is dropped: tokio-util's
/// `task::AbortOnDropHandle`, under its name and with its methods.
///
/// A plain `JoinHandle` *detaches* its task when dropped, so a helper task spawned inside
/// a future (a reader task started by a `connect` or `join` call) runs on, with everything
/// it holds, when that future is dropped half-way by a `timeout` or a lost `select!`
/// branch. Held in this handle, it is aborted with it. Awaiting the handle gives the
/// task's output as awaiting the `JoinHandle` does (and `&mut handle` is cancel-safe the
/// same way); [`detach`](Self::detach) gives the `JoinHandle` back, the task no longer
/// tied to this handle.
///
/// ```
/// use std::time::Duration;
/// use overlap::task::AbortOnDropHandle;
///
/// overlap::block_on(async {
///     let (tx, rx) = overlap::sync::oneshot::channel::<()>();
///     let reader = AbortOnDropHandle::new(overlap::spawn(async move {
///         // Holds `tx` until aborted.
///         overlap::time::sleep(Duration::from_secs(3600)).await;
///         drop(tx);
///     }));
///     let abort = reader.abort_handle();
///     drop(reader);
///     // The task was aborted, and `tx` dropped with its future.
///     assert!(rx.await.is_err());
///     assert!(abort.is_finished());
///
///     let kept = AbortOnDropHandle::new(overlap::spawn(async { 7 }));
///     assert_eq!(kept.await.unwrap(), 7);
/// });
/// ```
#[must_use = "dropping an AbortOnDropHandle aborts its task at once"]
pub struct AbortOnDropHandle<T> {
    /// `None` only once `detach` took it out.
    handle: Option<JoinHandle<T>>,
}

impl<T> AbortOnDropHandle<T> {
    /// Ties `handle`'s task to the returned handle: dropping it aborts the task.
    pub fn new(handle: JoinHandle<T>) -> AbortOnDropHandle<T> {
        AbortOnDropHandle {
            handle: Some(handle),
        }
    }

    fn inner(&self) -> &JoinHandle<T> {
        self.handle.as_ref().expect("taken only by detach")
    }

    /// Aborts the task now (see [`JoinHandle::abort`]).
    pub fn abort(&self) {
        self.inner().abort();
    }

    /// Whether the task has finished (see [`JoinHandle::is_finished`]).
    pub fn is_finished(&self) -> bool {
        self.inner().is_finished()
    }

    /// The task's [`Id`].
    pub fn id(&self) -> Id {
        self.inner().id()
    }

    /// An [`AbortHandle`] to the task, which does not abort it when dropped.
    pub fn abort_handle(&self) -> AbortHandle {
        self.inner().abort_handle()
    }

    /// Gives the [`JoinHandle`] back without aborting the task: dropped from then on, the
    /// handle detaches the task, as any `JoinHandle` does.
    ///
    /// ```
    /// use overlap::task::AbortOnDropHandle;
    ///
    /// overlap::block_on(async {
    ///     let (tx, rx) = overlap::sync::oneshot::channel();
    ///     let handle = AbortOnDropHandle::new(overlap::spawn(async move {
    ///         overlap::yield_now().await;
    ///         tx.send("ran to its end").unwrap();
    ///     }));
    ///     drop(handle.detach());
    ///     assert_eq!(rx.await.unwrap(), "ran to its end");
    /// });
    /// ```
    pub fn detach(mut self) -> JoinHandle<T> {
        self.handle.take().expect("taken only by detach")
    }
}

impl<T> Future for AbortOnDropHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let handle = self
            .get_mut()
            .handle
            .as_mut()
            .expect("taken only by detach");
        Pin::new(handle).poll(cx)
    }
}

/// Terminated once it has returned the task's result, as the `JoinHandle`.
impl<T> FusedFuture for AbortOnDropHandle<T> {
    fn is_terminated(&self) -> bool {
        self.inner().is_terminated()
    }
}

impl<T> Drop for AbortOnDropHandle<T> {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for AbortOnDropHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortOnDropHandle")
            .field("handle", &self.handle)
            .finish()
    }
}
