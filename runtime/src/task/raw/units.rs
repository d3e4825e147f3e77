//! How task cells keep their runtime's `Shared` alive without an atomic operation per task.
//!
//! Every cell holds one *unit* of `Shared::cells`, and while that count is above zero it
//! holds one strong count of the `Arc<Shared>` between all of them (taken by whoever raises
//! it from zero, given up by whoever brings it back there). The runtime thread keeps a
//! credit of units it took in bulk ([`CellCredit`]): a task it spawns takes one from there,
//! and a cell freed on that thread while the loop runs puts its unit back, neither with an
//! atomic operation. Other threads, and every thread once the runtime is shutting down,
//! give a freed cell's unit back to the shared count. The credit itself holds one more unit
//! until the runtime's core is dropped, so the count never reaches zero before then.

use std::cell::Cell;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use crate::executor::Shared;

/// How many units the runtime thread takes from the shared count when its credit is empty.
const BATCH: usize = 1024;

/// Units of `Shared::cells` that the runtime thread holds for cells it has yet to allocate
/// (see the module docs). Owned by the runtime's core; runtime thread only.
#[derive(Debug)]
pub(crate) struct CellCredit {
    units: Cell<usize>,
}

impl CellCredit {
    /// A credit holding one unit of its own, which keeps the count above zero until
    /// [`release_all`](CellCredit::release_all).
    pub(crate) fn new(shared: &Arc<Shared>) -> CellCredit {
        take_units(shared, 1);
        CellCredit {
            units: Cell::new(0),
        }
    }

    /// Takes one unit for a new cell of `shared`, the runtime this credit belongs to.
    pub(crate) fn take(&self, shared: &Arc<Shared>) {
        match self.units.get() {
            0 => {
                take_units(shared, BATCH);
                self.units.set(BATCH - 1);
            }
            n => self.units.set(n - 1),
        }
    }

    /// Takes back the unit of a cell freed on the runtime thread while the loop runs.
    pub(crate) fn give_back(&self) {
        self.units.set(self.units.get() + 1);
    }

    /// Gives every unit held, its own included, back to `shared`'s count: the core is being
    /// dropped, and cells freed from now on give theirs back to the shared count.
    pub(crate) fn release_all(&self, shared: &Arc<Shared>) {
        let n = self.units.replace(0) + 1;
        // SAFETY: the credit holds these `n` units, and gives them up here, once (the core
        // calls this from its drop); `shared` is live (borrowed from a live `Arc`).
        unsafe { release_units(Arc::as_ptr(shared), n) };
    }
}

/// Adds `n` units to `shared`'s count; raising it from zero takes the strong count that all
/// units hold together.
pub(super) fn take_units(shared: &Arc<Shared>, n: usize) {
    if shared.cells.fetch_add(n, Ordering::Relaxed) == 0 {
        // SAFETY: `shared` comes from a live `Arc`, so the pointer is valid and its strong
        // count is at least one.
        unsafe { Arc::increment_strong_count(Arc::as_ptr(shared)) };
    }
}

/// Gives `n` units back to the count of the `Shared` at `shared`; bringing it to zero gives
/// up the strong count the units held (possibly the last: `shared` is dangling after).
///
/// # Safety
/// The caller holds `n` units of that count and gives them up: it must not use them (or
/// `shared`, unless it holds the `Shared` by other means) afterwards.
pub(super) unsafe fn release_units(shared: *const Shared, n: usize) {
    // SAFETY: the caller's units keep the units' strong count, so `Shared` is alive.
    let cells = unsafe { &(*shared).cells };
    if cells.fetch_sub(n, Ordering::Release) == n {
        // Whatever was done through the other units happens before the `Shared` is dropped.
        fence(Ordering::Acquire);
        // SAFETY: the count went from `n` to zero: the strong count the units held (taken in
        // `take_units` when it last left zero) is given up here, once.
        unsafe { Arc::decrement_strong_count(shared) };
    }
}

/// Gives up the unit of a cell of `shared` that was just freed: into the runtime thread's
/// credit if this is that thread and the loop runs, otherwise to the shared count.
///
/// # Safety
/// The cell was the holder of the unit, and is gone.
pub(super) unsafe fn release_cell_unit(shared: *const Shared) {
    if crate::executor::with_owner_of(shared, |core| core.cell_credit().give_back()).is_none() {
        // SAFETY: caller's contract: the unit is the freed cell's, given up once, here.
        unsafe { release_units(shared, 1) };
    }
}
