//! A gate that blocking jobs (or other threads) wait at until the test opens it.

use std::sync::{Arc, Condvar, Mutex};

/// A gate jobs wait at until the test opens it; clones share it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Blocks the calling thread until the gate is open (at once if it is).
    pub fn wait(&self) {
        let (open, changed) = &*self.0;
        let mut is_open = open.lock().unwrap();
        while !*is_open {
            is_open = changed.wait(is_open).unwrap();
        }
    }

    /// Opens the gate for good, letting every waiter through.
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}
