//! The FIFO line of waiting tasks that `mpsc`, `Notify`, `Semaphore` and the locks share: a
//! task joins with its waker (and how much it wants, for the semaphore), the first in line is
//! *chosen* (handed a slot, a notification or permits) and woken, and a chosen task that goes
//! away hands its turn on (each user decides how).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;

/// One task waiting in a [`WaitQueue`].
pub(super) struct Waiter {
    waker: RefCell<Option<Waker>>,
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
        let mut slot = self.waker.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn take_waker(&self) -> Option<Waker> {
        self.waker.borrow_mut().take()
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
            waker: RefCell::new(Some(waker.clone())),
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
