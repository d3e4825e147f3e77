//! [`DelayQueue`]: values that come out once their deadline passes, each removable or
//! movable by its [`Key`] until then (tokio-util's `DelayQueue`).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{Instant, Sleep};

/// A queue of values, each given out by [`poll_expired`](DelayQueue::poll_expired) (or as a
/// [`Stream`](futures_core::Stream)) once its deadline has passed, earliest first and in
/// insertion order among equal deadlines. Until then a value can be taken back with
/// [`remove`](DelayQueue::remove) or given another deadline with
/// [`reset`](DelayQueue::reset), by the [`Key`] its insert returned: the building block of
/// a cache whose entries expire, or of per-request timeouts kept in one place.
///
/// One timer serves the whole queue: it is kept at the earliest deadline (moved in O(1)
/// when that changes), and each insert, removal or reset costs O(log n).
///
/// When the queue is empty, `poll_expired` returns `Ready(None)`, as tokio-util's does, so
/// `while let Some(e) = queue.next().await` ends once it is drained; the task that saw it
/// empty is woken by the next insert. As a [`FusedStream`](futures_core::FusedStream) it
/// counts as terminated from that `None` until the next insert, like `FuturesUnordered`:
/// so in `select!` write `expired = queue.select_next_some() => ...` (tokio's
/// `Some(expired) = queue.next()`), and the branch sleeps while the queue is empty instead
/// of firing with `None` at every round.
///
/// Polling needs a runtime (its timer); building and filling the queue does not. A paused
/// clock (see [`pause`](super::pause)) drives it as it drives `sleep`.
///
/// ```
/// use std::time::Duration;
/// use overlap::stream::StreamExt;
/// use overlap::time::DelayQueue;
///
/// overlap::block_on(async {
///     let mut sessions = DelayQueue::new();
///     let slow = sessions.insert("slow", Duration::from_millis(20));
///     sessions.insert("fast", Duration::from_millis(1));
///     sessions.reset(&slow, Duration::from_millis(2)); // it was used: give it more time
///     let gone = sessions.insert("gone", Duration::from_millis(5));
///     assert_eq!(sessions.remove(&gone).into_inner(), "gone");
///
///     let mut order = Vec::new();
///     while let Some(expired) = sessions.next().await {
///         order.push(expired.into_inner());
///     }
///     assert_eq!(order, ["fast", "slow"]);
/// });
/// ```
pub struct DelayQueue<T> {
    /// The values, by slot; a slot's generation tells a live key from a stale one.
    slots: Vec<Slot<T>>,
    /// Vacant slots, to reuse.
    free: Vec<u32>,
    /// Where [`compact`](DelayQueue::compact) moved the values whose keys name another
    /// slot: the key given out, to the slot the value is in now.
    moved: HashMap<Key, u32>,
    /// Where every value stands: the first is the next to expire.
    order: BTreeSet<Spot>,
    /// The next insertion number.
    next_seq: u64,
    /// The generation a slot made anew starts at: above every generation of the slots
    /// [`shrink_to_fit`](DelayQueue::shrink_to_fit) let go, so no old key names its value.
    fresh_generation: u32,
    /// Armed at the first deadline once polled with values queued.
    sleep: Option<Sleep>,
    /// The task that last polled and was told "not yet" or "empty".
    waker: Option<Waker>,
    /// `poll_expired` said `None` and nothing was inserted since (see `FusedStream`).
    drained: bool,
}

/// The instant `timeout` from now, and whether it is too long to add to now (the value
/// never expires then, kept at the instant a `sleep` of that timeout waits for).
fn after(timeout: Duration) -> (Instant, bool) {
    let now = super::now();
    (
        super::deadline_after(now, timeout),
        now.checked_add(timeout).is_none(),
    )
}

/// (never, deadline, insertion number, slot) of a value in the queue's order: by deadline,
/// then insertion, and the values that never expire after all others, whatever instant
/// they are kept at (a paused clock can be advanced past it, see [`Entry::never`]).
type Spot = (bool, Instant, u64, u32);

struct Slot<T> {
    generation: u32,
    entry: Option<Entry<T>>,
}

struct Entry<T> {
    value: T,
    deadline: Instant,
    seq: u64,
    /// Queued for a timeout too long to add to the clock: it never expires. Its `deadline`
    /// is the instant a `sleep` of that timeout waits for, which a paused clock advanced by
    /// `Duration::MAX` reaches; the timer never fires there, and the value never comes out.
    never: bool,
    /// The key its insert gave out (naming another slot once `compact` has moved it).
    key: Key,
}

