//! [`CancellationToken`]: a shutdown signal any number of tasks, threads and runtimes wait
//! on, cancelled once, with child tokens cancelled along with their parent.
//!
//! The token is tokio-util's `CancellationToken` under the same name and with the same
//! methods, so a graceful shutdown written for tokio ports as it is. Unlike the rest of
//! [`sync`](crate::sync), it is `Send` and `Sync`: one token reaches every runtime of a
//! thread-per-core program, a [`spawn_blocking`](crate::spawn_blocking) job or a plain
//! thread, which checks [`is_cancelled`](CancellationToken::is_cancelled).

use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use futures_core::future::FusedFuture;

use super::wait_list::{WaitList, WaitSlot};
use super::waiters::wake_all;

/// A signal that is cancelled once, and that any number of tasks wait for.
///
/// Clones share one signal: [`cancel`](Self::cancel) on any of them wakes every
/// [`cancelled`](Self::cancelled) future of all of them, on any thread or runtime, and
/// every future made afterwards is ready at once. A [`child_token`](Self::child_token) is
/// cancelled with its parent (and the parent's ancestors), but cancelling the child leaves
/// the parent alone: a server gives each connection a child of its shutdown token, and can
/// end one connection without ending the server.
///
/// Dropping tokens never cancels anything, even the last clone (a waiting future then waits
/// for ever); a [`drop_guard`](Self::drop_guard) cancels when it is dropped. Cancelling
/// twice does nothing more.
///
/// ```
/// use std::time::Duration;
/// use overlap::sync::CancellationToken;
///
/// overlap::block_on(async {
///     let shutdown = CancellationToken::new();
///     let mut workers = Vec::new();
///     for id in 0..3u32 {
///         let token = shutdown.child_token();
///         workers.push(overlap::spawn(async move {
///             let mut ticks = 0u32;
///             loop {
///                 // Whichever comes first: the next tick or the shutdown.
///                 let tick = overlap::time::sleep(Duration::from_millis(1));
///                 if token.run_until_cancelled(tick).await.is_none() {
///                     return (id, ticks);
///                 }
///                 ticks += 1;
///             }
///         }));
///     }
///     overlap::time::sleep(Duration::from_millis(5)).await;
///     shutdown.cancel();
///     for (n, worker) in workers.into_iter().enumerate() {
///         assert_eq!(worker.await.unwrap().0, n as u32);
///     }
/// });
/// ```
#[derive(Clone)]
pub struct CancellationToken {
    node: Arc<Node>,
}

/// One token's shared state: its flag, the wakers of the futures waiting on it, and its
/// children (weakly: a child nobody holds any more is not kept alive by its parent).
struct Node {
    cancelled: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiters: WaitList,
    children: Vec<Weak<Node>>,
}

impl Node {
    fn new(cancelled: bool) -> Arc<Node> {
        Arc::new(Node {
            cancelled: AtomicBool::new(cancelled),
            state: Mutex::new(State::default()),
        })
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// The state, even if a thread panicked holding it: every change to it is one step
    /// (a push, a take), so a panic never leaves it half done.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls a wait whose place in the list is `slot`: ready once the token is cancelled,
    /// and until then holding the latest waker there.
    fn poll_wait(&self, slot: &mut WaitSlot, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_cancelled() {
            self.forget(slot);
            return Poll::Ready(());
        }
        let mut state = self.lock();
        // `cancel` sets the flag before it takes the wakers under this lock: seen unset
        // here, it has not taken them yet, and will take the one stored now.
        if self.is_cancelled() {
            drop(state);
            self.forget(slot);
            return Poll::Ready(());
        }
        state.waiters.register(slot, cx.waker());
        Poll::Pending
    }

    /// Gives back a wait's slot (a dropped or finished wait).
    fn forget(&self, slot: &mut WaitSlot) {
        if slot.is_taken() {
            self.lock().waiters.forget(slot);
        }
    }
}

impl CancellationToken {
    /// A token not cancelled yet.
    pub fn new() -> CancellationToken {
        CancellationToken {
            node: Node::new(false),
        }
    }

    /// A new token cancelled when this one is (at once, if it already is), and which can
    /// also be cancelled on its own without touching this one.
    pub fn child_token(&self) -> CancellationToken {
        let mut state = self.node.lock();
        // Under the lock, as in `poll_wait`: unset here, `cancel` will find the child.
        if self.node.is_cancelled() {
            return CancellationToken {
                node: Node::new(true),
            };
        }
        let child = Node::new(false);
        if state.children.len() == state.children.capacity() {
            // Before growing, drop the children nobody holds any more, so a long-lived
            // parent handing a child to each short-lived connection stays small.
            state.children.retain(|c| c.strong_count() > 0);
        }
        state.children.push(Arc::downgrade(&child));
        CancellationToken { node: child }
    }

    /// Cancels this token and its children (and theirs), waking every future waiting on
    /// any of them. Cancelling a cancelled token does nothing.
    pub fn cancel(&self) {
        let mut pending = vec![self.node.clone()];
        let mut wakers: Vec<Waker> = Vec::new();
        while let Some(node) = pending.pop() {
            if node.cancelled.swap(true, Ordering::SeqCst) {
                continue;
            }
            let children = {
                let mut state = node.lock();
                wakers.extend(state.waiters.take_all());
                std::mem::take(&mut state.children)
            };
            pending.extend(children.iter().filter_map(Weak::upgrade));
        }
        // Woken once the whole tree is cancelled, with no lock held (a waker may poll or
        // drop a wait right away); one that panics (a user's own) stops none of the others,
        // and its panic comes out of this call after them.
        wake_all(wakers);
    }

