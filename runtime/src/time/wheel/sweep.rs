//! Stale-item housekeeping of [`TimerWheel`]: sweeps, and the reset once no timer is left.

use std::cmp::Reverse;

use super::{Cached, Item, TimerWheel, KEEP_CAPACITY, NIL, STALE_SLACK, STAMPS_PER_SWEEP};

impl TimerWheel {
    /// Sweeps out stale items once they outnumber live timers (amortised O(1) per cancel).
    #[inline]
    pub(super) fn maybe_sweep(&mut self) {
        if self.stale > self.len + STALE_SLACK {
            self.sweep();
        }
    }

    /// Sweeps once every [`STAMPS_PER_SWEEP`] ids handed out (`id` being the latest), so no
    /// stale item is still around when the 32-bit stamps come round to its stamp again.
    #[inline]
    pub(super) fn sweep_if_stamps_wrap(&mut self, id: u64) {
        if id % STAMPS_PER_SWEEP == STAMPS_PER_SWEEP - 1 {
            self.sweep();
        }
    }

    /// Drops every stale item (reading each item's entry); slot buffers it empties that are
    /// too big to keep go to the spares.
    #[cold]
    #[inline(never)]
    fn sweep(&mut self) {
        self.flush();
        let entries = &self.entries;
        let live = |it: &Item| {
            let e = &entries[it.index as usize];
            e.live && e.link == it.stamp
        };
        for lv in &mut self.levels {
            for (slot, items) in lv.slots.iter_mut().enumerate() {
                items.retain(live);
                if items.is_empty() {
                    lv.occupied &= !(1 << slot);
                    if items.capacity() > KEEP_CAPACITY {
                        self.spares
                            .put(std::mem::take(items), 2 * entries.capacity());
                    }
                }
            }
        }
        self.overflow.retain(live);
        self.due.retain(|&Reverse((deadline, stamp, index, _))| {
            live(&Item {
                deadline,
                index,
                stamp,
            })
        });
        self.stale = 0;
    }

    /// Once no timer is left, forgets every entry and stale item, so the slab is refilled in
    /// order: after a burst, entries freed in random order would otherwise be reused in random
    /// order, a cache miss per new timer. Amortised O(1): each entry is cleared once per use.
    pub(super) fn reset_if_empty(&mut self) {
        if self.len != 0 {
            return;
        }
        self.entries.clear();
        self.free_head = NIL;
        if self.stale > 0 {
            // With no live timer, every item is stale. Only occupied slots hold items (a
            // slot's bit is set whenever an item goes in), so only those are visited: a lone
            // timer set and cancelled per request (a connection's idle deadline) would
            // otherwise pay for all 384 slots each time.
            for lv in &mut self.levels {
                let mut occupied = lv.occupied;
                while occupied != 0 {
                    lv.slots[occupied.trailing_zeros() as usize].clear();
                    occupied &= occupied - 1;
                }
                lv.occupied = 0;
            }
            debug_assert!(self
                .levels
                .iter()
                .all(|lv| lv.slots.iter().all(Vec::is_empty)));
            self.overflow.clear();
            self.due.clear();
            self.pending.clear();
            self.stale = 0;
        }
        self.cached = Cached::Known(None);
    }

    /// Starts the wheel's time over at 0 (its owner then counts deadlines from a new base
    /// instant), filing every timer still registered again at `deadline`: the owner only
    /// restarts when the timers left are ones that never fire, and they keep never firing.
    /// Ids go on, so old keys stay stale.
    #[cold]
    #[inline(never)]
    pub(crate) fn restart(&mut self, deadline: u64) {
        let mut kept = Vec::new();
        if self.len != 0 {
            // Leaves only live items, filed (none pending).
            self.sweep();
            for lv in &mut self.levels {
                for items in &mut lv.slots {
                    kept.extend(items.drain(..).map(|it| (it.index, it.stamp)));
                }
                lv.occupied = 0;
            }
            kept.extend(self.overflow.drain(..).map(|it| (it.index, it.stamp)));
            kept.extend(
                self.due
                    .drain()
                    .map(|Reverse((_, stamp, index, _))| (index, stamp)),
            );
        }
        #[cfg(debug_assertions)]
        debug_assert_eq!(self.items(), 0);
        self.elapsed = 0;
        self.cached = Cached::Known(None);
        for (index, stamp) in kept {
            self.place(deadline, index, stamp);
        }
    }
}
