//! An adversarial review of `sync::cross_thread::Semaphore` and the cross-thread mpsc
//! `OwnedPermit`: a grant and a cancel racing on two threads, close racing grants, random
//! cancel churn on eight threads, acquires polled after they completed, zero permits,
//! `MAX_PERMITS`, and owned permits dropped or raced against `close` on other threads.
//! (Wakers that call back into the semaphore: `review_new_today_wakers`.)

mod support;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::sync::cross_thread::Semaphore;
use overlap::sync::mpsc::cross_thread;
use overlap::sync::{AcquireError, TryAcquireError};
use support::{on_thread_within, polled, quiet_panics, XorShift};

const HANG: Duration = Duration::from_secs(60);

fn poll_with<F: Future + ?Sized>(fut: std::pin::Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

/// Polling a completed acquire again is a misuse, but it must not mint permits: whatever
/// it hands out is taken from the semaphore and comes back when dropped.
#[test]
fn an_acquire_polled_after_it_completed_mints_no_permit() {
    let sem = Semaphore::new(2);
    let noop = Waker::noop();
    let mut acquire = Box::pin(sem.acquire());
    let mut held = Vec::new();
    for _ in 0..4 {
        if let Poll::Ready(permit) = poll_with(acquire.as_mut(), noop) {
            held.push(permit.unwrap());
        }
        let out: usize = held.iter().map(|p| p.num_permits()).sum();
        assert_eq!(
            out + sem.available_permits(),
            2,
            "held + free stays the total"
        );
    }
    assert_eq!(
        held.len(),
        2,
        "the third and fourth polls wait: nothing is free"
    );
    held.pop();
    let Poll::Ready(Ok(again)) = poll_with(acquire.as_mut(), noop) else {
        panic!("the waiting re-poll was granted the permit dropped");
    };
    held.push(again);
    assert_eq!(sem.available_permits(), 0);
    // Once more: it waits in line, and is dropped there.
    assert!(poll_with(acquire.as_mut(), noop).is_pending());
    drop(acquire);
    drop(held);
    assert_eq!(sem.available_permits(), 2);
}

/// Zero permits are granted at once, even past a waiter, move nothing when split, merged or
/// forgotten, wake nobody when dropped, and are refused once the semaphore is closed.
#[test]
fn zero_permits_take_nothing_and_wake_nobody() {
    let sem = Semaphore::new(1);
    let noop = Waker::noop();
    let mut held = sem.try_acquire().unwrap();
    let mut waiter = polled(sem.acquire());
    assert!(waiter.poll().is_pending());

    let mut zero = pin!(sem.acquire_many(0));
    let Poll::Ready(Ok(zero)) = poll_with(zero.as_mut(), noop) else {
        panic!("zero permits wait for nobody");
    };
    assert_eq!(zero.num_permits(), 0);
    let try_zero = sem.try_acquire_many(0).unwrap();
    let split = held.split(0).unwrap();
    assert_eq!((held.num_permits(), split.num_permits()), (1, 0));
    held.merge(split);
    held.merge(try_zero);
    assert_eq!(held.num_permits(), 1);
    zero.forget();
    assert_eq!(sem.forget_permits(0), 0);
    assert!(!waiter.is_woken(), "no permit moved");
    assert_eq!(sem.available_permits(), 0, "the line still waits");

    drop(held);
    assert!(waiter.is_woken());
    let Poll::Ready(Ok(got)) = waiter.poll() else {
        panic!("the waiter had the one permit");
    };
    assert_eq!(got.num_permits(), 1);
    drop(got);
    sem.close();
    let mut late = pin!(sem.acquire_many(0));
    assert!(matches!(
        poll_with(late.as_mut(), noop),
        Poll::Ready(Err(AcquireError))
    ));
    assert_eq!(
        sem.try_acquire_many(0).unwrap_err(),
        TryAcquireError::Closed
    );
    assert_eq!(sem.available_permits(), 1);
}

/// `MAX_PERMITS` counts the free permits: up to it is fine, one more panics and adds
/// nothing, and an overflowing `usize` is refused the same way rather than wrapping.
#[test]
fn add_permits_up_to_max_permits_and_not_one_more() {
    quiet_panics("number of added permits");
    let max = Semaphore::MAX_PERMITS;
    let sem = Semaphore::new(max - 1);
    sem.add_permits(1);
    assert_eq!(sem.available_permits(), max);
    sem.add_permits(0);
    assert!(catch_unwind(AssertUnwindSafe(|| sem.add_permits(1))).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| sem.add_permits(usize::MAX))).is_err());
    assert_eq!(
        sem.available_permits(),
        max,
        "nothing added by the refusals"
    );
    // Held permits are not free: they leave room to add.
    let held = sem.try_acquire_many(3).unwrap();
    sem.add_permits(3);
    assert_eq!(sem.available_permits(), max);
    held.forget();
    assert_eq!(sem.forget_permits(usize::MAX), max);
    assert_eq!(sem.available_permits(), 0);
}

