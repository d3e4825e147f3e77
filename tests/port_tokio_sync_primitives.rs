//! Behaviours of tokio's tests of the synchronisation primitives, ported to
//! `overlap::sync`. Each group names the tokio file (tokio/tests/…) it comes from:
//!
//! - `sync_notify.rs`: a permit stored for a `notified()` not yet polled, `enable` taking it,
//!   a dropped waiter passing its notification on, the latest waker being the one woken;
//! - `sync_semaphore.rs`, `sync_semaphore_owned.rs`: closing, `forget_permits`,
//!   `add_permits` up to `MAX_PERMITS`, zero-permit acquires;
//! - `sync_mutex.rs`, `sync_mutex_owned.rs`: a lock given up by a timeout or a drop leaves
//!   the lock usable, `try_lock` while others wait;
//! - `sync_rwlock.rs`: a waiting writer cancelled lets the readers behind it in;
//! - `sync_barrier.rs`: a barrier of zero or one;
//! - `sync_once_cell.rs`: `set` while an initializer runs, values dropped with the cell.
//!
//! What needs threads (`Send` guards, blocking calls, stress across threads) has no
//! counterpart: these types are for the tasks of one runtime.

mod support;

use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::sync::{
    Barrier, Mutex, Notify, OnceCell, RwLock, Semaphore, SetError, TryAcquireError,
};
use support::{polled, settle, ManualTask};

// ---- sync_notify.rs ----

#[test]
fn a_notification_before_the_first_poll_is_kept_as_a_permit() {
    let notify = Notify::new();
    let mut early = polled(notify.notified());
    notify.notify_one();
    assert_eq!(
        early.poll(),
        Poll::Ready(()),
        "made before, polled after: the permit"
    );
    let mut next = polled(notify.notified());
    assert!(next.poll().is_pending(), "the permit was used up");
}

#[test]
fn a_dropped_unpolled_waiter_does_not_take_a_later_notification() {
    let notify = Notify::new();
    let first = notify.notified();
    let second = notify.notified();
    let mut first = polled(first);
    assert!(first.poll().is_pending());
    drop(first);
    let mut second = polled(second);
    assert_eq!(second.woken_by(|| notify.notify_one()), Poll::Ready(()));
}

#[test]
fn a_chosen_waiter_dropped_passes_the_notification_to_the_next_in_line() {
    let notify = Notify::new();
    let mut a = polled(notify.notified());
    let mut b = polled(notify.notified());
    let mut c = polled(notify.notified());
    assert!(a.poll().is_pending() && b.poll().is_pending() && c.poll().is_pending());
    notify.notify_one();
    notify.notify_one();
    assert!(a.is_woken() && b.is_woken() && !c.is_woken());
    a.cancel();
    assert!(c.is_woken(), "a's notification went on to c");
    assert_eq!(b.poll(), Poll::Ready(()));
    assert_eq!(c.poll(), Poll::Ready(()));
    assert!(
        polled(notify.notified()).poll().is_pending(),
        "no permit left over"
    );
}

#[test]
fn every_waiter_gone_leaves_the_next_notify_one_as_a_permit() {
    let notify = Notify::new();
    let mut a = polled(notify.notified());
    let mut b = polled(notify.notified());
    assert!(a.poll().is_pending() && b.poll().is_pending());
    drop((a, b));
    notify.notify_one();
    assert_eq!(polled(notify.notified()).poll(), Poll::Ready(()));
}

#[test]
fn enable_joins_the_line_or_takes_the_permit() {
    let notify = Notify::new();
    notify.notify_one();
    let mut stored = pin!(notify.notified());
    assert!(stored.as_mut().enable(), "the permit");
    let mut waiting = pin!(notify.notified());
    assert!(!waiting.as_mut().enable());
    notify.notify_one();
    let task = ManualTask::default();
    assert_eq!(task.poll(waiting.as_mut()), Poll::Ready(()));
    assert!(
        !pin!(notify.notified()).as_mut().enable(),
        "given to the enabled waiter, not stored"
    );

    // Polled, then enabled: still in line, once.
    let mut polled_first = pin!(notify.notified());
    assert!(task.poll(polled_first.as_mut()).is_pending());
    assert!(!polled_first.as_mut().enable());
    notify.notify_one();
    assert!(task.is_woken());
    assert!(polled_first.as_mut().enable());
}

#[test]
fn the_latest_waker_of_a_waiter_is_the_one_woken() {
    let notify = Notify::new();
    let mut fut = pin!(notify.notified());
    let (t1, t2) = (ManualTask::default(), ManualTask::default());
    assert!(t1.poll(fut.as_mut()).is_pending());
    assert!(t2.poll(fut.as_mut()).is_pending());
    notify.notify_one();
    assert!(!t1.is_woken() && t2.is_woken());
}

