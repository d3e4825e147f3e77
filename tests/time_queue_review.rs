//! An adversarial review of `time::DelayQueue` on the paused clock, against a model, for
//! what `time_delay_queue.rs` and `time_review.rs`'s churn model leave out: how often the
//! waiting task is woken (a counting waker: at least once when a value comes due or the
//! queue empties or refills, never while nothing it saw changed, never more than twice
//! between two polls), stale keys refused by every method that takes one (the documented
//! panics, leaving the queue as it was), `clear`, `reserve`, inserts and resets by
//! `Duration::ZERO` and `Duration::MAX`, advances of up to a year, and the order among equal
//! deadlines pinned: insertion order, a reset counting as a new insertion.

mod support;

use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::time::delay_queue::{Expired, Key};
use overlap::time::{self, advance, DelayQueue, Instant};
use support::{panic_message, watchdog, Rng, WakeCount};

const MS: Duration = Duration::from_millis(1);
const YEAR: Duration = Duration::from_secs(86_400 * 365);

/// A task polled by hand whose waker counts its wakes since the last poll.
struct Counted {
    wakes: Arc<WakeCount>,
    waker: Waker,
}

impl Counted {
    fn new() -> Counted {
        let wakes = Arc::new(WakeCount::default());
        let waker = Waker::from(wakes.clone());
        Counted { wakes, waker }
    }

    /// Polls `q` once, forgetting earlier wakes.
    fn poll<T>(&self, q: &mut DelayQueue<T>) -> Poll<Option<Expired<T>>> {
        self.wakes.0.store(0, Ordering::SeqCst);
        q.poll_expired(&mut Context::from_waker(&self.waker))
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

/// The message of the panic `f` makes (it must panic).
fn panic_of(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("no panic");
    panic_message(payload)
}

/// A value of the model queue.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Queued {
    key: Key,
    value: u64,
    deadline: Instant,
    /// Insertion order; a reset counts as a new insertion.
    seq: u64,
}

/// The queue as documented: values out earliest deadline first, then in insertion order.
#[derive(Default)]
struct Model {
    queued: Vec<Queued>,
    seq: u64,
}

impl Model {
    fn first(&self) -> Option<Queued> {
        self.queued
            .iter()
            .copied()
            .min_by_key(|q| (q.deadline, q.seq))
    }

    fn is_due(&self, now: Instant) -> bool {
        self.first().is_some_and(|q| q.deadline <= now)
    }

    fn push(&mut self, key: Key, value: u64, deadline: Instant) {
        self.seq += 1;
        self.queued.push(Queued {
            key,
            value,
            deadline,
            seq: self.seq,
        });
    }

    fn take(&mut self, key: Key) -> Option<Queued> {
        let i = self.queued.iter().position(|q| q.key == key)?;
        Some(self.queued.remove(i))
    }

    fn reset(&mut self, key: Key, deadline: Instant) {
        self.seq += 1;
        let q = self.queued.iter_mut().find(|q| q.key == key).unwrap();
        q.deadline = deadline;
        q.seq = self.seq;
    }
}

/// What the counted task was last told by `poll_expired`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seen {
    /// Nothing to hold the queue to: never polled, or polled by the test's own task since.
    Nothing,
    /// `Pending`: woken when a value is due or the first one changes.
    Pending,
    /// `Ready(None)`: woken by the next insert.
    Empty,
}

/// A deadline `now` plus a random duration: none, on a millisecond grid (ties), a few
/// nanoseconds off it, up to a year, or `Duration::MAX` (never).
fn random_timeout(rng: &mut Rng) -> Duration {
    match rng.below(12) {
        0 => Duration::ZERO,
        1 => Duration::MAX,
        2 => Duration::from_nanos(rng.next() % 5_000_000),
        3 => Duration::from_nanos(rng.next() % YEAR.as_nanos() as u64),
        _ => MS * rng.below(40) as u32,
    }
}

