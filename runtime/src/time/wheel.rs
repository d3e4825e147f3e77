//! `TimerWheel`: a hierarchical timing wheel that keeps every deadline exact.
//!
//! Time is counted in nanoseconds since the runtime's base instant. The wheel itself works in
//! *ticks* of 2^20 ns (about 1.05 ms): six levels of 64 slots, level `l` slots being 64^l ticks
//! wide, cover 2^36 ticks (about 2.3 years) ahead; anything further sits in an overflow list.
//! Each slot is an intrusive doubly linked list threaded through a slab of entries, so
//! inserting and cancelling are O(1) and never allocate once the slab has grown.
//!
//! Coarse slots alone would fire up to a tick late. So entries whose tick has been reached move
//! into the *due heap*, a binary heap ordered by exact deadline: the loop can sleep until the
//! exact earliest deadline and fire entries one by one in deadline order, never early. The heap
//! only ever holds one tick's worth of entries (plus past-due ones), so it stays small.
//!
//! The heap deletes lazily: an entry cancelled or moved while in it leaves a stale item behind,
//! recognised by its stamp. Stale items are counted and swept out once they are the majority,
//! so create-and-drop loops keep memory flat even when the loop never turns.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::task::Waker;

/// log2 of the width of a level-0 slot (one tick) in nanoseconds.
pub(crate) const TICK_SHIFT: u32 = 20;
/// log2 of the number of slots per level.
const LEVEL_BITS: u32 = 6;
const LEVELS: usize = 6;
/// Ticks covered by all levels together: entries further away than this go to overflow.
const WHEEL_BITS: u32 = LEVEL_BITS * LEVELS as u32;
/// "No entry" in the intrusive lists.
const NIL: u32 = u32::MAX;
/// How many entries `next_deadline` reads from a slot to find its exact minimum before it
/// settles for the slot's start (waking early once to cascade is cheap; a long scan is not).
const SCAN_LIMIT: usize = 32;

/// Identifies one registered timer: a slab index plus the generation of that slot, so a key
/// whose entry has fired (and whose slot was reused) is recognised as stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    index: u32,
    generation: u64,
}

/// Where an entry currently lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Not a timer: on the free list.
    Free,
    /// In the list of slot `slot` of level `level`.
    Slot { level: u8, slot: u8 },
    /// In the overflow list (deadline at least 2^36 ticks after `elapsed`).
    Overflow,
    /// In the due heap, under stamp `Entry::stamp`.
    Due,
}

#[derive(Debug)]
struct Entry {
    /// Exact deadline, in nanoseconds since the base instant.
    deadline: u64,
    /// Bumped every time the entry is freed, so stale keys do not match.
    generation: u64,
    waker: Option<Waker>,
    /// Intrusive list links (`next` doubles as the free-list link).
    prev: u32,
    next: u32,
    /// While `place == Due`: the stamp of this entry's live heap item.
    stamp: u32,
    place: Place,
}

#[derive(Debug)]
struct Level {
    /// Bit `i` is set iff slot `i`'s list is non-empty.
    occupied: u64,
    heads: [u32; 64],
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
    len: usize,
    /// Every slot before this tick has been processed. Only `advance` moves it.
    ///
    /// # Invariant
    /// An entry in level `l` has a deadline tick greater than `elapsed` that agrees with
    /// `elapsed` on every bit above level `l`, so occupied slots always lie ahead of the
    /// level's current slot within the same rotation.
    elapsed: u64,
    levels: [Level; LEVELS],
    overflow_head: u32,
    /// Entries whose tick is at or before `elapsed`: `(deadline, stamp, index)`.
    due: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// How many items of `due` are stale.
    due_stale: usize,
    next_stamp: u32,
    cached: Cached,
}

impl TimerWheel {
    pub(crate) fn new() -> TimerWheel {
        TimerWheel {
            entries: Vec::new(),
            free_head: NIL,
            len: 0,
            elapsed: 0,
            levels: std::array::from_fn(|_| Level {
                occupied: 0,
                heads: [NIL; 64],
            }),
            overflow_head: NIL,
            due: BinaryHeap::new(),
            due_stale: 0,
            next_stamp: 0,
            cached: Cached::Known(None),
        }
    }

    /// Timers registered now.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether a deadline lies in a tick the wheel has already reached (it would go straight
    /// to the due heap, so it may well be in the past already).
    pub(crate) fn is_current(&self, deadline: u64) -> bool {
        deadline >> TICK_SHIFT <= self.elapsed
    }

