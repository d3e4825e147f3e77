//! `sleep`, `sleep_until` and `Sleep`: ordering, never early, reset, odd durations, wakers,
//! cancellation and busy run queues.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::time::{sleep, sleep_until, Instant, Sleep};

mod support;
use support::Rng;

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Polls `sleep` once with `waker`.
fn poll_with(sleep: &mut Sleep, waker: &Waker) -> Poll<()> {
    Pin::new(sleep).poll(&mut Context::from_waker(waker))
}

#[test]
fn thousand_random_deadlines_fire_in_order_and_never_early() {
    overlap::block_on(async {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let start = Instant::now();
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            // 100 ms of headroom so that every task registers before the first deadline (a
            // deadline already past when first polled completes at once, out of turn).
            let deadline = start + Duration::from_micros(100_000 + rng.next() % 50_000);
            let log = log.clone();
            tasks.push(overlap::spawn(async move {
                sleep_until(deadline).await;
                let woke = Instant::now();
                assert!(woke >= deadline, "woke {:?} early", deadline - woke);
                log.borrow_mut().push(deadline);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.borrow();
        assert_eq!(log.len(), 1000);
        assert!(log.windows(2).all(|w| w[0] <= w[1]), "fired out of order");
        let m = overlap::metrics();
        assert_eq!(m.timers_active, 0);
        assert!(m.timers_fired >= 1000);
    });
}

#[test]
fn sub_millisecond_sleeps_are_never_early() {
    overlap::block_on(async {
        for us in [1, 10, 100, 300, 999, 1000, 1500] {
            let d = Duration::from_micros(us);
            let start = Instant::now();
            sleep(d).await;
            let took = start.elapsed();
            assert!(took >= d, "{d:?} sleep took {took:?}");
            assert!(
                took < d + Duration::from_secs(1),
                "{d:?} sleep took {took:?}"
            );
        }
    });
}

#[test]
fn zero_and_past_deadlines_complete_promptly() {
    overlap::block_on(async {
        let start = Instant::now();
        sleep(Duration::ZERO).await;
        sleep_until(start - Duration::from_millis(5).min(start.elapsed())).await;
        let mut past = sleep(Duration::from_secs(3600));
        past.reset(Instant::now() - Duration::from_nanos(1));
        past.await;
        for _ in 0..10_000 {
            sleep(Duration::ZERO).await;
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn duration_max_stays_pending_and_drops_cleanly() {
    overlap::block_on(async {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut forever = sleep(Duration::MAX);
        assert!(poll_with(&mut forever, &waker).is_pending());
        let mut far = sleep_until(Instant::now() + Duration::from_secs(86_400 * 365 * 100));
        assert!(poll_with(&mut far, &waker).is_pending());
        assert_eq!(overlap::metrics().timers_active, 2);
        // The loop keeps running other timers meanwhile.
        sleep(Duration::from_millis(2)).await;
        assert!(poll_with(&mut forever, &waker).is_pending());
        assert!(!forever.is_elapsed());
        drop(forever);
        drop(far);
        assert_eq!(overlap::metrics().timers_active, 0);
        assert_eq!(counter.count(), 0);
    });
}

#[test]
fn reset_earlier_fires_at_the_new_deadline() {
    overlap::block_on(async {
        let start = Instant::now();
        let mut s = sleep(Duration::from_secs(3600));
        assert!(poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll(cx)))
            .await
            .is_pending());
        let deadline = Instant::now() + Duration::from_millis(3);
        s.reset(deadline);
        assert_eq!(s.deadline(), deadline);
        s.await;
        assert!(Instant::now() >= deadline);
        assert!(start.elapsed() < Duration::from_secs(60));
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn reset_later_does_not_fire_at_the_old_deadline() {
    overlap::block_on(async {
        let mut s = sleep(Duration::from_millis(1));
        assert!(poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll(cx)))
            .await
            .is_pending());
        let deadline = Instant::now() + Duration::from_millis(20);
        s.reset(deadline);
        s.await;
        assert!(Instant::now() >= deadline);
    });
}

#[test]
fn reset_after_completion_sleeps_again() {
    overlap::block_on(async {
        let mut s = sleep(Duration::from_micros(100));
        (&mut s).await;
        let deadline = Instant::now() + Duration::from_millis(2);
        s.reset(deadline);
        assert!(!s.is_elapsed());
        (&mut s).await;
        assert!(Instant::now() >= deadline);
    });
}

#[test]
fn reset_moves_the_timer_and_keeps_waking_the_same_waker() {
    overlap::block_on(async {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut s = sleep(Duration::from_secs(3600));
        assert!(poll_with(&mut s, &waker).is_pending());
        // No poll between the reset and the deadline: the registered waker still fires.
        s.reset(Instant::now() + Duration::from_millis(1));
        sleep(Duration::from_millis(5)).await;
        assert_eq!(counter.count(), 1);
        assert!(poll_with(&mut s, &waker).is_ready());
        assert_eq!(counter.count(), 1);
    });
}

#[test]
fn reset_into_the_past_wakes_the_task_awaiting_the_sleep() {
    overlap::block_on(async {
        // Another task holds the sleep and awaits it; this one fires it early by a reset.
        let shared = Rc::new(RefCell::new(Box::pin(sleep(Duration::from_secs(3600)))));
        let held = shared.clone();
        let waiter = overlap::spawn(async move {
            poll_fn(|cx| held.borrow_mut().as_mut().poll(cx)).await;
        });
        overlap::yield_now().await;
        assert_eq!(
            overlap::metrics().timers_active,
            1,
            "the waiter registered its timer"
        );
        shared.borrow_mut().as_mut().reset(Instant::now());
        let waited = overlap::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(
            waited.is_ok(),
            "the task awaiting the sleep was never woken by the reset"
        );
        // The same with a waker of our own, through a deadline well in the past.
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let start = Instant::now();
        let mut s = sleep(Duration::from_secs(3600));
        assert!(poll_with(&mut s, &waker).is_pending());
        s.reset(start - Duration::from_millis(1));
        assert_eq!(counter.count(), 1, "woken by the reset itself");
        assert!(poll_with(&mut s, &waker).is_ready());
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn latest_waker_is_woken_exactly_once() {
    overlap::block_on(async {
        let first = Arc::new(Counter::default());
        let second = Arc::new(Counter::default());
        let mut s = sleep(Duration::from_millis(2));
        assert!(poll_with(&mut s, &Waker::from(first.clone())).is_pending());
        assert!(poll_with(&mut s, &Waker::from(second.clone())).is_pending());
        sleep(Duration::from_millis(10)).await;
        assert_eq!((first.count(), second.count()), (0, 1));
        assert!(poll_with(&mut s, &Waker::from(second.clone())).is_ready());
        assert!(poll_with(&mut s, &Waker::from(first.clone())).is_ready());
        assert_eq!((first.count(), second.count()), (0, 1));
    });
}

#[test]
#[allow(clippy::async_yields_async)] // the first task hands the sleep over on purpose
fn sleep_moved_between_tasks_fires_once_in_the_second() {
    overlap::block_on(async {
        // Long enough that both tasks poll before it fires, even on a loaded machine.
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut s = sleep_until(deadline);
        // The first task polls it once (registering it), then hands it over.
        let s = overlap::spawn(async move {
            assert!(poll_fn(|cx| Poll::Ready(Pin::new(&mut s).poll(cx)))
                .await
                .is_pending());
            s
        })
        .await
        .unwrap();
        let polls = Rc::new(AtomicUsize::new(0));
        let p = polls.clone();
        overlap::spawn(async move {
            let mut s = s;
            poll_fn(|cx| {
                p.fetch_add(1, Ordering::SeqCst);
                Pin::new(&mut s).poll(cx)
            })
            .await;
            assert!(Instant::now() >= deadline);
        })
        .await
        .unwrap();
        // One poll to register the waker, one after the single wake.
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    });
}

thread_local! {
    static VICTIM: RefCell<Option<Sleep>> = const { RefCell::new(None) };
}

/// A waker that, when woken, drops the timer in `VICTIM`.
struct DropVictim(AtomicUsize);

impl Wake for DropVictim {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
        VICTIM.with(|v| drop(v.borrow_mut().take()));
    }
}

#[test]
fn dropping_a_timer_from_another_timers_wake_works() {
    overlap::block_on(async {
        let now = Instant::now();
        let killer = Arc::new(DropVictim(AtomicUsize::new(0)));
        let victim_waker = Arc::new(Counter::default());
        // Same deadline: both fire in the same batch, the killer first.
        let mut a = sleep_until(now + Duration::from_millis(1));
        let mut b = sleep_until(now + Duration::from_millis(1) + Duration::from_nanos(1));
        let mut c = sleep_until(now + Duration::from_millis(30));
        assert!(poll_with(&mut a, &Waker::from(killer.clone())).is_pending());
        assert!(poll_with(&mut b, &Waker::from(victim_waker.clone())).is_pending());
        assert!(poll_with(&mut c, &Waker::from(victim_waker.clone())).is_pending());
        VICTIM.with(|v| *v.borrow_mut() = Some(c));
        sleep(Duration::from_millis(5)).await;
        assert_eq!(killer.0.load(Ordering::SeqCst), 1);
        assert!(VICTIM.with(|v| v.borrow().is_none()));
        // `b` fired in the same batch; `c` was cancelled before its deadline.
        assert_eq!(victim_waker.count(), 1);
        assert!(poll_with(&mut a, &Waker::from(killer.clone())).is_ready());
        assert!(poll_with(&mut b, &Waker::from(victim_waker.clone())).is_ready());
        assert_eq!(overlap::metrics().timers_active, 0);
        VICTIM.with(|v| *v.borrow_mut() = Some(sleep(Duration::from_millis(1))));
        let killer2 = Arc::new(DropVictim(AtomicUsize::new(0)));
        // The killer drops a timer registered after it, from inside the same wake batch.
        let mut d = sleep(Duration::from_millis(1));
        assert!(poll_with(&mut d, &Waker::from(killer2.clone())).is_pending());
        VICTIM.with(|v| {
            let mut v = v.borrow_mut();
            let s = v.as_mut().unwrap();
            s.reset(Instant::now() + Duration::from_millis(1));
        });
        sleep(Duration::from_millis(10)).await;
        assert_eq!(killer2.0.load(Ordering::SeqCst), 1);
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn timers_fire_while_the_run_queue_stays_busy() {
    overlap::block_on(async {
        let stop = Rc::new(std::cell::Cell::new(false));
        let mut spinners = Vec::new();
        for _ in 0..8 {
            let stop = stop.clone();
            spinners.push(overlap::spawn(async move {
                while !stop.get() {
                    overlap::yield_now().await;
                }
            }));
        }
        let start = Instant::now();
        let timer = overlap::spawn(async move {
            for _ in 0..20 {
                sleep(Duration::from_millis(1)).await;
            }
        });
        timer.await.unwrap();
        let took = start.elapsed();
        stop.set(true);
        for s in spinners {
            s.await.unwrap();
        }
        assert!(took >= Duration::from_millis(20));
        assert!(
            took < Duration::from_secs(5),
            "20 sleeps of 1 ms took {took:?}"
        );
    });
}

#[test]
fn create_and_drop_cycles_leave_no_timers_behind() {
    overlap::block_on(async {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut rng = Rng(42);
        let before = overlap::metrics().timers_active;
        for i in 0..300_000u64 {
            // Spread over every level of the wheel, from microseconds to years.
            let d = Duration::from_nanos(rng.next() % (1_000 << (i % 45)));
            let mut s = sleep(d + Duration::from_micros(500));
            let _ = poll_with(&mut s, &waker);
            drop(s);
            assert!(overlap::metrics().timers_active <= before + 1);
        }
        assert_eq!(overlap::metrics().timers_active, before);
        // Cancelled timers never wake anyone.
        sleep(Duration::from_millis(2)).await;
        assert_eq!(counter.count(), 0);
    });
}

#[test]
fn dropping_the_runtime_with_pending_timers_is_clean() {
    let rt = overlap::Runtime::new().unwrap();
    let task = rt.spawn(async {
        sleep(Duration::MAX).await;
    });
    // Lets the task run up to its wait (a short sleep here could be over before the task
    // ran at all, on a loaded machine).
    rt.block_on(async {
        for _ in 0..10 {
            overlap::yield_now().await;
        }
    });
    assert_eq!(rt.metrics().timers_active, 1);
    drop(rt);
    drop(task);
}

#[test]
#[should_panic(expected = "outside of a runtime")]
fn polling_outside_a_runtime_panics() {
    let counter = Arc::new(Counter::default());
    let mut s = sleep(Duration::from_millis(1));
    let _ = poll_with(&mut s, &Waker::from(counter));
}

/// The figure: ten million create-poll-drop cycles. Slow in debug builds, so ignored
/// by default; run with `cargo test --release --test time_sleep -- --ignored`.
#[test]
#[ignore]
fn ten_million_create_and_drop_cycles_leave_no_timers_behind() {
    overlap::block_on(async {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut rng = Rng(7);
        for i in 0..10_000_000u64 {
            let d = Duration::from_nanos(rng.next() % (1_000 << (i % 45)));
            let mut s = sleep(d + Duration::from_micros(500));
            let _ = poll_with(&mut s, &waker);
            drop(s);
            if i % 1_000_000 == 0 {
                // Let the loop turn now and then, as a real program would.
                overlap::yield_now().await;
                assert_eq!(overlap::metrics().timers_active, 0);
            }
        }
        assert_eq!(overlap::metrics().timers_active, 0);
        assert_eq!(counter.count(), 0);
    });
}