/// Drains what is due with the counted task, each value checked against the model; then
/// what the task was told.
fn drain(task: &Counted, q: &mut DelayQueue<u64>, model: &mut Model) -> Seen {
    loop {
        let now = time::now();
        match task.poll(q) {
            Poll::Ready(Some(e)) => {
                let want = model.first().expect("a value out of an empty queue");
                assert!(want.deadline <= now, "{want:?} out before its deadline");
                assert_eq!(
                    (e.key(), e.deadline(), *e.get_ref()),
                    (want.key, want.deadline, want.value)
                );
                model.take(want.key);
            }
            Poll::Ready(None) => {
                assert!(
                    model.queued.is_empty(),
                    "None with {} queued",
                    model.queued.len()
                );
                return Seen::Empty;
            }
            Poll::Pending => {
                assert!(!model.queued.is_empty(), "pending on an empty queue");
                assert!(
                    !model.is_due(now),
                    "{:?} due but not given out",
                    model.first()
                );
                return Seen::Pending;
            }
        }
        assert_eq!(q.len(), model.queued.len());
    }
}

/// Checks every key ever given out against the model: live keys by `deadline`, stale ones
/// refused by `try_remove`; and `peek`, `len`, `is_empty`.
fn check_keys(q: &mut DelayQueue<u64>, model: &Model, keys: &[Key]) {
    for key in keys {
        match model.queued.iter().find(|m| m.key == *key) {
            Some(m) => assert_eq!(q.deadline(key), m.deadline),
            None => assert!(q.try_remove(key).is_none(), "stale {key:?} took a value"),
        }
    }
    assert_eq!(q.peek(), model.first().map(|m| m.key));
    assert_eq!(
        (q.len(), q.is_empty()),
        (model.queued.len(), model.queued.is_empty())
    );
}

