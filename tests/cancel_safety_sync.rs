//! Cancel safety of the sync primitives: each wait is polled by hand until it is pending,
//! then dropped (as a `select!` branch that lost, or a `timeout`, drops it), and the rest of
//! the primitive is checked: no message lost, no permit, lock or wake-up stolen by the
//! waiter that left (whether it left before or after being handed one), the next waiter
//! served, and nothing still holding the dropped future's waker.

mod support;

use std::future::{pending, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::{
    broadcast, mpsc, oneshot, watch, Barrier, Mutex, Notify, OnceCell, RwLock, Semaphore,
};
use support::{abandon, abandon_slot, wait_on, within, ManualTask};

const HANG: Duration = Duration::from_secs(10);

/// Polls `fut` with `task`'s waker, expecting its output.
fn ready<F: Future + ?Sized>(task: &ManualTask, fut: Pin<&mut F>) -> F::Output {
    match task.poll(fut) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("still waiting"),
    }
}

#[overlap::test]
async fn mpsc_dropped_recv_takes_no_message() {
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    abandon_slot(rx.recv());
    tx.send(7).await.unwrap();
    assert_eq!(rx.recv().await, Some(7));

    let mut buf = Vec::new();

    let task = ManualTask::default();
    let mut many = Box::pin(rx.recv_many(&mut buf, 8));
    wait_on(&task, many.as_mut());
    drop(many);
    for i in 0..3 {
        tx.send(i).await.unwrap();
    }
    assert_eq!(rx.recv_many(&mut buf, 8).await, 3);
    assert_eq!(buf, [0, 1, 2]);

    let (utx, mut urx) = mpsc::unbounded_channel::<&str>();
    abandon_slot(urx.recv());
    utx.send("kept").unwrap();
    assert_eq!(urx.recv().await, Some("kept"));
}

#[overlap::test]
async fn mpsc_send_handed_a_slot_then_dropped_passes_it_on() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    tx.send(0).await.unwrap(); // full
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(tx.send(1));
    let mut b = Box::pin(tx.send(2));
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());

    assert_eq!(rx.recv().await, Some(0)); // one slot frees: the first in line gets it
    assert!(ta.is_woken());
    drop(a); // ... and gives it up unused
    assert!(tb.is_woken(), "the slot went with the dropped send");
    ready(&tb, b.as_mut()).unwrap();
    assert_eq!(
        rx.try_recv().unwrap(),
        2,
        "the dropped send's value was sent"
    );
    assert!(rx.try_recv().is_err());
    assert_eq!(tx.capacity(), 1);
    assert_eq!(ta.wakers_held() + tb.wakers_held(), 0);
}

#[overlap::test]
async fn mpsc_send_dropped_while_waiting_leaves_the_line() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    tx.send(0).await.unwrap();
    abandon(tx.send(1));
    let tb = ManualTask::default();
    let mut b = Box::pin(tx.send(2));
    wait_on(&tb, b.as_mut());
    assert_eq!(rx.recv().await, Some(0));
    assert!(tb.is_woken());
    ready(&tb, b.as_mut()).unwrap();
    assert_eq!(rx.recv().await, Some(2));
}

#[overlap::test]
async fn mpsc_reserve_handed_a_slot_then_dropped_passes_it_on() {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    tx.send(0).await.unwrap();
    tx.send(1).await.unwrap();
    let (ta, tb, tc) = (
        ManualTask::default(),
        ManualTask::default(),
        ManualTask::default(),
    );
    let mut many = Box::pin(tx.reserve_many(2));
    let mut one = Box::pin(tx.reserve());
    wait_on(&ta, many.as_mut());
    wait_on(&tb, one.as_mut());
    assert_eq!(rx.recv().await, Some(0));
    assert!(!ta.is_woken() && !tb.is_woken(), "a slot short of two");
    drop(many); // the request of two leaves: the single one behind it fits now
    assert!(
        tb.is_woken(),
        "the line stayed blocked behind the dropped reserve_many"
    );
    let permit = ready(&tb, one.as_mut()).unwrap();

    let mut last = Box::pin(tx.reserve());
    wait_on(&tc, last.as_mut());
    assert_eq!(rx.recv().await, Some(1));
    assert!(tc.is_woken());
    drop(last); // handed the slot, dropped before it was polled
    permit.send(5);
    assert_eq!(rx.recv().await, Some(5));
    assert_eq!(tx.capacity(), 2, "a slot was lost with a dropped reserve");
}

#[overlap::test]
async fn oneshot_receiver_polled_through_a_reference_keeps_its_value() {
    let (tx, mut rx) = oneshot::channel::<&str>();
    abandon_slot(&mut rx);
    tx.send("late").unwrap();
    assert_eq!(rx.await, Ok("late"));
}

