//! An adversarial review of `overlap::time`, on the paused clock so every instant is exact:
//! what the other timer tests leave out.
//!
//! - The wheel's geometry (ticks of 2^20 ns, six levels of 64 slots, an overflow list past
//!   2^36 ticks): timers just before and after every level's boundary, registered from the
//!   start and from a wheel whose elapsed tick sits just before each boundary (so a timer
//!   a few ticks ahead is filed high and cascades down), each fire at its own instant, in
//!   deadline order; one `advance` over three years fires them all at its one new instant.
//! - A thousand timers on one instant, half of them reset onto it: all fire, each once.
//! - A hundred thousand timers over every level dropped in random order around a few
//!   survivors, while the clock moves: the survivors fire exactly, nothing stays behind.
//! - A sleep reset between "never" (`Duration::MAX`), near, past and fired: auto-advance
//!   still finds each near deadline and never jumps towards "never".
//! - `interval`'s missed ticks after a 3.5-period stall, for each behaviour, with the clock
//!   read at each tick; `Delay`'s 5 ms margin at its edge; `Skip` after a stall longer than
//!   the 584 years of `u64` nanoseconds.
//! - `DelayQueue` under random inserts, removes, resets, compactions and clock moves,
//!   against a model: every value out at its exact instant, in order; stale keys refused;
//!   the task that last polled woken when a value is due or the queue refills.

mod support;

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::time::{
    self, advance, interval_at, sleep, sleep_until, DelayQueue, Instant, MissedTickBehavior, Sleep,
};
use support::{watchdog, ManualTask, Rng};

/// The wheel's tick: 2^20 ns (runtime/src/time/wheel.rs).
const TICK: Duration = Duration::from_nanos(1 << 20);
const MS: Duration = Duration::from_millis(1);
const YEAR: Duration = Duration::from_secs(86_400 * 365);

/// Wakes of timers polled with [`Recorder::waker`]: which, and the clock at the wake.
#[derive(Default)]
struct Recorder {
    wakes: Mutex<Vec<(usize, Instant)>>,
    /// The task waiting for the wakes.
    main: Mutex<Option<Waker>>,
}

struct Tag {
    id: usize,
    recorder: Arc<Recorder>,
}

impl Wake for Tag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let now = time::now();
        self.recorder.wakes.lock().unwrap().push((self.id, now));
        if let Some(main) = self.recorder.main.lock().unwrap().as_ref() {
            main.wake_by_ref();
        }
    }
}

impl Recorder {
    fn waker(self: &Arc<Self>, id: usize) -> Waker {
        Waker::from(Arc::new(Tag {
            id,
            recorder: self.clone(),
        }))
    }

