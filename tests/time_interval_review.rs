//! An adversarial review of `time::Interval` on the paused clock, against a model of its
//! documented schedule (`MissedTickBehavior`'s table and notes, each `reset_*`): random
//! periods (a nanosecond to two seconds, around tokio's 5 ms margin), all three behaviours
//! switched mid-run, random advances (none, a nanosecond, across the margin, many periods, a
//! million periods, a year), resets into the past and the future, ticks awaited (the clock
//! jumping to them), polled by hand, and dropped before they complete. The model says the
//! exact instant each tick reports, whether a poll is ready, and when the task polling is
//! woken: at the scheduled instant, not before, also after a reset moved it.

mod support;

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use overlap::time::{self, advance, interval_at, Instant, Interval, MissedTickBehavior};
use support::{watchdog, ManualTask, Rng};

const MS: Duration = Duration::from_millis(1);
const NS: Duration = Duration::from_nanos(1);
const YEAR: Duration = Duration::from_secs(86_400 * 365);
/// tokio's margin: a tick observed at most this late keeps the schedule (see `Delay`).
const MARGIN: Duration = Duration::from_millis(5);

/// The schedule as `MissedTickBehavior` documents it.
struct Model {
    /// The instant the next tick reports.
    next: Instant,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Model {
    /// The tick after the one scheduled at `s`, observed at `now`.
    fn after(&self, s: Instant, now: Instant) -> Instant {
        let next = s + self.period;
        let past_margin = now - s > MARGIN;
        match self.missed {
            // Every missed tick, back to back.
            MissedTickBehavior::Burst => next,
            // A period after the late tick was seen, once past the margin or once its
            // successor is due already (a tick due exactly now is on schedule).
            MissedTickBehavior::Delay if past_margin || now > next => now + self.period,
            // The first multiple of the period strictly after now, under the same terms.
            MissedTickBehavior::Skip if past_margin || now > next => {
                let periods = (now - s).as_nanos() / self.period.as_nanos() + 1;
                s + Duration::from_nanos((periods * self.period.as_nanos()) as u64)
            }
            _ => next,
        }
    }

    /// A tick observed at `now`: the instant it reports.
    fn tick(&mut self, now: Instant) -> Instant {
        assert!(self.next <= now, "a tick before its instant");
        let at = self.next;
        self.next = self.after(at, now);
        at
    }
}

fn random_period(rng: &mut Rng) -> Duration {
    match rng.below(8) {
        0 => NS * (1 + rng.below(1000) as u32),
        1 => MS,
        2 => 3 * MS,
        3 => MARGIN,
        4 => 7 * MS + NS * rng.below(1000) as u32,
        5 => 10 * MS,
        _ => Duration::from_nanos(1 + rng.next() % 2_000_000_000),
    }
}

fn random_behaviour(rng: &mut Rng) -> MissedTickBehavior {
    [
        MissedTickBehavior::Burst,
        MissedTickBehavior::Delay,
        MissedTickBehavior::Skip,
    ][rng.below(3)]
}

/// A random step of the clock for an interval of `period`.
fn random_advance(rng: &mut Rng, period: Duration) -> Duration {
    match rng.below(12) {
        0 => Duration::ZERO,
        1 => NS,
        2 => period - NS,
        3 => period,
        4 => MARGIN,
        5 => MARGIN + NS,
        6 => period * rng.below(20) as u32 + NS * rng.below(10_000) as u32,
        7 => (period * 1_000_000).min(10 * YEAR),
        8 => Duration::from_nanos(rng.next() % YEAR.as_nanos() as u64),
        _ => Duration::from_nanos(rng.next() % (2 * period.as_nanos() as u64 + 1)),
    }
}

/// Polls one tick of `every` by hand.
fn poll_tick(task: &ManualTask, every: &mut Interval) -> Poll<Instant> {
    task.poll(pin!(std::future::poll_fn(|cx| every.poll_tick(cx))))
}

/// One seeded run on a runtime of its own.
fn ticks_against_the_model(seed: u64, steps: usize) {
    let _seed = support::SeedOnPanic(seed);
    let rt = overlap::Runtime::builder()
        .start_paused(true)
        .build()
        .unwrap();
    // Unconstrained: a burst of ready ticks must not meet the task's budget (a `Pending`
    // the model does not expect).
    rt.block_on(overlap::task::unconstrained(async {
        let mut rng = Rng(seed);
        let period = random_period(&mut rng);
        let now = time::now();
        let start = match rng.below(3) {
            0 => now - MS * rng.below(50) as u32,
            1 => now,
            _ => now + NS * rng.below(50_000_000) as u32,
        };
        let mut every = interval_at(start, period);
        let mut model = Model {
            next: start,
            period,
            missed: MissedTickBehavior::Skip,
        };
        assert_eq!(
            every.missed_tick_behavior(),
            model.missed,
            "Skip by default"
        );
        let task = ManualTask::default();
        // The task's last poll of a tick was `Pending`: its waker is the one the timer holds.
        let mut armed = false;
        for step in 0..steps {
            let now = time::now();
            match rng.below(10) {
                0 | 1 => {
                    advance(random_advance(&mut rng, period)).await;
                    if armed {
                        let due = model.next <= time::now();
                        assert_eq!(task.is_woken(), due, "step {step}: woken {due}?");
                        // Woken: until it polls again, later wakes cannot be told apart.
                        armed = !due;
                    }
                }
                2 | 3 => {
                    let got = poll_tick(&task, &mut every);
                    armed = got.is_pending();
                    if model.next <= now {
                        assert_eq!(got, Poll::Ready(model.tick(now)), "step {step}");
                    } else {
                        assert_eq!(got, Poll::Pending, "step {step}: a tick before its instant");
                    }
                }
                4 => {
                    // Awaited with nothing else to do: the clock jumps to the tick.
                    let at = every.tick().await;
                    let seen = time::now();
                    assert_eq!(
                        seen,
                        model.next.max(now),
                        "step {step}: the clock jumped wrong"
                    );
                    assert_eq!(at, model.tick(seen), "step {step}");
                    armed = false;
                }
                5 => {
                    // A tick future polled once and dropped loses nothing: a `Pending` one
                    // leaves the schedule alone (its task still woken at the instant); a
                    // ready one was the tick.
                    let mut tick = pin!(every.tick());
                    let got = task.poll(tick.as_mut());
                    armed = got.is_pending();
                    if model.next <= now {
                        assert_eq!(got, Poll::Ready(model.tick(now)), "step {step}");
                    } else {
                        assert_eq!(got, Poll::Pending, "step {step}");
                    }
                }
                6 => {
                    model.next = match rng.below(4) {
                        0 => {
                            every.reset();
                            now + period
                        }
                        1 => {
                            every.reset_immediately();
                            now
                        }
                        2 => {
                            let after = random_advance(&mut rng, period);
                            every.reset_after(after);
                            now + after
                        }
                        _ => {
                            let at = now + MS * rng.below(30) as u32;
                            let at = if rng.below(2) == 0 { at - 30 * MS } else { at };
                            every.reset_at(at);
                            at
                        }
                    };
                    if armed {
                        // Sleep::reset: a deadline already passed wakes the task at once; one
                        // ahead moves the timer, which wakes the same task then.
                        let due = model.next <= now;
                        assert_eq!(task.is_woken(), due, "step {step}: reset, woken {due}?");
                        armed = !due;
                    }
                }
                7 => {
                    model.missed = random_behaviour(&mut rng);
                    every.set_missed_tick_behavior(model.missed);
                    assert_eq!(every.missed_tick_behavior(), model.missed);
                }
                _ => {
                    // Whatever is due now comes out at once, each at its model instant.
                    let mut n = 0;
                    while model.next <= now && n < 50 {
                        let want = model.tick(now);
                        assert_eq!(
                            poll_tick(&task, &mut every),
                            Poll::Ready(want),
                            "step {step}"
                        );
                        n += 1;
                    }
                    armed = false;
                }
            }
            assert_eq!(every.period(), period);
        }
    }));
}

/// 60 seeds of 300 steps, each on a paused runtime of its own.
#[test]
fn ticks_and_wakes_match_a_model_of_the_documented_schedule() {
    let done = watchdog(120);
    for i in 0..60u64 {
        ticks_against_the_model(0x71c4_0000 + i * 0x9e37_79b9, 300);
    }
    done.store(true, Ordering::Relaxed);
}

/// Cancel safety of `tick`: a tick future dropped after its timer fired, before it was
/// polled again, loses no tick. The next `tick` reports the same instant at once, and the
/// schedule goes on from it; a `select!` that drops the tick each round sees every tick.
#[overlap::test(start_paused = true)]
async fn a_tick_dropped_after_its_timer_fired_is_not_lost() {
    let start = time::now();
    let mut every = interval_at(start + 10 * MS, 10 * MS);
    let task = ManualTask::default();
    {
        let mut tick = pin!(every.tick());
        assert!(task.poll(tick.as_mut()).is_pending());
        advance(10 * MS).await;
        assert!(task.is_woken(), "not woken at the tick's instant");
    } // dropped, woken but not polled again
    assert_eq!(poll_tick(&task, &mut every), Poll::Ready(start + 10 * MS));
    assert_eq!(every.tick().await, start + 20 * MS);
    assert_eq!(time::now(), start + 20 * MS);

    // Each round a tick races a sleep of 7 ms, which wins every other round (at 27, 37…):
    // the tick dropped then comes at the next round, at its instant, none twice or lost.
    let mut ticks = Vec::new();
    let mut sleeps = 0;
    while ticks.len() < 6 {
        overlap::select! {
            at = every.tick() => ticks.push((at - start, time::now() - start)),
            () = time::sleep(7 * MS) => sleeps += 1,
        }
        assert!(sleeps < 100, "the tick never won");
    }
    let want: Vec<_> = (3..9).map(|i| (i * 10 * MS, i * 10 * MS)).collect();
    assert_eq!(ticks, want, "sleeps: {sleeps}");
    assert_eq!(sleeps, 6, "the sleep won at 27, 37, … 77 ms");
}

/// The edges between "a little late" and "missed": a tick observed exactly at its
/// successor's instant within tokio's margin (periods of 1 ms and of 5 ms) keeps the
/// schedule under every behaviour, as in tokio (the successor is due, not missed: the notes
/// on `Delay` and `Skip` about periods under 5 ms are about successors already past); the
/// same past the margin (6 ms) drops it under `Skip` and restarts under `Delay`; 6 ms late
/// with the successor still ahead (20 ms) restarts under `Delay` only.
#[overlap::test(start_paused = true)]
async fn a_tick_observed_exactly_at_its_successors_instant() {
    let cases = [
        (MS, MS, [1, 2, 3], [1, 2, 3], [1, 2, 3]),
        (MARGIN, MARGIN, [5, 10, 15], [5, 10, 15], [5, 10, 15]),
        (6 * MS, 6 * MS, [6, 12, 18], [6, 18, 24], [6, 18, 24]),
        (20 * MS, 6 * MS, [20, 40, 60], [20, 46, 66], [20, 40, 60]),
    ];
    for (period, late, burst, delay, skip) in cases {
        for (missed, want) in [
            (MissedTickBehavior::Burst, burst),
            (MissedTickBehavior::Delay, delay),
            (MissedTickBehavior::Skip, skip),
        ] {
            let start = time::now();
            let mut every = interval_at(start, period);
            every.set_missed_tick_behavior(missed);
            assert_eq!(every.tick().await, start);
            advance(period + late).await;
            let mut got = Vec::new();
            for _ in 0..3 {
                got.push((every.tick().await - start).as_millis() as u64);
            }
            assert_eq!(got, want, "{missed:?}, period {period:?}, {late:?} late");
        }
    }
}
