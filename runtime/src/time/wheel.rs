//! `TimerWheel`: a hierarchical timing wheel that keeps every deadline exact.
//!
//! Time is counted in nanoseconds since the runtime's base instant. The wheel itself works in
//! *ticks* of 2^20 ns (about 1.05 ms): six levels of 64 slots, level `l` slots being 64^l ticks
//! wide, cover 2^36 ticks (about 2.3 years) ahead; anything further waits in an overflow list.
//!
//! Timers live in a slab of entries. A slot is a vector of *items*, `(deadline, index, stamp)`
//! copies that point at an entry: inserting queues one, filed when the loop next looks at the
//! wheel unless its timer was cancelled by then (see `TimerWheel::pending`), and cascading a
//! slot copies its items one level down without touching the entries at all, so a million
//! scattered entries cost no cache misses until they fire. (Hence a timer's slack lives in its
//! entry: it is needed only once the item's tick is reached, when the entry is read anyway.)
//! Big slot buffers are recycled (`spares.rs`).
//!
//! Coarse slots alone would fire up to a tick late. So items whose tick has been reached move
//! into the *due heap*, a binary heap ordered by exact deadline: the loop can sleep until the
//! exact earliest deadline and fire entries one by one in deadline order, never early. The heap
//! only ever holds one tick's worth of items (plus past-due ones), so it stays small.
//!
//! Cancelling is O(1) and lazy: it frees the entry and leaves its item behind, *stale*. An item
//! is live only while its entry is live and carries the same stamp (every filing gets a fresh
//! stamp), so a stale item is recognised and dropped when it reaches the due heap. Stale items
//! are counted; once they outnumber live timers (plus a constant) every list is swept, so
//! create-and-drop loops keep memory flat even when the loop never turns. A sweep also runs
//! every 2^31 stamps, before the 32-bit stamps could wrap onto a stale item.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;

use spares::Spares;

/// log2 of the width of a level-0 slot (one tick) in nanoseconds.
pub(crate) const TICK_SHIFT: u32 = 20;
/// log2 of the number of slots per level.
const LEVEL_BITS: u32 = 6;
const LEVELS: usize = 6;
/// Ticks covered by all levels together: entries further away than this go to overflow.
const WHEEL_BITS: u32 = LEVEL_BITS * LEVELS as u32;
/// End of the free list.
const NIL: u32 = u32::MAX;
/// A slot with at most this many items is scanned for its exact earliest deadline; a bigger
/// one reports its start (waking early once to cascade is cheap; a long scan is not).
const SCAN_LIMIT: usize = 512;
/// How many due-heap items `next_deadline` reads in a big heap: its top levels (2^8 - 1).
const DUE_SCAN: usize = 255;
/// A due heap of at most this many items is read whole, for the exact latest wakeup: a few µs
/// of scanning saves wakeups that cost tens of µs each (see `compute_next`).
const DUE_FULL_SCAN: usize = 4096;
/// A slot vector emptied by a cascade keeps its allocation up to this many items.
const KEEP_CAPACITY: usize = 1024;
/// Stale items tolerated on top of one per live timer before a sweep.
const STALE_SLACK: usize = 1024;
/// Stamps handed out between two sweeps, at most: half the stamp space.
const STAMPS_PER_SWEEP: u64 = 1 << 31;

/// Identifies one registered timer: a slab index plus the timer's unique id, so a key whose
/// timer has fired (and whose entry was reused, or the slab reset) is recognised as stale.
///
/// Packed to 12 bytes (4-aligned): a registered `Sleep` holds one next to an `Rc` and its
/// state tag in 24 bytes, which makes it 40 bytes in all instead of 48. (Fields are only
/// ever copied out, never borrowed.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(crate) struct TimerKey {
    index: u32,
    generation: u64,
}

/// A timer. 32 bytes, aligned to 32, so an entry never straddles two cache lines: firing one
/// reads a single line.
#[derive(Debug)]
#[repr(align(32))]
struct Entry {
    /// The timer's id, unique over the wheel's life, so stale keys do not match.
    generation: u64,
    waker: Option<Waker>,
    /// While live: the stamp of the entry's one live item. While free: the next free entry.
    link: u32,
    live: bool,
    /// How late the timer may fire so it can share a wakeup with others, in units of
    /// [`SLACK_UNIT`] ns (rounded down). Kept here rather than in every item to keep items
    /// small: it is only needed once the item's tick is reached, when its entry is read anyway.
    slack: u16,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 32);

/// The unit of [`Entry::slack`], in ns: 65535 units (1.05 ms) cover the largest slack.
const SLACK_UNIT: u32 = 16;

