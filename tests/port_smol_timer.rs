//! async-io's `Timer` (smol's timer), its tests (`tests/timer.rs`: `smoke`,
//! `poll_across_tasks`, `set`) and the idioms of smol programs, ported to overlap's `time`:
//!
//! | smol | overlap |
//! |---|---|
//! | `Timer::after(d).await` (gives the `Instant`) | `sleep(d).await` (gives `()`; `s.deadline()` is the instant) |
//! | `Timer::at(t)` | `sleep_until(t)` |
//! | `timer.set_after(d)` / `set_at(t)` | `sleep.reset(Instant::now() + d)` / `reset(t)` |
//! | `Timer::never()` | `sleep(Duration::MAX)` |
//! | `Timer::interval(p)` (first tick after `p`) | `interval_at(Instant::now() + p, p)` |
//! | `Timer::interval_at(start, p)` | `interval_at(start, p)` |
//! | `timer.set_interval(p)` | `interval.reset()` (one period from now) |
//! | missed ticks: each one, back to back | `set_missed_tick_behavior(MissedTickBehavior::Burst)` (the default, `Skip`, drops them) |
//!
//! The clock is paused, so every instant below is exact.

mod support;

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{select, Either, FutureExt};
use overlap::stream::StreamExt;
use overlap::time::{interval_at, sleep, sleep_until, timeout, Instant, MissedTickBehavior};
use support::{poll_once, settle, within};

const SEC: Duration = Duration::from_secs(1);
const HANG: Duration = Duration::from_secs(3600);

// async-io: timer.rs smoke (`Timer::after(1s)` never completes early)
#[overlap::test(start_paused = true)]
async fn after_completes_exactly_at_its_deadline() {
    let start = Instant::now();
    let timer = sleep(SEC);
    // smol's timer yields the instant it fired at; overlap's sleep keeps it as its deadline.
    let deadline = timer.deadline();
    timer.await;
    assert_eq!(deadline, start + SEC);
    assert_eq!(Instant::now(), start + SEC);
}

// async-io: timer.rs poll_across_tasks (a timer polled once by one task, then moved to
// another task that awaits it: the second task is woken, at the deadline)
#[overlap::test(start_paused = true)]
async fn a_timer_polled_by_one_task_then_awaited_by_another_fires_there() {
    let start = Instant::now();
    let (tx, rx) = overlap::sync::oneshot::channel();
    let first = overlap::spawn(async move {
        let mut timer = Box::pin(sleep(SEC));
        // `(&mut timer).or(async {})`: the timer loses at once, registered by this task.
        match select(timer.as_mut(), std::future::ready(())).await {
            Either::Left(_) => panic!("the timer should not be ready"),
            Either::Right(_) => {}
        }
        tx.send(timer).unwrap();
    });
    let second = overlap::spawn(async move {
        rx.await.unwrap().await;
        Instant::now()
    });
    first.await.unwrap();
    let fired = within(HANG, second, "the moved timer never woke its new task").await;
    assert_eq!(fired.unwrap(), start + SEC);
}

// async-io: timer.rs set (a timer of 10 s that another thread moves to "2 s from now" after
// 1 s, while this task waits on it: the task wakes at 3 s, without being polled in between).
// smol's timer is `Send` and shared through `Arc<Mutex<_>>`; overlap's sleep is shared
// between the tasks of one runtime through `Rc<RefCell<_>>`.
#[overlap::test(start_paused = true)]
async fn set_after_moves_the_deadline_of_a_timer_another_task_is_waiting_on() {
    let start = Instant::now();
    let timer = Rc::new(RefCell::new(Box::pin(sleep(10 * SEC))));
    let mover = overlap::spawn({
        let timer = timer.clone();
        async move {
            sleep(SEC).await;
            timer.borrow_mut().as_mut().reset(Instant::now() + 2 * SEC);
        }
    });
    let wait = poll_fn(|cx| timer.borrow_mut().as_mut().poll(cx));
    within(HANG, wait, "the waiting task was never woken").await;
    assert_eq!(Instant::now(), start + 3 * SEC);
    mover.await.unwrap();

    // Moved earlier, to before the instant it was first due: the same.
    let start = Instant::now();
    timer.borrow_mut().as_mut().reset(start + 10 * SEC);
    let mover = overlap::spawn({
        let timer = timer.clone();
        async move {
            sleep(SEC).await;
            timer.borrow_mut().as_mut().reset(Instant::now());
        }
    });
    let wait = poll_fn(|cx| timer.borrow_mut().as_mut().poll(cx));
    within(HANG, wait, "a deadline moved into the past woke nobody").await;
    assert_eq!(Instant::now(), start + SEC);
    mover.await.unwrap();
}