/// One seeded run: random operations on a queue and the model, the counted task's wakes
/// checked after each.
async fn wakes_against_a_model(seed: u64, steps: u64) {
    let _seed = support::SeedOnPanic(seed);
    let mut rng = Rng(seed);
    let task = Counted::new();
    let mut q = DelayQueue::new();
    let mut model = Model::default();
    let mut keys: Vec<Key> = Vec::new();
    let (mut seen, mut changes, mut refilled) = (Seen::Nothing, 0, false);
    for value in 0..steps {
        let now = time::now();
        let first_before = model.first();
        match rng.below(20) {
            0..=4 => {
                let key = if rng.below(2) == 0 {
                    let key = q.insert(value, random_timeout(&mut rng));
                    // A timeout too long to add to now is kept as an instant that never
                    // comes (centuries ahead).
                    let ahead = q.deadline(&key) - now;
                    assert!(ahead <= YEAR || ahead > 500 * YEAR, "{ahead:?} ahead");
                    key
                } else {
                    let past = MS * rng.below(50) as u32;
                    let when = match rng.below(3) {
                        0 => now - past,
                        1 => now,
                        _ => now + past,
                    };
                    q.insert_at(value, when)
                };
                let deadline = q.deadline(&key);
                assert!(!keys.contains(&key), "{key:?} given out twice");
                keys.push(key);
                model.push(key, value, deadline);
                refilled = true;
            }
            5 | 6 if !model.queued.is_empty() => {
                let want = model.queued[rng.below(model.queued.len())];
                let e = q.remove(&want.key);
                assert_eq!(
                    (e.key(), e.deadline(), e.into_inner()),
                    (want.key, want.deadline, want.value)
                );
                model.take(want.key);
            }
            7 | 8 if !model.queued.is_empty() => {
                let key = model.queued[rng.below(model.queued.len())].key;
                let deadline = if rng.below(2) == 0 {
                    q.reset(&key, random_timeout(&mut rng));
                    q.deadline(&key)
                } else {
                    let when = now + MS * rng.below(40) as u32;
                    let when = if rng.below(3) == 0 {
                        when - 45 * MS
                    } else {
                        when
                    };
                    q.reset_at(&key, when);
                    when
                };
                model.reset(key, deadline);
            }
            9 if !keys.is_empty() => {
                // Any key ever given out: a stale one is refused.
                let key = keys[rng.below(keys.len())];
                let got = q
                    .try_remove(&key)
                    .map(|e| (e.key(), e.deadline(), e.into_inner()));
                let want = model.take(key).map(|m| (m.key, m.deadline, m.value));
                assert_eq!(got, want);
            }
            10 if rng.below(8) == 0 => {
                // A stale key makes each keyed method panic, as documented, changing nothing.
                if let Some(&key) = keys
                    .iter()
                    .find(|k| model.queued.iter().all(|m| m.key != **k))
                {
                    let len = q.len();
                    assert!(panic_of(|| {
                        q.remove(&key);
                    })
                    .contains("names no value"));
                    assert!(panic_of(|| q.reset(&key, MS)).contains("names no value"));
                    assert!(panic_of(|| {
                        let _ = q.deadline(&key);
                    })
                    .contains("names no value"));
                    assert_eq!(q.len(), len);
                }
            }
            11 => check_keys(&mut q, &model, &keys),
            12 if rng.below(4) == 0 => {
                q.clear();
                model.queued.clear();
            }
            13 => match rng.below(3) {
                0 => q.compact(),
                1 => q.shrink_to_fit(),
                _ => {
                    let more = rng.below(64);
                    q.reserve(more);
                    assert!(
                        q.capacity() >= more,
                        "reserve({more}) left {}",
                        q.capacity()
                    );
                }
            },
            14..=16 => {
                let d = match rng.below(10) {
                    0 => Duration::ZERO,
                    1 => Duration::from_nanos(rng.next() % YEAR.as_nanos() as u64),
                    2 => MS * rng.below(100_000) as u32,
                    _ => Duration::from_nanos(rng.next() % 8_000_000),
                };
                advance(d).await;
            }
            17 => {
                // Await the first value with nothing else to do: the clock jumps to its
                // deadline. The queue then holds this test's own waker, not the counted one.
                if let Some(m) = model.first().filter(|m| m.deadline < now + 2 * YEAR) {
                    let e = poll_fn(|cx| q.poll_expired(cx)).await.expect("a value");
                    assert_eq!(time::now(), m.deadline.max(now));
                    assert_eq!(
                        (e.key(), e.deadline(), *e.get_ref()),
                        (m.key, m.deadline, m.value)
                    );
                    model.take(m.key);
                    seen = Seen::Nothing;
                }
            }
            _ => {}
        }
        assert_eq!(q.len(), model.queued.len());
        if model.first() != first_before {
            changes += 1;
        }
        let (wakes, now) = (task.wakes(), time::now());
        match seen {
            Seen::Nothing => {}
            Seen::Empty => {
                // Only the first insert wakes it: the next ones find no waker to wake.
                assert_eq!(
                    wakes,
                    usize::from(refilled),
                    "after Ready(None), step {value}"
                );
            }
            Seen::Pending => {
                if model.queued.is_empty() || model.is_due(now) {
                    assert!(
                        wakes >= 1,
                        "step {value}: due or emptied, the task sleeps on"
                    );
                }
                if changes == 0 && !model.is_due(now) {
                    assert_eq!(wakes, 0, "step {value}: woken with nothing changed or due");
                }
                assert!(
                    wakes <= 2,
                    "step {value}: woken {wakes} times between two polls"
                );
            }
        }
        if rng.below(4) == 0 {
            seen = drain(&task, &mut q, &mut model);
            (changes, refilled) = (0, false);
        }
    }
    check_keys(&mut q, &model, &keys);
}

/// 40 seeds of 400 steps, the counted task's wakes checked at every step.
#[overlap::test(start_paused = true)]
async fn wakes_and_values_match_a_model_over_random_operations() {
    let done = watchdog(120);
    for i in 0..40u64 {
        let seed = 0x5eed_0000 + i * 0x9e37_79b9;
        overlap::task::unconstrained(wakes_against_a_model(seed, 400)).await;
    }
    done.store(true, Ordering::Relaxed);
}