/// A filing of entry `index`; live iff the entry is live and its `link` equals `stamp`.
/// 16 bytes: every registration writes one into a slot, and a crowded second spreads them
/// over many slots, so their size is most of the cost of filing.
#[derive(Clone, Copy, Debug)]
struct Item {
    deadline: u64,
    index: u32,
    stamp: u32,
}

const _: () = assert!(std::mem::size_of::<Item>() == 16);

impl Item {
    fn due(self, slack: u32) -> Reverse<Due> {
        Reverse((self.deadline, self.stamp, self.index, slack))
    }
}

/// Deadline plus slack of a due-heap item.
fn hard_of((deadline, _, _, slack): Due) -> u64 {
    deadline.saturating_add(u64::from(slack))
}

/// `slack` ns in units of [`SLACK_UNIT`], rounded down (so never more slack than asked for).
fn slack_units(slack: u32) -> u16 {
    u16::try_from(slack / SLACK_UNIT).unwrap_or(u16::MAX)
}

/// A scratch slack that marks a stale item (no real slack is that large).
const STALE: u32 = u32::MAX;

/// A due-heap item: `(deadline, stamp, index, slack)`, ordered by deadline (stamps break ties
/// in filing order and are unique, so the slack is never compared).
type Due = (u64, u32, u32, u32);

#[derive(Debug)]
struct Level {
    /// Bit `i` is set iff slot `i` is non-empty.
    occupied: u64,
    slots: [Vec<Item>; 64],
}

/// What `next_deadline` knows without recomputing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cached {
    Unknown,
    /// A time no later than the earliest deadline (`None`: no timers at all).
    Known(Option<u64>),
}

/// The wheel. Plain data: no `RefCell`, no waking; see `driver.rs` for that.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    entries: Vec<Entry>,
    free_head: u32,
    /// Live timers.
    len: usize,
    /// The next id. Every timer gets one as its generation, and every filing one as its stamp
    /// (the low 32 bits).
    next_id: u64,
    /// Every slot before this tick has been processed. Only `advance` moves it.
    ///
    /// # Invariant
    /// An item in level `l` has a deadline tick greater than `elapsed` that agrees with
    /// `elapsed` on every bit above level `l`, so occupied slots always lie ahead of the
    /// level's current slot within the same rotation.
    elapsed: u64,
    levels: [Level; LEVELS],
    overflow: Vec<Item>,
    /// Items whose tick is at or before `elapsed`.
    due: BinaryHeap<Reverse<Due>>,
    /// Items placed but not filed yet, in placing order: `flush` files them before anything
    /// reads the slots, the due heap or the overflow list (the loop's next look at the
    /// timers, or a sweep), and drops those whose timer was cancelled meanwhile.
    ///
    /// So registering a timer is an append here, and a timer cancelled before the loop next
    /// looks (a timeout whose I/O completed at once, say) never touches the wheel. Filing is
    /// also cheaper in bulk: timers spread over the next second land in a dozen level-1 slots
    /// and the current level-0 ones, and filing each as it comes would interleave stores into
    /// all those vectors with everything else a registration writes, whose cache misses
    /// stall the thread. Stale items here count in `stale`, so sweeps bound this buffer too.
    pending: Vec<Item>,
    /// Stale items anywhere (pending, slots, overflow, due heap).
    stale: usize,
    cached: Cached,
    /// Reused buffer for `advance`: each item's slack, or `STALE`.
    scratch: Vec<u32>,
    /// Big slot buffers emptied by a cascade or a sweep, for slots that fill up again. They
    /// have room for at most twice as many items as the slab has entries (the most timers
    /// held at once, rounded up), as doubling slot buffers would have.
    spares: Spares,
}

impl TimerWheel {
    pub(crate) fn new() -> TimerWheel {
        TimerWheel {
            entries: Vec::new(),
            free_head: NIL,
            len: 0,
            next_id: 0,
            elapsed: 0,
            levels: std::array::from_fn(|_| Level {
                occupied: 0,
                slots: std::array::from_fn(|_| Vec::new()),
            }),
            overflow: Vec::new(),
            due: BinaryHeap::new(),
            pending: Vec::new(),
            stale: 0,
            cached: Cached::Known(None),
            scratch: Vec::new(),
            spares: Spares::default(),
        }
    }

    /// Timers registered now.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Registers a timer for `deadline` (ns) that may fire up to `slack` ns late.
    pub(crate) fn insert(&mut self, deadline: u64, slack: u32, waker: Waker) -> TimerKey {
        let generation = self.new_id();
        let stamp = generation as u32;
        let entry = Entry {
            generation,
            waker: Some(waker),
            link: stamp,
            live: true,
            slack: slack_units(slack),
        };
        let index = match self.free_head {
            NIL => {
                let index = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("more than 4 billion timers registered at once");
                self.entries.push(entry);
                index
            }
            index => {
                let e = &mut self.entries[index as usize];
                self.free_head = e.link;
                *e = entry;
                index
            }
        };
        self.len += 1;
        self.place(deadline, index, stamp);
        // Inserting adds no stale item, so only the stamps can call for a sweep.
        self.sweep_if_stamps_wrap(generation);
        TimerKey { index, generation }
    }

