//! The tokio calls `overlap::sync` gained for ports: semaphore permits merged and split,
//! `mpsc`'s weak senders and receiver queries, `oneshot::Receiver::{is_empty,
//! is_terminated}`, `same_channel` on watch and unbounded senders, and
//! `OnceCell::const_new_with`.

mod support;

use std::rc::Rc;
use std::task::Poll;

use overlap::sync::{mpsc, oneshot, watch, Semaphore};
use support::settle;

#[overlap::test]
async fn merged_and_split_permits_give_back_exactly_what_they_hold() {
    let sem = Rc::new(Semaphore::new(4));
    let mut all = sem.clone().try_acquire_owned().unwrap();
    all.merge(sem.clone().try_acquire_many_owned(3).unwrap());
    assert_eq!((all.num_permits(), sem.available_permits()), (4, 0));
    let two = all.split(2).unwrap();
    assert!(all.split(3).is_none(), "only 2 left in it");
    assert_eq!(all.num_permits(), 2);
    // A waiter for two gets the split-off part when it drops, not before.
    let waiter = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire_many(2).await.unwrap().num_permits() })
    };
    settle().await;
    assert!(!waiter.is_finished());
    overlap::spawn(async move { drop(two) }).await.unwrap();
    assert_eq!(waiter.await.unwrap(), 2);
    assert_eq!(sem.available_permits(), 2);
    drop(all);
    assert_eq!(sem.available_permits(), 4);

    let mut borrowed = sem.try_acquire_many(3).unwrap();
    let one = borrowed.split(1).unwrap();
    borrowed.merge(one);
    assert_eq!(borrowed.num_permits(), 3);
    drop(borrowed);
    assert_eq!(sem.available_permits(), 4);
}

#[overlap::test]
async fn free_permits_are_set_aside_for_a_waiter_in_line() {
    let sem = Rc::new(Semaphore::new(5));
    let held = sem.try_acquire_many(3).unwrap();
    assert_eq!(sem.available_permits(), 2);
    let waiter = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire_many(4).await.unwrap().num_permits() })
    };
    settle().await;
    // Two are free but owed to the waiter for four: tokio reports them as taken, and
    // neither a try_acquire nor forget_permits may have them.
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_err());
    assert_eq!(sem.forget_permits(2), 0);
    drop(held);
    // The waiter's task dropped its four when it ended: all five are free again.
    assert_eq!(waiter.await.unwrap(), 4);
    assert_eq!(sem.available_permits(), 5);
    assert_eq!(sem.forget_permits(2), 2);
    assert_eq!(sem.available_permits(), 3);
}

#[overlap::test]
async fn zero_permits_are_granted_at_once_even_behind_a_waiter_in_line() {
    let sem = Semaphore::new(1);
    // Waits for good: the semaphore never holds five.
    let mut big = std::pin::pin!(sem.acquire_many(5));
    assert!(futures_util::poll!(big.as_mut()).is_pending());
    // Zero permits take nothing from anyone: tokio hands them out at once, line or not.
    let none = sem
        .try_acquire_many(0)
        .expect("try_acquire_many(0) behind a waiter");
    assert_eq!(none.num_permits(), 0);
    let mut zero = std::pin::pin!(sem.acquire_many(0));
    let Poll::Ready(Ok(none)) = futures_util::poll!(zero.as_mut()) else {
        panic!("acquire_many(0) waited behind a waiter for more than will ever be free")
    };
    drop(none);
    assert_eq!(
        sem.available_permits(),
        0,
        "the free one is still set aside"
    );
    sem.close();
    assert!(sem.try_acquire_many(0).is_err(), "closed refuses even zero");
}

#[test]
#[should_panic(expected = "different semaphores")]
fn merging_permits_of_two_semaphores_panics() {
    let (a, b) = (Semaphore::new(1), Semaphore::new(1));
    let mut p = a.try_acquire().unwrap();
    p.merge(b.try_acquire().unwrap());
}

#[test]
#[should_panic(expected = "MAX_PERMITS")]
fn a_semaphore_above_max_permits_is_refused() {
    let _ = Semaphore::new(Semaphore::MAX_PERMITS + 1);
}

#[overlap::test]
async fn a_weak_sender_upgrades_only_while_a_strong_one_lives() {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    let weak = tx.downgrade();
    let weak2 = weak.clone();
    assert_eq!((tx.strong_count(), tx.weak_count()), (1, 2));
    assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (1, 2));
    let up = weak.upgrade().unwrap();
    assert_eq!(weak.strong_count(), 2);
    up.send(1).await.unwrap();
    drop((tx, up));
    assert!(weak.upgrade().is_none());
    assert!(rx.is_closed(), "weak senders do not keep it open");
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.recv().await, None);
    drop(weak2);
    assert_eq!(weak.weak_count(), 1);

    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let weak = tx.downgrade();
    let waiting = overlap::spawn(async move { rx.recv().await });
    settle().await;
    weak.upgrade().unwrap().send(7).unwrap();
    drop(tx);
    assert_eq!(waiting.await.unwrap(), Some(7));
    assert!(weak.upgrade().is_none());
}

