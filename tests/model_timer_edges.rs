//! Timer edge cases: sleeps and intervals moved between runtimes, timers re-registered or reset
//! from inside wakers, far and past deadlines, many timers in one slot.

mod support;

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::time::{interval, sleep, sleep_until, timeout, Instant, Sleep};
use overlap::Runtime;
use support::watchdog;

#[test]
fn a_sleep_moved_between_runtimes_leaves_no_timer_behind() {
    let done = watchdog(30);
    let a = Runtime::new().unwrap();
    let b = Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_millis(20);
    let mut s = Box::pin(sleep_until(deadline));
    a.block_on(async {
        assert!(futures_util::poll!(s.as_mut()).is_pending());
    });
    assert_eq!(a.metrics().timers_active, 1);
    b.block_on(async {
        s.as_mut().await;
        assert!(Instant::now() >= deadline);
    });
    assert_eq!(
        a.metrics().timers_active,
        0,
        "the timer stayed in the first runtime"
    );
    assert_eq!(b.metrics().timers_active, 0);

    // Registered in `a`, `a` dropped, then completed in `b`.
    let deadline = Instant::now() + Duration::from_millis(5);
    let mut s = Box::pin(sleep_until(deadline));
    a.block_on(async {
        assert!(futures_util::poll!(s.as_mut()).is_pending());
    });
    drop(a);
    b.block_on(s);
    assert!(Instant::now() >= deadline);

    // An interval moved back and forth keeps ticking.
    let c = Runtime::new().unwrap();
    let mut iv = interval(Duration::from_millis(2));
    let mut last = None;
    for i in 0..10 {
        let rt = if i % 2 == 0 { &b } else { &c };
        let at = rt.block_on(iv.tick());
        if let Some(prev) = last {
            assert!(at > prev);
        }
        last = Some(at);
    }
    assert_eq!(b.metrics().timers_active + c.metrics().timers_active, 0);
    done.store(true, Ordering::Relaxed);
}

struct ResetWaker {
    sleep: RefCell<Option<Pin<Box<Sleep>>>>,
    fires: AtomicUsize,
    max: usize,
}

// SAFETY: a ResetWaker is made, woken and dropped only on the test's runtime thread (its
// timers fire there); it never crosses threads, so the RefCell and the `!Send` Sleep inside
// are never touched from two threads.
unsafe impl Send for ResetWaker {}
// SAFETY: as above: no other thread ever holds a reference to it.
unsafe impl Sync for ResetWaker {}

impl Wake for ResetWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let n = self.fires.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.max {
            return;
        }
        // Re-register from inside the wake: reset (the timer fired, so this unregisters) and
        // poll, which registers a new timer while the wheel is firing.
        let mut slot = self.sleep.borrow_mut();
        let s = slot.as_mut().unwrap();
        let next = match n % 3 {
            0 => Instant::now(),
            1 => Instant::now() + Duration::from_micros(100),
            _ => Instant::now() + Duration::from_millis(2),
        };
        s.as_mut().reset(next);
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut extra = 0;
        while s.as_mut().poll(&mut cx).is_ready() {
            // Ready at once (deadline now): count it as a fire and go on.
            extra += 1;
            s.as_mut()
                .reset(Instant::now() + Duration::from_micros(300));
            if extra > 3 {
                break;
            }
        }
    }
}

#[test]
fn timers_re_registered_from_inside_their_waker_keep_firing() {
    let done = watchdog(30);
    overlap::block_on(async {
        let w = Arc::new(ResetWaker {
            sleep: RefCell::new(Some(Box::pin(sleep(Duration::from_millis(1))))),
            fires: AtomicUsize::new(0),
            max: 200,
        });
        {
            let waker = Waker::from(w.clone());
            let mut slot = w.sleep.borrow_mut();
            assert!(slot
                .as_mut()
                .unwrap()
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
        }
        let start = Instant::now();
        while w.fires.load(Ordering::SeqCst) < 200 {
            sleep(Duration::from_millis(1)).await;
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the re-registered timers stopped firing"
            );
        }
        // Drop it (it is pending or elapsed); nothing left behind.
        w.sleep.borrow_mut().take();
        let m = overlap::metrics();
        assert_eq!(m.timers_active, 0, "{m:?}");
    });
    done.store(true, Ordering::Relaxed);
}

#[test]
fn many_timers_in_one_slot_with_resets_and_drops() {
    let done = watchdog(30);
    overlap::block_on(async {
        let base = Instant::now() + Duration::from_millis(5);
        let fired = Rc::new(RefCell::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..6000u64 {
            let fired = fired.clone();
            // All within about one tick, plus some moved around.
            let d = base + Duration::from_nanos((i * 7919) % 1_000_000);
            tasks.push(overlap::spawn(async move {
                let mut s = pin!(sleep_until(d));
                poll_fn(|cx| {
                    let _ = s.as_mut().poll(cx);
                    Poll::Ready(())
                })
                .await;
                let mut d = d;
                if i % 5 == 0 {
                    d = base + Duration::from_nanos((i * 104_729) % 2_000_000);
                    s.as_mut().reset(d);
                }
                s.await;
                assert!(Instant::now() >= d, "fired early");
                fired.borrow_mut().push(i);
            }));
        }
        // Abort every 7th.
        let mut kept = 0;
        for (i, t) in tasks.iter().enumerate() {
            if i % 7 == 3 {
                t.abort();
            } else {
                kept += 1;
            }
        }
        for t in tasks {
            let _ = timeout(Duration::from_secs(10), t)
                .await
                .expect("a timer never fired");
        }
        assert_eq!(fired.borrow().len(), kept);
        let m = overlap::metrics();
        assert_eq!(m.timers_active, 0, "{m:?}");
    });
    done.store(true, Ordering::Relaxed);
}

#[test]
fn far_and_past_deadlines() {
    let done = watchdog(30);
    overlap::block_on(async {
        let now = Instant::now();
        // Past, at the runtime's creation, far past.
        sleep_until(now - Duration::from_secs(1)).await;
        sleep_until(now).await;
        sleep(Duration::ZERO).await;
        // Far futures stay pending and cost nothing when dropped, with near ones firing.
        let fars: Vec<_> = [
            Duration::from_secs(3600),
            Duration::from_secs(86_400 * 365 * 3),
            Duration::from_secs(86_400 * 365 * 700),
            Duration::MAX,
        ]
        .into_iter()
        .map(|d| Box::pin(sleep(d)))
        .collect();
        let mut fars = fars;
        for f in fars.iter_mut() {
            assert!(futures_util::poll!(f.as_mut()).is_pending());
        }
        for _ in 0..20 {
            let d = Instant::now() + Duration::from_micros(500);
            sleep_until(d).await;
            assert!(Instant::now() >= d);
        }
        // Reset a far one to near: it fires.
        let d = Instant::now() + Duration::from_millis(1);
        fars[2].as_mut().reset(d);
        fars[2].as_mut().await;
        assert!(Instant::now() >= d);
        // Reset a near one to far: it does not fire.
        let mut s = Box::pin(sleep(Duration::from_millis(1)));
        assert!(futures_util::poll!(s.as_mut()).is_pending());
        s.as_mut()
            .reset(Instant::now() + Duration::from_secs(86_400 * 365 * 10));
        sleep(Duration::from_millis(5)).await;
        assert!(futures_util::poll!(s.as_mut()).is_pending());
        assert_eq!(overlap::metrics().timers_active, 4);
        drop(fars);
        drop(s);
        assert_eq!(overlap::metrics().timers_active, 0);
    });
    done.store(true, Ordering::Relaxed);
}
