//! The runtime's timer queue (simple ordered map; see the timers issue for the wheel).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

/// Pending timers of one runtime, ordered by deadline then insertion. Runtime thread only.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    entries: RefCell<BTreeMap<(Instant, u64), Waker>>,
    next_id: Cell<u64>,
    fired: Cell<u64>,
}

/// Identifies one registered timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey(Instant, u64);

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers::default()
    }

    pub(crate) fn insert(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.entries.borrow_mut().insert((deadline, id), waker);
        TimerKey(deadline, id)
    }

    /// Replaces the waker of a still-pending timer. Returns false if it already fired.
    pub(crate) fn update_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.entries.borrow_mut().get_mut(&(key.0, key.1)) {
            Some(w) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn remove(&self, key: TimerKey) {
        let w = self.entries.borrow_mut().remove(&(key.0, key.1));
        drop(w);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries.borrow().keys().next().map(|k| k.0)
    }

    pub(crate) fn active(&self) -> usize {
        self.entries.borrow().len()
    }

    pub(crate) fn fired(&self) -> u64 {
        self.fired.get()
    }

    /// Fires every timer due at `now` (a deadline equal to `now` is due), in deadline order.
    pub(crate) fn process(&self, now: Instant) -> usize {
        let due = {
            let mut entries = self.entries.borrow_mut();
            // Split just after `now`, so a timer set for exactly `now` is due.
            let later = entries.split_off(&(now, u64::MAX));
            std::mem::replace(&mut *entries, later)
        };
        let n = due.len();
        self.fired.set(self.fired.get() + n as u64);
        for (_, w) in due {
            w.wake();
        }
        n
    }
}
