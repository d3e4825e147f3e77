//! Randomized model-based test of sleeps: create / poll / reset / drop with random deadlines,
//! checked against a simple model: every armed sleep fires, never before its deadline, due
//! timers are woken in deadline order, dropped sleeps are never woken, nothing leaks.

mod support;

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::time::{sleep, sleep_until, Instant, Sleep};
use support::{watchdog, XorShift as Rng};

/// Events recorded by the sleeps' wakers.
#[derive(Default)]
struct Log {
    /// (sleep id, instant of the wake)
    wakes: Vec<(usize, Instant)>,
    main: Option<Waker>,
}

struct TrackWaker {
    id: usize,
    count: AtomicUsize,
    log: Arc<Mutex<Log>>,
}

impl Wake for TrackWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.count.fetch_add(1, Ordering::SeqCst);
        let mut log = self.log.lock().unwrap();
        log.wakes.push((self.id, Instant::now()));
        if let Some(m) = &log.main {
            m.wake_by_ref();
        }
    }
}

struct Tracked {
    sleep: Pin<Box<Sleep>>,
    waker: Arc<TrackWaker>,
    /// Polled Pending since creation / its last reset that unregistered it, and not woken.
    armed: bool,
    /// Woken since the last reset: the next poll must be ready.
    woken: bool,
    done: bool,
}

fn random_deadline(rng: &mut Rng, now: Instant) -> Instant {
    match rng.below(10) {
        0 => now
            .checked_sub(Duration::from_micros(rng.below(5000)))
            .unwrap_or(now),
        1 => now,
        2 | 3 => now + Duration::from_micros(rng.below(3000)),
        4 | 5 => now + Duration::from_micros(rng.below(60_000)),
        6 => now + Duration::from_millis(60 + rng.below(200)),
        7 => now + Duration::from_secs(1 + rng.below(10)),
        8 => now + Duration::from_secs(3600 * (1 + rng.below(100_000))),
        _ => overlap::time::sleep(Duration::MAX).deadline(),
    }
}

const FAR: Duration = Duration::from_millis(400);

fn run_model(seed: u64, steps: usize) {
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async move {
        let mut rng = Rng(seed);
        let log = Arc::new(Mutex::new(Log::default()));
        poll_fn(|cx| {
            log.lock().unwrap().main = Some(cx.waker().clone());
            Poll::Ready(())
        })
        .await;
        let mut all: Vec<Tracked> = Vec::new();
        let mut dropped: Vec<(Arc<TrackWaker>, usize)> = Vec::new();
        let mut seen_wakes = 0;
        let mut next_id = 0;

        let poll_one = |t: &mut Tracked| {
            let waker = Waker::from(t.waker.clone());
            let mut cx = Context::from_waker(&waker);
            let deadline = t.sleep.deadline();
            match t.sleep.as_mut().poll(&mut cx) {
                Poll::Ready(()) => {
                    let now = Instant::now();
                    assert!(
                        now >= deadline,
                        "sleep {} ready {:?} early",
                        t.waker.id,
                        deadline - now
                    );
                    t.done = true;
                    t.armed = false;
                }
                Poll::Pending => {
                    assert!(
                        !t.woken,
                        "sleep {} woken but pending when polled",
                        t.waker.id
                    );
                    t.armed = true;
                }
            }
        };

        for step in 0..steps {
            // Check the wakes recorded since last time.
            {
                let log = log.lock().unwrap();
                for &(id, at) in &log.wakes[seen_wakes..] {
                    if let Some(t) = all.iter_mut().find(|t| t.waker.id == id) {
                        let d = t.sleep.deadline();
                        assert!(at >= d, "sleep {id} woken {:?} before its deadline", d - at);
                        assert!(t.armed, "sleep {id} woken while not armed");
                        t.armed = false;
                        t.woken = true;
                    } else {
                        // must be a dropped one: checked below
                    }
                }
                seen_wakes = log.wakes.len();
            }
            for (w, n) in &dropped {
                assert_eq!(
                    w.count.load(Ordering::SeqCst),
                    *n,
                    "dropped sleep {} was woken",
                    w.id
                );
            }
            let ops = 1 + rng.below(8);
            for _ in 0..ops {
                let now = Instant::now();
                match rng.below(10) {
                    0..=3 => {
                        let id = next_id;
                        next_id += 1;
                        let d = random_deadline(&mut rng, now);
                        let mut t = Tracked {
                            sleep: Box::pin(sleep_until(d)),
                            waker: Arc::new(TrackWaker {
                                id,
                                count: AtomicUsize::new(0),
                                log: log.clone(),
                            }),
                            armed: false,
                            woken: false,
                            done: false,
                        };
                        if rng.below(4) != 0 {
                            poll_one(&mut t);
                        }
                        all.push(t);
                    }
                    4 | 5 if !all.is_empty() => {
                        let i = rng.below(all.len() as u64) as usize;
                        let d = random_deadline(&mut rng, now);
                        let t = &mut all[i];
                        let armed_before = t.armed;
                        // Only timers fire wakes, and they fire between steps: none is
                        // unseen here, so what follows the reset is the reset's own doing.
                        assert_eq!(log.lock().unwrap().wakes.len(), seen_wakes);
                        t.sleep.as_mut().reset(d);
                        t.done = false;
                        t.woken = false;
                        // A reset of an armed, unwoken sleep moves its timer (still armed);
                        // otherwise the sleep is unregistered until polled. A reset of an
                        // armed sleep into the past removes its timer and wakes it at once,
                        // so that whoever awaits it polls again and completes.
                        let log = log.lock().unwrap();
                        let new_wakes = &log.wakes[seen_wakes..];
                        assert!(new_wakes.len() <= 1, "one reset woke {new_wakes:?}");
                        if let Some(&(id, _)) = new_wakes.first() {
                            assert_eq!(id, t.waker.id, "a reset woke another sleep");
                            assert!(armed_before, "a reset woke sleep {id}, which was not armed");
                            assert!(d <= Instant::now(), "a reset to a later deadline woke {id}");
                            t.armed = false;
                            t.woken = true;
                            seen_wakes += 1;
                        }
                        drop(log);
                        if rng.below(2) == 0 {
                            poll_one(t);
                        }
                    }
                    6 | 7 if !all.is_empty() => {
                        let i = rng.below(all.len() as u64) as usize;
                        let t = all.swap_remove(i);
                        let n = t.waker.count.load(Ordering::SeqCst);
                        drop(t.sleep);
                        dropped.push((t.waker, n));
                    }
                    _ => {
                        // Poll every sleep that was woken, and some others.
                        for t in all.iter_mut() {
                            if !t.done && (!t.armed || rng.below(8) == 0) {
                                poll_one(t);
                            }
                        }
                    }
                }
            }
            all.retain(|t| !t.done || rng.below(3) != 0);
            if step % 4 == 0 {
                sleep(Duration::from_micros(rng.below(1500))).await;
            } else {
                overlap::yield_now().await;
            }
        }

        // Drain: drop the far ones, wait for the others.
        let now = Instant::now();
        all.retain(|t| t.sleep.deadline() <= now + FAR);
        loop {
            {
                let log = log.lock().unwrap();
                for &(id, at) in &log.wakes[seen_wakes..] {
                    if let Some(t) = all.iter_mut().find(|t| t.waker.id == id) {
                        assert!(at >= t.sleep.deadline());
                        t.armed = false;
                        t.woken = true;
                    }
                }
                seen_wakes = log.wakes.len();
            }
            for t in all.iter_mut() {
                // An armed sleep is polled only once woken: a lost wakeup hangs here.
                if !t.done && !t.armed {
                    poll_one(t);
                }
            }
            all.retain(|t| !t.done);
            if all.is_empty() {
                break;
            }
            sleep(Duration::from_millis(2)).await;
        }
        for (w, n) in &dropped {
            assert_eq!(
                w.count.load(Ordering::SeqCst),
                *n,
                "dropped sleep {} was woken",
                w.id
            );
        }
        let m = overlap::metrics();
        assert_eq!(m.timers_active, 0, "timers leaked: {m:?}");
    });
}