    /// The waker slot of a still-registered timer, or `None` if it fired (or was removed).
    pub(crate) fn waker_mut(&mut self, key: TimerKey) -> Option<&mut Option<Waker>> {
        let e = self.live(key)?;
        Some(&mut self.entries[e as usize].waker)
    }

    /// Cancels a timer whose deadline was `deadline`. Returns its waker, for the caller to drop
    /// outside any borrow. (The deadline only keeps the wakeup cache tight: a wrong one costs
    /// at most a spurious wakeup.)
    /// Whether the timer is still registered (not fired, not removed).
    pub(crate) fn contains(&self, key: TimerKey) -> bool {
        self.live(key).is_some()
    }

    pub(crate) fn remove(&mut self, key: TimerKey, deadline: u64) -> Option<Waker> {
        let index = self.live(key)?;
        self.note_removed(deadline);
        self.stale += 1;
        let waker = self.free(index);
        self.maybe_sweep();
        self.reset_if_empty();
        waker
    }

    /// Moves a still-registered timer from deadline `old` to `deadline` (with a new `slack`).
    /// Returns false if it already fired. (`old` is used as in [`TimerWheel::remove`].)
    pub(crate) fn reset(&mut self, key: TimerKey, old: u64, deadline: u64, slack: u32) -> bool {
        let Some(index) = self.live(key) else {
            return false;
        };
        self.note_removed(old);
        self.stale += 1;
        let id = self.new_id();
        let e = &mut self.entries[index as usize];
        e.link = id as u32;
        e.slack = slack_units(slack);
        self.place(deadline, index, id as u32);
        self.maybe_sweep();
        self.sweep_if_stamps_wrap(id);
        true
    }

    /// Queues a timer's (new) item for filing and keeps the wakeup cache tight: the common
    /// tail of `insert` and `reset`.
    fn place(&mut self, deadline: u64, index: u32, stamp: u32) {
        self.pending.push(Item {
            deadline,
            index,
            stamp,
        });
        self.note_added(deadline);
    }

    /// Files every pending item whose timer is still registered; drops the others.
    #[inline(never)]
    fn flush(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        for &it in &pending {
            if self.is_live(it.index, it.stamp) {
                self.file(it);
            } else {
                self.stale -= 1;
            }
        }
        pending.clear();
        self.pending = pending;
    }