/// Names a value in a [`DelayQueue`] until it expires or is removed: a key to a value
/// gone is refused ([`try_remove`](DelayQueue::try_remove) gives `None`), also once its
/// slot holds a newer value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    index: u32,
    generation: u32,
}

/// A value taken out of a [`DelayQueue`], with its deadline and the key it had.
#[derive(Debug)]
pub struct Expired<T> {
    value: T,
    deadline: Instant,
    key: Key,
}

impl<T> Expired<T> {
    /// The value.
    pub fn get_ref(&self) -> &T {
        &self.value
    }

    /// The value, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }

    /// The value, taken.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The deadline it had.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The key it had (no longer valid in the queue).
    pub fn key(&self) -> Key {
        self.key
    }
}

impl<T> DelayQueue<T> {
    /// An empty queue.
    pub fn new() -> DelayQueue<T> {
        DelayQueue::with_capacity(0)
    }

    /// An empty queue with room for `capacity` values before it allocates again.
    pub fn with_capacity(capacity: usize) -> DelayQueue<T> {
        DelayQueue {
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            moved: HashMap::new(),
            order: BTreeSet::new(),
            next_seq: 0,
            fresh_generation: 0,
            sleep: None,
            waker: None,
            drained: false,
        }
    }

    /// Queues `value` to expire at `when` (at the next poll if `when` has passed).
    pub fn insert_at(&mut self, value: T, when: Instant) -> Key {
        self.queue(value, when, false)
    }