#[test]
fn random_sleeps_resets_and_drops_match_the_model() {
    let done = watchdog(120);
    let n: u64 = std::env::var("AUDIT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 1..=n {
        run_model(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, 400);
    }
    done.store(true, Ordering::Relaxed);
}

/// Wakes happen in deadline order: whenever a sleep is woken, no other armed sleep with an
/// earlier deadline is still unwoken.
#[test]
fn wakes_come_in_deadline_order() {
    let done = watchdog(60);
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async {
        let mut rng = Rng(0xdead_beef);
        for _round in 0..20 {
            let log = Arc::new(Mutex::new(Log::default()));
            let start = Instant::now();
            let mut sleeps = Vec::new();
            for id in 0..200 {
                let d = start + Duration::from_micros(50_000 + rng.below(20_000));
                let mut s = Box::pin(sleep_until(d));
                let w = Arc::new(TrackWaker {
                    id,
                    count: AtomicUsize::new(0),
                    log: log.clone(),
                });
                let waker = Waker::from(w.clone());
                // (Generous offsets: a loaded machine must not make a deadline pass here.)
                assert!(s
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending());
                sleeps.push((s, w, d));
            }
            // Reset a third of them.
            for entry in sleeps.iter_mut() {
                if rng.below(3) == 0 {
                    let d = start + Duration::from_micros(50_000 + rng.below(20_000));
                    entry.0.as_mut().reset(d);
                    entry.2 = d;
                }
            }
            sleep(Duration::from_millis(75)).await;
            loop {
                if log.lock().unwrap().wakes.len() >= sleeps.len() {
                    break;
                }
                sleep(Duration::from_millis(5)).await;
            }
            let log = log.lock().unwrap();
            let mut seen = std::collections::HashSet::new();
            for &(id, at) in &log.wakes {
                let d = sleeps[id].2;
                assert!(at >= d);
                assert!(seen.insert(id), "sleep {id} woken twice");
                for (other, s) in sleeps.iter().enumerate() {
                    if s.2 < d && !seen.contains(&other) {
                        panic!(
                            "sleep {id} (deadline {:?}) woken before sleep {other} (deadline {:?})",
                            d - start,
                            s.2 - start
                        );
                    }
                }
            }
        }
    });
    done.store(true, Ordering::Relaxed);
}
