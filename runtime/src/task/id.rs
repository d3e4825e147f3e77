//! Task IDs: `Id`, `id()`, `try_id()`.
//!
//! A task's ID is the address of its cell. It costs no header field and nothing at spawn:
//! the cell lives as long as the task exists or any handle that can report the ID
//! (`JoinHandle`, `AbortHandle`, a `JoinSet` entry) refers to it, and no two live cells
//! share an address. Once the cell is freed, a later task may get the same address, and so
//! the same ID: the reuse tokio's contract allows.

use std::fmt;
use std::num::NonZeroUsize;

use super::raw::TaskPtr;

/// An opaque identifier of a task, unique among the tasks that exist at the same time.
///
/// A task's ID stays the same for its whole life and is the same seen from inside the task
/// ([`id`], [`try_id`]) and from its handles ([`JoinHandle::id`](crate::JoinHandle::id),
/// [`AbortHandle::id`](crate::AbortHandle::id),
/// [`JoinSet::join_next_with_id`](crate::JoinSet::join_next_with_id),
/// [`JoinError::id`](crate::JoinError::id)).
///
/// **IDs are reused.** An ID may be given to a new task once the task that had it has
/// finished *and* no `JoinHandle`, `AbortHandle` or `JoinSet` refers to that task any more
/// (as tokio allows). Keep a handle to a task while its ID must stay unambiguous.
///
/// IDs are not sequential and say nothing about when or where a task was spawned; their
/// order (`Ord`) is arbitrary but consistent, for use in sorted maps.
///
/// ```
/// overlap::block_on(async {
///     let a = overlap::spawn(async { overlap::task::id() });
///     let b = overlap::spawn(async { overlap::task::id() });
///     assert_ne!(a.id(), b.id(), "two live tasks never share an ID");
///     let (a_id, b_id) = (a.id(), b.id());
///     assert_eq!(a.await.unwrap(), a_id);
///     assert_eq!(b.await.unwrap(), b_id);
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(NonZeroUsize);

impl Id {
    pub(crate) fn of(task: TaskPtr) -> Id {
        Id(task.addr())
    }

    /// An ID for something that is not a task of this runtime's but lives as long as the
    /// thing reporting it: the address of that allocation, which no live task cell shares.
    pub(crate) fn of_allocation<T: ?Sized>(ptr: *const T) -> Id {
        Id(NonZeroUsize::new(ptr.cast::<u8>().addr()).expect("a live allocation is not null"))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The [`Id`] of the task being run now.
///
/// It is available while the task's future is polled and while its future is dropped (on
/// completion, on abort, or at the runtime's shutdown), and inside a
/// [`spawn_blocking`](crate::spawn_blocking) closure, where it is the ID of the
/// [`JoinHandle`](crate::JoinHandle) that `spawn_blocking` returned. The future given to
/// [`block_on`](crate::block_on) is not a task: it has no ID.
///
/// # Panics
/// Outside a task; see [`try_id`] for a version that returns `None` instead.
///
/// ```
/// overlap::block_on(async {
///     let handle = overlap::spawn(async { overlap::task::id() });
///     let id = handle.id();
///     assert_eq!(handle.await.unwrap(), id);
/// });
/// ```
#[track_caller]
pub fn id() -> Id {
    try_id().unwrap_or_else(|| {
        panic!(
            "overlap::task::id called outside of a task: the future given to `block_on` and \
             code outside a runtime have no task ID (use `overlap::task::try_id`)"
        )
    })
}

/// The [`Id`] of the task being run now, or `None` outside a task (in the future given to
/// [`block_on`](crate::block_on), or outside a runtime). See [`id`].
///
/// ```
/// assert_eq!(overlap::task::try_id(), None);
/// overlap::block_on(async {
///     assert_eq!(overlap::task::try_id(), None, "block_on's future is not a task");
///     let inside = overlap::spawn(async { overlap::task::try_id() });
///     assert!(inside.await.unwrap().is_some());
/// });
/// ```
pub fn try_id() -> Option<Id> {
    crate::executor::current_task()
        .map(Id::of)
        .or_else(crate::blocking::job_task_id)
}
