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

/// Makes a runtime current on this thread until dropped (and, for `block_on`, marks it as
/// driving its loop).
pub(crate) struct EnterGuard {
    prev: *const Core,
    prev_owner: *const Shared,
    core: Rc<Core>,
    /// This guard is `block_on`'s: it clears the core's `driving` mark when dropped.
    drives: bool,
}

impl EnterGuard {
    /// Enters `core` to drive it (`block_on`). Panics if a runtime's loop is already being
    /// driven on this thread, since blocking inside a task would stall every other task. (A
    /// runtime only entered, with `Runtime::enter`, may be driven.)
    pub(crate) fn enter(core: &Rc<Core>) -> EnterGuard {
        let busy = with_current(|c| c.driving.get()).unwrap_or(false);
        if busy {
            panic!(
                "cannot start a runtime from within a runtime: `block_on` was called while \
                 another `block_on` is running on this thread; use `.await` or `spawn` instead"
            );
        }
        let mut guard = EnterGuard::replace(core);
        core.driving.set(true);
        guard.drives = true;
        guard
    }

    /// Makes `core` current whatever runs on this thread now; the previous one comes back
    /// when the guard drops. Used to shut a runtime down from anywhere, and by
    /// `Runtime::enter`.
    pub(crate) fn replace(core: &Rc<Core>) -> EnterGuard {
        let prev = CURRENT.with(|c| c.replace(Rc::as_ptr(core)));
        let prev_owner = OWNER.with(|o| o.replace(core.shared_ptr()));
        EnterGuard {
            prev,
            prev_owner,
            core: core.clone(),
            drives: false,
        }
    }

    /// Whether this guard's runtime is the current one (guards must drop in the reverse
    /// order of their making).
    pub(crate) fn is_current(&self) -> bool {
        ptr::eq(CURRENT.with(Cell::get), Rc::as_ptr(&self.core))
    }

    /// Whether another runtime's guard, made after this one, still lives. (After an
    /// out-of-order drop no runtime is current: the guards left are not blamed again.)
    pub(crate) fn is_out_of_order(&self) -> bool {
        !self.is_current() && !CURRENT.with(Cell::get).is_null()
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if self.drives {
            self.core.driving.set(false);
        }
        if self.is_current() {
            CURRENT.with(|c| c.set(self.prev));
            OWNER.with(|o| o.set(self.prev_owner));
        } else {
            // Dropped out of order (a `Runtime::enter` guard outlived a later one): `prev`
            // may be gone, so no runtime is current any more rather than a dangling one.
            CURRENT.with(|c| c.set(ptr::null()));
            OWNER.with(|o| o.set(ptr::null()));
        }
    }
}
