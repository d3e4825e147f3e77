//! The FIFO line of waiting tasks that `mpsc`, `Notify`, `Semaphore` and the locks share: a
//! task joins with its waker (and how much it wants, for the semaphore), the first in line is
//! *chosen* (handed a slot, a notification or permits) and woken, and a chosen task that goes
//! away hands its turn on (each user decides how).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::task::Waker;

/// One task waiting in a [`WaitQueue`].
pub(super) struct Waiter {
    waker: Slot,
    chosen: Cell<bool>,
    /// Chosen from the back of the line ([`WaitQueue::choose_last`]), not the front.
    from_back: Cell<bool>,
    /// It left the line, but its entry may still be there (see [`WaitQueue`]).
    gone: Cell<bool>,
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

    /// Whether it was chosen from the back of the line (by [`WaitQueue::choose_last`]).
    pub(super) fn chosen_from_back(&self) -> bool {
        self.from_back.get()
    }

    /// Keeps `waker` as the one to call (the task may have been polled with another).
    #[must_use]
    pub(super) fn set_waker(&self, waker: &Waker) -> Option<Waker> {
        self.waker.register(waker)
    }

    fn take_waker(&self) -> Option<Waker> {
        self.waker.take()
    }
}

/// Waiting tasks, first come first served.
///
/// Leaving the line costs O(1) (amortised), however long it is: a waiter that goes away is
/// only marked gone, and its entry is dropped when it reaches the front, or when gone
/// entries outnumber the live ones (then all at once). Every timed-out or `select!`-ed away
/// wait leaves this way, so walking the line for each would make `n` of them cost `n²`.
/// The front entry is never a gone one, so the first in line is always at hand.
///
/// A waiter cell that leaves the line for good is kept by the queue as its spare,
/// so a wait that is given up (a `select!` branch not taken) allocates nothing once the
/// queue has been in use.
/// Entries an emptied line keeps room for (64 KiB): a burst of waiters gives its memory back
/// once served, while a steady line does not reallocate all the time.
const KEEP_WHEN_EMPTY: usize = 8192;

#[derive(Default)]
pub(super) struct WaitQueue {
    line: RefCell<VecDeque<Rc<Waiter>>>,
    /// How many entries of `line` are gone.
    gone: Cell<usize>,
    /// A waiter cell nobody else holds, with no waker, ready for the next to join.
    spare: Cell<Option<Rc<Waiter>>>,
}

