//! `Spares`: big slot buffers kept between uses, so a wheel that fills up again reuses them.
//!
//! Timers spread over a second crowd a few level-1 slots with tens of thousands of items each.
//! Grown by doubling, every such slot would copy its items about once more and fault in fresh
//! pages for them each time it fills, and its buffer would be freed once cascaded. So a slot
//! keeps a buffer only up to `KEEP_CAPACITY`; a bigger one it empties comes here, and a slot
//! that outgrows its own buffer takes the best-fitting spare instead of reallocating.

use super::{Item, KEEP_CAPACITY};

/// Buffers kept at most.
const MAX_SPARES: usize = 256;

/// Empty buffers, each with room for more than `KEEP_CAPACITY` items.
///
/// # Invariant
/// `capacity` is the sum of the buffers' capacities, and never exceeds the `limit` passed to
/// `put` (twice the slab's capacity, which never shrinks: spares never outweigh what the
/// wheel's peak load needed).
#[derive(Debug, Default)]
pub(super) struct Spares {
    bufs: Vec<Vec<Item>>,
    capacity: usize,
}

impl Spares {
    /// Keeps `buf` (emptied) for later, if it is big; when that would make more than
    /// [`MAX_SPARES`] buffers or more than `limit` items of room in all, the smallest buffers
    /// go first (`buf` itself, if it is the smallest).
    pub(super) fn put(&mut self, mut buf: Vec<Item>, limit: usize) {
        let cap = buf.capacity();
        if cap <= KEEP_CAPACITY {
            return;
        }
        while self.bufs.len() >= MAX_SPARES || self.capacity + cap > limit {
            let smallest = self
                .bufs
                .iter()
                .enumerate()
                .min_by_key(|(_, b)| b.capacity());
            match smallest {
                Some((i, b)) if b.capacity() < cap => {
                    self.capacity -= b.capacity();
                    self.bufs.swap_remove(i);
                }
                _ => return,
            }
        }
        buf.clear();
        self.capacity += cap;
        self.bufs.push(buf);
    }

    /// Makes room for at least one more item in the full buffer `items`: moves them into the
    /// smallest spare with at least twice its room (and keeps the old buffer as `put` would),
    /// or else grows it as `push` would.
    #[cold]
    #[inline(never)]
    pub(super) fn grow(&mut self, items: &mut Vec<Item>, limit: usize) {
        let want = items.len().saturating_mul(2).max(4);
        let fit = if want > KEEP_CAPACITY {
            let fits = self.bufs.iter().enumerate();
            let fits = fits.filter(|(_, b)| b.capacity() >= want);
            fits.min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i)
        } else {
            None
        };
        match fit {
            Some(i) => {
                let mut buf = self.bufs.swap_remove(i);
                self.capacity -= buf.capacity();
                buf.extend_from_slice(items);
                let old = std::mem::replace(items, buf);
                self.put(old, limit);
            }
            None => items.reserve(want - items.len()),
        }
    }

    /// Room (in items) the spares have in all.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }
}