/// The permit's release (thread A) grants the head waiter just as that waiter is dropped
/// (thread B): whichever wins, the permit ends with the waiter behind, never lost or doubled.
#[test]
fn a_grant_racing_the_cancel_of_its_waiter_passes_the_permit_on_exactly_once() {
    on_thread_within(HANG, "grant/cancel races", || {
        for round in 0..2_000 {
            let sem = Arc::new(Semaphore::new(1));
            let held = sem.clone().try_acquire_owned().unwrap();
            let mut head = polled(sem.clone().acquire_owned());
            let mut behind = polled(sem.clone().acquire_owned());
            assert!(head.poll().is_pending() && behind.poll().is_pending());
            let start = Arc::new(Barrier::new(2));
            let go = start.clone();
            let releaser = std::thread::spawn(move || {
                go.wait();
                drop(held);
            });
            start.wait();
            head.cancel();
            releaser.join().unwrap();
            assert!(
                behind.is_woken(),
                "round {round}: the permit reached the next"
            );
            let Poll::Ready(Ok(permit)) = behind.poll() else {
                panic!("round {round}: the waiter behind has the permit");
            };
            assert_eq!((permit.num_permits(), sem.available_permits()), (1, 0));
            drop(permit);
            assert_eq!(sem.available_permits(), 1, "round {round}");
        }
    });
}

/// Waiters for 1, 2 and 3 permits queued on one thread, `add_permits(3)` and `close`
/// racing on two others: every waiter is woken and ends, the first two granted together or
/// refused together, the third (which 3 permits cannot reach behind the others) always
/// refused by the close, and all the permits come back.
#[test]
fn close_racing_a_grant_wakes_every_waiter_and_keeps_every_permit() {
    on_thread_within(HANG, "close/grant races", || {
        let mut granted_total = 0;
        for round in 0..1_000 {
            let sem = Arc::new(Semaphore::new(0));
            let mut waiters: Vec<_> = (1..=3)
                .map(|n| polled(sem.clone().acquire_many_owned(n)))
                .collect();
            waiters
                .iter_mut()
                .for_each(|w| assert!(w.poll().is_pending()));
            let start = Arc::new(Barrier::new(3));
            let racers: Vec<_> = [true, false]
                .map(|closes| {
                    let (sem, go) = (sem.clone(), start.clone());
                    std::thread::spawn(move || {
                        go.wait();
                        if closes {
                            sem.close()
                        } else {
                            sem.add_permits(3)
                        }
                    })
                })
                .into();
            start.wait();
            racers.into_iter().for_each(|r| r.join().unwrap());
            let mut permits = Vec::new();
            for (i, w) in waiters.iter_mut().enumerate() {
                assert!(w.is_woken(), "round {round}: waiter {i} woken");
                match w.poll() {
                    Poll::Ready(Ok(p)) => permits.push(p.num_permits()),
                    Poll::Ready(Err(AcquireError)) => {}
                    Poll::Pending => panic!("round {round}: waiter {i} still waits"),
                }
            }
            // One lock step each: the add grants both of the first two or neither.
            assert!(
                permits == [1, 2] || permits.is_empty(),
                "round {round}: {permits:?}"
            );
            granted_total += permits.len();
            drop(waiters);
            assert_eq!(sem.available_permits(), 3, "round {round}");
        }
        // Not an assertion on the schedule, only that both outcomes were reachable at all.
        println!("{granted_total} grants over 1000 rounds");
    });
}