    /// Waits (letting the paused clock auto-advance) until `n` wakes are recorded.
    async fn wait_for(&self, n: usize) -> Vec<(usize, Instant)> {
        poll_fn(|cx| {
            *self.main.lock().unwrap() = Some(cx.waker().clone());
            let wakes = self.wakes.lock().unwrap();
            if wakes.len() >= n {
                Poll::Ready(wakes.clone())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// Registers a sleep until each deadline, each with its own recording waker (id = index).
fn register(deadlines: &[Instant], recorder: &Arc<Recorder>) -> Vec<Pin<Box<Sleep>>> {
    deadlines
        .iter()
        .enumerate()
        .map(|(id, &d)| {
            let mut s = Box::pin(sleep_until(d));
            let waker = recorder.waker(id);
            let polled = s.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(polled.is_pending(), "a future deadline was ready at once");
            s
        })
        .collect()
}

/// Fires sleeps until `deadlines` (distinct) by auto-advance: each wakes once, at exactly
/// its deadline, in deadline order, and is then ready.
async fn each_fires_at_its_own_instant(deadlines: &[Instant]) {
    let recorder = Arc::new(Recorder::default());
    let mut sleeps = register(deadlines, &recorder);
    let wakes = recorder.wait_for(deadlines.len()).await;
    let mut want: Vec<_> = deadlines.iter().copied().enumerate().collect();
    want.sort_by_key(|&(_, d)| d);
    assert_eq!(wakes, want, "wakes (timer, clock) not each at its deadline");
    let task = ManualTask::default();
    for s in &mut sleeps {
        assert!(task.poll(s.as_mut()).is_ready(), "woken but not ready");
    }
    assert_eq!(overlap::metrics().timers_active, 0);
}

/// Tick counts at which a level of the wheel (or its overflow list) begins, and their
/// neighbours.
const BOUNDARIES: [u64; 13] = [
    1,
    63,
    64,
    65,
    4095,
    4096,
    4097,
    (1 << 18) - 1,
    1 << 18,
    1 << 24,
    1 << 30,
    (1 << 36) - 1,
    1 << 36,
];

#[overlap::test(start_paused = true)]
async fn timers_around_every_level_boundary_each_fire_at_their_own_instant() {
    let start = time::now();
    // The wheel counts from the runtime's start, a few µs before this clock was paused:
    // quarter-tick steps put deadlines on both sides of each boundary anyway.
    let mut deadlines = Vec::new();
    for b in BOUNDARIES {
        for quarter in -4i64..4 {
            let at = TICK.as_nanos() as i64 * b as i64 + quarter * TICK.as_nanos() as i64 / 4;
            if at > 0 {
                deadlines.push(start + Duration::from_nanos(at as u64 + 1));
            }
        }
    }
    each_fires_at_its_own_instant(&deadlines).await;
}

#[overlap::test(start_paused = true)]
async fn timers_set_just_before_a_level_boundary_cascade_down_on_time() {
    let start = time::now();
    for b in [64, 4096, 1 << 18, 1 << 24, 1 << 30, 1 << 36] {
        // A timer firing three ticks before the boundary moves the wheel's elapsed tick
        // there; timers then set up to six ticks ahead straddle the boundary, so the later
        // ones are filed on a high level (or in the overflow list) and must come down.
        let near = start + Duration::from_nanos((1 << 20) * (b - 3));
        sleep_until(near).await;
        assert_eq!(time::now(), near);
        let deadlines: Vec<_> = (1..=48u32).map(|k| near + TICK * k / 8).collect();
        each_fires_at_its_own_instant(&deadlines).await;
    }
}

#[overlap::test(start_paused = true)]
async fn one_advance_over_every_level_fires_all_at_its_instant_in_deadline_order() {
    let start = time::now();
    let mut rng = Rng(0x5eed_0001);
    // Distinct deadlines from a µs to three years, so every level holds some.
    let mut deadlines: Vec<Instant> = (0..600)
        .map(|i| {
            let span = [
                1_000u64,
                1 << 20,
                1 << 26,
                1 << 32,
                1 << 38,
                1 << 44,
                1 << 50,
                3 << 54,
            ][i % 8];
            start + Duration::from_nanos(1 + rng.next() % span)
        })
        .collect();
    deadlines.sort();
    deadlines.dedup();
    let recorder = Arc::new(Recorder::default());
    let _sleeps = register(&deadlines, &recorder);
    let to = YEAR * 3;
    assert!(deadlines.iter().all(|&d| d <= start + to));
    advance(to).await;
    let wakes = recorder.wakes.lock().unwrap().clone();
    // One jump, as tokio's: each woken timer sees the clock where the advance left it, and
    // they fire in deadline order (the order in which they were sorted: ids ascending).
    let want: Vec<_> = (0..deadlines.len()).map(|id| (id, start + to)).collect();
    assert_eq!(wakes, want);
    assert_eq!(overlap::metrics().timers_active, 0);
}

#[overlap::test(start_paused = true)]
async fn a_thousand_timers_on_one_instant_all_fire_once_also_after_resets() {
    let start = time::now();
    let at = start + Duration::from_millis(1500);
    let recorder = Arc::new(Recorder::default());
    // Half are registered elsewhere first (before, after, far past that instant), then
    // reset onto it while registered.
    let first: Vec<Instant> = (0..1000u32)
        .map(|i| match i % 4 {
            0 | 1 => at,
            2 => start + MS * (i + 1),
            _ => start + YEAR * (i + 1),
        })
        .collect();
    let mut sleeps = register(&first, &recorder);
    for s in &mut sleeps {
        s.as_mut().reset(at);
    }
    let wakes = recorder.wait_for(1000).await;
    assert_eq!(time::now(), at);
    let mut ids: Vec<usize> = wakes.iter().map(|&(id, _)| id).collect();
    assert!(wakes.iter().all(|&(_, when)| when == at));
    ids.sort_unstable();
    assert_eq!(ids, (0..1000).collect::<Vec<_>>(), "not each exactly once");
    support::settle().await;
    assert_eq!(recorder.wakes.lock().unwrap().len(), 1000, "woken again");
}

#[overlap::test(start_paused = true)]
async fn a_hundred_thousand_timers_dropped_in_random_order_spare_the_survivors() {
    let start = time::now();
    let mut rng = Rng(0x5eed_0002);
    let recorder = Arc::new(Recorder::default());
    let spans = [1u64 << 20, 1 << 26, 1 << 32, 1 << 38, 1 << 44, 1 << 57];
    let deadlines: Vec<Instant> = (0..100_000)
        .map(|i| start + MS + Duration::from_nanos(rng.next() % spans[i % spans.len()]))
        .collect();
    let mut sleeps: Vec<Option<Pin<Box<Sleep>>>> = register(&deadlines, &recorder)
        .into_iter()
        .map(Some)
        .collect();
    // The survivors: one past each level's start, and one in the overflow list.
    let survivors = [3u64, 70, 5000, 300_000, 20_000_000, 1 << 37];
    let survivor_at: Vec<Instant> = survivors
        .iter()
        .map(|&t| start + Duration::from_nanos((t << 20) + 7))
        .collect();
    let kept_recorder = Arc::new(Recorder::default());
    let _kept = register(&survivor_at, &kept_recorder);
    // Drop the hundred thousand in random order, in batches, moving the clock (less than a
    // ms, before any timer is due) in between so the loop files and sweeps as it goes.
    let mut order: Vec<usize> = (0..sleeps.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    for batch in order.chunks(7_000) {
        for &i in batch {
            sleeps[i] = None;
        }
        advance(Duration::from_micros(50)).await;
    }
    assert!(
        recorder.wakes.lock().unwrap().is_empty(),
        "a dropped timer fired"
    );
    assert_eq!(overlap::metrics().timers_active, survivors.len() as u64);
    let wakes = kept_recorder.wait_for(survivors.len()).await;
    let want: Vec<_> = survivor_at.iter().copied().enumerate().collect();
    assert_eq!(wakes, want);
    assert_eq!(overlap::metrics().timers_active, 0);
    // The wheel still works: a fresh timer fires at its instant.
    let now = time::now();
    sleep(Duration::from_nanos(12_345)).await;
    assert_eq!(time::now() - now, Duration::from_nanos(12_345));
}

#[overlap::test(start_paused = true)]
async fn a_sleep_reset_between_never_near_and_past_keeps_auto_advance_right() {
    let done = watchdog(60);
    let task = ManualTask::default();
    let mut s = pin!(sleep(Duration::MAX));
    let never = s.deadline();
    for round in 1..=5u32 {
        assert!(task.poll(s.as_mut()).is_pending(), "never came");
        // Never, to near: auto-advance goes there, not further.
        let start = time::now();
        s.as_mut().reset(start + MS * round);
        s.as_mut().await;
        assert_eq!(time::now(), start + MS * round);
        // Fired, to never, registered, to near again and back to never while registered:
        // nothing is reachable, so the clock must not move; a near timer elsewhere still
        // comes at its own instant.
        s.as_mut().reset(never);
        assert!(task.poll(s.as_mut()).is_pending());
        s.as_mut().reset(time::now() + YEAR);
        s.as_mut().reset(never);
        let before = time::now();
        sleep(MS).await;
        assert_eq!(time::now(), before + MS);
        assert!(!task.is_woken() && !s.is_elapsed(), "never came");
        // Registered at never, to the past: woken, and ready at the next poll.
        s.as_mut().reset(before);
        assert!(
            task.is_woken(),
            "a reset into the past did not wake the sleeper"
        );
        assert!(task.poll(s.as_mut()).is_ready());
        assert_eq!(overlap::metrics().timers_active, 0);
        s.as_mut().reset(never);
    }
    done.store(true, Ordering::Relaxed);
}

/// Ticks of an interval of period `P` under `missed`, whose task stalls 3.5 periods after
/// its first tick: each tick's instant and the clock when it is seen, as offsets from the
/// first tick.
async fn ticks_after_a_stall(missed: MissedTickBehavior) -> Vec<(Duration, Duration)> {
    const P: Duration = Duration::from_millis(10);
    let start = time::now();
    let mut every = interval_at(start, P);
    every.set_missed_tick_behavior(missed);
    assert_eq!(every.tick().await, start);
    advance(P * 7 / 2).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let at = every.tick().await;
        seen.push((at - start, time::now() - start));
    }
    seen
}

#[overlap::test(start_paused = true)]
async fn missed_ticks_after_a_stall_of_three_and_a_half_periods() {
    let ms = |a: u64, b: u64| (MS * a as u32, MS * b as u32);
    // Burst: the missed ticks of 10, 20, 30 at once at 35, then on schedule.
    let burst = ticks_after_a_stall(MissedTickBehavior::Burst).await;
    assert_eq!(
        burst,
        [ms(10, 35), ms(20, 35), ms(30, 35), ms(40, 40), ms(50, 50)]
    );
    // Delay: the late tick, then a period after it was seen (35), and on from there.
    let delay = ticks_after_a_stall(MissedTickBehavior::Delay).await;
    assert_eq!(
        delay,
        [ms(10, 35), ms(45, 45), ms(55, 55), ms(65, 65), ms(75, 75)]
    );
    // Skip: the late tick, then the next multiple of the period after 35.
    let skip = ticks_after_a_stall(MissedTickBehavior::Skip).await;
    assert_eq!(
        skip,
        [ms(10, 35), ms(40, 40), ms(50, 50), ms(60, 60), ms(70, 70)]
    );
}

#[overlap::test(start_paused = true)]
async fn delay_keeps_the_schedule_at_exactly_5ms_late_and_restarts_it_a_ns_later() {
    const P: Duration = Duration::from_millis(100);
    let mut next_ticks = Vec::new();
    for late in [5 * MS, 5 * MS + Duration::from_nanos(1)] {
        let start = time::now();
        let mut every = interval_at(start, P);
        every.set_missed_tick_behavior(MissedTickBehavior::Delay);
        assert_eq!(every.tick().await, start);
        advance(P + late).await;
        assert_eq!(every.tick().await, start + P);
        next_ticks.push(every.tick().await - start);
    }
    // tokio restarts the schedule only when a tick is seen *more* than 5 ms late.
    assert_eq!(
        next_ticks,
        [2 * P, 2 * P + 5 * MS + Duration::from_nanos(1)]
    );
}

/// A stall longer than `u64` nanoseconds can count (584 years) on a paused clock: `Skip`
/// still resumes at the next multiple of the period, not centuries later.
#[overlap::test(start_paused = true)]
async fn skip_resumes_on_its_grid_after_a_stall_of_six_hundred_years() {
    let done = watchdog(60);
    let p = Duration::from_secs(1);
    let start = time::now();
    let mut every = interval_at(start, p);
    assert_eq!(every.missed_tick_behavior(), MissedTickBehavior::Skip);
    assert_eq!(every.tick().await, start);
    let stall = YEAR * 600 + Duration::from_millis(250);
    advance(stall).await;
    assert_eq!(every.tick().await, start + p);
    assert_eq!(every.tick().await, start + YEAR * 600 + p);
    assert_eq!(time::now(), start + YEAR * 600 + p);
    assert_eq!(every.tick().await, start + YEAR * 600 + 2 * p);
    done.store(true, Ordering::Relaxed);
}

/// A value of the model queue.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Queued {
    key: overlap::time::delay_queue::Key,
    value: u64,
    deadline: Instant,
    /// Insertion order; a reset counts as inserting anew (it goes after the values already
    /// queued for the same instant).
    seq: u64,
}

/// The model's next value out: earliest deadline, then insertion order.
fn first(model: &[Queued]) -> Option<Queued> {
    model.iter().copied().min_by_key(|q| (q.deadline, q.seq))
}

/// Polls `q` with `task` until it is not ready, checking each value against the model.
fn drain(task: &ManualTask, q: &mut DelayQueue<u64>, model: &mut Vec<Queued>) {
    loop {
        let polled = task.poll(pin!(poll_fn(|cx| q.poll_expired(cx))));
        let now = time::now();
        match polled {
            Poll::Ready(Some(e)) => {
                let want = first(model).expect("a value out of an empty queue");
                assert!(
                    want.deadline <= now,
                    "{:?} out before its deadline",
                    want.value
                );
                assert_eq!(
                    (e.key(), e.deadline(), *e.get_ref()),
                    (want.key, want.deadline, want.value)
                );
                model.retain(|q| q.key != want.key);
            }
            Poll::Ready(None) => {
                assert!(model.is_empty(), "empty with {} values queued", model.len());
                return;
            }
            Poll::Pending => {
                let want = first(model).expect("pending on an empty queue");
                assert!(
                    want.deadline > now,
                    "{:?} due but not given out",
                    want.value
                );
                return;
            }
        }
        assert_eq!(q.len(), model.len());
    }
}

/// One run of random operations on a `DelayQueue` against the model.
async fn delay_queue_against_a_model(seed: u64) {
    let mut rng = Rng(seed);
    let mut q = DelayQueue::new();
    let mut model: Vec<Queued> = Vec::new();
    // Every key ever given out, live or not.
    let mut keys = Vec::new();
    let mut seq = 0;
    let task = ManualTask::default();
    let mut polled_empty = false;
    // The task last to poll the queue is `task`, told to wait.
    let mut waits = false;
    for value in 0..3000u64 {
        let now = time::now();
        // On a millisecond grid mostly, so deadlines often tie.
        let deadline = match rng.below(10) {
            0 => now - MS * rng.below(5) as u32,
            1 => sleep(Duration::MAX).deadline(),
            2 => now + Duration::from_nanos(rng.next() % 5_000_000),
            _ => now + MS * rng.below(40) as u32,
        };
        match rng.below(12) {
            0..=3 => {
                // By a duration, a past deadline is now.
                let (key, deadline) = if rng.below(2) == 0 {
                    (q.insert_at(value, deadline), deadline)
                } else {
                    let d = deadline.saturating_duration_since(now);
                    (q.insert(value, d), now + d)
                };
                if polled_empty {
                    assert!(
                        task.is_woken(),
                        "an insert did not wake the task that saw the queue empty"
                    );
                    polled_empty = false;
                }
                assert!(keys.iter().all(|&k| k != key), "a key given out twice");
                keys.push(key);
                seq += 1;
                model.push(Queued {
                    key,
                    value,
                    deadline,
                    seq,
                });
            }
            4 | 5 if !keys.is_empty() => {
                let key = keys[rng.below(keys.len())];
                let want = model
                    .iter()
                    .position(|q| q.key == key)
                    .map(|i| model.remove(i));
                let got = q.try_remove(&key);
                match (got, want) {
                    (None, None) => {}
                    (Some(e), Some(w)) => {
                        assert_eq!(
                            (e.key(), e.deadline(), e.into_inner()),
                            (w.key, w.deadline, w.value)
                        );
                    }
                    (got, want) => panic!(
                        "removed {:?}, the model {want:?}",
                        got.map(|e| e.into_inner())
                    ),
                }
            }
            6 | 7 if !model.is_empty() => {
                let i = rng.below(model.len());
                seq += 1;
                model[i].seq = seq;
                if rng.below(2) == 0 {
                    q.reset_at(&model[i].key, deadline);
                    model[i].deadline = deadline;
                } else {
                    let d = deadline.saturating_duration_since(now);
                    q.reset(&model[i].key, d);
                    model[i].deadline = now + d;
                }
            }
            8 => match rng.below(3) {
                0 => q.compact(),
                1 => q.shrink_to_fit(),
                _ => {
                    for m in &model {
                        assert_eq!(q.deadline(&m.key), m.deadline);
                    }
                    assert_eq!(q.peek(), first(&model).map(|m| m.key));
                }
            },
            9 => {
                // The clock moves on, possibly past some deadlines: the task that polled
                // last is woken if a value is due (or the queue was emptied by a removal).
                let d = Duration::from_nanos(rng.next() % 8_000_000);
                advance(d).await;
                let due = first(&model).is_some_and(|m| m.deadline <= time::now());
                if due && waits {
                    assert!(task.is_woken(), "a value came due without waking the task");
                }
            }
            10 => {
                // Wait for the next value with nothing else to do: the clock jumps to
                // exactly its deadline (unless it is due already or never comes).
                if let Some(m) = first(&model).filter(|m| m.deadline < now + YEAR) {
                    let e = poll_fn(|cx| q.poll_expired(cx)).await.expect("a value");
                    assert_eq!(time::now(), m.deadline.max(now));
                    assert_eq!((e.key(), *e.get_ref()), (m.key, m.value));
                    model.retain(|q| q.key != m.key);
                    waits = false;
                }
            }
            _ => {}
        }
        assert_eq!(q.len(), model.len());
        if rng.below(3) == 0 {
            drain(&task, &mut q, &mut model);
            polled_empty = model.is_empty();
            waits = true;
        }
    }
    q.clear();
    assert!(q.is_empty());
    for key in &keys {
        assert!(
            q.try_remove(key).is_none(),
            "a key named a value after clear"
        );
    }
}

#[overlap::test(start_paused = true)]
async fn delay_queue_churn_matches_a_model() {
    let done = watchdog(120);
    for seed in [1, 0x9e37_79b9_7f4a_7c15, 0xdead_beef, 42, 7_777_777] {
        overlap::task::unconstrained(delay_queue_against_a_model(seed)).await;
    }
    assert_eq!(overlap::metrics().timers_active, 0);
    done.store(true, Ordering::Relaxed);
}