/// `insert`'s contract: "A `timeout` too long to add to now never expires". Such a value is
/// kept at an instant that never comes (as `sleep(Duration::MAX)`'s deadline), and a paused
/// clock advanced by `Duration::MAX` lands exactly there: the queue compared that instant
/// with the clock and gave the value out at the next poll, where the sleep stays pending.
/// Values queued after the clock moved that far sort after it by instant, and must not wait
/// behind it either. `reset` by `Duration::MAX` is the same; `reset_at` an instant ends it.
#[overlap::test(start_paused = true)]
async fn a_value_queued_for_duration_max_never_expires_even_once_the_clock_passes_it() {
    let task = Counted::new();
    let mut q = DelayQueue::new();
    let never = q.insert("never", Duration::MAX);
    q.insert("soon", MS);
    assert!(task.poll(&mut q).is_pending());
    advance(Duration::MAX).await;
    assert!(
        time::now() >= q.deadline(&never),
        "the clock passed its instant"
    );
    assert_eq!(task.wakes(), 1, "woken for the value that came due");
    let got = task.poll(&mut q).map(|e| e.map(|e| e.into_inner()));
    assert_eq!(got, Poll::Ready(Some("soon")));
    let got = task.poll(&mut q).map(|e| e.map(|e| e.into_inner()));
    assert_eq!(got, Poll::Pending, "a value that never expires came out");
    assert!(!overlap::stream::FusedStream::is_terminated(&q));

    // Later than the never instant, yet due in a millisecond: it comes out then, alone.
    let later = q.insert("later", MS);
    assert!(q.deadline(&later) > q.deadline(&never));
    assert_eq!(
        task.wakes(),
        1,
        "the first value changed: woken to look again"
    );
    assert!(task.poll(&mut q).is_pending());
    advance(MS).await;
    assert_eq!(task.wakes(), 1, "not woken at the later value's instant");
    let got = task.poll(&mut q).map(|e| e.map(|e| e.into_inner()));
    assert_eq!(got, Poll::Ready(Some("later")));

    // A reset by Duration::MAX makes a value never expire; a reset to an instant ends it.
    let moved = q.insert("moved", MS);
    q.reset(&moved, Duration::MAX);
    advance(2 * MS).await;
    assert!(
        task.poll(&mut q).is_pending(),
        "a value reset for Duration::MAX came out"
    );
    q.reset_at(&never, time::now());
    let got = task.poll(&mut q).map(|e| e.map(|e| e.into_inner()));
    assert_eq!(got, Poll::Ready(Some("never")));
    assert_eq!((q.len(), q.peek()), (1, Some(moved)));
    assert_eq!(q.remove(&moved).into_inner(), "moved");
    assert!(matches!(task.poll(&mut q), Poll::Ready(None)));
}

/// Equal deadlines come out in insertion order, a reset counting as a new insertion, also a
/// reset to the instant the value had already; `insert(ZERO)` is `insert_at(now)`, and a
/// past deadline comes first. `peek` agrees at each step.
#[overlap::test(start_paused = true)]
async fn equal_deadlines_come_out_in_insertion_order_a_reset_counting_as_one() {
    use overlap::stream::StreamExt;
    let start = time::now();
    let at = start + 10 * MS;
    let mut q = DelayQueue::new();
    let a = q.insert_at("a", at);
    let b = q.insert("b", 10 * MS);
    let c = q.insert_at("c", at);
    assert_eq!(q.peek(), Some(a));
    q.reset_at(&a, at); // the same instant: behind b and c now
    assert_eq!((q.peek(), q.deadline(&a)), (Some(b), at));
    q.reset(&c, 10 * MS); // behind a
    assert_eq!(q.peek(), Some(b));
    q.insert("zero", Duration::ZERO);
    q.insert_at("now", start);
    let past = q.insert_at("past", start - MS);
    assert_eq!(q.peek(), Some(past));
    let mut out = Vec::new();
    while let Some(e) = q.next().await {
        out.push((e.into_inner(), time::now() - start));
    }
    let want = [
        ("past", 0),
        ("zero", 0),
        ("now", 0),
        ("b", 10),
        ("a", 10),
        ("c", 10),
    ];
    let want: Vec<_> = want.iter().map(|&(v, ms)| (v, MS * ms)).collect();
    assert_eq!(out, want);
}

