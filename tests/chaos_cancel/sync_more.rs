//! More of `overlap::sync` under cuts and aborts (`RwLock`, `watch`, `broadcast` and
//! `oneshot`), and timers and `JoinSet`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::{broadcast, oneshot, watch, RwLock};

use crate::cut::{cut, pause, pick, seed};
use crate::support::Rng;
use crate::sync::Tasks;

/// Readers and writers of an `RwLock` through cut waits, maybe aborted while they hold it:
/// a writer is alone, readers only share with readers, and it is free at the end.
pub fn rwlock(rng: &mut Rng, tasks: &mut Tasks) -> impl FnOnce() {
    let lock = Rc::new(RwLock::new(()));
    // Readers inside, or -1 for a writer.
    let inside = Rc::new(Cell::new(0i32));
    for i in 0..1 + rng.below(5) {
        let (lock, inside) = (lock.clone(), inside.clone());
        let mut rng = Rng(rng.next() | 1);
        tasks.spawn(format!("rwlock user {i}"), true, async move {
            for _ in 0..rng.below(20) {
                if rng.below(3) == 0 {
                    if let Some(_guard) = cut(pick(&mut rng), lock.write()).await {
                        assert_eq!(inside.get(), 0, "seed {}: a writer not alone", seed());
                        inside.set(-1);
                        let _out = Leaves(&inside, -1);
                        pause(&mut rng).await;
                    }
                } else if let Some(_guard) = cut(pick(&mut rng), lock.read()).await {
                    assert!(
                        inside.get() >= 0,
                        "seed {}: a reader beside a writer",
                        seed()
                    );
                    inside.set(inside.get() + 1);
                    let _out = Leaves(&inside, 1);
                    pause(&mut rng).await;
                }
                pause(&mut rng).await;
            }
        });
    }
    move || {
        assert!(
            lock.try_write().is_ok(),
            "seed {}: rwlock left held",
            seed()
        );
    }
}

/// Takes a reader (`1`) or the writer (`-1`) out of the count however its task ends.
struct Leaves<'a>(&'a Cell<i32>, i32);

impl Drop for Leaves<'_> {
    fn drop(&mut self) {
        let now = if self.1 < 0 { 0 } else { self.0.get() - 1 };
        self.0.set(now);
    }
}

/// A `watch` sender counting up and receivers waiting through cut `changed`s: each sees
/// the value only grow, and the last one once the sender is gone.
pub fn watch(rng: &mut Rng, tasks: &mut Tasks) {
    let (tx, rx) = watch::channel(0u32);
    let last = rng.below(40) as u32;
    for i in 0..1 + rng.below(3) {
        let mut rx = rx.clone();
        let mut rng = Rng(rng.next() | 1);
        tasks.spawn(format!("watch receiver {i}"), false, async move {
            let mut seen = 0;
            loop {
                match cut(pick(&mut rng), rx.changed()).await {
                    Some(Ok(())) => {
                        let now = *rx.borrow_and_update();
                        assert!(
                            now > seen,
                            "seed {}: watch went from {seen} to {now}",
                            seed()
                        );
                        seen = now;
                    }
                    Some(Err(_)) => break,
                    None => pause(&mut rng).await,
                }
            }
            assert_eq!(
                *rx.borrow(),
                last,
                "seed {}: watch lost its last value",
                seed()
            );
        });
    }
    drop(rx);
    let mut srng = Rng(rng.next() | 1);
    tasks.spawn("watch sender".into(), false, async move {
        for n in 1..=last {
            tx.send_replace(n);
            pause(&mut srng).await;
        }
    });
}

/// A `broadcast` sender and receivers reading through cut `recv`s: each gets the values in
/// order, skipping only what a `Lagged` says it lost, until `Closed` after the last.
pub fn broadcast(rng: &mut Rng, tasks: &mut Tasks) {
    let (tx, rx) = broadcast::channel::<u32>(1 + rng.below(4));
    let count = rng.below(60) as u32;
    for i in 0..1 + rng.below(3) {
        let mut rx = rx.resubscribe();
        let mut rng = Rng(rng.next() | 1);
        tasks.spawn(format!("broadcast receiver {i}"), false, async move {
            let mut next = 0u32;
            loop {
                match cut(pick(&mut rng), rx.recv()).await {
                    Some(Ok(n)) => {
                        assert_eq!(n, next, "seed {}: broadcast out of order", seed());
                        next += 1;
                    }
                    Some(Err(broadcast::error::RecvError::Lagged(k))) => next += k as u32,
                    Some(Err(broadcast::error::RecvError::Closed)) => break,
                    None => pause(&mut rng).await,
                }
            }
            assert_eq!(next, count, "seed {}: broadcast ended early", seed());
        });
    }
    drop(rx);
    let mut srng = Rng(rng.next() | 1);
    tasks.spawn("broadcast sender".into(), false, async move {
        for n in 0..count {
            tx.send(n).unwrap();
            pause(&mut srng).await;
        }
    });
}

