//! Which runtime, if any, is running on this thread.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use super::core::Core;
use super::shared::Shared;
use crate::task::raw::TaskPtr;

thread_local! {
    /// The core of the runtime driving this thread, or null.
    ///
    /// # Invariant
    /// Non-null only while an [`EnterGuard`] is alive on this thread; the guard owns an
    /// `Rc<Core>`, so the pointer is always valid while it can be read.
    static CURRENT: Cell<*const Core> = const { Cell::new(ptr::null()) };

    /// The `Shared` of the runtime in CURRENT while this thread is in owner context for its
    /// tasks (see `task/state.rs`), else null.
    ///
    /// # Invariant
    /// Non-null only while CURRENT is non-null, points at that core's `Shared`, and that
    /// core is not shutting down.
    static OWNER: Cell<*const Shared> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with the current runtime's core, or returns `None` outside a runtime.
pub(crate) fn with_current<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: a non-null CURRENT is kept alive by the EnterGuard that set it (invariant).
    Some(f(unsafe { &*p }))
}

/// Runs `f` with the current runtime's core if this is *owner context* for `task`: the
/// thread is running the task's runtime, which is not shutting down. Otherwise `None`.
#[inline]
pub(crate) fn with_owner<R>(task: TaskPtr, f: impl FnOnce(&Core) -> R) -> Option<R> {
    // Null never matches a task, so one comparison settles "inside block_on", "this task's
    // runtime" and "not shutting down".
    if !ptr::eq(OWNER.with(Cell::get), task.shared_ptr()) {
        return None;
    }
    // SAFETY: OWNER is non-null, so CURRENT is non-null and kept alive by its EnterGuard
    // (both invariants).
    Some(f(unsafe { &*CURRENT.with(Cell::get) }))
}

/// Leaves owner context until the current `EnterGuard` drops: the runtime is shutting down,
/// and from here on its tasks' local counts are guarded by its remote queue's lock.
pub(crate) fn leave_owner() {
    OWNER.with(|o| o.set(ptr::null()));
}

/// Marks this thread as driving `core` until dropped.
pub(crate) struct EnterGuard {
    prev: *const Core,
    prev_owner: *const Shared,
    _core: Rc<Core>,
}

impl EnterGuard {
    /// Enters `core`. Panics if another runtime is already running on this thread, since
    /// blocking inside a task would stall every other task.
    pub(crate) fn enter(core: &Rc<Core>) -> EnterGuard {
        let prev = CURRENT.with(Cell::get);
        if !prev.is_null() {
            panic!(
                "cannot start a runtime from within a runtime: `block_on` was called while \
                 another `block_on` is running on this thread; use `.await` or `spawn` instead"
            );
        }
        EnterGuard::replace(core)
    }

    /// Makes `core` current whatever runs on this thread now; the previous one comes back
    /// when the guard drops. Used to shut a runtime down from anywhere.
    pub(crate) fn replace(core: &Rc<Core>) -> EnterGuard {
        let prev = CURRENT.with(|c| c.replace(Rc::as_ptr(core)));
        let prev_owner = OWNER.with(|o| o.replace(core.shared_ptr()));
        EnterGuard {
            prev,
            prev_owner,
            _core: core.clone(),
        }
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
        OWNER.with(|o| o.set(self.prev_owner));
    }
}
