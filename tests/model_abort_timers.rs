//! JoinHandle::abort and JoinSet combined with sleeps, intervals and timeouts: aborted tasks
//! report cancelled, drop their timers at once (no leak in `timers_active`), and the runtime
//! neither hangs nor busy-loops.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use overlap::time::{interval, sleep, timeout, Instant, MissedTickBehavior};
use overlap::JoinSet;
use support::{watchdog, XorShift as Rng};

struct Witness(Rc<Cell<usize>>);
impl Drop for Witness {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn aborting_tasks_that_wait_on_timers_releases_every_timer() {
    let done = watchdog(60);
    overlap::block_on(async {
        let dropped = Rc::new(Cell::new(0));
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut handles = Vec::new();
        for i in 0..300u64 {
            let w = Witness(dropped.clone());
            let kind = rng.below(5);
            let ms = rng.below(20);
            handles.push(overlap::spawn(async move {
                let _w = w;
                match kind {
                    0 => sleep(Duration::from_secs(3600)).await,
                    1 => {
                        let mut iv = interval(Duration::from_millis(1 + ms));
                        iv.set_missed_tick_behavior(match i % 3 {
                            0 => MissedTickBehavior::Burst,
                            1 => MissedTickBehavior::Delay,
                            _ => MissedTickBehavior::Skip,
                        });
                        loop {
                            iv.tick().await;
                        }
                    }
                    2 => {
                        let _ =
                            timeout(Duration::from_millis(ms), std::future::pending::<()>()).await;
                        sleep(Duration::from_secs(3600)).await;
                    }
                    3 => loop {
                        let _ = timeout(
                            Duration::from_micros(ms * 50),
                            sleep(Duration::from_millis(ms)),
                        )
                        .await;
                    },
                    _ => sleep(Duration::from_millis(ms)).await,
                }
            }));
        }
        // Let them run a little, then abort at random moments.
        let start = Instant::now();
        while !handles.is_empty() {
            sleep(Duration::from_micros(rng.below(2000))).await;
            for _ in 0..rng.below(30) {
                if handles.is_empty() {
                    break;
                }
                let i = rng.below(handles.len() as u64) as usize;
                let h = handles.swap_remove(i);
                h.abort();
                match h.await {
                    Ok(()) => {}
                    Err(e) => assert!(e.is_cancelled()),
                }
            }
            assert!(start.elapsed() < Duration::from_secs(30));
        }
        assert_eq!(dropped.get(), 300);
        overlap::yield_now().await;
        let m = overlap::metrics();
        assert_eq!(m.tasks_alive, 0, "{m:?}");
        assert_eq!(m.timers_active, 0, "timers leaked by aborted tasks: {m:?}");
    });
    done.store(true, Ordering::Relaxed);
}

#[test]
fn join_set_shutdown_with_intervals_and_timeouts() {
    let done = watchdog(60);
    overlap::block_on(async {
        for round in 0..20u64 {
            let mut set = JoinSet::new();
            for i in 0..50u64 {
                set.spawn(async move {
                    let mut iv = interval(Duration::from_micros(100 + i * 10));
                    for _ in 0..(i % 7) {
                        iv.tick().await;
                    }
                    timeout(
                        Duration::from_millis(round + 1),
                        std::future::pending::<()>(),
                    )
                    .await
                    .unwrap_err();
                    i
                });
            }
            // Some finish, then the rest is shut down.
            for _ in 0..(round % 10) {
                set.join_next().await.unwrap().unwrap();
            }
            set.shutdown().await;
            assert!(set.is_empty());
            assert!(set.join_next().await.is_none());
            let m = overlap::metrics();
            assert_eq!(m.tasks_alive, 0, "{m:?}");
            assert_eq!(m.timers_active, 0, "{m:?}");
        }
    });
    done.store(true, Ordering::Relaxed);
}

/// A task aborted from a timer's waker path (another task woken by a sleep aborts it) while
/// its own timer is due in the same batch.
#[test]
fn abort_while_the_victims_timer_is_due_in_the_same_batch() {
    let done = watchdog(30);
    overlap::block_on(async {
        for _ in 0..200 {
            let at = Instant::now() + Duration::from_millis(1);
            let fired = Rc::new(Cell::new(false));
            let f = fired.clone();
            let victim = overlap::spawn(async move {
                overlap::time::sleep_until(at).await;
                f.set(true);
            });
            let victim = Rc::new(victim);
            let v = victim.clone();
            let killer = overlap::spawn(async move {
                overlap::time::sleep_until(at).await;
                v.abort();
            });
            killer.await.unwrap();
            let victim = Rc::try_unwrap(victim).ok().unwrap();
            let r = victim.await;
            // Either it ran first (Ok), or it was cancelled; never a hang.
            assert_eq!(r.is_ok(), fired.get());
        }
        let m = overlap::metrics();
        assert_eq!(m.timers_active, 0, "{m:?}");
        assert_eq!(m.tasks_alive, 0, "{m:?}");
    });
    done.store(true, Ordering::Relaxed);
}

/// An idle runtime whose only tasks were aborted while holding timers does not keep waking.
#[test]
fn no_busy_loop_after_aborting_timer_tasks() {
    let done = watchdog(30);
    overlap::block_on(async {
        let hs: Vec<_> = (0..100)
            .map(|i| {
                overlap::spawn(async move {
                    let mut iv = interval(Duration::from_micros(200 + i));
                    loop {
                        iv.tick().await;
                    }
                })
            })
            .collect();
        sleep(Duration::from_millis(20)).await;
        for h in &hs {
            h.abort();
        }
        for h in hs {
            assert!(h.await.unwrap_err().is_cancelled());
        }
        let before = overlap::metrics();
        assert_eq!(before.timers_active, 0, "{before:?}");
        // One long sleep: the loop should wake about once for it.
        sleep(Duration::from_millis(100)).await;
        let after = overlap::metrics();
        let turns =
            (after.epoll_waits + after.futex_sleeps) - (before.epoll_waits + before.futex_sleeps);
        assert!(
            turns < 50,
            "the loop turned {turns} times for one 100 ms sleep: {after:?}"
        );
    });
    done.store(true, Ordering::Relaxed);
}

/// Tasks waiting on a semaphore, a mutex and a full channel are aborted at random moments
/// (also right after being handed their permit / slot): nothing is lost for the others.
#[test]
fn aborting_waiters_loses_no_permit_slot_or_lock() {
    use overlap::sync::{mpsc, Mutex, Semaphore};
    let done = watchdog(60);
    overlap::block_on(async {
        let mut rng = Rng(0x0bad_cafe_f00d_1234);
        let sem = Rc::new(Semaphore::new(3));
        let mutex = Rc::new(Mutex::new(()));
        let (tx, mut rx) = mpsc::channel::<u64>(2);
        let tx = Rc::new(tx);
        let sent = Rc::new(Cell::new(0u64));
        let mut handles = Vec::new();
        for i in 0..400u64 {
            let (sem, mutex, tx, sent) = (sem.clone(), mutex.clone(), tx.clone(), sent.clone());
            let kind = i % 3;
            handles.push(overlap::spawn(async move {
                match kind {
                    0 => {
                        let _p = sem.acquire_many(1 + (i % 3) as u32).await.unwrap();
                        overlap::yield_now().await;
                    }
                    1 => {
                        let _g = mutex.lock().await;
                        overlap::yield_now().await;
                    }
                    _ => {
                        tx.send(i).await.unwrap();
                        sent.set(sent.get() + 1);
                    }
                }
            }));
        }
        let mut received = 0u64;
        while !handles.is_empty() {
            // Make progress on the channel, then abort a few at random.
            for _ in 0..rng.below(3) {
                if rx.try_recv().is_ok() {
                    received += 1;
                }
            }
            overlap::yield_now().await;
            for _ in 0..rng.below(4) {
                if handles.is_empty() {
                    break;
                }
                let i = rng.below(handles.len() as u64) as usize;
                handles[i].abort();
            }
            handles.retain(|h| !h.is_finished());
        }
        while rx.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received, sent.get(), "a message reported sent was lost");
        assert_eq!(
            sem.available_permits(),
            3,
            "semaphore permits lost to aborted waiters"
        );
        assert!(
            mutex.try_lock().is_ok(),
            "mutex left locked by an aborted waiter"
        );
        // The channel still has both slots for new sends.
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
    });
    done.store(true, Ordering::Relaxed);
}
