//! Channels between the tasks of one runtime: [`mpsc`] (bounded or unbounded, many
//! senders, one receiver), [`oneshot`] (one value, once), [`broadcast`] (every value to
//! every receiver) and [`watch`] (the latest value, and waiting for it to change); [`Notify`], which wakes one
//! waiting task or all of them; [`Semaphore`], which caps how many tasks do something at
//! once; [`Mutex`] and [`RwLock`], for a value borrowed across `.await`; [`Barrier`], where
//! a set number of tasks meet; [`OnceCell`], a value made once by an async initializer; and
//! [`SetOnce`], a value set once that tasks wait for (`Send` and `Sync`).
//!
//! They are built for overlap's single-threaded runtime: plain `Rc` and `RefCell`, no atomic
//! instruction and no lock, so a message costs a queue push and, if the other side waits, one
//! wake. The price is that they are not `Send`: every end stays on the runtime's thread, like
//! the tasks that use them. To talk to another thread, use [`mpsc::cross_thread`], an mpsc
//! channel (bounded or unbounded) whose ends are `Send`, with tokio's `blocking_send` and
//! `blocking_recv` for a [`spawn_blocking`](crate::spawn_blocking) job or a plain thread,
//! and [`oneshot::cross_thread`] for a reply; or spawn onto the other thread's runtime with
//! a [`Handle`](crate::Handle). A [`CancellationToken`] (tokio-util's, under its name) is
//! `Send` and `Sync` too: one token tells every task, thread and runtime to shut down. A
//! limit shared across threads (a permit moved into a `spawn_blocking` job, one cap for
//! every runtime of a thread-per-core server) is [`cross_thread::Semaphore`], tokio's
//! semaphore with `Send` permits. The others have no cross-thread twin: to tell every
//! runtime of a thread-per-core program something else (a new setting), spawn onto each
//! with its `Handle` a closure that updates that runtime's own [`watch`] or [`Notify`].
//!
//! # Cancellation
//! Every wait here can be dropped before it completes (in a `select!`, under a timeout)
//! without losing anything: a dropped `recv` took no message, a dropped `send` sent nothing
//! (its value is dropped with it), and a dropped `acquire`, `lock`, `read` or `write` that
//! had already been handed its permit passes it on to the next waiter, so no permit is lost
//! and the queue keeps its order.
//!
//! ```
//! use overlap::sync::{mpsc, oneshot};
//!
//! overlap::block_on(async {
//!     // A worker task that answers requests, each carrying its own reply channel.
//!     let (requests, mut inbox) = mpsc::channel::<(u32, oneshot::Sender<u32>)>(16);
//!     overlap::spawn(async move {
//!         while let Some((n, reply)) = inbox.recv().await {
//!             let _ = reply.send(n * 2);
//!         }
//!     });
//!     let (reply, answer) = oneshot::channel();
//!     requests.send((21, reply)).await.unwrap();
//!     assert_eq!(answer.await.unwrap(), 42);
//! });
//! ```

/// Implements `Deref` to `$target` through `self.$field` (with `mut`, `DerefMut` too), and
/// `Debug` as the target's, for a lock guard of generics `[$gen]`.
macro_rules! guard_deref {
    ([$($gen:tt)*] $ty:ty => mut $target:ty, $field:ident) => {
        guard_deref!([$($gen)*] $ty => $target, $field);

        impl<$($gen)*> std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut $target {
                &mut self.$field
            }
        }
    };
    ([$($gen:tt)*] $ty:ty => $target:ty, $field:ident) => {
        impl<$($gen)*> std::ops::Deref for $ty {
            type Target = $target;
            fn deref(&self) -> &$target {
                &self.$field
            }
        }

        impl<$($gen)*> std::fmt::Debug for $ty
        where
            $target: std::fmt::Debug,
        {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
            }
        }
    };
}

mod barrier;
pub mod broadcast;
pub mod cancellation;
pub mod cross_thread;
pub mod mpsc;
mod mutex;
mod notify;
mod once_cell;
pub mod oneshot;
mod poll_sender;
mod rwlock;
mod semaphore;
mod set_once;
pub(crate) mod wait_list;
pub(crate) mod waiters;
pub mod watch;

pub use barrier::{Barrier, BarrierWait, BarrierWaitResult};
pub use cancellation::{
    CancellationToken, DropGuard, DropGuardRef, WaitForCancellationFuture,
    WaitForCancellationFutureOwned,
};
pub use mutex::{
    MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard, TryLockError,
};
pub use notify::{Notified, Notify, OwnedNotified};
pub use once_cell::{OnceCell, SetError};
pub use poll_sender::{PollSemaphore, PollSendError, PollSender};
pub use rwlock::{
    OwnedRwLockMappedWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
    RwLockMappedWriteGuard, RwLockReadGuard, RwLockWriteGuard,
};
pub use semaphore::{
    Acquire, AcquireError, AcquireOwned, OwnedPermit, OwnedSemaphorePermit, Permit, Semaphore,
    SemaphorePermit, TryAcquireError,
};
pub use set_once::{SetOnce, SetOnceError};