    /// Fires every timer whose deadline is at or before `now` (ns), in deadline order:
    /// frees its entry and pushes its waker onto `wakers`. Returns how many fired.
    pub(crate) fn advance(&mut self, now: u64, wakers: &mut Vec<Waker>) -> usize {
        self.flush();
        let now_tick = now >> TICK_SHIFT;
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now_tick {
                break;
            }
            self.set_elapsed(start.max(self.elapsed));
            let mut items = std::mem::take(&mut self.levels[level].slots[slot]);
            self.levels[level].occupied &= !(1 << slot);
            if level == 0 {
                // Every item goes to the due heap, with the slack its entry keeps. Drop the
                // stale ones here: first read every entry without branching, so the cache
                // misses overlap, then filter.
                let mut slacks = std::mem::take(&mut self.scratch);
                slacks.extend(items.iter().map(|it| {
                    let e = &self.entries[it.index as usize];
                    let live = e.live & (e.link == it.stamp);
                    if live {
                        u32::from(e.slack) * SLACK_UNIT
                    } else {
                        STALE
                    }
                }));
                for (it, &slack) in items.iter().zip(&slacks) {
                    if slack != STALE {
                        self.due.push(it.due(slack));
                    } else {
                        self.stale -= 1;
                    }
                }
                slacks.clear();
                self.scratch = slacks;
            } else {
                // Every item lands in a lower level or the due heap, never back in this slot.
                for &it in &items {
                    self.file(it);
                }
            }
            if items.capacity() <= KEEP_CAPACITY {
                items.clear();
                self.levels[level].slots[slot] = items;
            } else {
                self.spares.put(items, 2 * self.entries.capacity());
            }
        }
        self.set_elapsed(now_tick.max(self.elapsed));
        let mut fired = 0;
        while let Some(&Reverse((deadline, stamp, index, _))) = self.due.peek() {
            if deadline > now {
                break;
            }
            self.due.pop();
            if !self.is_live(index, stamp) {
                self.stale -= 1;
                continue;
            }
            fired += 1;
            if let Some(w) = self.free(index) {
                wakers.push(w);
            }
        }
        self.cached = Cached::Unknown;
        self.reset_if_empty();
        fired
    }

    /// The index of the live entry `key` names, if any.
    fn live(&self, key: TimerKey) -> Option<u32> {
        let TimerKey { index, generation } = key;
        let e = self.entries.get(index as usize)?;
        (e.live && e.generation == generation).then_some(index)
    }

    /// The slack (ns) entry `index` keeps.
    fn slack_of(&self, index: u32) -> u32 {
        u32::from(self.entries[index as usize].slack) * SLACK_UNIT
    }

    fn is_live(&self, index: u32, stamp: u32) -> bool {
        let e = &self.entries[index as usize];
        e.live && e.link == stamp
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Files an item where its deadline belongs now.
    #[inline(always)]
    fn file(&mut self, it: Item) {
        let tick = it.deadline >> TICK_SHIFT;
        if tick <= self.elapsed {
            // (A stale item may pick up another timer's slack here; see `compute_next`.)
            let slack = self.slack_of(it.index);
            self.due.push(it.due(slack));
            return;
        }
        let highest_diff = 63 - (tick ^ self.elapsed).leading_zeros();
        let level = (highest_diff / LEVEL_BITS) as usize;
        if level >= LEVELS {
            self.overflow.push(it);
            return;
        }
        let slot = ((tick >> (level as u32 * LEVEL_BITS)) & 63) as usize;
        let lv = &mut self.levels[level];
        lv.occupied |= 1 << slot;
        let items = &mut lv.slots[slot];
        if items.len() == items.capacity() {
            self.spares.grow(items, 2 * self.entries.capacity());
        }
        items.push(it);
    }

    /// Returns a live entry to the free list; hands back its waker.
    fn free(&mut self, index: u32) -> Option<Waker> {
        let free_head = self.free_head;
        let e = &mut self.entries[index as usize];
        e.live = false;
        e.link = free_head;
        self.free_head = index;
        self.len -= 1;
        e.waker.take()
    }

    /// The occupied slot with the earliest start: `(level, slot, start tick)`.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, lv) in self.levels.iter().enumerate() {
            if lv.occupied == 0 {
                continue;
            }
            let shift = level as u32 * LEVEL_BITS;
            let current = (self.elapsed >> shift) & 63;
            // Occupied slots lie at or after the current one (see the invariant on `elapsed`).
            debug_assert_eq!(lv.occupied & ((1u64 << current) - 1), 0);
            let slot = (lv.occupied & (u64::MAX << current)).trailing_zeros() as u64;
            let rotation = self.elapsed & !((1u64 << (shift + LEVEL_BITS)) - 1);
            return Some((level, slot as usize, rotation + (slot << shift)));
        }
        None
    }

    /// Moves `elapsed` forward; when it enters a new span of 2^36 ticks, overflow items
    /// that are now within reach move into the wheel.
    fn set_elapsed(&mut self, elapsed: u64) {
        let crossed = elapsed >> WHEEL_BITS != self.elapsed >> WHEEL_BITS;
        self.elapsed = elapsed;
        if crossed {
            for it in std::mem::take(&mut self.overflow) {
                self.file(it);
            }
        }
    }

    /// A timer with this deadline was filed. Taking the deadline rather than deadline plus
    /// slack keeps the cache valid, and makes a lone timer fire exactly on time.
    fn note_added(&mut self, deadline: u64) {
        if let Cached::Known(next) = self.cached {
            self.cached = Cached::Known(Some(next.map_or(deadline, |n| n.min(deadline))));
        }
    }

    /// Whether a deadline lies in a tick the wheel has already reached (it would go straight
    /// to the due heap, so it may well be in the past already).
    pub(crate) fn is_current(&self, deadline: u64) -> bool {
        deadline >> TICK_SHIFT <= self.elapsed
    }

    /// A timer with this deadline went away (its wakeup time is no earlier than the deadline).
    /// Removing a timer can only make the next wakeup later, so a cache left as it is would at
    /// worst wake the loop early, never late.
    fn note_removed(&mut self, deadline: u64) {
        if let Cached::Known(Some(next)) = self.cached {
            if deadline <= next {
                self.cached = Cached::Unknown;
            }
        }
    }

    /// Items stored anywhere, live or stale (for tests and debug assertions).
    #[cfg(any(test, debug_assertions))]
    fn items(&self) -> usize {
        let slots: usize = self
            .levels
            .iter()
            .flat_map(|lv| lv.slots.iter().map(Vec::len))
            .sum();
        slots + self.overflow.len() + self.due.len() + self.pending.len()
    }
}

mod next;
mod spares;
mod sweep;
#[cfg(test)]
mod tests;
