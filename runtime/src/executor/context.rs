//! Which runtime, if any, is current on this thread, and which are entered.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr;
use std::rc::Rc;

use super::core::Core;
use super::shared::Shared;
use crate::task::raw::TaskPtr;

thread_local! {
    /// The core of the innermost runtime entered on this thread, or null.
    ///
    /// # Invariant
    /// Always the core of the last entry of [`ENTERED`] (null when it is empty); that entry
    /// holds an `Rc<Core>`, so the pointer is valid while it can be read.
    static CURRENT: Cell<*const Core> = const { Cell::new(ptr::null()) };

    /// The `Shared` of the runtime in CURRENT while this thread is in owner context for its
    /// tasks (see `task/state.rs`), else null.
    ///
    /// # Invariant
    /// Non-null only while CURRENT is non-null, points at that core's `Shared`, and that
    /// core is not shutting down (its entry's `owner` is set).
    static OWNER: Cell<*const Shared> = const { Cell::new(ptr::null()) };

    /// Every runtime entered on this thread and not yet left, innermost last: `block_on`s,
    /// `Runtime::enter` guards, shutdowns. A guard removes its own entry when it drops, in
    /// whatever order; CURRENT and OWNER always follow the last entry.
    ///
    /// `ManuallyDrop`, so that it has no destructor and stays usable while the thread's
    /// other thread-locals are destroyed (a `Runtime` kept in one enters itself to shut
    /// down). Its buffer is freed whenever it empties, so only a forgotten guard's entry
    /// leaks at thread exit.
    static ENTERED: ManuallyDrop<RefCell<Vec<Entry>>> =
        const { ManuallyDrop::new(RefCell::new(Vec::new())) };

    /// Tells entries apart.
    static NEXT_ENTRY: Cell<u64> = const { Cell::new(0) };

    /// Whether the last entry of [`ENTERED`] is a `block_on` driving its runtime's loop,
    /// and that runtime is not shutting down.
    static CURRENT_DRIVES: Cell<bool> = const { Cell::new(false) };
}

/// One runtime entered on this thread (see [`ENTERED`]).
struct Entry {
    id: u64,
    core: Rc<Core>,
    /// A `block_on` drives this runtime's loop.
    drives: bool,
    /// The runtime is not shutting down: its tasks' local state may be touched here.
    owner: bool,
}

/// Points CURRENT and OWNER at the last entry of `entered`.
fn sync_current(entered: &[Entry]) {
    let (current, owner) = match entered.last() {
        Some(e) => (
            Rc::as_ptr(&e.core),
            if e.owner {
                e.core.shared_ptr()
            } else {
                ptr::null()
            },
        ),
        None => (ptr::null(), ptr::null()),
    };
    CURRENT.with(|c| c.set(current));
    OWNER.with(|o| o.set(owner));
    let drives = entered.last().is_some_and(|e| e.drives && e.owner);
    CURRENT_DRIVES.with(|d| d.set(drives));
}

/// Runs `f` with the current runtime's core, or returns `None` outside a runtime.
pub(crate) fn with_current<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null CURRENT is kept alive by its entry in ENTERED (invariant).
    Some(f(unsafe { &*p }))
}

/// The task whose code runs on this thread now (see `Core::current_task`), looked up in
/// every entered runtime, innermost first: a `Runtime::enter` guard taken inside a task does
/// not hide it. `None` outside a task (such as in the `block_on` future itself).
pub(crate) fn current_task() -> Option<TaskPtr> {
    ENTERED
        .try_with(|entered| {
            let entered = entered.try_borrow().ok()?;
            entered.iter().rev().find_map(|e| e.core.current_task())
        })
        .ok()
        .flatten()
}

/// Runs `f` with the current runtime's core if a `block_on` on this thread drives its loop
/// (and it is not shutting down); `None` otherwise, such as under a `Runtime::enter` guard
/// taken inside a task.
pub(crate) fn with_driving<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    if CURRENT_DRIVES.with(Cell::get) {
        with_current(f)
    } else {
        None
    }
}

