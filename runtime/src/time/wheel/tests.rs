//! Tests of `TimerWheel` against a model, and of its memory bounds.

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
                let span = 1u64 << ((r >> 8) % 62);
                let deadline = now.saturating_add(rng(&mut seed) % span);
                let slack = if r & 1 << 20 == 0 {
                    0
                } else {
                    (r >> 32) as u32 % 2_000_000
                };
                let key = wheel.insert(deadline, slack, waker(round, &out));
                model.insert((deadline, round));
                keys.push((key, deadline, round, slack));
            }
            4 if !keys.is_empty() => {
                let i = (r >> 8) as usize % keys.len();
                let (key, deadline, tag, _) = keys.swap_remove(i);
                assert!(wheel.remove(key, deadline).is_some());
                assert!(model.remove(&(deadline, tag)));
            }
            5 if !keys.is_empty() => {
                let i = (r >> 8) as usize % keys.len();
                let (key, deadline, tag, slack) = keys[i];
                let new = now.saturating_add(rng(&mut seed) % (1 << 30));
                assert!(wheel.reset(key, deadline, new, slack));
                assert!(model.remove(&(deadline, tag)));
                model.insert((new, tag));
                keys[i].1 = new;
            }
            _ => {
                let next = wheel.next_deadline();
                let hard = keys
                    .iter()
                    .map(|k| k.1.saturating_add(u64::from(k.3)))
                    .min();
                assert!(next <= hard, "wakes too late: {next:?} > {hard:?}");
                let step = rng(&mut seed) % (1 << ((r >> 8) % 34));
                now = now.saturating_add(step);
                buf.clear();
                let n = wheel.advance(now, &mut buf);
                assert_eq!(n, buf.len());
                fired += n;
                for w in buf.drain(..) {
                    let tag = tag_of(w, &out);
                    let &(first, _) = model.first().unwrap();
                    let at = keys.iter().position(|k| k.2 == tag).unwrap();
                    let deadline = keys.swap_remove(at).1;
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
    wheel.insert(d + 7, 0, waker(1, &out));
    wheel.insert(d, 0, waker(2, &out));
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
        let key = wheel.insert(0, 0, waker(i, &out));
        assert!(wheel.remove(key, 0).is_some());
    }
    assert_eq!(wheel.len(), 0);
    assert!(
        wheel.items() <= 2 * STALE_SLACK,
        "kept {} stale items",
        wheel.items()
    );
    assert!(wheel.entries.len() <= 1);
}