/// The queue keeps one waker, as a `Sleep` does: the task that polled last is the one
/// woken, when a value comes due and when an insert refills the queue it saw empty.
#[overlap::test(start_paused = true)]
async fn only_the_task_that_polled_last_is_woken() {
    let (first, second) = (Counted::new(), Counted::new());
    let mut q = DelayQueue::new();
    q.insert(1, 10 * MS);
    assert!(first.poll(&mut q).is_pending());
    assert!(second.poll(&mut q).is_pending());
    advance(10 * MS).await;
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    let got = second.poll(&mut q).map(|e| e.map(|e| e.into_inner()));
    assert_eq!(got, Poll::Ready(Some(1)));
    assert!(matches!(first.poll(&mut q), Poll::Ready(None)));
    q.insert(2, Duration::ZERO);
    q.insert(3, Duration::ZERO);
    assert_eq!(
        (first.wakes(), second.wakes()),
        (1, 0),
        "one wake, for the refill"
    );
}

/// Every method taking a key refuses one that names no value the same way, whatever made
/// it stale (removed, expired, moved by `compact` and then removed, its slot reused by a
/// new value, cleared): `try_remove` says `None`; `remove`, `reset`, `reset_at` and
/// `deadline` panic as documented; and the queue is left as it was.
#[overlap::test(start_paused = true)]
async fn every_keyed_method_refuses_a_stale_key_and_leaves_the_queue_alone() {
    let start = time::now();
    let mut q = DelayQueue::new();
    let keys: Vec<Key> = (0..8u64)
        .map(|i| q.insert(i, (i as u32 + 1) * MS))
        .collect();
    let mut stale = Vec::new();
    q.remove(&keys[3]);
    stale.push(keys[3]); // removed
    advance(MS).await;
    assert_eq!(
        poll_fn(|cx| q.poll_expired(cx)).await.unwrap().into_inner(),
        0
    );
    stale.push(keys[0]); // expired
    q.remove(&keys[1]);
    q.remove(&keys[2]);
    q.compact(); // moves the values of slots 5.. down into 0..
    q.remove(&keys[7]);
    stale.push(keys[7]); // moved by compact, then removed
    q.shrink_to_fit();
    let reused = q.insert(8, 20 * MS); // in a slot a stale key names
    let survivors = [(keys[4], 4), (keys[5], 5), (keys[6], 6), (reused, 8)];
    for key in &stale {
        assert!(q.try_remove(key).is_none(), "{key:?}");
        let remove = panic_of(|| {
            q.remove(key);
        });
        let reset = panic_of(|| q.reset(key, MS));
        let reset_at = panic_of(|| q.reset_at(key, start));
        let deadline = panic_of(|| {
            let _ = q.deadline(key);
        });
        let names_none = "the key names no value in the queue";
        assert_eq!(remove, format!("DelayQueue::remove: {names_none}"));
        assert_eq!(reset, format!("DelayQueue::reset: {names_none}"));
        assert_eq!(reset_at, format!("DelayQueue::reset: {names_none}"));
        assert_eq!(deadline, format!("DelayQueue::deadline: {names_none}"));
        assert_eq!(q.len(), survivors.len());
        for (key, value) in survivors {
            let want = start
                + if value == 8 {
                    21 * MS
                } else {
                    (value as u32 + 1) * MS
                };
            assert_eq!(q.deadline(&key), want, "value {value}");
        }
    }
    let mut out = Vec::new();
    while let Some(e) = poll_fn(|cx| q.poll_expired(cx)).await {
        out.push((e.key(), e.into_inner()));
    }
    assert_eq!(out, survivors);
    q.insert(9, MS);
    q.clear();
    let cleared = q.insert(10, MS);
    q.clear();
    assert!(q.try_remove(&cleared).is_none() && q.is_empty());
}
