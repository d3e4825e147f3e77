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
/// destructor is user code and may panic too, with a payload of its own, which is dropped
/// the same way (a panic message, typically, whose drop cannot panic). A chain of payloads
/// each panicking when dropped is followed a few links deep; one still panicking past that
/// is leaked, the only safe end (its destructor could panic again for ever).
#[cold]
#[inline(never)]
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    let mut payload = payload;
    for _ in 0..8 {
        match catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(again) => payload = again,
        }
    }
    mem::forget(payload);
}
