//! The FIFO line of waiting tasks that `mpsc`, `Notify`, `Semaphore` and the locks share: a
//! task joins with its waker (and how much it wants, for the semaphore), the first in line is
//! *chosen* (handed a slot, a notification or permits) and woken, and a chosen task that goes
//! away hands its turn on (each user decides how).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::task::Waker;

/// One task waiting in a [`WaitQueue`].
pub(super) struct Waiter {
    waker: Slot,
    chosen: Cell<bool>,
    /// How many units (semaphore permits) it waits for; 1 for the other users.
    wanted: usize,
}

impl Waiter {
    /// How many units it asked for.
    pub(super) fn wanted(&self) -> usize {
        self.wanted
    }

    /// Whether the queue picked this waiter (it is out of the line then).
    pub(super) fn is_chosen(&self) -> bool {
        self.chosen.get()
    }

    /// Keeps `waker` as the one to call (the task may have been polled with another).
    pub(super) fn set_waker(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    fn take_waker(&self) -> Option<Waker> {
        self.waker.take()
    }
}

/// Waiting tasks, first come first served.
#[derive(Default)]
pub(super) struct WaitQueue {
    line: RefCell<VecDeque<Rc<Waiter>>>,
}

impl WaitQueue {
    pub(super) fn is_empty(&self) -> bool {
        self.line.borrow().is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.line.borrow().len()
    }

    /// Joins the end of the line.
    pub(super) fn push(&self, waker: &Waker) -> Rc<Waiter> {
        self.push_wanting(waker, 1)
    }

    /// Joins the end of the line, waiting for `wanted` units.
    pub(super) fn push_wanting(&self, waker: &Waker, wanted: usize) -> Rc<Waiter> {
        let w = Rc::new(Waiter {
            waker: Slot(RefCell::new(Some(waker.clone()))),
            chosen: Cell::new(false),
            wanted,
        });
        self.line.borrow_mut().push_back(w.clone());
        w
    }

    /// How many units the first in line wants, if anyone waits.
    pub(super) fn first_wants(&self) -> Option<usize> {
        self.line.borrow().front().map(|w| w.wanted)
    }

    /// Takes the first waiter out of the line, marks it chosen and returns its waker, to be
    /// called once nothing is borrowed any more. `None` if nobody waits.
    pub(super) fn choose_first(&self) -> Option<Option<Waker>> {
        let w = self.line.borrow_mut().pop_front()?;
        w.chosen.set(true);
        Some(w.take_waker())
    }

    /// Leaves the line (a waiter not chosen that goes away).
    pub(super) fn remove(&self, waiter: &Rc<Waiter>) {
        self.line
            .borrow_mut()
            .retain(|other| !Rc::ptr_eq(other, waiter));
    }

    /// Empties the line, without choosing anyone; returns the wakers to call.
    pub(super) fn take_all(&self) -> Vec<Waker> {
        let line = std::mem::take(&mut *self.line.borrow_mut());
        line.iter().filter_map(|w| w.take_waker()).collect()
    }
}

/// Calls the waker, if there is one.
pub(super) fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// Calls every waker.
pub(super) fn wake_all(wakers: Vec<Waker>) {
    wakers.into_iter().for_each(Waker::wake);
}

/// One task's place to be woken (a [`Waiter`]'s, a `watch` or `broadcast` receiver's):
/// however often the task polls, it holds one waker, and is woken once.
pub(super) struct Slot(RefCell<Option<Waker>>);

impl Slot {
    /// Keeps `waker` (unless it wakes the same task as the one kept).
    pub(super) fn register(&self, waker: &Waker) {
        let mut slot = self.0.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn take(&self) -> Option<Waker> {
        self.0.borrow_mut().take()
    }
}

/// Every receiver's [`Slot`], to wake them all when something changes for all of them. A
/// receiver owns its slot; a dropped receiver's entry is pruned later.
#[derive(Default)]
pub(super) struct Watchers {
    slots: RefCell<Vec<Weak<Slot>>>,
}

impl Watchers {
    /// A slot for a new receiver.
    pub(super) fn add(&self) -> Rc<Slot> {
        let slot = Rc::new(Slot(RefCell::new(None)));
        let mut slots = self.slots.borrow_mut();
        if slots.len() == slots.capacity() {
            // Before growing, drop the entries of receivers gone since: receivers made and
            // dropped without a wake in between must not grow the list for ever.
            slots.retain(|w| w.strong_count() > 0);
        }
        slots.push(Rc::downgrade(&slot));
        slot
    }

    /// Wakes every receiver waiting now (each at most once), pruning the dead entries.
    pub(super) fn wake_all(&self) {
        let wakers: Vec<Waker> = {
            let mut slots = self.slots.borrow_mut();
            slots.retain(|w| w.strong_count() > 0);
            slots
                .iter()
                .filter_map(|w| w.upgrade().and_then(|slot| slot.take()))
                .collect()
        };
        wake_all(wakers);
    }

    /// Entries kept (live or not yet pruned).
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.slots.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::Watchers;

    #[test]
    fn receivers_made_and_dropped_without_wakes_do_not_grow_the_list() {
        let watchers = Watchers::default();
        let kept = watchers.add();
        for _ in 0..10_000 {
            drop(watchers.add());
        }
        assert!(watchers.entries() <= 4, "{} entries", watchers.entries());
        drop(kept);
    }
}