#[overlap::test]
async fn broadcast_and_watch_dropped_waits_lose_no_value() {
    let (tx, mut rx) = broadcast::channel::<u32>(4);
    abandon_slot(rx.recv());
    tx.send(1).unwrap();
    assert_eq!(rx.recv().await, Ok(1));

    let (wtx, mut wrx) = watch::channel(0u32);
    abandon_slot(wrx.changed());
    wtx.send(1).unwrap();
    let task = ManualTask::default();
    let mut changed = Box::pin(wrx.changed());
    ready(&task, changed.as_mut()).expect("the change was lost with the dropped wait");
    drop(changed);
    assert_eq!(*wrx.borrow_and_update(), 1);
    abandon_slot(wrx.wait_for(|v| *v == 3));
    wtx.send(3).unwrap();
    let mut wait_for = Box::pin(wrx.wait_for(|v| *v == 3));
    assert_eq!(*ready(&task, wait_for.as_mut()).unwrap(), 3);
}

#[overlap::test]
async fn notify_chosen_then_dropped_passes_the_wake_up_on() {
    let notify = Notify::new();
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(notify.notified());
    let mut b = Box::pin(notify.notified());
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    notify.notify_one();
    assert!(ta.is_woken() && !tb.is_woken());
    drop(a);
    assert!(
        tb.is_woken(),
        "the notification went with the dropped waiter"
    );
    ready(&tb, b.as_mut());

    // Nobody else waits: the passed-on notification becomes the permit.
    let mut c = Box::pin(notify.notified());
    wait_on(&ta, c.as_mut());
    notify.notify_one();
    drop(c);
    let mut d = Box::pin(notify.notified());
    ready(&tb, d.as_mut());
    assert_eq!(ta.wakers_held() + tb.wakers_held(), 0);
}

#[overlap::test]
async fn notify_dropped_while_waiting_takes_nothing() {
    let notify = Notify::new();
    abandon(notify.notified());
    let tb = ManualTask::default();
    let mut b = Box::pin(notify.notified());
    wait_on(&tb, b.as_mut());
    notify.notify_one();
    assert!(tb.is_woken(), "notify_one went to the waiter that had left");
    ready(&tb, b.as_mut());
}

#[overlap::test]
async fn semaphore_permit_handed_to_a_dropped_acquire_goes_to_the_next() {
    let sem = Semaphore::new(0);
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(sem.acquire());
    let mut b = Box::pin(sem.acquire());
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    sem.add_permits(1);
    assert!(ta.is_woken() && !tb.is_woken());
    drop(a);
    assert!(tb.is_woken(), "the permit went with the dropped acquire");
    let permit = ready(&tb, b.as_mut()).unwrap();
    assert_eq!(sem.available_permits(), 0);
    drop(permit);
    assert_eq!(sem.available_permits(), 1, "a permit was lost or made up");
    assert_eq!(ta.wakers_held() + tb.wakers_held(), 0);

    // The owned form.
    let sem = Rc::new(Semaphore::new(0));
    let mut a = Box::pin(sem.clone().acquire_owned());
    let mut b = Box::pin(sem.clone().acquire_owned());
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    sem.add_permits(1);
    drop(a);
    assert!(tb.is_woken());
    drop(ready(&tb, b.as_mut()).unwrap());
    assert_eq!(sem.available_permits(), 1);
}

#[overlap::test]
async fn semaphore_dropped_large_request_unblocks_the_line() {
    let sem = Semaphore::new(2);
    let held = sem.acquire().await.unwrap(); // one left
    abandon(sem.acquire_many(3));
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut big = Box::pin(sem.acquire_many(2));
    let mut small = Box::pin(sem.acquire());
    wait_on(&ta, big.as_mut());
    wait_on(&tb, small.as_mut()); // behind the big one, though a permit is free
    drop(big);
    assert!(
        tb.is_woken(),
        "the line stayed blocked behind a request that left"
    );
    let one = ready(&tb, small.as_mut()).unwrap();
    assert_eq!(sem.available_permits(), 0);
    drop((one, held));
    assert_eq!(sem.available_permits(), 2);
}

#[overlap::test]
async fn mutex_lock_handed_to_a_dropped_waiter_goes_to_the_next() {
    let mutex = Mutex::new(0u32);
    let guard = mutex.lock().await;
    abandon(mutex.lock()); // left before anything was handed to it
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(mutex.lock());
    let mut b = Box::pin(mutex.lock());
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    drop(guard);
    assert!(ta.is_woken() && !tb.is_woken());
    drop(a);
    assert!(tb.is_woken(), "the lock went with the dropped waiter");
    let mut g = ready(&tb, b.as_mut());
    *g += 1;
    drop(g);
    assert_eq!(*mutex.try_lock().expect("the lock is stuck"), 1);
    assert_eq!(ta.wakers_held() + tb.wakers_held(), 0);
}