#[overlap::test]
async fn the_last_strong_sender_dropping_wakes_a_receiver_despite_weak_ones() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let _weak = tx.downgrade();
    let receiver = overlap::spawn(async move { rx.recv().await });
    settle().await;
    drop(tx);
    assert_eq!(receiver.await.unwrap(), None);
}

#[overlap::test]
async fn the_receiver_reports_capacity_length_and_closing() {
    let (tx, mut rx) = mpsc::channel(3);
    tx.send(1).await.unwrap();
    let permit = tx.reserve().await.unwrap();
    assert_eq!((rx.len(), rx.capacity(), rx.max_capacity()), (1, 1, 3));
    assert!(!rx.is_empty() && !rx.is_closed());
    rx.close();
    assert!(rx.is_closed());
    permit.send(2);
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(rx.recv().await, None);
    assert!(rx.is_empty());
    let err = tx.try_send(9).unwrap_err();
    assert!(matches!(err, mpsc::error::TrySendError::Closed(_)));
    assert_eq!(err.into_inner(), 9);
}

#[test]
fn unbounded_and_watch_senders_know_their_channel() {
    let (tx, _rx) = mpsc::unbounded_channel::<u8>();
    let (other, _other_rx) = mpsc::unbounded_channel::<u8>();
    assert!(tx.same_channel(&tx.clone()));
    assert!(!tx.same_channel(&other));

    let (wtx, wrx) = watch::channel(0);
    let (wother, wother_rx) = watch::channel(0);
    assert!(wtx.same_channel(&wtx.clone()) && !wtx.same_channel(&wother));
    assert!(wrx.same_channel(&wrx.clone()) && !wrx.same_channel(&wother_rx));
}

#[overlap::test]
async fn a_oneshot_receiver_reports_empty_and_terminated() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    assert!(rx.is_empty() && !rx.is_terminated());
    tx.send(3).unwrap();
    assert!(!rx.is_empty() && !rx.is_terminated());
    assert_eq!(rx.try_recv(), Ok(3));
    assert!(rx.is_empty() && rx.is_terminated());

    let (tx, mut rx) = oneshot::channel::<u8>();
    assert_eq!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty));
    assert!(!rx.is_terminated(), "may still come");
    drop(tx);
    assert!((&mut rx).await.is_err());
    assert!(rx.is_empty() && rx.is_terminated());
}

// tokio's `const_new` constructors: `thread_local!` with a `const` initializer.

thread_local! {
    static LOCK: overlap::sync::Mutex<u32> = const { overlap::sync::Mutex::const_new(1) };
    static TABLE: overlap::sync::RwLock<u32> = const { overlap::sync::RwLock::const_new(2) };
    static FEW: Semaphore = const { Semaphore::const_new(3) };
    static BELL: overlap::sync::Notify = const { overlap::sync::Notify::const_new() };
    static ONCE: overlap::sync::OnceCell<u32> = const { overlap::sync::OnceCell::const_new() };
}

#[overlap::test]
async fn const_constructed_sync_types_work_from_a_thread_local() {
    LOCK.with(|m| *m.try_lock().unwrap() += 1);
    assert_eq!(LOCK.with(|m| *m.try_lock().unwrap()), 2);
    TABLE.with(|l| *l.try_write().unwrap() *= 10);
    assert_eq!(TABLE.with(|l| *l.try_read().unwrap()), 20);
    assert_eq!(FEW.with(|s| s.available_permits()), 3);
    BELL.with(|n| n.notify_one());
    assert!(BELL.with(|n| std::pin::pin!(n.notified()).as_mut().enable()));
    ONCE.with(|c| c.set(7).unwrap());
    assert_eq!(ONCE.with(|c| c.get().copied()), Some(7));
}

// tokio's `OnceCell::const_new_with`: a full cell from a `const` initializer, which behaves
// as any full cell: `set` refuses, initializers do not run, `take` empties it for good.
thread_local! {
    static PRESET: overlap::sync::OnceCell<String> =
        const { overlap::sync::OnceCell::const_new_with(String::new()) };
}

#[overlap::test]
async fn const_new_with_makes_a_full_cell() {
    use overlap::sync::{OnceCell, SetError};

    PRESET.with(|c| {
        assert!(c.initialized());
        assert_eq!(c.get().map(String::as_str), Some(""));
        let refused = c.set("later".to_string());
        assert_eq!(
            refused,
            Err(SetError::AlreadyInitializedError("later".to_string()))
        );
    });

    let mut cell = const { OnceCell::const_new_with(5u32) };
    assert_eq!(
        *cell
            .get_or_init(|| async { unreachable!("the cell is full") })
            .await,
        5
    );
    *cell.get_mut().unwrap() += 1;
    assert_eq!(
        format!("{cell:?}"),
        "OnceCell { value: Some(6), initializing: false }"
    );
    assert_eq!(cell.take(), Some(6));
    assert!(!cell.initialized() && cell.get().is_none());
    // Emptied, it fills like a new cell, once.
    cell.set(9).unwrap();
    assert!(matches!(
        cell.set(10),
        Err(SetError::AlreadyInitializedError(10))
    ));
    assert_eq!(cell.into_inner(), Some(9));
    assert_eq!(OnceCell::const_new_with(3u8).into_inner(), Some(3));
}