/// How many runtimes are entered on this thread now (`block_on`s, `Runtime::enter`
/// guards, shutdowns).
pub(crate) fn entered_depth() -> usize {
    ENTERED
        .try_with(|entered| entered.try_borrow().map_or(0, |e| e.len()))
        .unwrap_or(0)
}

/// Whether a `block_on` on this thread is driving a runtime's loop, whichever runtime is
/// current now (a `Runtime::enter` guard taken inside a task hides it from
/// [`with_driving`], not from this).
pub(crate) fn in_driving_block_on() -> bool {
    ENTERED
        .try_with(|entered| entered.borrow().iter().any(|e| e.drives))
        .unwrap_or(false)
}

/// Runs `f` with the current runtime's core if this is *owner context* for `task`: the
/// thread is running the task's runtime, which is not shutting down. Otherwise `None`.
#[inline]
pub(crate) fn with_owner<R>(task: TaskPtr, f: impl FnOnce(&Core) -> R) -> Option<R> {
    with_owner_of(task.shared_ptr(), f)
}

/// [`with_owner`] for the runtime whose `Shared` is at `shared` (the task may be gone).
#[inline]
pub(crate) fn with_owner_of<R>(shared: *const Shared, f: impl FnOnce(&Core) -> R) -> Option<R> {
    // Null never matches a runtime, so one comparison settles "inside block_on", "this
    // runtime" and "not shutting down".
    if !ptr::eq(OWNER.with(Cell::get), shared) {
        return None;
    }
    // SAFETY: OWNER is non-null, so CURRENT is non-null and kept alive by its entry in
    // ENTERED (both invariants).
    Some(f(unsafe { &*CURRENT.with(Cell::get) }))
}

/// Leaves owner context for `core` for good: the runtime is shutting down, and from here on
/// its tasks' local counts are guarded by its remote queue's lock. Every entry of `core`
/// loses it, a forgotten guard's too.
pub(crate) fn leave_owner(core: *const Core) {
    ENTERED.with(|entered| {
        let mut entered = entered.borrow_mut();
        for e in entered.iter_mut() {
            if ptr::eq(Rc::as_ptr(&e.core), core) {
                e.owner = false;
            }
        }
        sync_current(&entered);
    });
}

/// Keeps a runtime entered on this thread until dropped (see [`ENTERED`]).
pub(crate) struct EnterGuard {
    id: u64,
    /// Entries live in a thread-local: the guard stays on its thread.
    _not_send: PhantomData<*const ()>,
}

impl EnterGuard {
    /// Enters `core` to drive it (`block_on`). Panics if any runtime's loop is already being
    /// driven on this thread, since blocking inside a task would stall every other task. (A
    /// runtime only entered, with `Runtime::enter`, does not count.)
    pub(crate) fn enter(core: &Rc<Core>) -> EnterGuard {
        let busy = ENTERED.with(|entered| entered.borrow().iter().any(|e| e.drives));
        if busy {
            panic!(
                "cannot start a runtime from within a runtime: `block_on` was called while \
                 another `block_on` is running on this thread; use `.await` or `spawn` instead"
            );
        }
        EnterGuard::push(core, true)
    }

    /// Makes `core` current whatever runs on this thread now, until the guard drops. Used to
    /// shut a runtime down from anywhere, and by `Runtime::enter`.
    pub(crate) fn replace(core: &Rc<Core>) -> EnterGuard {
        EnterGuard::push(core, false)
    }

    fn push(core: &Rc<Core>, drives: bool) -> EnterGuard {
        let id = NEXT_ENTRY.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            entered.push(Entry {
                id,
                core: core.clone(),
                drives,
                owner: true,
            });
            sync_current(&entered);
        });
        EnterGuard {
            id,
            _not_send: PhantomData,
        }
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        // Ignore a thread whose thread-locals are being torn down.
        let left = ENTERED.try_with(|entered| {
            let mut entered = entered.borrow_mut();
            let at = entered.iter().rposition(|e| e.id == self.id);
            let left = at.map(|i| entered.remove(i));
            if entered.is_empty() {
                // Nothing would free the buffer at thread exit (see `ENTERED`).
                *entered = Vec::new();
            }
            sync_current(&entered);
            left
        });
        // Dropped with nothing borrowed: it may hold the last reference to its core.
        drop(left);
    }
}
