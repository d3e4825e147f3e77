//! Which runtime, if any, is running on this thread.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use super::core::Core;

thread_local! {
    /// The core of the runtime driving this thread, or null.
    ///
    /// # Invariant
    /// Non-null only while an [`EnterGuard`] is alive on this thread; the guard owns an
    /// `Rc<Core>`, so the pointer is always valid while it can be read.
    static CURRENT: Cell<*const Core> = const { Cell::new(ptr::null()) };
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

/// Marks this thread as driving `core` until dropped.
pub(crate) struct EnterGuard {
    prev: *const Core,
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
        EnterGuard {
            prev,
            _core: core.clone(),
        }
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.prev));
    }
}