impl WaitQueue {
    /// An empty line (usable in a `const` context).
    pub(super) const fn new() -> WaitQueue {
        WaitQueue {
            line: RefCell::new(VecDeque::new()),
            gone: Cell::new(0),
            spare: Cell::new(None),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many wait (gone entries not counted).
    pub(super) fn len(&self) -> usize {
        self.line.borrow().len() - self.gone.get()
    }

    /// Joins the end of the line.
    pub(super) fn push(&self, waker: &Waker) -> Rc<Waiter> {
        self.push_wanting(waker, 1)
    }

    /// Joins the end of the line, waiting for `wanted` units.
    pub(super) fn push_wanting(&self, waker: &Waker, wanted: usize) -> Rc<Waiter> {
        self.join(Some(waker.clone()), wanted)
    }

    /// Joins the end of the line with no waker yet (choosing it wakes nobody until one is
    /// set with [`Waiter::set_waker`]).
    pub(super) fn push_unwoken(&self) -> Rc<Waiter> {
        self.join(None, 1)
    }

    fn join(&self, waker: Option<Waker>, wanted: usize) -> Rc<Waiter> {
        let fresh = Waiter {
            waker: Slot(RefCell::new(waker)),
            chosen: Cell::new(false),
            from_back: Cell::new(false),
            gone: Cell::new(false),
            wanted,
        };
        let spare = self.spare.take();
        let w = match spare {
            Some(mut w) => {
                // A spare is held by nothing else (`recycle`) and has no waker, so
                // overwriting it runs no user code.
                if let Some(cell) = Rc::get_mut(&mut w) {
                    *cell = fresh;
                    w
                } else {
                    Rc::new(fresh)
                }
            }
            None => Rc::new(fresh),
        };
        self.line.borrow_mut().push_back(w.clone());
        w
    }

    /// Takes back a waiter cell its holder is done with (chosen, or out of the line), to
    /// reuse for the next to join, if nothing else holds it and it keeps no waker; otherwise
    /// it is simply dropped. The holder has taken and dropped any waker first, so this runs
    /// no user code.
    pub(super) fn recycle(&self, waiter: Rc<Waiter>) {
        if Rc::strong_count(&waiter) != 1 || waiter.waker.0.borrow().is_some() {
            return;
        }
        // A spare already kept is dropped: it has no waker, so that runs no user code.
        self.spare.set(Some(waiter));
    }

    /// How many units the first in line wants, if anyone waits.
    pub(super) fn first_wants(&self) -> Option<usize> {
        self.line.borrow().front().map(|w| w.wanted)
    }

    /// Takes the first waiter out of the line, marks it chosen and returns its waker, to be
    /// called once nothing is borrowed any more. `None` if nobody waits.
    pub(super) fn choose_first(&self) -> Option<Option<Waker>> {
        let mut line = self.line.borrow_mut();
        let w = line.pop_front()?;
        self.drop_gone_front(&mut line);
        w.chosen.set(true);
        Some(w.take_waker())
    }

    /// Takes the last waiter (the latest to join) out of the line, as
    /// [`choose_first`](Self::choose_first) does the first.
    pub(super) fn choose_last(&self) -> Option<Option<Waker>> {
        let mut line = self.line.borrow_mut();
        self.drop_gone_back(&mut line);
        let w = line.pop_back()?;
        // Gone entries behind a live one may now be at the back; the front stays live (or
        // the line is empty).
        self.drop_gone_back(&mut line);
        w.chosen.set(true);
        w.from_back.set(true);
        Some(w.take_waker())
    }

    /// Leaves the line (a waiter not chosen that goes away); the entry may stay until it is
    /// cheap to drop. Returns the waiter's waker, for the caller to drop once its own state
    /// is settled and nothing is borrowed: the drop is user code, which may use this queue.
    #[must_use = "the waker is dropped by the caller once nothing is borrowed"]
    pub(super) fn remove(&self, waiter: Rc<Waiter>) -> Option<Waker> {
        if waiter.chosen.get() || waiter.gone.replace(true) {
            return None;
        }
        // Taken, not dropped: its drop is user code, which may use this queue (or the
        // caller's state around it): the caller drops it once nothing is borrowed.
        let waker = waiter.take_waker();
        let mut line = self.line.borrow_mut();
        if line.back().is_some_and(|w| Rc::ptr_eq(w, &waiter)) {
            // The common case (the latest to join gives up first): the cell, its waker
            // taken above, is reused if nothing else holds it.
            line.pop_back();
            self.drop_gone_back(&mut line);
            drop(line);
            if Rc::strong_count(&waiter) == 1 {
                self.spare.set(Some(waiter));
            }
            return waker;
        }
        self.gone.set(self.gone.get() + 1);
        self.drop_gone_front(&mut line);
        if self.gone.get() > line.len() / 2 {
            line.retain(|w| !w.gone.get());
            self.gone.set(0);
        }
        waker
    }

    /// Drops the gone entries at the front, so that the first entry is a live one; a line
    /// left empty gives back the room a burst of waiters grew it to.
    fn drop_gone_front(&self, line: &mut VecDeque<Rc<Waiter>>) {
        while line.front().is_some_and(|w| w.gone.get()) {
            line.pop_front();
            self.gone.set(self.gone.get() - 1);
        }
        give_back_room(line);
    }

    /// Drops the gone entries at the back, so that the last entry is a live one (and gives
    /// back a burst's room, as `drop_gone_front` does).
    fn drop_gone_back(&self, line: &mut VecDeque<Rc<Waiter>>) {
        while line.back().is_some_and(|w| w.gone.get()) {
            line.pop_back();
            self.gone.set(self.gone.get() - 1);
        }
        give_back_room(line);
    }

    /// Empties the line, without choosing anyone; returns the wakers to call.
    pub(super) fn take_all(&self) -> Vec<Waker> {
        let line = std::mem::take(&mut *self.line.borrow_mut());
        self.gone.set(0);
        // Out of the line for good: a later `remove` of one of them must change nothing.
        line.iter().for_each(|w| w.gone.set(true));
        line.iter().filter_map(|w| w.take_waker()).collect()
    }
}

/// Calls the waker, if there is one.
pub(super) fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// Calls the waker of the sender a receive just freed a slot for, then hands out `value`,
/// the value that receive took. If the waker panics (a user's own), `keep` first puts the
/// value back at the front of the queue, so the panic, which reaches the receive, costs it
/// no value: the next receive takes it. (The sender keeps the slot it was given, so the
/// queue may then hold one value more than its capacity until that value is read.)
pub(super) fn wake_keeping<T>(waker: Option<Waker>, value: T, keep: impl FnOnce(T)) -> T {
    let Some(w) = waker else { return value };
    match catch_unwind(AssertUnwindSafe(|| w.wake())) {
        Ok(()) => value,
        Err(payload) => {
            keep(value);
            resume_unwind(payload)
        }
    }
}

/// Calls every waker. One that panics (a user's own) costs the others nothing: the rest are
/// still called, and the first panic is resumed only after that.
pub(crate) fn wake_all(wakers: Vec<Waker>) {
    let mut wakes = Wakes::default();
    wakers.into_iter().for_each(|w| wakes.wake(Some(w)));
    wakes.finish();
}

/// Wakes several tasks in turn such that a waker that panics stops none of the others:
/// [`finish`](Self::finish) resumes the first panic once all were called.
#[derive(Default)]
pub(super) struct Wakes {
    panic: Option<Box<dyn Any + Send>>,
}

impl Wakes {
    /// Calls the waker, if there is one, keeping a panic for `finish`.
    pub(super) fn wake(&mut self, waker: Option<Waker>) {
        if let Some(w) = waker {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| w.wake())) {
                self.panic.get_or_insert(payload);
            }
        }
    }

