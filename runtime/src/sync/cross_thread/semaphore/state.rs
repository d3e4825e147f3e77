//! What a cross-thread [`Semaphore`](super::Semaphore) keeps under its lock: the free
//! permits, the line of waiting acquires, and the acquires granted their permits but not
//! polled since.

use std::collections::VecDeque;
use std::task::Waker;

/// Everything about the semaphore, under one lock: a check and the registration of a
/// waker happen in one critical section, and so do a release and the taking of the wakers
/// it calls for, so permits can never come back between another thread's check and its
/// sleep.
pub(super) struct State {
    /// Permits nobody holds and no waiter was granted.
    permits: usize,
    /// Acquires waiting, in the order they came. Ids are handed out in increasing order
    /// and only pushed at the back, so the line stays sorted by id and a wait is found by
    /// binary search when it is polled again or dropped.
    line: VecDeque<Waiting>,
    /// Acquires handed their permits (taken out of `permits`) and woken, not polled since,
    /// by id. Grants go to the front of the line, so ids come here in increasing order and
    /// the list stays sorted.
    granted: VecDeque<u64>,
    /// The id the next acquire to join the line gets.
    next_id: u64,
    closed: bool,
}

/// One acquire in the line.
struct Waiting {
    id: u64,
    wanted: usize,
    waker: Waker,
}

impl State {
    /// `permits` free, nobody waiting (usable in a `const` context).
    pub(super) const fn new(permits: usize) -> State {
        State {
            permits,
            line: VecDeque::new(),
            granted: VecDeque::new(),
            next_id: 0,
            closed: false,
        }
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// How many acquires wait in line.
    pub(super) fn waiting(&self) -> usize {
        self.line.len()
    }

    /// Permits a new acquire could take now: none while somebody waits in line, since the
    /// free ones are set aside for the first waiter (as on tokio).
    pub(super) fn available(&self) -> usize {
        if self.line.is_empty() {
            self.permits
        } else {
            0
        }
    }

    /// Takes `n` permits for an acquire that has not waited, if they are free and nobody
    /// waits: a new request never overtakes the line. Zero permits take nothing from a
    /// waiter, so they are granted at once (as on tokio).
    pub(super) fn try_take(&mut self, n: usize) -> bool {
        if (n > 0 && !self.line.is_empty()) || self.permits < n {
            return false;
        }
        self.permits -= n;
        true
    }

    /// Takes up to `n` of the [`available`](State::available) permits for good; how many.
    pub(super) fn forget(&mut self, n: usize) -> usize {
        let taken = n.min(self.available());
        self.permits -= taken;
        taken
    }

    /// Whether `n` more free permits would pass `max` (then nothing is added).
    pub(super) fn would_pass(&self, n: usize, max: usize) -> bool {
        self.permits.checked_add(n).is_none_or(|total| total > max)
    }

    /// Whether the acquire `id` waits in line with a waker that wakes the same task as
    /// `waker`: then polling it again has nothing to register (and no waker to clone).
    pub(super) fn waits_with(&self, id: Option<u64>, waker: &Waker) -> bool {
        id.and_then(|id| self.find(id))
            .is_some_and(|at| self.line[at].waker.will_wake(waker))
    }

    /// Puts the acquire `id` in line for `wanted` permits with `waker`, a clone the caller
    /// made before taking the lock (cloning a waker is user code), or gives it the new
    /// waker if it is in line already. One not in line joins at the back under a fresh id,
    /// which `id` then holds. Returns the waker left over, to be dropped after the unlock
    /// (its drop is user code).
    #[must_use]
    pub(super) fn register(
        &mut self,
        id: &mut Option<u64>,
        wanted: usize,
        waker: Waker,
    ) -> Option<Waker> {
        if let Some(at) = id.and_then(|id| self.find(id)) {
            return Some(std::mem::replace(&mut self.line[at].waker, waker));
        }
        self.next_id += 1;
        *id = Some(self.next_id);
        self.line.push_back(Waiting {
            id: self.next_id,
            wanted,
            waker,
        });
        None
    }

    /// Whether the acquire `id` was granted its permits, taking it off the granted list if
    /// so: the permits are then the caller's. Grants are usually polled in the order they
    /// were made, so the one taken is usually the first.
    pub(super) fn take_grant(&mut self, id: u64) -> bool {
        match self.granted.binary_search(&id) {
            Ok(at) => {
                self.granted.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// The acquire `id`, wanting `wanted`, is dropped: the permits it was granted go back,
    /// or it leaves the line. Either way the waiters behind it may now have their turn
    /// (a large request leaving the front lets smaller ones go). Returns the wakers to
    /// call after the unlock, and the waker of the dropped wait, to drop after it.
    pub(super) fn leave(&mut self, id: u64, wanted: usize) -> (Vec<Waker>, Option<Waker>) {
        if self.take_grant(id) {
            return (self.release(wanted), None);
        }
        let old = self
            .find(id)
            .and_then(|at| self.line.remove(at))
            .map(|w| w.waker);
        (self.grant(), old)
    }

    /// `n` permits come back (the count saturates at `usize::MAX`): to the waiters at the
    /// front of the line that they satisfy, the rest to the pool. Returns the wakers of the
    /// waiters granted, to call after the unlock.
    #[must_use]
    pub(super) fn release(&mut self, n: usize) -> Vec<Waker> {
        self.permits = self.permits.saturating_add(n);
        self.grant()
    }

    /// Closes the semaphore: every waiter leaves the line, to fail when polled. Acquires
    /// already granted keep their permits. Returns the wakers to call after the unlock.
    #[must_use]
    pub(super) fn close(&mut self) -> Vec<Waker> {
        self.closed = true;
        self.line.drain(..).map(|w| w.waker).collect()
    }

    /// Hands free permits to the front of the line for as long as they satisfy it: the
    /// line is strictly first come, first served, so a large request at the front holds
    /// back smaller ones behind it.
    fn grant(&mut self) -> Vec<Waker> {
        let mut wakers = Vec::new();
        while let Some(first) = self.line.front() {
            if first.wanted > self.permits {
                break;
            }
            self.permits -= first.wanted;
            let first = self.line.pop_front().expect("looked at above");
            self.granted.push_back(first.id);
            wakers.push(first.waker);
        }
        wakers
    }

    /// Where the acquire `id` stands in the line, if it is there.
    fn find(&self, id: u64) -> Option<usize> {
        self.line.binary_search_by_key(&id, |w| w.id).ok()
    }

    /// Free permits, for `Debug`.
    pub(super) fn free(&self) -> usize {
        self.permits
    }
}
