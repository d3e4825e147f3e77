//! Stale-item housekeeping of [`TimerWheel`]: sweeps, and the reset once no timer is left.

use std::cmp::Reverse;

use super::{Cached, Item, TimerWheel, KEEP_CAPACITY, NIL, STALE_SLACK, STAMPS_PER_SWEEP};

/// Entries whose room a wheel keeps once a burst is over (1 MiB of them), and the most room a
/// sweep or the reset leaves in the other buffers: a burst of a million timers gives its tens
/// of MB back once they are gone, while a steady load keeps what it needs.
pub(super) const KEEP_ENTRIES: usize = 1 << 15;

impl TimerWheel {
    /// Sweeps out stale items once they outnumber live timers (amortised O(1) per cancel).
    #[inline]
    pub(super) fn maybe_sweep(&mut self) {
        if self.stale > self.len + STALE_SLACK {
            self.sweep();
        }
    }

    /// Sweeps (and so trims the slab) once at most a quarter of a big slab is live and a
    /// quarter of it was freed since the last look: timers that fire rather than being
    /// cancelled leave no stale item to call for a sweep, yet their burst's memory must go
    /// back too. Amortised O(1) per freed entry.
    #[inline]
    pub(super) fn maybe_trim(&mut self) {
        let n = self.entries.len();
        if n > KEEP_ENTRIES && self.len * 4 <= n && self.frees_since_trim >= n / 4 {
            self.frees_since_trim = 0;
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
        self.trim_entries();
        self.release_room();
    }

    /// Gives back a burst's slab once at most a quarter of it is live: drops the free entries
    /// at its end once they are at least half of it. Until then new timers take only entries
    /// of the lower half (see `retire_from`), so the live ones above drain as their timers
    /// end, rather than the entries freed last being reused first and holding the slab up.
    /// Called right after a sweep, when no item points past the last live entry; each
    /// relinking of the free list is paid for by the entries dropped or the timers to come.
    fn trim_entries(&mut self) {
        let n = self.entries.len();
        if n <= KEEP_ENTRIES || self.len * 4 > n {
            return;
        }
        // The last live entry found in the upper half is remembered, so while it lives a
        // sweep does not scan again.
        let half = n / 2;
        let hint = self.trim_hint as usize;
        let blocked = (half..n).contains(&hint) && self.entries[hint].live
            || match self.entries[half..].iter().rposition(|e| e.live) {
                Some(i) => {
                    self.trim_hint = (half + i) as u32;
                    true
                }
                None => false,
            };
        if blocked {
            if self.retire_from == NIL {
                self.retire_from = half as u32;
                self.relink_free();
            }
            return;
        }
        let used = self.entries[..half]
            .iter()
            .rposition(|e| e.live)
            .map_or(0, |i| i + 1);
        self.entries.truncate(used);
        self.retire_from = NIL;
        self.relink_free();
    }

    /// Rebuilds the free list from the free entries below `retire_from`, lowest index first,
    /// so the slab refills from its start.
    pub(super) fn relink_free(&mut self) {
        self.free_head = NIL;
        let limit = self.entries.len().min(self.retire_from as usize);
        for (index, e) in self.entries[..limit].iter_mut().enumerate().rev() {
            if !e.live {
                e.link = self.free_head;
                self.free_head = index as u32;
            }
        }
    }

    /// Gives back room the timers held now do not need: the slab's beyond twice them (and
    /// [`KEEP_ENTRIES`]), the spares beyond twice the slab, and the queues' beyond what they
    /// hold (and the same keep).
    fn release_room(&mut self) {
        let keep = KEEP_ENTRIES.max(2 * self.entries.len());
        if self.entries.capacity() > keep {
            self.entries.shrink_to(keep);
        }
        self.spares.trim(2 * self.entries.capacity());
        let keep_items = KEEP_ENTRIES;
        if self.pending.capacity() > keep_items.max(2 * self.pending.len()) {
            self.pending.shrink_to(keep_items);
        }
        if self.overflow.capacity() > keep_items.max(2 * self.overflow.len()) {
            self.overflow.shrink_to(keep_items);
        }
        if self.due.capacity() > keep_items.max(2 * self.due.len()) {
            self.due.shrink_to(keep_items);
        }
        if self.scratch.capacity() > keep_items {
            self.scratch = Vec::new();
        }
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
        self.retire_from = NIL;
        if self.stale > 0 {
            // With no live timer, every item is stale. Only occupied slots hold items (a
            // slot's bit is set whenever an item goes in), so only those are visited: a lone
            // timer set and cancelled per request (a connection's idle deadline) would
            // otherwise pay for all 384 slots each time.
            for lv in &mut self.levels {
                let mut occupied = lv.occupied;
                while occupied != 0 {
                    let items = &mut lv.slots[occupied.trailing_zeros() as usize];
                    if items.capacity() > KEEP_CAPACITY {
                        self.spares.put(std::mem::take(items), 2 * KEEP_ENTRIES);
                    }
                    items.clear();
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
        if self.entries.capacity() > KEEP_ENTRIES {
            // The end of a burst: its memory goes back.
            self.release_room();
        }
        self.cached = Cached::Known(None);
    }

    /// With no timer registered, starts the wheel's time over at 0 (its owner then counts
    /// deadlines from a new base instant). Ids go on, so old keys stay stale.
    pub(crate) fn restart(&mut self) {
        debug_assert_eq!(self.len, 0);
        // With no live timer every item is stale, and `reset_if_empty` dropped them all.
        #[cfg(debug_assertions)]
        debug_assert_eq!(self.items(), 0);
        self.elapsed = 0;
        self.cached = Cached::Known(None);
    }
}
