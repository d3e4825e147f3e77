//! A value that records its own drop: stands for whatever a future owns (a socket, a
//! channel end), to check that the future was dropped.

use std::cell::Cell;
use std::rc::Rc;

/// Sets its flag when dropped.
pub struct DropFlag(Rc<Cell<bool>>);

impl DropFlag {
    /// A new value, and the flag that tells whether it was dropped.
    pub fn new() -> (DropFlag, Rc<Cell<bool>>) {
        let dropped = Rc::new(Cell::new(false));
        (DropFlag(dropped.clone()), dropped)
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}