    /// Resumes the first panic a waker raised, if any.
    pub(super) fn finish(self) {
        if let Some(payload) = self.panic {
            resume_unwind(payload);
        }
    }
}

/// One task's place to be woken (a [`Waiter`]'s, a `watch` or `broadcast` receiver's):
/// however often the task polls, it holds one waker, and is woken once.
pub(super) struct Slot(RefCell<Option<Waker>>);

impl Slot {
    /// Keeps `waker` (unless it wakes the same task as the one kept).
    #[must_use]
    pub(super) fn register(&self, waker: &Waker) -> Option<Waker> {
        let mut slot = self.0.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(waker) => None,
            _ => slot.replace(waker.clone()),
        }
    }

    fn take(&self) -> Option<Waker> {
        self.0.borrow_mut().take()
    }
}

/// A line left empty gives back the room a burst of waiters grew it to (above
/// [`KEEP_WHEN_EMPTY`]).
fn give_back_room(line: &mut VecDeque<Rc<Waiter>>) {
    if line.is_empty() && line.capacity() > KEEP_WHEN_EMPTY {
        line.shrink_to(KEEP_WHEN_EMPTY);
    }
}

/// After a prune, gives back the room of a list that holds less than a quarter of it (and more
/// than [`KEEP_WHEN_EMPTY`] entries' worth), keeping twice what is left: receivers that came
/// and went in a burst do not keep their list's memory for the channel's life.
fn shrink_pruned(slots: &mut Vec<Weak<Slot>>) {
    let keep = KEEP_WHEN_EMPTY.max(2 * slots.len());
    if slots.capacity() > keep.max(4 * slots.len()) {
        slots.shrink_to(keep);
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
            shrink_pruned(&mut slots);
        }
        slots.push(Rc::downgrade(&slot));
        slot
    }

    /// Wakes every receiver waiting now (each at most once), pruning the dead entries.
    pub(super) fn wake_all(&self) {
        let wakers: Vec<Waker> = {
            let mut slots = self.slots.borrow_mut();
            slots.retain(|w| w.strong_count() > 0);
            shrink_pruned(&mut slots);
            slots
                .iter()
                .filter_map(|w| w.upgrade().and_then(|slot| slot.take()))
                .collect()
        };
        wake_all(wakers);
    }

    /// Waits, woken through this list, until `done()` is true: for a sender's `closed`,
    /// with `done` "no receiver is left" and the last receiver's drop calling
    /// [`wake_all`](Self::wake_all). Cancel-safe: dropped, it leaves a dead entry, pruned
    /// later. Spends the task's cooperative budget as a receive does, so a loop awaiting it
    /// when it is always done still yields.
    pub(super) async fn wait_until(&self, done: impl Fn() -> bool) {
        let mut slot = None;
        std::future::poll_fn(|cx| {
            crate::coop::budgeted(cx, |cx| {
                if done() {
                    return std::task::Poll::Ready(());
                }
                let slot = slot.get_or_insert_with(|| self.add());
                drop(slot.register(cx.waker()));
                std::task::Poll::Pending
            })
        })
        .await
    }

    /// Entries kept (live or not yet pruned).
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.slots.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::{WaitQueue, Watchers};
    use std::rc::Rc;
    use std::task::Waker;

    /// Waiters leaving from anywhere in the line keep the others' order, the count exact and
    /// the front live; gone entries never pile up beyond the live ones.
    #[test]
    fn leaving_the_line_keeps_order_and_bounds_gone_entries() {
        let queue = WaitQueue::default();
        let waiters: Vec<_> = (1..=1000)
            .map(|n| queue.push_wanting(Waker::noop(), n))
            .collect();
        // Every third leaves (front, middle and back included), then the last one.
        let mut left: Vec<usize> = Vec::new();
        for (i, w) in waiters.iter().enumerate() {
            if i % 3 == 0 || i == 999 {
                drop(queue.remove(w.clone()));
                drop(queue.remove(w.clone())); // twice is harmless
                left.push(w.wanted());
            }
            let stored = queue.line.borrow().len();
            assert!(
                stored <= 2 * queue.len() + 1,
                "{stored} entries for {}",
                queue.len()
            );
        }
        let mut expected: Vec<usize> = (1..=1000).filter(|n| !left.contains(n)).collect();
        assert_eq!(queue.len(), expected.len());
        // Leaving from the middle, in reverse, down to the first.
        let mut order = Vec::new();
        while let Some(first) = queue.first_wants() {
            order.push(first);
            assert!(queue.choose_first().is_some());
            if let Some(w) = waiters.iter().find(|w| w.wanted() == first + 500) {
                if !w.is_chosen() && expected.contains(&w.wanted()) {
                    drop(queue.remove(w.clone()));
                    expected.retain(|&n| n != w.wanted());
                }
            }
        }
        assert_eq!(order, expected);
        assert!(queue.is_empty());
        assert_eq!(queue.line.borrow().len(), 0);
        // A chosen waiter that leaves afterwards changes nothing.
        let w = queue.push(Waker::noop());
        let later = queue.push(Waker::noop());
        assert!(queue.choose_first().is_some());
        drop(queue.remove(w.clone()));
        assert_eq!(queue.len(), 1);
        assert!(Rc::ptr_eq(&queue.line.borrow()[0], &later));
    }

    /// Choosing from the back skips the waiters gone from there and keeps the count exact.
    #[test]
    fn choosing_the_last_skips_gone_waiters_at_the_back() {
        let queue = WaitQueue::default();
        let w: Vec<_> = (1..=5)
            .map(|n| queue.push_wanting(Waker::noop(), n))
            .collect();
        drop(queue.remove(w[1].clone())); // gone, in the middle
        drop(queue.remove(w[3].clone())); // gone, in the middle
        drop(queue.remove(w[4].clone())); // popped: the gone 4 is now at the back
        assert_eq!(queue.len(), 2);
        assert!(queue.choose_last().is_some());
        assert!(w[2].is_chosen() && w[2].chosen_from_back());
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.line.borrow().len(), 1, "the gone 2 went with it");
        assert!(queue.choose_last().is_some());
        assert!(w[0].is_chosen());
        assert!(queue.choose_last().is_none() && queue.is_empty());
        // An unwoken waiter is chosen like any other, with no waker to call.
        let idle = queue.push_unwoken();
        assert!(matches!(queue.choose_first(), Some(None)));
        assert!(idle.is_chosen() && !idle.chosen_from_back());
    }

    /// A wait given up from the back of the line, or chosen and done, leaves its cell to
    /// the next to join, reset; a cell someone still holds is never reused.
    #[test]
    fn cells_that_left_the_line_are_reused_fresh() {
        let queue = WaitQueue::default();
        let first = queue.push_wanting(Waker::noop(), 3);
        let addr = Rc::as_ptr(&first);
        drop(queue.remove(first));
        let again = queue.push_unwoken();
        assert_eq!(Rc::as_ptr(&again), addr, "the given-up cell is reused");
        assert_eq!(again.wanted(), 1);
        assert!(!again.is_chosen() && !again.gone.get());
        // Chosen from the back, then done with: reused, with its marks cleared.
        assert!(queue.choose_last().is_some());
        assert!(again.chosen_from_back());
        queue.recycle(again);
        let third = queue.push(Waker::noop());
        assert_eq!(Rc::as_ptr(&third), addr);
        assert!(!third.is_chosen() && !third.chosen_from_back());
        assert!(third.waker.0.borrow().is_some());
        // Still held elsewhere (a clone), or still holding a waker: not taken as a spare.
        let held = third.clone();
        assert!(queue.choose_first().is_some());
        queue.recycle(third);
        let w = queue.push(Waker::noop());
        assert_ne!(Rc::as_ptr(&w), addr);
        queue.recycle(w.clone());
        assert!(queue.spare.take().is_none());
        drop(held);
        assert_eq!(queue.len(), 1);
    }

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
