//! `overlap::sync`'s locks and many-permit semaphore: exclusion across `.await`, first come
//! first served, no starvation of large requests or writers, and cancellation that hands
//! the turn on.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::{Mutex, RwLock, Semaphore, TryAcquireError};
use support::settle;

/// Spawns a task that takes a guard on `$lock` with `$take`, logs `$name+`, yields (so
/// the others get a chance to run, and must not get in), logs `$name-` and lets go.
macro_rules! logged {
    ($log:expr, $name:expr, $lock:expr, |$l:ident| $take:expr) => {{
        let (log, $l, name) = ($log.clone(), $lock.clone(), $name);
        overlap::spawn(async move {
            let guard = $take;
            log.borrow_mut().push(format!("{name}+"));
            overlap::yield_now().await;
            log.borrow_mut().push(format!("{name}-"));
            drop(guard);
        })
    }};
}

#[overlap::test]
async fn a_large_acquire_is_not_overtaken_by_later_small_ones() {
    let sem = Rc::new(Semaphore::new(3));
    let held = sem.try_acquire_many(2).unwrap();
    assert_eq!(held.num_permits(), 2);
    let order = Rc::new(RefCell::new(Vec::new()));
    let waiter = |n: u32| {
        let (sem, order) = (sem.clone(), order.clone());
        overlap::spawn(async move {
            let p = sem.acquire_many_owned(n).await.unwrap();
            order.borrow_mut().push(n);
            overlap::yield_now().await;
            drop(p);
        })
    };
    let big = waiter(3);
    settle().await;
    let small = waiter(1);
    settle().await;
    // One permit is free, but the small request is behind the big one.
    assert!(order.borrow().is_empty());
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    drop(held);
    big.await.unwrap();
    small.await.unwrap();
    assert_eq!(*order.borrow(), [3, 1]);
    assert_eq!(sem.available_permits(), 3);
}

#[overlap::test]
async fn a_cancelled_large_acquire_lets_the_smaller_ones_behind_it_through() {
    let sem = Rc::new(Semaphore::new(2));
    let _held = sem.try_acquire().unwrap();
    let big = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire_many_owned(2).await.map(drop) })
    };
    settle().await;
    let small = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire_owned().await.map(|p| p.num_permits()) })
    };
    settle().await;
    assert!(!small.is_finished(), "waits behind the big request");
    big.abort();
    let got = overlap::time::timeout(Duration::from_secs(10), small)
        .await
        .expect("the free permit was not handed on when the head of the line left");
    assert_eq!(got.unwrap().unwrap(), 1);
}

#[overlap::test]
async fn a_forgotten_permit_stays_out_and_zero_permits_are_granted_at_once() {
    let sem = Semaphore::new(3);
    sem.acquire_many(2).await.unwrap().forget();
    assert_eq!(sem.available_permits(), 1);
    let none = sem.acquire_many(0).await.unwrap();
    assert_eq!((none.num_permits(), sem.available_permits()), (0, 1));
    drop(none);
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.try_acquire_many(2).is_err());
}

#[overlap::test]
async fn a_mutex_held_across_await_is_exclusive_and_granted_in_order() {
    let m = Rc::new(Mutex::new(0u32));
    let log = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            logged!(log, name, m, |m| {
                let mut g = m.lock().await;
                *g += 1;
                g
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(log.borrow().join(" "), "a+ a- b+ b- c+ c-");
    assert_eq!(*m.lock().await, 3);
}

#[overlap::test]
async fn try_lock_fails_while_held_or_waited_for_and_a_cancelled_lock_leaves_the_line() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let held = m.try_lock().unwrap();
    assert!(m.try_lock().is_err());
    let first = {
        let m = m.clone();
        overlap::spawn(async move { m.lock().await.push(1) })
    };
    let second = {
        let m = m.clone();
        overlap::spawn(async move { m.lock().await.push(2) })
    };
    settle().await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    drop(held);
    // The lock is free but `second` waits for it: try_lock must not jump the line.
    assert!(m.try_lock().is_err());
    overlap::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("the lock was lost with the cancelled waiter")
        .unwrap();
    assert_eq!(*m.try_lock().unwrap(), [2]);
    let mut m = Rc::try_unwrap(m).unwrap();
    m.get_mut().push(3);
    assert_eq!(m.into_inner(), [2, 3]);
}

#[overlap::test]
async fn readers_share_and_a_waiting_writer_holds_back_later_readers() {
    let lock = Rc::new(RwLock::new(String::from("v1")));
    let log = Rc::new(RefCell::new(Vec::new()));
    let r1 = lock.read().await;
    let r2 = lock.try_read().unwrap();
    assert_eq!((r1.as_str(), r2.as_str()), ("v1", "v1"));
    let writer = logged!(log, "w", lock, |lock| {
        let mut g = lock.write().await;
        g.push_str("+w");
        g
    });
    settle().await;
    assert!(log.borrow().is_empty(), "the writer waits for the readers");
    assert!(
        lock.try_read().is_err(),
        "a reader may not pass a waiting writer"
    );
    let readers: Vec<_> = ["r3", "r4"]
        .into_iter()
        .map(|name| {
            logged!(log, name, lock, |lock| {
                let g = lock.read().await;
                assert_eq!(*g, "v1+w");
                g
            })
        })
        .collect();
    settle().await;
    drop((r1, r2));
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    // The writer alone, then both readers inside together (in either order: which of two
    // woken tasks runs first is the executor's business).
    let log = log.borrow();
    assert_eq!(log[..2], ["w+", "w-"]);
    let mut entered = log[2..4].to_vec();
    entered.sort();
    assert_eq!(entered, ["r3+", "r4+"]);
    assert_eq!(*lock.try_write().unwrap(), "v1+w");
}
