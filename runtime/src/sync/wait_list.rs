//! [`WaitList`]: the wakers of the futures waiting on a shared (`Send`) condition, kept
//! under the owner's mutex, one slot per waiting future.

use std::task::Waker;

/// One slot per waiting future; `free` lists the empty ones for the next waits to take.
/// `round` counts [`take_all`](Self::take_all)s: a slot handed out in an earlier round is
/// gone, even if its index is in use again.
#[derive(Default)]
pub(crate) struct WaitList {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
    round: u64,
}

/// A waiting future's place in a [`WaitList`]: none yet, or a slot of some round.
#[derive(Debug, Default)]
pub(crate) struct WaitSlot(Option<(u64, usize)>);

impl WaitList {
    /// An empty list, for a `static`'s constructor.
    pub(crate) const fn new() -> WaitList {
        WaitList {
            slots: Vec::new(),
            free: Vec::new(),
            round: 0,
        }
    }

    /// Stores `waker` in the wait's slot, taking a slot first if it has none in this
    /// round: the latest waker is the one woken. The clone (and the drop of a replaced
    /// waker) run under the owner's lock; [`register_owned`](Self::register_owned) is for
    /// an owner that must run no user code there.
    pub(crate) fn register(&mut self, slot: &mut WaitSlot, waker: &Waker) {
        if !self.waits_with(slot, waker) {
            drop(self.register_owned(slot, waker.clone()));
        }
    }

    /// Whether the wait holds a slot of this round with a waker that wakes the same task
    /// as `waker`: then polling it again has nothing to store (and no waker to clone).
    pub(crate) fn waits_with(&self, slot: &WaitSlot, waker: &Waker) -> bool {
        match slot.0 {
            Some((round, i)) if round == self.round => {
                self.slots[i].as_ref().is_some_and(|w| w.will_wake(waker))
            }
            _ => false,
        }
    }

    /// Stores `waker`, a clone the caller made with its lock released (cloning a waker is
    /// user code), in the wait's slot, taking a slot first if it has none in this round.
    /// Returns the waker it replaced, for the caller to drop after the unlock (its drop is
    /// user code too).
    #[must_use]
    pub(crate) fn register_owned(&mut self, slot: &mut WaitSlot, waker: Waker) -> Option<Waker> {
        if let Some((round, i)) = slot.0 {
            if round == self.round {
                return self.slots[i].replace(waker);
            }
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(waker);
                i
            }
            None => {
                self.slots.push(Some(waker));
                self.slots.len() - 1
            }
        };
        slot.0 = Some((self.round, i));
        None
    }

    /// Gives back a wait's slot (a wait dropped, or finished). One from an earlier round
    /// is gone already, and nothing is done.
    pub(crate) fn forget(&mut self, slot: &mut WaitSlot) {
        if let Some((round, i)) = slot.0.take() {
            if round == self.round {
                self.slots[i] = None;
                self.free.push(i);
            }
        }
    }

    /// Takes every stored waker, for the caller to wake once it has let go of its lock
    /// (a waker may poll, or drop, a wait at once), and starts a new round.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = Waker> {
        self.free.clear();
        self.round += 1;
        std::mem::take(&mut self.slots).into_iter().flatten()
    }
}

impl WaitSlot {
    /// Whether the wait holds a slot (of any round): a wait that never registered has
    /// nothing to give back, and need not take its owner's lock.
    pub(crate) fn is_taken(&self) -> bool {
        self.0.is_some()
    }
}