#[test]
fn notify_waiters_reaches_unpolled_futures_made_before_it_only() {
    let notify = Notify::new();
    let before = notify.notified();
    notify.notify_waiters();
    let after = notify.notified();
    assert_eq!(polled(before).poll(), Poll::Ready(()));
    assert!(polled(after).poll().is_pending(), "no permit stored");
}

#[test]
fn a_waiter_released_by_notify_waiters_does_not_take_the_next_permit() {
    let notify = Notify::new();
    let mut first = polled(notify.notified());
    assert!(first.poll().is_pending());
    notify.notify_waiters();
    notify.notify_one();
    drop(first);
    assert_eq!(polled(notify.notified()).poll(), Poll::Ready(()));
}

#[test]
fn a_waker_whose_drop_calls_notify_waiters_does_not_deadlock() {
    // A waker must be `Send + Sync`; this one holds an `Rc` but never leaves this thread.
    struct NotifyOnDrop(Rc<Notify>);
    // SAFETY: the waker made from it is used and dropped on this thread only.
    unsafe impl Send for NotifyOnDrop {}
    // SAFETY: as above.
    unsafe impl Sync for NotifyOnDrop {}
    impl std::task::Wake for NotifyOnDrop {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for NotifyOnDrop {
        fn drop(&mut self) {
            self.0.notify_waiters();
        }
    }
    let notify = Rc::new(Notify::new());
    let mut fut = Box::pin(notify.notified());
    {
        let waker = Waker::from(Arc::new(NotifyOnDrop(notify.clone())));
        assert!(fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
    }
    notify.notify_waiters();
    assert!(polled(fut).poll().is_ready());
}

// ---- sync_semaphore.rs, sync_semaphore_owned.rs ----

#[test]
fn a_closed_semaphore_fails_tries_and_acquires_but_keeps_counting_permits() {
    let sem = Semaphore::new(2);
    let held = sem.try_acquire().unwrap();
    let task = ManualTask::default();
    let mut waiting = pin!(sem.acquire_many(2));
    assert!(task.poll(waiting.as_mut()).is_pending());
    sem.close();
    assert!(sem.is_closed());
    assert!(task.is_woken());
    assert!(matches!(task.poll(waiting.as_mut()), Poll::Ready(Err(_))));
    assert!(matches!(sem.try_acquire(), Err(TryAcquireError::Closed)));
    assert!(matches!(
        sem.try_acquire_many(0),
        Err(TryAcquireError::Closed)
    ));
    assert!(matches!(
        task.poll(pin!(sem.acquire())),
        Poll::Ready(Err(_))
    ));
    assert_eq!(sem.available_permits(), 1);
    drop(held);
    sem.add_permits(3);
    assert_eq!(
        sem.available_permits(),
        5,
        "held permits come back, added ones count"
    );

    let sem = Rc::new(Semaphore::new(1));
    sem.close();
    assert!(matches!(
        sem.clone().try_acquire_owned(),
        Err(TryAcquireError::Closed)
    ));
    assert!(matches!(
        task.poll(pin!(sem.clone().acquire_owned())),
        Poll::Ready(Err(_))
    ));
}

#[test]
fn forget_permits_takes_only_free_ones_and_add_permits_reaches_max() {
    let sem = Semaphore::new(10);
    let held = sem.try_acquire_many(4).unwrap();
    assert_eq!(sem.forget_permits(3), 3);
    assert_eq!(sem.forget_permits(10), 3);
    assert_eq!(sem.forget_permits(1), 0);
    drop(held);
    assert_eq!(sem.available_permits(), 4);

    let sem = Semaphore::new(0);
    sem.add_permits(Semaphore::MAX_PERMITS);
    assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
    let all = sem.try_acquire_many(u32::MAX).unwrap();
    assert_eq!(all.num_permits(), u32::MAX as usize);
}

#[test]
fn zero_permits_are_granted_at_once_even_on_an_empty_semaphore() {
    let sem = Semaphore::new(0);
    let task = ManualTask::default();
    let Poll::Ready(Ok(none)) = task.poll(pin!(sem.acquire_many(0))) else {
        panic!("acquire_many(0) waited")
    };
    assert_eq!(none.num_permits(), 0);
    assert_eq!(sem.try_acquire_many(0).unwrap().num_permits(), 0);
    drop(none);
    assert_eq!(sem.available_permits(), 0);
}

#[overlap::test]
async fn owned_permits_move_into_tasks_and_give_back_on_drop() {
    let sem = Rc::new(Semaphore::new(1));
    let p = sem.clone().acquire_owned().await.unwrap();
    assert!(Rc::ptr_eq(p.semaphore(), &sem));
    let waiter = overlap::spawn({
        let sem = sem.clone();
        async move { sem.acquire_owned().await.unwrap().num_permits() }
    });
    settle().await;
    assert!(!waiter.is_finished());
    overlap::spawn(async move { drop(p) }).await.unwrap();
    assert_eq!(waiter.await.unwrap(), 1);
    assert_eq!(sem.available_permits(), 1);
    let p = sem.clone().try_acquire_owned().unwrap();
    p.forget();
    assert_eq!(sem.available_permits(), 0);
}

// ---- sync_mutex.rs, sync_mutex_owned.rs ----

#[overlap::test]
async fn a_lock_given_up_by_a_timeout_leaves_the_mutex_usable() {
    let m = Rc::new(Mutex::new(0));
    let guard = m.lock().await;
    let given_up = overlap::spawn({
        let m = m.clone();
        async move {
            overlap::time::timeout(Duration::from_millis(1), m.lock())
                .await
                .is_err()
        }
    });
    assert!(given_up.await.unwrap());
    assert!(m.try_lock().is_err(), "still held");
    drop(guard);
    *m.try_lock().unwrap() += 1;
    let owned = m.clone().lock_owned().await;
    assert_eq!(*owned, 1);
    assert!(m.clone().try_lock_owned().is_err());
    drop(owned);
    assert!(m.clone().try_lock_owned().is_ok());
}

#[test]
fn a_lock_polled_then_dropped_passes_the_turn_and_try_lock_waits_its_turn() {
    let m = Mutex::new(1);
    let guard = m.try_lock().unwrap();
    let (t1, t2) = (ManualTask::default(), ManualTask::default());
    let mut first = Box::pin(m.lock());
    let mut second = Box::pin(m.lock());
    assert!(t1.poll(first.as_mut()).is_pending());
    assert!(t2.poll(second.as_mut()).is_pending());
    drop(guard);
    assert!(t1.is_woken() && !t2.is_woken());
    assert!(
        m.try_lock().is_err(),
        "the lock is promised to the first in line"
    );
    drop(first);
    assert!(t2.is_woken());
    let Poll::Ready(g) = t2.poll(second.as_mut()) else {
        panic!("second did not get the lock")
    };
    assert_eq!(*g, 1);
    drop(g);
    drop(second);
    assert!(m.try_lock().is_ok());
    assert_eq!(m.into_inner(), 1);
}

// ---- sync_rwlock.rs ----

#[test]
fn a_cancelled_waiting_writer_lets_the_readers_queued_behind_it_in() {
    let lock = RwLock::new(0);
    let reader = lock.try_read().unwrap();
    let (tw, tr) = (ManualTask::default(), ManualTask::default());
    let mut writer = Box::pin(lock.write());
    assert!(tw.poll(writer.as_mut()).is_pending());
    assert!(
        lock.try_read().is_err(),
        "a waiting writer holds later readers back"
    );
    let mut late_reader = Box::pin(lock.read());
    assert!(tr.poll(late_reader.as_mut()).is_pending());
    drop(writer);
    assert!(tr.is_woken());
    let Poll::Ready(late) = tr.poll(late_reader.as_mut()) else {
        panic!("the late reader was left waiting")
    };
    assert_eq!(*late, 0);
    drop(reader);
    assert!(lock.try_write().is_err(), "the late reader still reads");
    drop(late);
    assert!(lock.try_write().is_ok());
}

#[test]
fn readers_waiting_behind_a_writer_all_enter_when_it_leaves() {
    let lock = RwLock::new(5);
    let mut w = lock.try_write().unwrap();
    *w += 1;
    let tasks: Vec<ManualTask> = (0..3).map(|_| ManualTask::default()).collect();
    let mut reads: Vec<_> = (0..3).map(|_| Box::pin(lock.read())).collect();
    for (t, r) in tasks.iter().zip(&mut reads) {
        assert!(t.poll(r.as_mut()).is_pending());
    }
    let tw = ManualTask::default();
    let mut writer2 = Box::pin(lock.write());
    assert!(tw.poll(writer2.as_mut()).is_pending());
    drop(w);
    assert!(tasks.iter().all(ManualTask::is_woken));
    assert!(!tw.is_woken());
    let guards: Vec<_> = tasks
        .iter()
        .zip(&mut reads)
        .map(|(t, r)| match t.poll(r.as_mut()) {
            Poll::Ready(g) => g,
            Poll::Pending => panic!("a reader was left out"),
        })
        .collect();
    assert!(guards.iter().all(|g| **g == 6));
    drop(guards);
    assert!(tw.is_woken());
    assert!(tw.poll(writer2.as_mut()).is_ready());
}

#[overlap::test]
async fn writers_get_the_lock_in_the_order_they_are_first_polled() {
    let lock = RwLock::new(Vec::new());
    let second = async { lock.write().await.push(2) };
    let first = async { lock.write().await.push(1) };
    first.await;
    second.await;
    assert_eq!(*lock.read().await, [1, 2]);
}

#[test]
fn readers_beyond_the_maximum_wait_for_one_to_leave() {
    // Outside a runtime: no cooperative budget cuts the loop short.
    let lock = RwLock::with_max_readers(0, 1024);
    let task = ManualTask::default();
    let mut reads = Vec::new();
    while let Poll::Ready(g) = task.poll(pin!(lock.read())) {
        reads.push(g);
    }
    assert_eq!(reads.len(), 1024);
    let mut waiting = Box::pin(lock.read());
    assert!(task.poll(waiting.as_mut()).is_pending());
    drop(reads.pop());
    assert!(task.is_woken());
    assert!(task.poll(waiting.as_mut()).is_ready());
}

// ---- sync_barrier.rs ----

#[overlap::test]
async fn a_barrier_of_zero_or_one_releases_each_wait_at_once_as_leader() {
    for n in [0, 1] {
        let b = Barrier::new(n);
        for _ in 0..3 {
            assert!(b.wait().await.is_leader());
        }
    }
    let b = Barrier::new(2);
    let task = ManualTask::default();
    let mut first = Box::pin(b.wait());
    assert!(task.poll(first.as_mut()).is_pending());
    let second = b.wait().await;
    assert!(task.is_woken());
    let Poll::Ready(first) = task.poll(first.as_mut()) else {
        panic!("the round is complete")
    };
    assert!(
        second.is_leader() && !first.is_leader(),
        "the arrival that completes the round leads"
    );
}

// ---- sync_once_cell.rs ----

#[overlap::test]
async fn set_during_a_running_initializer_fails_and_the_initializer_wins() {
    let cell = Rc::new(OnceCell::new());
    let go = Rc::new(Notify::new());
    let init = overlap::spawn({
        let (cell, go) = (cell.clone(), go.clone());
        async move {
            *cell
                .get_or_init(|| async move {
                    go.notified().await;
                    5
                })
                .await
        }
    });
    settle().await;
    assert!(!cell.initialized());
    let err = cell.set(10).unwrap_err();
    assert!(err.is_initializing_err() && !err.is_already_init_err());
    assert_eq!(err, SetError::InitializingError(10));
    // A clone made meanwhile is empty and has no initializer of its own running.
    let copy = (*cell).clone();
    assert_eq!(copy, OnceCell::new());
    assert_eq!(copy.set(11), Ok(()));
    go.notify_one();
    assert_eq!(init.await.unwrap(), 5);
    let err = cell.set(20).unwrap_err();
    assert!(err.is_already_init_err() && !err.is_initializing_err());
    assert_eq!(err.into_inner(), 20);
    assert_eq!(cell.get(), Some(&5));
    assert_eq!((*cell).clone(), OnceCell::from(5));
    assert_ne!(*cell, OnceCell::from(6));
    assert_ne!(*cell, OnceCell::new());
    assert_eq!(*cell.get_or_init(|| async { 30 }).await, 5);
}

#[overlap::test]
async fn a_failed_try_init_leaves_the_cell_empty_for_the_next() {
    let cell = OnceCell::new();
    let failed: Result<&u32, &str> = cell.get_or_try_init(|| async { Err("no") }).await;
    assert_eq!(failed, Err("no"));
    assert!(!cell.initialized());
    let ok: Result<&u32, &str> = cell.get_or_try_init(|| async { Ok(7) }).await;
    assert_eq!(ok, Ok(&7));
    let again: Result<&u32, &str> = cell.get_or_try_init(|| async { Err("unused") }).await;
    assert_eq!(again, Ok(&7));
}

#[test]
fn the_value_is_dropped_with_the_cell_or_handed_out_by_take_and_into_inner() {
    let value = Rc::new(());
    let cell = OnceCell::new();
    cell.set(value.clone()).unwrap();
    assert_eq!(Rc::strong_count(&value), 2);
    drop(cell);
    assert_eq!(Rc::strong_count(&value), 1);

    let mut cell = OnceCell::new();
    cell.set(value.clone()).unwrap();
    let taken = cell.take().unwrap();
    assert!(cell.get().is_none() && !cell.initialized());
    cell.set(taken).unwrap();
    let inner = cell.into_inner().unwrap();
    assert!(Rc::ptr_eq(&inner, &value));
    drop(inner);
    assert_eq!(Rc::strong_count(&value), 1);

    let full = OnceCell::new_with(Some(value.clone()));
    assert!(full.initialized());
    drop(full);
    assert_eq!(Rc::strong_count(&value), 1);
    assert_eq!(OnceCell::<u8>::new_with(None).get(), None);
}