#[overlap::test]
async fn rwlock_dropped_writer_lets_the_readers_behind_it_in() {
    let lock = RwLock::new(0u32);
    let reading = lock.read().await;
    let (tw, tr) = (ManualTask::default(), ManualTask::default());
    let mut writer = Box::pin(lock.write());
    let mut reader = Box::pin(lock.read());
    wait_on(&tw, writer.as_mut());
    wait_on(&tr, reader.as_mut()); // behind the writer
    drop(writer);
    assert!(tr.is_woken(), "the reader stayed behind a writer that left");
    let second = ready(&tr, reader.as_mut());
    drop((second, reading));
    assert!(lock.try_write().is_ok(), "a read permit was lost");
    assert_eq!(tw.wakers_held() + tr.wakers_held(), 0);
}

#[overlap::test]
async fn rwlock_write_handed_to_a_dropped_writer_goes_to_the_readers() {
    let lock = RwLock::new(0u32);
    let writing = lock.write().await;
    let (tw, t1, t2) = (
        ManualTask::default(),
        ManualTask::default(),
        ManualTask::default(),
    );
    let mut writer = Box::pin(lock.write());
    let mut r1 = Box::pin(lock.read());
    let mut r2 = Box::pin(lock.read());
    wait_on(&tw, writer.as_mut());
    wait_on(&t1, r1.as_mut());
    wait_on(&t2, r2.as_mut());
    drop(writing);
    assert!(tw.is_woken() && !t1.is_woken());
    drop(writer);
    assert!(
        t1.is_woken() && t2.is_woken(),
        "the readers stayed locked out"
    );
    let g1 = ready(&t1, r1.as_mut());
    drop(r2); // handed its share, dropped unused
    assert!(lock.try_write().is_err());
    drop(g1);
    assert!(lock.try_write().is_ok(), "a read share was lost");
}

#[overlap::test]
async fn barrier_dropped_wait_takes_its_arrival_back() {
    let barrier = Barrier::new(2);
    abandon(barrier.wait());
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(barrier.wait());
    wait_on(&ta, a.as_mut()); // the dropped arrival does not count
    let mut b = Box::pin(barrier.wait());
    let leader_b = ready(&tb, b.as_mut()).is_leader();
    assert!(ta.is_woken());
    let leader_a = ready(&ta, a.as_mut()).is_leader();
    assert!(leader_a ^ leader_b, "one leader per round");
}

#[overlap::test]
async fn once_cell_dropped_initializer_lets_a_waiter_run_its_own() {
    let cell = OnceCell::<u32>::new();
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut first = Box::pin(cell.get_or_init(pending));
    let mut second = Box::pin(cell.get_or_init(|| async { 2 }));
    wait_on(&ta, first.as_mut());
    wait_on(&tb, second.as_mut()); // waits for the first initializer
    drop(first);
    assert!(
        tb.is_woken(),
        "the waiter was left waiting for a dropped initializer"
    );
    assert_eq!(*ready(&tb, second.as_mut()), 2);
    assert_eq!(cell.get(), Some(&2));
}

#[overlap::test]
async fn join_set_dropped_join_next_loses_no_output() {
    let mut set = overlap::JoinSet::new();
    let (tx, rx) = oneshot::channel::<()>();
    set.spawn(async move {
        rx.await.unwrap();
        "done"
    });
    abandon_slot(set.join_next());
    tx.send(()).unwrap();
    let out = within(HANG, set.join_next(), "the task's output").await;
    assert_eq!(out.unwrap().unwrap(), "done");
    assert!(set.join_next().await.is_none());
}

#[overlap::test]
async fn dropped_closed_waits_leave_no_waker_and_miss_nothing() {
    let (tx, rx) = mpsc::channel::<u8>(1);
    abandon(tx.closed());
    let (utx, urx) = mpsc::unbounded_channel::<u8>();
    abandon(utx.closed());
    let (btx, brx) = broadcast::channel::<u8>(1);
    abandon(btx.closed());
    let (wtx, wrx) = watch::channel(0u8);
    abandon(wtx.closed());
    let (mut otx, orx) = oneshot::channel::<u8>();
    abandon_slot(otx.closed()); // &mut self: the one slot
    drop((rx, urx, brx, wrx, orx));
    let task = ManualTask::default();
    ready(&task, Box::pin(tx.closed()).as_mut());
    ready(&task, Box::pin(utx.closed()).as_mut());
    ready(&task, Box::pin(btx.closed()).as_mut());
    ready(&task, Box::pin(wtx.closed()).as_mut());
    ready(&task, Box::pin(otx.closed()).as_mut());
}

