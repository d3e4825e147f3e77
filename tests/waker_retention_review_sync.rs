//! A sweep for wakers left behind, sync: every wait of `sync` is polled until it waits with
//! a waker that counts its references, then dropped (and, for the waits that keep the
//! waker in their handle's one slot, the handle dropped too). Nothing may hold the waker
//! afterwards, nothing that happens later may wake it, and a thousand waits abandoned with
//! fresh wakers may leave at most the one slot's. Runtime waits are in
//! waker_retention_review_runtime.rs, sockets, pipes, processes and files in
//! waker_retention_review_io.rs.

mod support;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use overlap::sync::{
    broadcast, mpsc, oneshot, watch, Barrier, CancellationToken, Mutex, Notify, OnceCell, RwLock,
    Semaphore, SetOnce,
};
use support::{abandon_slot, any_woken, tasks_still_held, wait_on, within, ManualTask};

const HANG: Duration = Duration::from_secs(20);

#[overlap::test]
async fn semaphore_acquires_dropped_keep_no_waker_and_the_release_wakes_none() {
    let sem = Rc::new(Semaphore::new(1));
    let permit = sem.try_acquire().unwrap();
    let tasks = [
        abandon_slot(sem.acquire()),
        abandon_slot(sem.acquire_many(3)),
        abandon_slot(sem.clone().acquire_owned()),
        abandon_slot(sem.clone().acquire_many_owned(2)),
    ];
    for (task, what) in tasks.iter().zip(["acquire", "many", "owned", "many_owned"]) {
        assert_eq!(
            task.wakers_held(),
            0,
            "{what}: the dropped wait kept its waker"
        );
    }
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(sem.acquire())), 0);
    drop(permit);
    sem.add_permits(4);
    assert!(!any_woken(&tasks), "a release woke a dropped wait");
    assert_eq!(sem.available_permits(), 5, "a dropped wait took permits");
}

#[overlap::test]
async fn lock_waits_dropped_keep_no_waker_and_the_unlock_wakes_none() {
    let mutex = Rc::new(Mutex::new(1));
    let guard = mutex.lock().await;
    let mutex_tasks = [
        abandon_slot(mutex.lock()),
        abandon_slot(mutex.clone().lock_owned()),
    ];
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(mutex.lock())), 0);
    assert_eq!(
        mutex_tasks[0].wakers_held() + mutex_tasks[1].wakers_held(),
        0
    );
    drop(guard);
    assert!(!any_woken(&mutex_tasks), "the unlock woke a dropped lock");
    assert_eq!(*mutex.try_lock().unwrap(), 1);

    let rwlock = Rc::new(RwLock::new(2));
    let writer = rwlock.write().await;
    let behind_writer = [
        abandon_slot(rwlock.read()),
        abandon_slot(rwlock.clone().read_owned()),
        abandon_slot(rwlock.write()),
    ];
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(rwlock.read())), 0);
    drop(writer);
    let reader = rwlock.read().await;
    let behind_reader = [
        abandon_slot(rwlock.write()),
        abandon_slot(rwlock.clone().write_owned()),
    ];
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(rwlock.write())), 0);
    for task in behind_writer.iter().chain(&behind_reader) {
        assert_eq!(
            task.wakers_held(),
            0,
            "a dropped read or write kept its waker"
        );
    }
    drop(reader);
    assert!(!any_woken(&behind_writer) && !any_woken(&behind_reader));
    assert_eq!(*rwlock.try_write().unwrap(), 2);
}

#[overlap::test]
async fn notified_dropped_after_a_poll_or_an_enable_keeps_no_waker() {
    let notify = Rc::new(Notify::new());
    let polled = abandon_slot(notify.notified());
    let enabled_then_polled = ManualTask::default();
    {
        let mut wait = Box::pin(notify.notified());
        assert!(
            !wait.as_mut().enable(),
            "notified before anything notified it"
        );
        wait_on(&enabled_then_polled, wait.as_mut());
    }
    let owned = abandon_slot(notify.clone().notified_owned());
    // Enabled and never polled: it has no waker, but it must leave the line all the same.
    let mut enabled = Box::pin(notify.notified());
    enabled.as_mut().enable();
    drop(enabled);
    assert_eq!(
        tasks_still_held(&abandoned_a_thousand!(notify.notified())),
        0
    );
    let tasks = [polled, enabled_then_polled, owned];
    for task in &tasks {
        assert_eq!(task.wakers_held(), 0, "a dropped notified kept its waker");
    }
    notify.notify_waiters();
    notify.notify_one();
    assert!(!any_woken(&tasks), "a notify woke a dropped wait");
    // The notify_one found nobody waiting (no dropped wait took it): it is stored.
    let task = ManualTask::default();
    assert!(task.poll(std::pin::pin!(notify.notified())).is_ready());
}

#[overlap::test]
async fn barrier_wait_dropped_keeps_no_waker() {
    let barrier = Barrier::new(3);
    let task = abandon_slot(barrier.wait());
    assert_eq!(task.wakers_held(), 0);
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(barrier.wait())), 0);
    let (a, b, c) = overlap::join!(barrier.wait(), barrier.wait(), barrier.wait());
    let leaders = [a, b, c].iter().filter(|r| r.is_leader()).count();
    assert_eq!(leaders, 1, "three waits passed together, one leader");
    assert!(
        !task.is_woken(),
        "the barrier's release woke a dropped wait"
    );
}