/// `oneshot`s whose receivers wait through cut polls while the sender may be aborted: the
/// value comes whole, or the receiver learns the sender is gone.
pub fn oneshot(rng: &mut Rng, tasks: &mut Tasks) {
    for i in 0..rng.below(4) {
        let (tx, mut rx) = oneshot::channel::<u64>();
        let v = rng.next();
        let mut srng = Rng(rng.next() | 1);
        tasks.spawn(format!("oneshot sender {i}"), true, async move {
            pause(&mut srng).await;
            let _ = tx.send(v);
        });
        let mut rrng = Rng(rng.next() | 1);
        tasks.spawn(format!("oneshot receiver {i}"), false, async move {
            loop {
                match cut(pick(&mut rrng), &mut rx).await {
                    Some(Ok(got)) => break assert_eq!(got, v, "seed {}: oneshot", seed()),
                    Some(Err(_)) => break,
                    None => pause(&mut rrng).await,
                }
            }
        });
    }
}

/// Timers and a `JoinSet` under cuts: a sleep or an interval tick that completes does so
/// no earlier than its deadline, ticks come in order; every task of a `JoinSet`, some
/// aborted, is joined exactly once through cut `join_next`s.
pub fn timers_and_joins(rng: &mut Rng, tasks: &mut Tasks) {
    let mut trng = Rng(rng.next() | 1);
    tasks.spawn("timers".into(), true, async move {
        let mut ticks = overlap::time::interval(Duration::from_micros(1 + trng.below(3000) as u64));
        let mut last = None;
        for _ in 0..trng.below(30) {
            if trng.below(2) == 0 {
                let d = Duration::from_micros(trng.below(3000) as u64);
                let deadline = overlap::time::Instant::now() + d;
                if cut(pick(&mut trng), overlap::time::sleep(d))
                    .await
                    .is_some()
                {
                    let now = overlap::time::Instant::now();
                    assert!(now >= deadline, "seed {}: a sleep woke early", seed());
                }
            } else if let Some(at) = cut(pick(&mut trng), ticks.tick()).await {
                assert!(
                    last.is_none_or(|l| at > l),
                    "seed {}: ticks out of order",
                    seed()
                );
                assert!(
                    overlap::time::Instant::now() >= at,
                    "seed {}: an early tick",
                    seed()
                );
                last = Some(at);
            }
        }
    });
    let mut jrng = Rng(rng.next() | 1);
    tasks.spawn("join set".into(), false, async move {
        let mut set = overlap::JoinSet::new();
        let count = jrng.below(12);
        let mut aborted = Vec::new();
        for i in 0..count {
            let mut r = Rng(jrng.next() | 1);
            let handle = set.spawn(async move {
                pause(&mut r).await;
                i
            });
            if jrng.below(4) == 0 {
                aborted.push((i, handle));
            }
        }
        // Aborted before they ever ran: each one ends cancelled.
        let mut expected = vec![1; count];
        for (i, handle) in aborted {
            handle.abort();
            expected[i] = 0;
        }
        let mut cancelled = 0;
        let mut joined = vec![0; count];
        loop {
            match cut(pick(&mut jrng), set.join_next()).await {
                Some(Some(Ok(i))) => joined[i] += 1,
                Some(Some(Err(e))) => {
                    assert!(e.is_cancelled(), "seed {}: {e:?}", seed());
                    cancelled += 1;
                }
                Some(None) => break,
                None => pause(&mut jrng).await,
            }
        }
        assert_eq!(joined, expected, "seed {}: join set", seed());
        let aborts = count - expected.iter().sum::<usize>();
        assert_eq!(cancelled, aborts, "seed {}: join set cancellations", seed());
    });
}