#[test]
fn cancelled_far_entries_do_not_pile_up() {
    let out = Arc::new(AtomicUsize::new(0));
    let mut wheel = TimerWheel::new();
    let mut keep = Vec::new();
    for i in 0..100_000u64 {
        // Half the timers stay registered, half are cancelled, spread over every level.
        let deadline = (i * 7919) << (i % 40);
        let key = wheel.insert(deadline, 1000, waker(0, &out));
        if i % 2 == 0 {
            keep.push((key, deadline));
        } else {
            assert!(wheel.remove(key, deadline).is_some());
        }
    }
    assert_eq!(wheel.len(), 50_000);
    assert!(wheel.items() <= 2 * 50_000 + 2 * STALE_SLACK);
    for (key, deadline) in keep {
        assert!(wheel.remove(key, deadline).is_some());
    }
    assert!(wheel.items() <= 2 * STALE_SLACK);
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn far_deadlines_wait_in_overflow() {
    let out = Arc::new(AtomicUsize::new(0));
    let mut wheel = TimerWheel::new();
    wheel.insert(u64::MAX, 0, waker(1, &out));
    let far = 3 << (WHEEL_BITS + TICK_SHIFT);
    wheel.insert(far, 0, waker(2, &out));
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

#[test]
fn crowded_tick_wakes_no_later_than_any_slack_allows() {
    let out = Arc::new(AtomicUsize::new(0));
    let mut wheel = TimerWheel::new();
    let mut seed = 99;
    let tick = 1u64 << TICK_SHIFT;
    let mut timers = Vec::new();
    for i in 0..10_000 {
        let deadline = 5 * tick + rng(&mut seed) % tick;
        let slack = (rng(&mut seed) % 200_000) as u32;
        wheel.insert(deadline, slack, waker(i, &out));
        timers.push((deadline, slack));
    }
    let mut now = 5 * tick;
    let mut buf = Vec::new();
    let mut fired = 0;
    while fired < timers.len() {
        let next = wheel.next_deadline().unwrap();
        let hard = timers.iter().map(|&(d, s)| d + u64::from(s)).min().unwrap();
        assert!(
            next <= hard,
            "wakes at {next}, a timer allows at most {hard}"
        );
        now = now.max(next);
        buf.clear();
        fired += wheel.advance(now, &mut buf);
        for w in buf.drain(..) {
            let i = tag_of(w, &out);
            assert!(timers[i].0 <= now, "fired early");
            timers[i] = (u64::MAX / 2, 0);
        }
    }
    assert_eq!(wheel.len(), 0);
}

#[test]
fn a_burst_of_thousands_fires_in_order() {
    let out = Arc::new(AtomicUsize::new(0));
    let mut wheel = TimerWheel::new();
    let mut seed = 7;
    let n = 3 * 1024 + 7;
    let mut deadlines = Vec::new();
    for i in 0..n {
        // Spread over about a second, so the items land in many level-0 and level-1 slots.
        let deadline = rng(&mut seed) % (1 << 30);
        wheel.insert(deadline, 0, waker(i, &out));
        deadlines.push(deadline);
    }
    let mut buf = Vec::new();
    let mut last = 0;
    let mut fired = 0;
    while let Some(next) = wheel.next_deadline() {
        assert!(next >= last);
        wheel.advance(next, &mut buf);
        for w in buf.drain(..) {
            let d = deadlines[tag_of(w, &out)];
            assert!(d <= next, "fired early");
            assert!(d >= last, "fired out of order");
            last = d;
            fired += 1;
        }
    }
    assert_eq!(fired, n);
}

#[test]
fn spare_slot_buffers_stay_bounded() {
    let out = Arc::new(AtomicUsize::new(0));
    let mut wheel = TimerWheel::new();
    let mut seed = 11;
    let mut buf = Vec::new();
    let mut now = 0;
    for _ in 0..3 {
        // 100k timers over the next second crowd a few level-1 slots with big buffers.
        for i in 0..100_000 {
            let deadline = now + rng(&mut seed) % (1 << 30);
            wheel.insert(deadline, 0, waker(i, &out));
        }
        while let Some(next) = wheel.next_deadline() {
            now = next;
            wheel.advance(now, &mut buf);
            buf.clear();
            assert!(wheel.spares.capacity() <= 2 * wheel.entries.capacity());
        }
        assert!(wheel.spares.capacity() > 0, "cascaded buffers are kept");
    }
    assert_eq!(wheel.items(), 0);
}

#[test]
fn timers_cancelled_before_the_loop_looks_are_never_filed() {
    let out = Arc::new(AtomicUsize::new(0));
    let mut wheel = TimerWheel::new();
    let mut seed = 3;
    let keys: Vec<_> = (0..1000)
        .map(|i| {
            let deadline = (1 << 20) + rng(&mut seed) % (1 << 30);
            (wheel.insert(deadline, 0, waker(i, &out)), deadline)
        })
        .collect();
    for &(key, deadline) in keys.iter().step_by(2) {
        assert!(wheel.remove(key, deadline).is_some());
    }
    // Registering only queued the items; the loop's first look files the live half and
    // drops the rest, so no stale item is left anywhere.
    assert_eq!(wheel.items(), 1000);
    let mut buf = Vec::new();
    assert_eq!(wheel.advance(0, &mut buf), 0);
    assert_eq!(wheel.items(), 500);
    assert_eq!(wheel.stale, 0);
    assert_eq!(wheel.len(), 500);
}
