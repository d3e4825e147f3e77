//! A user's periodic worker, sketched as one would for tokio (an `interval` with a
//! `MissedTickBehavior`, a `watch` channel carrying the period so it can change at run time,
//! a `select!` against a shutdown `Notify`, and the test on a paused clock) and then written
//! for overlap. On the paused clock every instant is exact, so the test asserts when each
//! tick was handled, to the millisecond.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::{watch, Notify};
use overlap::time::{self, interval_at, sleep, Instant, MissedTickBehavior};
use support::within;

const HANG: Duration = Duration::from_secs(10);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The worker's settings, sent through the `watch` channel.
#[derive(Clone, Debug, PartialEq)]
struct Config {
    period: Duration,
    /// How long each tick's job takes (a `sleep` standing in for real work); a map from the
    /// tick's number to its duration, for a job that overruns.
    slow: Option<(usize, Duration)>,
}

/// Runs a job on every tick until `shutdown` is notified; returns when each job started,
/// in milliseconds since the worker began.
async fn worker(
    mut config: watch::Receiver<Config>,
    shutdown: Rc<Notify>,
    missed: MissedTickBehavior,
    log: Rc<RefCell<Vec<u64>>>,
) -> usize {
    let start = Instant::now();
    let make = |period| {
        let mut every = interval_at(Instant::now(), period);
        every.set_missed_tick_behavior(missed);
        every
    };
    let mut every = make(config.borrow_and_update().period);
    let mut jobs = 0;
    loop {
        overlap::select! {
            _ = every.tick().fuse() => {
                log.borrow_mut().push((Instant::now() - start).as_millis() as u64);
                jobs += 1;
                let slow = config.borrow().slow;
                if let Some((n, took)) = slow {
                    if n == jobs {
                        sleep(took).await;
                    }
                }
            }
            changed = config.changed().fuse() => {
                if changed.is_err() {
                    break; // the sender is gone: nobody can configure us any more
                }
                // tokio has no `set_period` either: a new interval, its first tick one new
                // period from now.
                let period = config.borrow_and_update().period;
                every = make(period);
                every.reset_after(period);
            }
            // `notify_one` leaves a permit when the worker is busy elsewhere (in a slow
            // job), so a shutdown is never lost between two loop turns, as in tokio.
            _ = shutdown.notified().fuse() => break,
        }
    }
    jobs
}

#[overlap::test(start_paused = true)]
async fn the_period_changes_at_run_time_and_shutdown_stops_the_worker() {
    let (tx, rx) = watch::channel(Config {
        period: ms(10),
        slow: None,
    });
    let shutdown = Rc::new(Notify::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    let task = overlap::spawn(worker(
        rx,
        shutdown.clone(),
        MissedTickBehavior::Delay,
        log.clone(),
    ));
    sleep(ms(25)).await;
    assert_eq!(*log.borrow(), [0, 10, 20]);

    tx.send_modify(|c| c.period = ms(100));
    sleep(ms(215)).await; // to 240 ms
    assert_eq!(*log.borrow(), [0, 10, 20, 125, 225]);

    shutdown.notify_one();
    let jobs = within(HANG, task, "worker stops").await.unwrap();
    assert_eq!(jobs, 5);
}

#[overlap::test(start_paused = true)]
async fn dropping_the_config_sender_also_stops_the_worker() {
    let (tx, rx) = watch::channel(Config {
        period: ms(10),
        slow: None,
    });
    let log = Rc::new(RefCell::new(Vec::new()));
    let task = overlap::spawn(worker(
        rx,
        Rc::new(Notify::new()),
        MissedTickBehavior::Skip,
        log.clone(),
    ));
    sleep(ms(15)).await;
    drop(tx);
    assert_eq!(within(HANG, task, "worker stops").await.unwrap(), 2);
    // No tick runs after the stop, however long we wait.
    sleep(ms(100)).await;
    assert_eq!(*log.borrow(), [0, 10]);
}

/// The job of the second tick (at 10 ms) takes 35 ms; the worker is stopped at 78 ms.
async fn with_an_overrun(missed: MissedTickBehavior) -> Vec<u64> {
    let (_tx, rx) = watch::channel(Config {
        period: ms(10),
        slow: Some((2, ms(35))),
    });
    let shutdown = Rc::new(Notify::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    let task = overlap::spawn(worker(rx, shutdown.clone(), missed, log.clone()));
    sleep(ms(78)).await;
    shutdown.notify_one();
    within(HANG, task, "worker stops").await.unwrap();
    let got = log.borrow().clone();
    got
}

#[overlap::test(start_paused = true)]
async fn an_overrun_job_is_caught_up_as_each_missed_tick_behavior_says() {
    // Ticks due at 20, 30 and 40 ms are missed while the job runs until 45 ms.
    assert_eq!(
        with_an_overrun(MissedTickBehavior::Burst).await,
        [0, 10, 45, 45, 45, 50, 60, 70]
    );
    assert_eq!(
        with_an_overrun(MissedTickBehavior::Delay).await,
        [0, 10, 45, 55, 65, 75]
    );
    assert_eq!(
        with_an_overrun(MissedTickBehavior::Skip).await,
        [0, 10, 45, 50, 60, 70]
    );
    // overlap's default is `Skip` (tokio's is `Burst`), a deliberate difference the
    // README's tokio table names.
    assert_eq!(MissedTickBehavior::default(), MissedTickBehavior::Skip);
}

/// Runs the worker with a 1 s period, advancing the clock by 2.5 s and then 0.6 s; the
/// job start times seen after each jump.
async fn advanced(missed: MissedTickBehavior) -> (Vec<u64>, Vec<u64>) {
    let (_tx, rx) = watch::channel(Config {
        period: ms(1000),
        slow: None,
    });
    let shutdown = Rc::new(Notify::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    let task = overlap::spawn(worker(rx, shutdown.clone(), missed, log.clone()));
    overlap::yield_now().await; // the first tick, at once
    assert_eq!(*log.borrow(), [0]);
    time::advance(ms(2500)).await;
    support::settle().await;
    let first = log.borrow().clone();
    time::advance(ms(600)).await;
    support::settle().await;
    let second = log.borrow().clone();
    shutdown.notify_one();
    within(HANG, task, "worker stops").await.unwrap();
    (first, second)
}

#[overlap::test(start_paused = true)]
async fn advance_moves_the_worker_without_the_test_sleeping() {
    // tokio's `time::advance` in a test: the clock jumps, and the ticks it passed are due
    // at once. With `Burst` (tokio's default) both missed ticks run at 2.5 s; with `Skip`
    // (overlap's default) only one does, and the phase is kept.
    assert_eq!(
        advanced(MissedTickBehavior::Burst).await,
        (vec![0, 2500, 2500], vec![0, 2500, 2500, 3100])
    );
    assert_eq!(
        advanced(MissedTickBehavior::Skip).await,
        (vec![0, 2500], vec![0, 2500, 3100])
    );
}
