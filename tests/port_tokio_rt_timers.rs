//! tokio's runtime tests about timers at the loop's level, ported to overlap. From
//! `rt_common.rs` (its drop-with-pending-timers and sleep cases) and `rt_basic.rs`:
//! thousands of timers due at one instant fire in one turn; real timers with spread
//! deadlines all fire, none early; a `Sleep` registered in a runtime that is then dropped
//! can still be polled and dropped; sleeps dropped after their timers fired leave the
//! timers registered since alone.

mod support;

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use overlap::time::{self, Instant};
use overlap::Runtime;
use support::{within, DropFlag};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn ten_thousand_timers_due_at_one_instant_fire_in_one_advance() {
    let rt = Runtime::builder().start_paused(true).build().unwrap();
    rt.block_on(async {
        let fired = Rc::new(Cell::new(0u32));
        let deadline = Instant::now() + Duration::from_secs(1);
        let tasks: Vec<_> = (0..10_000)
            .map(|_| {
                let fired = fired.clone();
                overlap::spawn(async move {
                    time::sleep_until(deadline).await;
                    fired.set(fired.get() + 1);
                })
            })
            .collect();
        overlap::yield_now().await;
        assert_eq!(overlap::metrics().timers_active, 10_000);
        assert_eq!(fired.get(), 0);
        time::advance(Duration::from_secs(1)).await;
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(fired.get(), 10_000);
        let m = overlap::metrics();
        assert_eq!(m.timers_active, 0);
        assert!(m.timers_fired >= 10_000, "{m:?}");
    });
}

#[test]
fn many_real_timers_with_spread_deadlines_all_fire_and_none_early() {
    overlap::block_on(async {
        let base = Instant::now();
        let early = Rc::new(Cell::new(0u32));
        let tasks: Vec<_> = (0..2_000u64)
            .map(|i| {
                let early = early.clone();
                let deadline = base + Duration::from_micros((i % 50) * 100);
                overlap::spawn(async move {
                    time::sleep_until(deadline).await;
                    if Instant::now() < deadline {
                        early.set(early.get() + 1);
                    }
                })
            })
            .collect();
        within(HANG, overlap::future::join_all(tasks), "timers never fired").await;
        assert_eq!(early.get(), 0, "timers fired before their deadline");
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn a_sleep_taken_out_of_its_runtime_can_be_polled_and_dropped_after_it_is_gone() {
    let rt = Runtime::new().unwrap();
    let mut sleep = Box::pin(time::sleep(Duration::from_secs(3600)));
    assert!(rt.block_on(support::poll_once(sleep.as_mut())).is_pending());
    let (flag, dropped) = DropFlag::new();
    rt.spawn(async move {
        let _flag = flag;
        time::sleep(Duration::from_secs(3600)).await;
    })
    .detach();
    rt.block_on(overlap::yield_now());
    drop(rt);
    assert!(dropped.get());
    // No runtime: the poll must not hang or touch freed state, whatever it answers.
    let woken = Arc::new(AtomicBool::new(false));
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let waker = Waker::from(Arc::new(Flag(woken.clone())));
        let _ = sleep.as_mut().poll(&mut Context::from_waker(&waker));
    }));
    drop(sleep);
}

#[test]
fn sleeps_dropped_after_their_timers_fired_leave_newer_timers_alone() {
    let rt = Runtime::builder().start_paused(true).build().unwrap();
    rt.block_on(async {
        // Fired but never polled again: their wheel entries are free for new timers.
        let mut old: Vec<_> = (0..100)
            .map(|_| Box::pin(time::sleep(Duration::from_millis(1))))
            .collect();
        for s in &mut old {
            assert!(support::poll_once(s.as_mut()).await.is_pending());
        }
        time::advance(Duration::from_millis(1)).await;
        assert_eq!(overlap::metrics().timers_active, 0);
        let mut new: Vec<_> = (0..100)
            .map(|_| Box::pin(time::sleep(Duration::from_millis(5))))
            .collect();
        for s in &mut new {
            assert!(support::poll_once(s.as_mut()).await.is_pending());
        }
        drop(old);
        assert_eq!(overlap::metrics().timers_active, 100);
        within(
            HANG,
            overlap::future::join_all(new),
            "a newer timer was removed",
        )
        .await;
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

struct Flag(Arc<AtomicBool>);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}