// smol programs re-arm one timer after it fired (`timer.set_after(d)` in a loop, the
// `Interval` of older smol versions): a fired sleep that is reset fires again, once.
#[overlap::test(start_paused = true)]
async fn a_fired_timer_that_is_set_again_fires_again_and_only_once() {
    let start = Instant::now();
    let mut timer = Box::pin(sleep(SEC));
    let mut fired = Vec::new();
    for _ in 0..3 {
        timer.as_mut().await;
        fired.push(Instant::now() - start);
        // Ready again at once until reset (smol's timer stays ready as well).
        assert!(poll_once(timer.as_mut()).await.is_ready());
        timer.as_mut().reset(Instant::now() + SEC);
        assert!(
            poll_once(timer.as_mut()).await.is_pending(),
            "reset re-arms it"
        );
    }
    assert_eq!(fired, [SEC, 2 * SEC, 3 * SEC]);
}

// `Timer::at(t)` with `t` in the past completes at the first poll.
#[overlap::test(start_paused = true)]
async fn at_an_instant_already_past_completes_at_the_first_poll() {
    sleep(SEC).await;
    let past = Instant::now() - SEC;
    assert!(poll_once(sleep_until(past)).await.is_ready());
}

// `Timer::never()`: never fires, even on a paused clock that jumps to the next timer when
// the runtime is idle; a timeout around it is what ends.
#[overlap::test(start_paused = true)]
async fn never_is_a_sleep_of_duration_max() {
    let start = Instant::now();
    let never = sleep(Duration::MAX);
    assert!(timeout(5 * SEC, never).await.is_err());
    assert_eq!(Instant::now(), start + 5 * SEC);
}

// `Timer::interval(p)`: its first tick comes one period after it was made, each tick gives
// the instant it was due, and the ticks keep their phase.
#[overlap::test(start_paused = true)]
async fn interval_with_smols_timing_ticks_a_period_after_it_is_made() {
    let start = Instant::now();
    let mut ticks = interval_at(start + SEC, SEC);
    let got: Vec<_> = (&mut ticks).take(3).collect().await;
    assert_eq!(got, [start + SEC, start + 2 * SEC, start + 3 * SEC]);

    // `set_interval(p)` restarts it: one period from now.
    sleep(SEC / 2).await;
    let reset_at = Instant::now();
    ticks.reset();
    assert_eq!(ticks.next().await, Some(reset_at + SEC));
    assert_eq!(ticks.next().await, Some(reset_at + 2 * SEC));
}

// async-io's interval moves its deadline one period on from the tick it reports, however
// late that tick is seen: a task that was busy for several periods gets every missed tick,
// back to back, at once. overlap's `Burst` does the same; its default skips them.
#[overlap::test(start_paused = true)]
async fn missed_ticks_come_back_to_back_as_smols_interval_gives_them() {
    let start = Instant::now();
    let mut burst = interval_at(start + SEC, SEC);
    burst.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut skip = interval_at(start + SEC, SEC);
    overlap::time::advance(SEC * 7 / 2).await; // busy for 3.5 periods
    let busy_until = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..4 {
        let tick = burst.tick().await;
        seen.push((tick - start, Instant::now() - start));
    }
    let at = |n: u32| SEC * n;
    let late = busy_until - start;
    assert_eq!(
        seen,
        [(at(1), late), (at(2), late), (at(3), late), (at(4), at(4))]
    );
    // The default (tokio's) reports the late tick, then goes on from the next one due.
    assert_eq!(skip.tick().await, start + SEC);
    assert_eq!(skip.tick().await, start + 5 * SEC);
}

// A smol idle timeout: the loop re-arms one timer on every message and gives up when it
// fires (`future::or(recv, timer)`), and a message right before the deadline keeps the
// connection alive.
#[overlap::test(start_paused = true)]
async fn an_idle_timer_reset_on_each_message_fires_only_after_silence() {
    let start = Instant::now();
    let (tx, mut rx) = overlap::sync::mpsc::channel::<u32>(4);
    let talker = overlap::spawn(async move {
        for i in 0..3 {
            sleep(SEC * 9 / 10).await;
            tx.send(i).await.unwrap();
        }
        sleep(HANG).await; // then silence, the sender still open
        drop(tx);
    });
    let mut idle = Box::pin(sleep(SEC));
    let mut got = Vec::new();
    loop {
        overlap::select! {
            msg = rx.recv().fuse() => {
                got.push((msg.unwrap(), Instant::now() - start));
                idle.as_mut().reset(Instant::now() + SEC);
            }
            _ = idle.as_mut() => break,
        }
    }
    let ms = |n: u64| Duration::from_millis(n);
    assert_eq!(got, [(0, ms(900)), (1, ms(1800)), (2, ms(2700))]);
    assert_eq!(Instant::now() - start, ms(3700));
    talker.abort();
    settle().await;
}