    /// Registers a timer for `deadline` (ns).
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> TimerKey {
        let index = match self.free_head {
            NIL => {
                let index = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("more than 4 billion timers registered at once");
                self.entries.push(Entry {
                    deadline,
                    generation: 0,
                    waker: Some(waker),
                    prev: NIL,
                    next: NIL,
                    stamp: 0,
                    place: Place::Free,
                });
                index
            }
            index => {
                let e = &mut self.entries[index as usize];
                self.free_head = e.next;
                e.deadline = deadline;
                e.waker = Some(waker);
                index
            }
        };
        self.len += 1;
        self.place(index);
        self.note_added(deadline);
        TimerKey {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// The waker slot of a still-registered timer, or `None` if it fired (or was removed).
    pub(crate) fn waker_mut(&mut self, key: TimerKey) -> Option<&mut Option<Waker>> {
        let e = self.live(key)?;
        Some(&mut self.entries[e as usize].waker)
    }

    /// Cancels a timer. Returns its waker, for the caller to drop outside any borrow.
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<Waker> {
        let index = self.live(key)?;
        let deadline = self.entries[index as usize].deadline;
        self.detach(index);
        self.note_removed(deadline);
        self.free(index)
    }

    /// Moves a still-registered timer to `deadline`. Returns false if it already fired.
    pub(crate) fn reset(&mut self, key: TimerKey, deadline: u64) -> bool {
        let Some(index) = self.live(key) else {
            return false;
        };
        let old = self.entries[index as usize].deadline;
        self.detach(index);
        self.note_removed(old);
        self.entries[index as usize].deadline = deadline;
        self.place(index);
        self.note_added(deadline);
        true
    }

    /// A time (ns) at which the loop should next call `advance`: the exact earliest deadline
    /// when it is in reach, otherwise the start of the slot that must be cascaded first. Never
    /// later than the earliest deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        if let Cached::Known(next) = self.cached {
            return next;
        }
        let next = self.compute_next();
        self.cached = Cached::Known(next);
        next
    }

    fn compute_next(&mut self) -> Option<u64> {
        while let Some(&Reverse((deadline, stamp, index))) = self.due.peek() {
            if self.is_stale(stamp, index) {
                self.due.pop();
                self.due_stale -= 1;
                continue;
            }
            return Some(deadline);
        }
        if let Some((level, slot, start)) = self.next_slot() {
            // The lowest occupied level holds the earliest deadlines (see the invariant).
            let mut min = u64::MAX;
            let mut cursor = self.levels[level].heads[slot];
            for _ in 0..SCAN_LIMIT {
                if cursor == NIL {
                    return Some(min);
                }
                let e = &self.entries[cursor as usize];
                min = min.min(e.deadline);
                cursor = e.next;
            }
            return Some(start << TICK_SHIFT);
        }
        if self.overflow_head != NIL {
            // Overflow entries are looked at again when `elapsed` enters the next span of
            // 2^36 ticks; wake then.
            let span = u128::from(self.elapsed >> WHEEL_BITS) + 1;
            let start = span << (WHEEL_BITS + TICK_SHIFT);
            return Some(u64::try_from(start).unwrap_or(u64::MAX));
        }
        None
    }

