//! `OwnedWaiters`: an fd's waiters that own their entry (see `own_wait.rs`).
//!
//! Entries live densely in one vector, so an edge walks only the waiters there are now,
//! however many there once were; a key handed to a future finds its entry through a slab of
//! positions, kept up to date when a removal moves the last entry into the hole.

use std::task::Waker;

use super::{Direction, Ready};
use crate::slab::Slab;

/// Position slots kept once every waiter has gone; a larger slab is freed.
const KEPT: usize = 16;

#[derive(Debug, Default)]
pub(super) struct OwnedWaiters {
    /// Key (what a future holds) to position in `dense`.
    positions: Slab<usize>,
    /// `(key, direction, waker)`; the waker is `None` once an edge took it.
    dense: Vec<(usize, Direction, Option<Waker>)>,
}

impl OwnedWaiters {
    /// A new entry waiting in `dir`; returns its key.
    pub(super) fn insert(&mut self, dir: Direction, waker: Waker) -> usize {
        let key = self.positions.insert(self.dense.len());
        self.dense.push((key, dir, Some(waker)));
        key
    }

    /// The waker slot of entry `key`, if it is there.
    pub(super) fn waker_mut(&mut self, key: usize) -> Option<&mut Option<Waker>> {
        let pos = *self.positions.get_mut(key)?;
        Some(&mut self.dense[pos].2)
    }

    /// Removes entry `key`; returns its waker (if an edge has not taken it), for the caller
    /// to drop once nothing is borrowed.
    pub(super) fn remove(&mut self, key: usize) -> Option<Waker> {
        let pos = self.positions.remove(key)?;
        let (_, _, waker) = self.dense.swap_remove(pos);
        if let Some(&(moved, _, _)) = self.dense.get(pos) {
            if let Some(p) = self.positions.get_mut(moved) {
                *p = pos;
            }
        }
        if self.dense.is_empty() && self.positions.capacity() > KEPT {
            // A crowd of waiters has gone: let its memory go too.
            *self = OwnedWaiters::default();
        } else if self.dense.capacity() > 4 * self.dense.len().max(KEPT) {
            self.dense.shrink_to(2 * self.dense.len().max(KEPT));
        }
        waker
    }

    /// Moves the wakers of the entries waiting on a direction in `ready` to `to_wake`.
    pub(super) fn take_wakers(&mut self, ready: Ready, to_wake: &mut Vec<Waker>) {
        for (_, dir, waker) in &mut self.dense {
            if ready.intersects(dir.interest()) {
                to_wake.extend(waker.take());
            }
        }
    }

    /// Every waker still held (the fd is going).
    pub(super) fn into_wakers(self) -> impl Iterator<Item = Waker> {
        self.dense.into_iter().filter_map(|(_, _, w)| w)
    }
}

#[cfg(test)]
mod tests {
    use super::OwnedWaiters;
    use crate::reactor::{Direction, Ready};
    use std::task::Waker;

    /// After a crowd of waiters leaves while one stays, an edge walks one entry, and the
    /// crowd's memory goes; the survivor's key still finds its entry.
    #[test]
    fn a_departed_crowd_costs_nothing_later() {
        let mut owned = OwnedWaiters::default();
        let keys: Vec<usize> = (0..10_000)
            .map(|_| owned.insert(Direction::Read, Waker::noop().clone()))
            .collect();
        let survivor = keys[5_000];
        for &k in keys.iter().filter(|&&k| k != survivor) {
            assert!(owned.remove(k).is_some());
        }
        assert_eq!(owned.dense.len(), 1);
        assert!(owned.dense.capacity() <= 64, "{}", owned.dense.capacity());
        let mut woken = Vec::new();
        owned.take_wakers(Ready::READABLE, &mut woken);
        assert_eq!(woken.len(), 1);
        // Taken by the edge: the entry stays, empty, until its future goes.
        assert!(owned.waker_mut(survivor).unwrap().is_none());
        assert!(owned.remove(survivor).is_none());
        assert!(owned.dense.is_empty() && owned.positions.capacity() == 0);
    }

    /// Removing from the middle moves the last entry into the hole; every key still finds
    /// its own entry.
    #[test]
    fn keys_follow_their_entries_when_others_leave() {
        let mut owned = OwnedWaiters::default();
        let dirs = [Direction::Read, Direction::Write];
        let keys: Vec<usize> = (0..8)
            .map(|i| owned.insert(dirs[i % 2], Waker::noop().clone()))
            .collect();
        owned.remove(keys[1]);
        owned.remove(keys[4]);
        for (i, &k) in keys.iter().enumerate() {
            if i == 1 || i == 4 {
                assert!(owned.waker_mut(k).is_none());
                continue;
            }
            let pos = *owned.positions.get_mut(k).unwrap();
            assert_eq!(owned.dense[pos].0, k);
            assert_eq!(owned.dense[pos].1, dirs[i % 2]);
        }
        let mut woken = Vec::new();
        owned.take_wakers(Ready::WRITABLE, &mut woken);
        assert_eq!(woken.len(), 3, "keys 3, 5 and 7 wait to write");
    }
}
