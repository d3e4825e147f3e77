//! Containing a panic of user code (a hook, a waker, a destructor) where no unwinding may
//! escape, including the panic of the payload's own destructor.

use std::any::Any;
use std::mem;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, catching its panic. The payload is dropped here, and a payload whose
/// destructor panics in turn is contained too (see [`drop_payload`]).
pub(crate) fn contain(f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        drop_payload(payload);
    }
}

/// Drops the payload of a caught panic, where no unwinding may escape: a payload's
/// destructor is user code and may panic too; that second payload is leaked, the only
/// safe choice (its destructor could panic again).
#[cold]
#[inline(never)]
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        mem::forget(again);
    }
}