    /// Whether this token has been cancelled (by itself, a clone or an ancestor).
    pub fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    /// Waits until the token is cancelled; ready at once if it already is.
    ///
    /// Cancel-safe: dropping the future loses nothing. It is fused (`select!` takes it
    /// without `.fuse()`) and ready again each time it is polled after the cancellation.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        WaitForCancellationFuture {
            node: &self.node,
            slot: WaitSlot::default(),
        }
    }

    /// [`cancelled`](Self::cancelled) owning a clone of the token, for a future that must
    /// outlive the borrow (one stored in a struct, or moved into a task).
    pub fn cancelled_owned(self) -> WaitForCancellationFutureOwned {
        WaitForCancellationFutureOwned {
            token: self,
            slot: WaitSlot::default(),
        }
    }

    /// Runs `fut` until it completes (`Some(output)`) or the token is cancelled (`None`,
    /// `fut` dropped unfinished). Cancellation wins a tie: a token cancelled before the
    /// first poll gives `None` without polling `fut` at all.
    pub async fn run_until_cancelled<F: Future>(&self, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        let mut wait = self.cancelled();
        poll_fn(|cx| {
            if Pin::new(&mut wait).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            fut.as_mut().poll(cx).map(Some)
        })
        .await
    }

    /// [`run_until_cancelled`](Self::run_until_cancelled) owning the token, so the future
    /// is `'static`: it goes straight into a spawn.
    pub async fn run_until_cancelled_owned<F: Future>(self, fut: F) -> Option<F::Output> {
        self.run_until_cancelled(fut).await
    }

    /// A guard that cancels this token when dropped (unless
    /// [`disarm`](DropGuard::disarm)ed): tie a shutdown to a scope or to a value's life.
    pub fn drop_guard(self) -> DropGuard {
        DropGuard { token: Some(self) }
    }

    /// [`drop_guard`](Self::drop_guard) borrowing the token: a guard that cancels it when
    /// dropped, for a scope that holds the token already (a connection's task ending its
    /// own token however it returns).
    pub fn drop_guard_ref(&self) -> DropGuardRef<'_> {
        DropGuardRef { token: self }
    }
}

impl Default for CancellationToken {
    fn default() -> CancellationToken {
        CancellationToken::new()
    }
}

impl fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancellationToken")
            .field("is_cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The future of [`CancellationToken::cancelled`].
pub struct WaitForCancellationFuture<'a> {
    node: &'a Node,
    slot: WaitSlot,
}

impl Future for WaitForCancellationFuture<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.node.poll_wait(&mut this.slot, cx)
    }
}

impl FusedFuture for WaitForCancellationFuture<'_> {
    /// Never: polled after it completed, it completes again.
    fn is_terminated(&self) -> bool {
        false
    }
}

impl Drop for WaitForCancellationFuture<'_> {
    fn drop(&mut self) {
        self.node.forget(&mut self.slot);
    }
}

impl fmt::Debug for WaitForCancellationFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellationFuture")
            .field("is_cancelled", &self.node.is_cancelled())
            .finish()
    }
}

/// The future of [`CancellationToken::cancelled_owned`].
pub struct WaitForCancellationFutureOwned {
    token: CancellationToken,
    slot: WaitSlot,
}

impl Future for WaitForCancellationFutureOwned {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        this.token.node.poll_wait(&mut this.slot, cx)
    }
}

impl FusedFuture for WaitForCancellationFutureOwned {
    /// Never: polled after it completed, it completes again.
    fn is_terminated(&self) -> bool {
        false
    }
}

impl Drop for WaitForCancellationFutureOwned {
    fn drop(&mut self) {
        self.token.node.forget(&mut self.slot);
    }
}

impl fmt::Debug for WaitForCancellationFutureOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCancellationFutureOwned")
            .field("is_cancelled", &self.token.is_cancelled())
            .finish()
    }
}

/// Cancels its token when dropped; made by [`CancellationToken::drop_guard`].
#[derive(Debug)]
pub struct DropGuard {
    token: Option<CancellationToken>,
}

impl DropGuard {
    /// The token this guard cancels.
    pub fn token(&self) -> &CancellationToken {
        self.token
            .as_ref()
            .expect("a guard holds its token until dropped or disarmed")
    }

    /// Gives the token back without cancelling it.
    pub fn disarm(mut self) -> CancellationToken {
        self.token
            .take()
            .expect("a guard holds its token until dropped or disarmed")
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}

/// Cancels the token it borrows when dropped; made by
/// [`CancellationToken::drop_guard_ref`].
#[derive(Debug)]
pub struct DropGuardRef<'a> {
    token: &'a CancellationToken,
}

impl<'a> DropGuardRef<'a> {
    /// The token this guard cancels.
    pub fn token(&self) -> &'a CancellationToken {
        self.token
    }

    /// Gives the borrow back without cancelling the token.
    pub fn disarm(self) -> &'a CancellationToken {
        let token = self.token;
        // The guard holds nothing but the borrow: forgetting it only skips the cancel.
        std::mem::forget(self);
        token
    }
}

impl Drop for DropGuardRef<'_> {
    fn drop(&mut self) {
        self.token.cancel();
    }
}