/// Four threads, each with a runtime of its own, and four plain threads polling acquires by
/// hand and dropping them at random points, while permits move between threads: once
/// every permit is dropped, the semaphore has exactly its permits again.
#[test]
fn random_cancel_and_release_churn_on_eight_threads_leaves_the_count_as_it_was() {
    const PERMITS: usize = 5;
    on_thread_within(HANG, "churn", || {
        let sem = Arc::new(Semaphore::new(PERMITS));
        let (hand_off, handed) = std::sync::mpsc::channel();
        let handed = Arc::new(std::sync::Mutex::new(handed));
        let mut threads = Vec::new();
        for t in 0..8u64 {
            let (sem, hand_off, handed) = (sem.clone(), hand_off.clone(), handed.clone());
            threads.push(std::thread::spawn(move || {
                let mut rng = XorShift(0x9e37_79b9 + t * 7919);
                for _ in 0..300 {
                    let n = 1 + rng.below(3) as u32;
                    let acquire = sem.clone().acquire_many_owned(n);
                    let permit = if t % 2 == 0 {
                        let patience = rng.below(4);
                        overlap::block_on(async move {
                            let mut acquire = pin!(acquire);
                            for _ in 0..patience {
                                if let Poll::Ready(p) = support::poll_once(acquire.as_mut()).await {
                                    return Some(p);
                                }
                                overlap::task::yield_now().await;
                            }
                            None // dropped here: a cancel, granted or not
                        })
                    } else {
                        let mut acquire = polled(acquire);
                        (0..rng.below(4)).find_map(|_| match acquire.poll() {
                            Poll::Ready(p) => Some(p),
                            Poll::Pending => {
                                std::thread::yield_now();
                                None
                            }
                        })
                    };
                    if let Some(permit) = permit {
                        let permit = permit.unwrap();
                        assert_eq!(permit.num_permits(), n as usize);
                        if rng.below(3) == 0 {
                            hand_off.send(permit).unwrap(); // dropped by another thread
                        }
                    }
                    if let Ok(p) = handed.lock().unwrap().try_recv() {
                        drop(p);
                    }
                }
            }));
        }
        drop(hand_off);
        threads.into_iter().for_each(|t| t.join().unwrap());
        drop(handed.lock().unwrap().try_iter().collect::<Vec<_>>());
        assert_eq!(sem.available_permits(), PERMITS);
        assert_eq!(
            sem.try_acquire_many(PERMITS as u32).unwrap().num_permits(),
            5
        );
    });
}

/// Outside a runtime there is no budget: one poll of a loop of a thousand ready acquires
/// runs it to its end, where a budget left behind would return `Pending` with no wake.
#[test]
fn a_plain_executor_is_not_held_to_the_cooperative_budget() {
    let sem = Semaphore::new(1);
    let mut looped = pin!(async {
        for _ in 0..1_000 {
            drop(sem.acquire().await.unwrap());
        }
        sem.available_permits()
    });
    assert_eq!(poll_with(looped.as_mut(), Waker::noop()), Poll::Ready(1));
}

/// The permit's sender is the last: a `recv` waiting on one thread ends with `None` once
/// the unused permit is dropped on another, and gets the value first when it is sent there.
#[test]
fn an_owned_permit_used_on_another_thread_ends_a_recv_waiting_on_a_third() {
    for sends in [false, true] {
        on_thread_within(HANG, "recv after the permit's thread", move || {
            let (tx, mut rx) = cross_thread::channel::<&str>(1);
            let permit = tx.try_reserve_owned().unwrap();
            let (waiting, is_waiting) = std::sync::mpsc::channel();
            let receiver = std::thread::spawn(move || {
                let mut recv = Box::pin(async move {
                    let mut got = Vec::new();
                    while let Some(v) = rx.recv().await {
                        got.push(v);
                    }
                    got
                });
                assert!(poll_with(recv.as_mut(), Waker::noop()).is_pending());
                waiting.send(()).unwrap();
                overlap::block_on(recv)
            });
            is_waiting.recv().unwrap();
            std::thread::spawn(move || {
                if sends {
                    drop(permit.send("sent"));
                } else {
                    drop(permit);
                }
            })
            .join()
            .unwrap();
            let want: &[&str] = if sends { &["sent"] } else { &[] };
            assert_eq!(receiver.join().unwrap(), want);
        });
    }
}

/// `reserve_owned` on several threads racing the receiver's `close`: every permit granted
/// delivers its value (a slot reserved before the close is still received), every refusal
/// is `SendError`, and nothing else arrives.
#[test]
fn reserve_owned_racing_close_delivers_exactly_the_values_of_granted_permits() {
    on_thread_within(HANG, "reserve_owned/close races", || {
        for round in 0..300u32 {
            let (tx, mut rx) = cross_thread::channel::<u32>(2);
            let start = Arc::new(Barrier::new(4));
            let senders: Vec<_> = (0..3u32)
                .map(|i| {
                    let (tx, go) = (tx.clone(), start.clone());
                    std::thread::spawn(move || {
                        go.wait();
                        let value = round * 10 + i;
                        let permit = if i == 0 {
                            tx.try_reserve_owned().map_err(drop)
                        } else {
                            overlap::block_on(tx.reserve_owned()).map_err(drop)
                        };
                        permit.map(|p| drop(p.send(value))).is_ok().then_some(value)
                    })
                })
                .collect();
            drop(tx);
            start.wait();
            rx.close();
            let mut got = Vec::new();
            while let Some(v) = rx.blocking_recv() {
                got.push(v);
            }
            let mut sent: Vec<u32> = senders
                .into_iter()
                .filter_map(|s| s.join().unwrap())
                .collect();
            got.sort_unstable();
            sent.sort_unstable();
            assert_eq!(got, sent, "round {round}");
        }
    });
}
