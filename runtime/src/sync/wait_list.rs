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
    /// round: the latest waker is the one woken.
    pub(crate) fn register(&mut self, slot: &mut WaitSlot, waker: &Waker) {
        if let Some((round, i)) = slot.0 {
            if round == self.round {
                match &mut self.slots[i] {
                    Some(w) => w.clone_from(waker),
                    empty => *empty = Some(waker.clone()),
                }
                return;
            }
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(waker.clone());
                i
            }
            None => {
                self.slots.push(Some(waker.clone()));
                self.slots.len() - 1
            }
        };
        slot.0 = Some((self.round, i));
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