#[overlap::test]
async fn once_cell_waiter_behind_an_initializer_dropped_keeps_no_waker() {
    let cell = OnceCell::<u32>::new();
    let (go, gate) = oneshot::channel::<u32>();
    let initializer_task = ManualTask::default();
    let mut initializer = Box::pin(cell.get_or_init(|| async { gate.await.unwrap() }));
    wait_on(&initializer_task, initializer.as_mut());
    let waiter = abandon_slot(cell.get_or_init(|| async { unreachable!("a second init ran") }));
    assert_eq!(
        waiter.wakers_held(),
        0,
        "the waiter behind the init kept its waker"
    );
    assert_eq!(
        tasks_still_held(&abandoned_a_thousand!(cell.get_or_init(|| async { 0 }))),
        0,
        "waiters behind the init kept wakers"
    );
    go.send(7).unwrap();
    assert!(initializer_task.is_woken());
    assert!(initializer_task.poll(initializer.as_mut()).is_ready());
    assert_eq!(cell.get(), Some(&7));
    assert!(!waiter.is_woken(), "the init's end woke a dropped waiter");
}

#[overlap::test]
async fn set_once_wait_dropped_keeps_no_waker_when_set_from_another_thread() {
    let once = Arc::new(SetOnce::<u32>::new());
    let task = abandon_slot(once.wait());
    assert_eq!(task.wakers_held(), 0);
    assert_eq!(tasks_still_held(&abandoned_a_thousand!(once.wait())), 0);
    let setter = once.clone();
    std::thread::spawn(move || setter.set(9).unwrap())
        .join()
        .unwrap();
    assert!(!task.is_woken(), "the set woke a dropped wait");
    assert_eq!(*once.wait().await, 9);
}

#[overlap::test]
async fn cancelled_dropped_keeps_no_waker_and_the_cancel_wakes_none() {
    let token = CancellationToken::new();
    let child = token.child_token();
    let tasks = [
        abandon_slot(token.cancelled()),
        abandon_slot(child.cancelled()),
        abandon_slot(token.clone().cancelled_owned()),
        abandon_slot(child.clone().cancelled_owned()),
    ];
    for task in &tasks {
        assert_eq!(task.wakers_held(), 0, "a dropped cancelled kept its waker");
    }
    assert_eq!(
        tasks_still_held(&abandoned_a_thousand!(child.cancelled())),
        0
    );
    // From another thread, as a token is meant to be cancelled.
    let remote = token.clone();
    std::thread::spawn(move || remote.cancel()).join().unwrap();
    assert!(!any_woken(&tasks), "the cancel woke a dropped wait");
    assert!(child.is_cancelled());
}

#[overlap::test]
async fn watch_changed_keeps_one_slot_while_the_receiver_lives_and_none_after() {
    let (tx, mut rx) = watch::channel(0u32);
    let changed = abandon_slot(rx.changed());
    let wait_for = abandon_slot(rx.wait_for(|v| *v == 5));
    let mut tasks = abandoned_a_thousand!(rx.changed());
    tasks.extend([changed, wait_for]);
    let held = tasks_still_held(&tasks);
    assert!(held <= 1, "the receiver keeps {held} tasks' wakers");
    let mut other = tx.subscribe();
    let other_task = abandon_slot(other.changed());
    drop(rx);
    assert_eq!(
        tasks_still_held(&tasks),
        0,
        "the dropped receiver's waker stayed"
    );
    tx.send(5).unwrap();
    assert!(
        !any_woken(&tasks),
        "the send woke a dropped receiver's task"
    );
    assert!(
        other_task.is_woken(),
        "the live receiver's slot was not woken"
    );
    assert_eq!(*other.borrow_and_update(), 5);
    drop(other);
    assert_eq!(other_task.wakers_held(), 0, "the woken slot kept its waker");
}

#[overlap::test]
async fn broadcast_recv_keeps_one_slot_while_the_receiver_lives_and_none_after() {
    let (tx, mut rx) = broadcast::channel::<u32>(4);
    let tasks = abandoned_a_thousand!(rx.recv());
    let held = tasks_still_held(&tasks);
    assert!(held <= 1, "the receiver keeps {held} tasks' wakers");
    let mut resub = rx.resubscribe();
    drop(rx);
    assert_eq!(
        tasks_still_held(&tasks),
        0,
        "the dropped receiver's waker stayed"
    );
    tx.send(1).unwrap();
    assert!(
        !any_woken(&tasks),
        "the send woke a dropped receiver's task"
    );
    assert_eq!(resub.recv().await, Ok(1));
}

#[overlap::test]
async fn cross_thread_channel_waits_keep_no_waker_after_their_end_is_dropped() {
    let (tx, mut rx) = mpsc::cross_thread::channel::<u32>(1);
    let tasks = abandoned_a_thousand!(rx.recv());
    assert!(
        tasks_still_held(&tasks) <= 1,
        "more than the one slot's waker"
    );
    drop(rx);
    assert_eq!(
        tasks_still_held(&tasks),
        0,
        "the dropped receiver's waker stayed"
    );
    let sender = std::thread::spawn(move || tx.blocking_send(1).unwrap_err().0);
    assert_eq!(sender.join().unwrap(), 1, "sent to a dropped receiver");
    assert!(!any_woken(&tasks));

    let (otx, mut orx) = oneshot::cross_thread::channel::<u32>();
    let oneshot_recv = abandon_slot(&mut orx);
    drop(orx);
    assert_eq!(oneshot_recv.wakers_held(), 0);
    let sent = std::thread::spawn(move || otx.send(2)).join().unwrap();
    assert_eq!(sent, Err(2));
    assert!(!oneshot_recv.is_woken());
    within(HANG, overlap::yield_now(), "stalled").await;
}