#[overlap::test]
async fn owned_waits_handed_their_turn_then_dropped_pass_it_on() {
    let mutex = Rc::new(Mutex::new(0u8));
    let guard = mutex.clone().lock_owned().await;
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(mutex.clone().lock_owned());
    let mut b = Box::pin(mutex.clone().lock_owned());
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    drop(guard);
    drop(a);
    assert!(
        tb.is_woken(),
        "lock_owned: the lock went with the dropped waiter"
    );
    drop(ready(&tb, b.as_mut()));

    let lock = Rc::new(RwLock::new(0u8));
    let guard = lock.clone().write_owned().await;
    let mut w = Box::pin(lock.clone().write_owned());
    let mut r = Box::pin(lock.clone().read_owned());
    wait_on(&ta, w.as_mut());
    wait_on(&tb, r.as_mut());
    drop(guard);
    drop(w);
    assert!(tb.is_woken(), "write_owned: the readers stayed locked out");
    drop(ready(&tb, r.as_mut()));
    assert!(lock.try_write().is_ok());

    let sem = Rc::new(Semaphore::new(1));
    let held = sem.clone().acquire_many_owned(1).await.unwrap();
    let mut big = Box::pin(sem.clone().acquire_many_owned(2));
    let mut small = Box::pin(sem.clone().acquire_owned());
    wait_on(&ta, big.as_mut());
    wait_on(&tb, small.as_mut());
    drop(held); // one free: not enough for the head of the line
    assert!(!ta.is_woken() && !tb.is_woken());
    drop(big);
    assert!(tb.is_woken(), "acquire_many_owned: the line stayed blocked");
    drop(ready(&tb, small.as_mut()).unwrap());
    assert_eq!(sem.available_permits(), 1);

    let notify = Rc::new(Notify::new());
    let mut a = Box::pin(notify.clone().notified_owned());
    let mut b = Box::pin(notify.clone().notified_owned());
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    notify.notify_one();
    drop(a);
    assert!(
        tb.is_woken(),
        "notified_owned: the wake-up went with the dropped waiter"
    );
    ready(&tb, b.as_mut());
    assert_eq!(ta.wakers_held() + tb.wakers_held(), 0);
}

#[overlap::test]
async fn semaphore_closed_while_a_dropped_acquire_held_its_grant() {
    let sem = Semaphore::new(0);
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(sem.acquire());
    let mut b = Box::pin(sem.acquire());
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    sem.add_permits(1); // granted to `a`
    sem.close();
    drop(a);
    assert!(ready(&tb, b.as_mut()).is_err(), "closed");
    assert_eq!(sem.available_permits(), 1, "the dropped grant was lost");
}

#[overlap::test]
async fn once_cell_dropped_fallible_initializer_lets_a_waiter_run_its_own() {
    let cell = OnceCell::<u32>::new();
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut first = Box::pin(cell.get_or_try_init(pending::<Result<u32, ()>>));
    let mut second = Box::pin(cell.get_or_try_init(|| async { Ok::<_, ()>(5) }));
    wait_on(&ta, first.as_mut());
    wait_on(&tb, second.as_mut());
    drop(first);
    assert!(tb.is_woken());
    assert_eq!(ready(&tb, second.as_mut()), Ok(&5));
}

#[overlap::test]
async fn join_handle_polled_through_a_reference_keeps_the_output() {
    let (tx, rx) = oneshot::channel::<()>();
    let mut handle = overlap::spawn(async move {
        rx.await.unwrap();
        7
    });
    abandon_slot(&mut handle);
    tx.send(()).unwrap();
    assert_eq!(
        within(HANG, handle, "the output was lost").await.unwrap(),
        7
    );
}

#[overlap::test]
async fn join_set_dropped_shutdown_keeps_the_tasks_it_did_not_join() {
    let mut set = overlap::JoinSet::new();
    set.spawn(pending::<u8>());
    set.spawn(pending::<u8>());
    abandon_slot(set.shutdown()); // aborted both, joined neither
    assert_eq!(set.len(), 2);
    for _ in 0..2 {
        let res = within(HANG, set.join_next(), "an aborted task never ended").await;
        assert!(res.unwrap().unwrap_err().is_cancelled());
    }
    assert!(set.join_next().await.is_none());
}