    /// Fires every timer whose deadline is at or before `now` (ns), in deadline order:
    /// frees its entry and pushes its waker onto `wakers`. Returns how many fired.
    pub(crate) fn advance(&mut self, now: u64, wakers: &mut Vec<Waker>) -> usize {
        let now_tick = now >> TICK_SHIFT;
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now_tick {
                break;
            }
            self.set_elapsed(start.max(self.elapsed));
            let mut cursor = std::mem::replace(&mut self.levels[level].heads[slot], NIL);
            self.levels[level].occupied &= !(1 << slot);
            while cursor != NIL {
                let next = self.entries[cursor as usize].next;
                self.place(cursor);
                cursor = next;
            }
        }
        self.set_elapsed(now_tick.max(self.elapsed));
        let mut fired = 0;
        while let Some(&Reverse((deadline, stamp, index))) = self.due.peek() {
            if deadline > now {
                break;
            }
            self.due.pop();
            if self.is_stale(stamp, index) {
                self.due_stale -= 1;
                continue;
            }
            fired += 1;
            if let Some(w) = self.free(index) {
                wakers.push(w);
            }
        }
        self.cached = Cached::Unknown;
        fired
    }

    /// The index of the live entry `key` names, if any.
    fn live(&self, key: TimerKey) -> Option<u32> {
        let e = self.entries.get(key.index as usize)?;
        (e.generation == key.generation && e.place != Place::Free).then_some(key.index)
    }

    fn is_stale(&self, stamp: u32, index: u32) -> bool {
        let e = &self.entries[index as usize];
        e.place != Place::Due || e.stamp != stamp
    }

    /// Links a detached entry into the list (or heap) its deadline belongs to now.
    fn place(&mut self, index: u32) {
        let tick = self.entries[index as usize].deadline >> TICK_SHIFT;
        if tick <= self.elapsed {
            let stamp = self.next_stamp;
            self.next_stamp = stamp.wrapping_add(1);
            let e = &mut self.entries[index as usize];
            e.place = Place::Due;
            e.stamp = stamp;
            self.due.push(Reverse((e.deadline, stamp, index)));
            return;
        }
        let highest_diff = 63 - (tick ^ self.elapsed).leading_zeros();
        let level = (highest_diff / LEVEL_BITS) as usize;
        if level >= LEVELS {
            let head = self.overflow_head;
            self.link(index, head, Place::Overflow);
            self.overflow_head = index;
            return;
        }
        let slot = ((tick >> (level as u32 * LEVEL_BITS)) & 63) as usize;
        let head = self.levels[level].heads[slot];
        let place = Place::Slot {
            level: level as u8,
            slot: slot as u8,
        };
        self.link(index, head, place);
        self.levels[level].heads[slot] = index;
        self.levels[level].occupied |= 1 << slot;
    }

    /// Makes `index` the new head of a list whose old head is `head`.
    fn link(&mut self, index: u32, head: u32, place: Place) {
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        let e = &mut self.entries[index as usize];
        e.prev = NIL;
        e.next = head;
        e.place = place;
    }

    /// Takes a live entry out of its list, or marks its heap item stale.
    fn detach(&mut self, index: u32) {
        let (prev, next, place) = {
            let e = &self.entries[index as usize];
            (e.prev, e.next, e.place)
        };
        match place {
            Place::Free => unreachable!("detaching a free timer entry"),
            Place::Due => {
                // The heap item goes stale once the entry stops being `Due` (just below).
                self.entries[index as usize].place = Place::Free;
                self.due_stale += 1;
                self.sweep_due();
            }
            Place::Slot { .. } | Place::Overflow => {
                if next != NIL {
                    self.entries[next as usize].prev = prev;
                }
                if prev != NIL {
                    self.entries[prev as usize].next = next;
                } else if let Place::Slot { level, slot } = place {
                    let level = &mut self.levels[level as usize];
                    level.heads[slot as usize] = next;
                    if next == NIL {
                        level.occupied &= !(1 << slot);
                    }
                } else {
                    self.overflow_head = next;
                }
            }
        }
        // Not in any list now; `Free` is set by `free` or overwritten by `place`.
        self.entries[index as usize].place = Place::Free;
    }

    /// Drops stale heap items once they are the majority, so the heap stays proportional to
    /// the live due entries however many were cancelled.
    fn sweep_due(&mut self) {
        if self.due_stale <= 64 || self.due_stale * 2 <= self.due.len() {
            return;
        }
        let entries = &self.entries;
        self.due.retain(|&Reverse((_, stamp, index))| {
            let e = &entries[index as usize];
            e.place == Place::Due && e.stamp == stamp
        });
        self.due_stale = 0;
    }

    /// Returns a detached (or due) entry to the free list; hands back its waker.
    fn free(&mut self, index: u32) -> Option<Waker> {
        let free_head = self.free_head;
        let e = &mut self.entries[index as usize];
        e.place = Place::Free;
        e.generation = e.generation.wrapping_add(1);
        e.next = free_head;
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

    /// Moves `elapsed` forward; when it enters a new span of 2^36 ticks, overflow entries
    /// that are now within reach move into the wheel.
    fn set_elapsed(&mut self, elapsed: u64) {
        let crossed = elapsed >> WHEEL_BITS != self.elapsed >> WHEEL_BITS;
        self.elapsed = elapsed;
        if crossed {
            let mut cursor = std::mem::replace(&mut self.overflow_head, NIL);
            while cursor != NIL {
                let next = self.entries[cursor as usize].next;
                self.place(cursor);
                cursor = next;
            }
        }
    }

    fn note_added(&mut self, deadline: u64) {
        if let Cached::Known(next) = self.cached {
            self.cached = Cached::Known(Some(next.map_or(deadline, |n| n.min(deadline))));
        }
    }

    fn note_removed(&mut self, deadline: u64) {
        if let Cached::Known(Some(next)) = self.cached {
            if deadline <= next {
                self.cached = Cached::Unknown;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Tag(usize, Arc<AtomicUsize>);
    impl Wake for Tag {
        fn wake(self: Arc<Self>) {
            self.1.store(self.0, Ordering::Relaxed);
        }
    }

    fn waker(tag: usize, out: &Arc<AtomicUsize>) -> Waker {
        Waker::from(Arc::new(Tag(tag, out.clone())))
    }

    fn tag_of(w: Waker, out: &Arc<AtomicUsize>) -> usize {
        w.wake();
        out.load(Ordering::Relaxed)
    }

    /// xorshift64*, enough for reproducible test data.
    fn rng(state: &mut u64) -> u64 {
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    #[test]
    fn fires_in_order_and_never_early_against_a_model() {
        let out = Arc::new(AtomicUsize::new(0));
        let mut wheel = TimerWheel::new();
        let mut model = BTreeSet::new();
        let mut keys = Vec::new();
        let mut seed = 0x1234_5678_9abc_def1;
        let mut now = 0u64;
        let mut buf = Vec::new();
        let mut fired = 0;
        for round in 0..20_000 {
            let r = rng(&mut seed);
            match r % 8 {
                0..=3 => {
                    // Spread over ns to years, so every level and the overflow list is used.
                    let span = 1u64 << (r >> 8) % 62;
                    let deadline = now.saturating_add(rng(&mut seed) % span);
                    let key = wheel.insert(deadline, waker(round, &out));
                    model.insert((deadline, round));
                    keys.push((key, deadline, round));
                }
                4 if !keys.is_empty() => {
                    let i = (r >> 8) as usize % keys.len();
                    let (key, deadline, tag) = keys.swap_remove(i);
                    let removed = wheel.remove(key).is_some();
                    assert_eq!(removed, model.remove(&(deadline, tag)));
                }
                5 if !keys.is_empty() => {
                    let i = (r >> 8) as usize % keys.len();
                    let (key, deadline, tag) = keys[i];
                    let new = now.saturating_add(rng(&mut seed) % (1 << 30));
                    let moved = wheel.reset(key, new);
                    assert_eq!(moved, model.remove(&(deadline, tag)));
                    if moved {
                        model.insert((new, tag));
                        keys[i].1 = new;
                    }
                }
                _ => {
                    let next = wheel.next_deadline();
                    assert!(next <= model.first().map(|f| f.0), "next_deadline too late");
                    let step = rng(&mut seed) % (1 << ((r >> 8) % 34));
                    now = now.saturating_add(step);
                    buf.clear();
                    let n = wheel.advance(now, &mut buf);
                    assert_eq!(n, buf.len());
                    fired += n;
                    for w in buf.drain(..) {
                        let tag = tag_of(w, &out);
                        let &(first, _) = model.first().unwrap();
                        let deadline = keys.iter().find(|k| k.2 == tag).unwrap().1;
                        assert!(deadline <= now, "fired early");
                        assert_eq!(first, deadline, "fired out of order");
                        assert!(model.remove(&(deadline, tag)));
                    }
                    if let Some(&(deadline, _)) = model.first() {
                        assert!(deadline > now, "a due timer did not fire");
                    }
                }
            }
            assert_eq!(wheel.len(), model.len());
        }
        assert!(fired > 2_000, "only {fired} timers fired");
    }

    #[test]
    fn next_deadline_is_exact_for_near_timers() {
        let out = Arc::new(AtomicUsize::new(0));
        let mut wheel = TimerWheel::new();
        let d = (5 << TICK_SHIFT) + 12_345;
        wheel.insert(d + 7, waker(1, &out));
        wheel.insert(d, waker(2, &out));
        assert_eq!(wheel.next_deadline(), Some(d));
        let mut buf = Vec::new();
        assert_eq!(wheel.advance(d - 1, &mut buf), 0);
        assert_eq!(wheel.next_deadline(), Some(d));
        assert_eq!(wheel.advance(d, &mut buf), 1);
        assert_eq!(wheel.next_deadline(), Some(d + 7));
    }

    #[test]
    fn cancelled_due_entries_do_not_pile_up() {
        let out = Arc::new(AtomicUsize::new(0));
        let mut wheel = TimerWheel::new();
        for i in 0..100_000 {
            let key = wheel.insert(0, waker(i, &out));
            assert!(wheel.remove(key).is_some());
        }
        assert_eq!(wheel.len(), 0);
        assert!(
            wheel.due.len() <= 200,
            "heap kept {} stale items",
            wheel.due.len()
        );
        assert!(wheel.entries.len() == 1);
    }

    #[test]
    fn far_deadlines_wait_in_overflow() {
        let out = Arc::new(AtomicUsize::new(0));
        let mut wheel = TimerWheel::new();
        wheel.insert(u64::MAX, waker(1, &out));
        let far = 3 << (WHEEL_BITS + TICK_SHIFT);
        wheel.insert(far, waker(2, &out));
        let mut buf = Vec::new();
        let mut now = 0;
        while let Some(next) = wheel.next_deadline() {
            assert!(next > now);
            now = next;
            wheel.advance(now, &mut buf);
            if !buf.is_empty() {
                break;
            }
        }
        assert_eq!(now, far);
        assert_eq!(tag_of(buf.pop().unwrap(), &out), 2);
        assert_eq!(wheel.len(), 1);
    }
}