    /// Queues `value` at `when`, or never to expire (kept at `when`, an instant that never
    /// comes).
    fn queue(&mut self, value: T, when: Instant, never: bool) -> Key {
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = u32::try_from(self.slots.len()).expect("DelayQueue holds 2^32 values");
                self.slots.push(Slot {
                    generation: self.fresh_generation,
                    entry: None,
                });
                index
            }
        };
        let slot = &mut self.slots[index as usize];
        let key = Key {
            index,
            generation: slot.generation,
        };
        slot.entry = Some(Entry {
            value,
            deadline: when,
            seq,
            never,
            key,
        });
        let first_before = self.order.first().copied();
        self.order.insert((never, when, seq, index));
        self.drained = false;
        if self.order.first().copied() != first_before {
            self.first_changed();
        }
        key
    }

    /// Queues `value` to expire `timeout` from now (on the current runtime's clock). A
    /// `timeout` too long to add to now never expires.
    pub fn insert(&mut self, value: T, timeout: Duration) -> Key {
        let (when, never) = after(timeout);
        self.queue(value, when, never)
    }

    /// Takes the value `key` names out of the queue, before it expires.
    ///
    /// # Panics
    /// If `key` names no value in the queue (it expired, or was removed):
    /// [`try_remove`](Self::try_remove) says `None` instead.
    pub fn remove(&mut self, key: &Key) -> Expired<T> {
        self.try_remove(key)
            .expect("DelayQueue::remove: the key names no value in the queue")
    }

    /// Takes the value `key` names out of the queue, or `None` if it names none (it expired
    /// or was removed already).
    pub fn try_remove(&mut self, key: &Key) -> Option<Expired<T>> {
        let (index, entry) = self.live(key)?;
        let spot = (entry.never, entry.deadline, entry.seq, index);
        let was_first = self.order.first() == Some(&spot);
        let expired = self.take(spot);
        if was_first {
            self.first_changed();
        }
        Some(expired)
    }

    /// Moves the deadline of the value `key` names to `when`, earlier or later.
    ///
    /// # Panics
    /// If `key` names no value in the queue.
    pub fn reset_at(&mut self, key: &Key, when: Instant) {
        self.requeue(key, when, false);
    }

    /// Moves the value `key` names to `when`, or never to expire (kept at `when`).
    fn requeue(&mut self, key: &Key, when: Instant, never: bool) {
        let (index, entry) = self
            .live(key)
            .expect("DelayQueue::reset: the key names no value in the queue");
        let old = (entry.never, entry.deadline, entry.seq, index);
        let first_before = self.order.first().copied();
        self.order.remove(&old);
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = self.slots[index as usize].entry.as_mut().expect("live");
        entry.deadline = when;
        entry.seq = seq;
        entry.never = never;
        self.order.insert((never, when, seq, index));
        if self.order.first().copied() != first_before {
            self.first_changed();
        }
    }

    /// Moves the deadline of the value `key` names to `timeout` from now. A `timeout` too
    /// long to add to now makes it never expire, as in [`insert`](Self::insert).
    ///
    /// # Panics
    /// If `key` names no value in the queue.
    pub fn reset(&mut self, key: &Key, timeout: Duration) {
        let (when, never) = after(timeout);
        self.requeue(key, when, never);
    }

    /// The deadline of the value `key` names.
    ///
    /// # Panics
    /// If `key` names no value in the queue.
    pub fn deadline(&self, key: &Key) -> Instant {
        self.live(key)
            .expect("DelayQueue::deadline: the key names no value in the queue")
            .1
            .deadline
    }

    /// The key of the value that expires first, if any.
    pub fn peek(&self) -> Option<Key> {
        let &(_, _, _, index) = self.order.first()?;
        self.slots[index as usize].entry.as_ref().map(|e| e.key)
    }

    /// Drops every value. A task waiting on the queue is woken, to see it empty.
    pub fn clear(&mut self) {
        let had_values = !self.order.is_empty();
        while let Some(&spot) = self.order.first() {
            drop(self.take(spot));
        }
        if had_values {
            self.first_changed();
        }
    }

    /// How many values are queued.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no value is queued.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// How many values fit before the queue allocates again.
    pub fn capacity(&self) -> usize {
        self.slots.capacity() - self.slots.len() + self.free.len()
    }

    /// Gives back the memory of vacant slots at the end of the queue's table (all of it
    /// once the queue is empty), and of spare capacity: after a burst, what the burst
    /// needed is otherwise kept for the next one. Keys stay valid; keys of values gone
    /// stay refused.
    pub fn shrink_to_fit(&mut self) {
        while let Some(last) = self.slots.last() {
            if last.entry.is_some() {
                break;
            }
            let next = last.generation.wrapping_add(1);
            self.fresh_generation = self.fresh_generation.max(next);
            self.slots.pop();
        }
        let len = self.slots.len() as u32;
        self.free.retain(|&index| index < len);
        self.slots.shrink_to_fit();
        self.free.shrink_to_fit();
    }

    /// Moves the values into the first slots of the queue's table and gives back all the
    /// rest (tokio-util's `compact`): after it the queue holds memory for its values only,
    /// where [`shrink_to_fit`](Self::shrink_to_fit) cannot let go of vacant slots below a
    /// value still queued. Every key stays valid, and keys of values gone stay refused.
    /// O(n) in the values queued; a key of a moved value is then looked up in a map.
    ///
    /// ```
    /// use std::time::Duration;
    /// use overlap::time::DelayQueue;
    ///
    /// let mut queue = DelayQueue::new();
    /// let keys: Vec<_> = (0..1000).map(|i| queue.insert_at(i, overlap::time::Instant::now())).collect();
    /// for key in &keys[..999] {
    ///     queue.remove(key);
    /// }
    /// queue.compact();
    /// assert!(queue.capacity() <= 1, "room for the one value left, at most");
    /// assert_eq!(queue.remove(&keys[999]).into_inner(), 999); // its key still works
    /// ```
    pub fn compact(&mut self) {
        let live = self.order.len();
        // As many vacant slots below `live` as values at or above it.
        let mut vacant: Vec<u32> = (0..live as u32)
            .filter(|&i| self.slots[i as usize].entry.is_none())
            .collect();
        let movers: Vec<Spot> = self
            .order
            .iter()
            .filter(|spot| spot.3 as usize >= live)
            .copied()
            .collect();
        for spot in movers {
            let to = vacant
                .pop()
                .expect("a vacant slot below for each value above");
            self.move_to(spot, to);
        }
        // Every slot below `live` is taken now, and every one above it vacant.
        self.free.clear();
        self.shrink_to_fit();
        self.moved.shrink_to_fit();
    }

    /// Moves the value at `spot` into the vacant slot `to`, noting where its key's value is.
    fn move_to(&mut self, spot: Spot, to: u32) {
        let (never, deadline, seq, from) = spot;
        let slot = &mut self.slots[from as usize];
        let entry = slot.entry.take().expect("a queued slot holds its value");
        slot.generation = slot.generation.wrapping_add(1);
        self.order.remove(&spot);
        self.order.insert((never, deadline, seq, to));
        self.moved.insert(entry.key, to);
        self.slots[to as usize].entry = Some(entry);
    }

    /// Makes room for `additional` more values.
    pub fn reserve(&mut self, additional: usize) {
        self.slots
            .reserve(additional.saturating_sub(self.free.len()));
    }

    /// Gives out the next value whose deadline has passed: `Ready(Some(_))` with it,
    /// `Pending` (the task woken when one is due, or when an insert, removal or reset
    /// changes which is first) if none is due yet, `Ready(None)` if the queue is empty (the
    /// task woken by the next insert). Each value given out spends a unit of the task's
    /// budget, as a channel's receive does: a loop draining many values already due yields
    /// to other tasks now and then.
    ///
    /// # Panics
    /// Outside a runtime, if a value is queued and not yet due.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Option<Expired<T>>> {
        crate::coop::budgeted(cx, |cx| self.poll_expired_now(cx))
    }

    /// [`poll_expired`](Self::poll_expired) without the budget.
    fn poll_expired_now(&mut self, cx: &mut Context<'_>) -> Poll<Option<Expired<T>>> {
        let Some(&(never, deadline, seq, index)) = self.order.first() else {
            // No timer while empty: the next insert then wakes this task itself, where a
            // timer kept would wake whichever task polled it last, at the new deadline.
            self.sleep = None;
            self.remember(cx);
            self.drained = true;
            return Poll::Ready(None);
        };
        if never {
            // Only values that never expire are left: no timer (see `first_changed`). Not
            // by the instant they are kept at, which a paused clock can pass.
            self.sleep = None;
            self.remember(cx);
            return Poll::Pending;
        }
        if deadline > super::now() {
            let sleep = self
                .sleep
                .get_or_insert_with(|| super::sleep_until(deadline));
            if sleep.deadline() != deadline {
                sleep.reset(deadline);
            }
            if Pin::new(sleep).poll(cx).is_pending() {
                self.remember(cx);
                return Poll::Pending;
            }
            // A sleep never completes early: the deadline has come.
        }
        let expired = self.take((never, deadline, seq, index));
        Poll::Ready(Some(expired))
    }

    /// The slot and entry `key` names, if it is still queued: the slot the key names, or,
    /// for a value [`compact`](Self::compact) moved, the one it moved to.
    fn live(&self, key: &Key) -> Option<(u32, &Entry<T>)> {
        if let Some(slot) = self.slots.get(key.index as usize) {
            if let Some(entry) = slot.entry.as_ref() {
                if slot.generation == key.generation && entry.key == *key {
                    return Some((key.index, entry));
                }
            }
        }
        if self.moved.is_empty() {
            return None;
        }
        let index = *self.moved.get(key)?;
        let entry = self.slots[index as usize].entry.as_ref()?;
        (entry.key == *key).then_some((index, entry))
    }

    /// Takes the value at `spot` (which is queued) out: its slot is freed for reuse under a
    /// new generation.
    fn take(&mut self, spot: Spot) -> Expired<T> {
        let (_, deadline, _, index) = spot;
        self.order.remove(&spot);
        let slot = &mut self.slots[index as usize];
        let entry = slot.entry.take().expect("a queued slot holds its value");
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
        if entry.key.index != index {
            self.moved.remove(&entry.key);
        }
        Expired {
            value: entry.value,
            deadline,
            key: entry.key,
        }
    }

    /// Keeps the waker of the task that polled, to wake it when the first value changes.
    fn remember(&mut self, cx: &Context<'_>) {
        match &mut self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
    }

    /// Which value is first changed (or none is left): the polling task must look again.
    /// A registered timer is moved to the new first deadline, waking the task then (at
    /// once if it has passed); with no timer armed, no value left, or a timer that is
    /// spent (it fired for a value given out since, and the task then saw the queue
    /// empty: moving it arms nothing), the task is woken now, to arm one or to see the
    /// queue empty. Values that never expire need no timer: the task is woken to see them.
    fn first_changed(&mut self) {
        match (self.order.first(), &mut self.sleep) {
            (Some(&(true, ..)), _) => self.sleep = None,
            (Some(&(false, deadline, _, _)), Some(sleep)) => {
                sleep.reset(deadline);
                if sleep.is_registered() {
                    return;
                }
            }
            _ => {}
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl<T> Default for DelayQueue<T> {
    fn default() -> DelayQueue<T> {
        DelayQueue::new()
    }
}

impl<T> Unpin for DelayQueue<T> {}

/// The values as they expire; `None` when the queue is empty (see [`DelayQueue`]).
impl<T> futures_core::Stream for DelayQueue<T> {
    type Item = Expired<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Expired<T>>> {
        self.get_mut().poll_expired(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

/// Terminated from a `None` (the queue seen empty) until the next insert, as
/// `FuturesUnordered` is, so that `select_next_some()` sleeps on an empty queue.
impl<T> futures_core::FusedStream for DelayQueue<T> {
    fn is_terminated(&self) -> bool {
        self.drained && self.order.is_empty()
    }
}

impl<T> fmt::Debug for DelayQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayQueue")
            .field("len", &self.len())
            .field("next_deadline", &self.order.first().map(|s| s.1))
            .finish()
    }
}
