//! Waiters leaving the line of a sync primitive (a dropped `acquire`, `notified` or `send`)
//! while user code runs: a waker whose drop releases a permit, notifies, or drops a sender
//! of the same primitive; a waiter leaving after `notify_waiters` took it out of the line;
//! wakers that panic while a channel closes. Plus a randomised model of the semaphore's
//! line with waiters leaving from anywhere.

mod support;

use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::sync::{mpsc, Notify};
use support::{wait_on, ManualTask};

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// A `Notified` taken out of line by `notify_waiters` that then leaves (polled or dropped)
/// is counted as a gone entry that is not there: the count goes wrong, and `Debug` (the
/// only reader of `len` for Notify) underflows.
#[test]
fn notify_phantom_gone_entry_breaks_len() {
    let notify = Notify::new();
    let mut old = Box::pin(notify.notified());
    assert!(old.as_mut().poll(&mut noop_cx()).is_pending());
    notify.notify_waiters(); // takes `old` out of the line
    let mut later: Vec<_> = (0..3).map(|_| Box::pin(notify.notified())).collect();
    for f in &mut later {
        assert!(f.as_mut().poll(&mut noop_cx()).is_pending());
    }
    drop(old); // remove() of a waiter no longer in the line: gone = 1
    for _ in 0..3 {
        notify.notify_one();
    }
    for f in &mut later {
        assert!(f.as_mut().poll(&mut noop_cx()).is_ready());
    }
    // Nobody waits, and the line is empty; gone is still 1: len() = 0 - 1.
    let shown = catch_unwind(AssertUnwindSafe(|| format!("{notify:?}")));
    assert!(shown.is_ok(), "Debug of an idle Notify panicked");
}

/// A waker that does nothing when woken and runs `f` when its last clone is dropped (as a
/// waker owning the last reference to something holding a permit or a sender would).
fn on_drop_waker(f: fn()) -> Waker {
    struct OnDrop(fn());
    impl Wake for OnDrop {
        fn wake(self: Arc<Self>) {}
    }
    impl Drop for OnDrop {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    Waker::from(Arc::new(OnDrop(f)))
}

struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics on purpose");
    }
}

/// `Receiver::close` wakes waiting senders with `wake_all`, whose resumed panic skips the
/// `Sender::closed()` watchers: a task waiting for the receiver to go sleeps forever.
#[overlap::test]
async fn mpsc_close_behind_a_panicking_sender_waker_loses_closed_watchers() {
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    tx.try_send(0).unwrap(); // full
    let mut blocked = pin!(tx.send(1));
    let waker = Waker::from(Arc::new(PanickingWaker));
    assert!(blocked
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let tx2 = tx.clone();
    let watcher = overlap::spawn(async move {
        tx2.closed().await;
    });
    overlap::yield_now().await; // the watcher waits in closed()
    let closed = catch_unwind(AssertUnwindSafe(|| rx.close()));
    assert!(closed.is_err(), "the waker's panic reaches the closer");
    support::within(
        Duration::from_secs(3),
        watcher,
        "Sender::closed() behind a panicking sender waker was never woken",
    )
    .await
    .unwrap();
}

thread_local! {
    static STASH: RefCell<Option<mpsc::Sender<u8>>> = const { RefCell::new(None) };
}

/// Dropping a waiting `send` now drops its waker inside the channel's borrow (in
/// `WaitQueue::remove`, called from `SlotWait::drop` with `chan` borrowed); before the
/// change the waker went with the `Rc<Waiter>` after the borrow.
#[test]
fn mpsc_waiting_send_drop_drops_waker_inside_channel_borrow() {
    overlap::block_on(async {
        let (tx, _rx) = mpsc::channel::<u8>(1);
        tx.try_send(0).unwrap(); // full
        STASH.with(|s| *s.borrow_mut() = Some(tx.clone()));
        let mut blocked = Box::pin(tx.send(1));
        let waker = on_drop_waker(|| drop(STASH.with(|s| s.borrow_mut().take())));
        assert!(blocked
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker); // the waiter's clone is the last one
        let dropped = catch_unwind(AssertUnwindSafe(|| drop(blocked)));
        assert!(
            dropped.is_ok(),
            "dropping a waiting send panicked: {dropped:?}"
        );
    });
}

/// The model's grant: free permits go to the front of the line while they satisfy it.
fn model_grant(
    line: &mut std::collections::VecDeque<(u32, u32)>,
    free: &mut usize,
    granted: &mut Vec<u32>,
) {
    while let Some(&(id, wanted)) = line.front() {
        if wanted as usize > *free {
            break;
        }
        *free -= wanted as usize;
        line.pop_front();
        granted.push(id);
    }
}

/// Randomised model of the queue through Semaphore: acquires join, leave (dropped), are
/// granted; `available_permits`, try_acquire (which reads is_empty) and FIFO order must
/// match a plain model.
#[test]
fn semaphore_model_with_lazy_removal() {
    use overlap::sync::Semaphore;
    let mut rng = support::XorShift(0x5eed);
    for round in 0..300 {
        let sem = Semaphore::new(0);
        // (id, wanted, future)
        let mut waiting: Vec<(u32, u32, std::pin::Pin<Box<overlap::sync::Acquire<'_>>>)> =
            Vec::new();
        let mut model_line: std::collections::VecDeque<(u32, u32)> = Default::default();
        let mut model_free = 0usize;
        let mut granted: Vec<u32> = Vec::new();
        let mut model_granted: Vec<u32> = Vec::new();
        let mut next = 0;
        let mut held = 0usize;
        for _ in 0..200 {
            match rng.below(5) {
                0 | 1 => {
                    let wanted = 1 + rng.below(3) as u32;
                    let mut f = Box::pin(sem.acquire_many(wanted));
                    match f.as_mut().poll(&mut noop_cx()) {
                        Poll::Ready(p) => {
                            let p = p.unwrap();
                            held += p.num_permits();
                            p.forget();
                            // model: allowed only when line empty and enough free
                            assert!(
                                model_line.is_empty() && model_free >= wanted as usize,
                                "round {round}"
                            );
                            model_free -= wanted as usize;
                        }
                        Poll::Pending => {
                            waiting.push((next, wanted, f));
                            model_line.push_back((next, wanted));
                        }
                    }
                    next += 1;
                }
                2 if !waiting.is_empty() => {
                    let i = rng.below(waiting.len() as u64) as usize;
                    let (id, wanted, f) = waiting.swap_remove(i);
                    // If already granted (chosen) but unpolled, dropping hands permits back.
                    let pos = model_line.iter().position(|(m, _)| *m == id);
                    match pos {
                        Some(p) => {
                            model_line.remove(p);
                        }
                        None => {
                            model_granted.retain(|g| *g != id);
                            model_free += wanted as usize;
                        }
                    }
                    drop(f);
                    model_grant(&mut model_line, &mut model_free, &mut model_granted);
                }
                _ => {
                    let n = rng.below(3) as usize;
                    sem.add_permits(n);
                    model_free += n;
                    model_grant(&mut model_line, &mut model_free, &mut model_granted);
                }
            }
            // Poll every waiter; record newly granted ones.
            let mut still = Vec::new();
            for (id, wanted, mut f) in waiting.drain(..) {
                match f.as_mut().poll(&mut noop_cx()) {
                    Poll::Ready(p) => {
                        let p = p.unwrap();
                        held += p.num_permits();
                        p.forget();
                        granted.push(id);
                        assert!(
                            model_granted.contains(&id),
                            "round {round}: {id} granted early"
                        );
                        model_granted.retain(|g| *g != id);
                    }
                    Poll::Pending => still.push((id, wanted, f)),
                }
            }
            waiting = still;
            assert!(model_granted.is_empty(), "round {round}: granted not seen");
            // Free permits are set aside for the line while anyone waits (as on tokio).
            let reported = if model_line.is_empty() { model_free } else { 0 };
            assert_eq!(sem.available_permits(), reported, "round {round}");
            let dbg = format!("{sem:?}");
            assert!(
                dbg.contains(&format!("waiting: {}", model_line.len())),
                "round {round}: {dbg} vs {}",
                model_line.len()
            );
        }
        let _ = held;
    }
}

thread_local! {
    static PERMIT: RefCell<Option<overlap::sync::OwnedPermit>> = const { RefCell::new(None) };
}

/// `WaitQueue::remove` marks the waiter gone and drops its waker *before* taking the entry
/// out of the line; a release run by that drop grants the permit to the gone waiter still at
/// the front (choose_first does not skip gone entries). The cancelled acquire already
/// decided it was not chosen, so the permit is never given back: lost for good, and the
/// waiter behind it waits forever.
#[test]
fn semaphore_permit_granted_to_a_waiter_that_is_leaving() {
    use overlap::sync::Semaphore;
    use std::rc::Rc;
    let sem = Rc::new(Semaphore::new(1));
    let held = sem.clone().try_acquire_owned().unwrap();
    PERMIT.with(|s| *s.borrow_mut() = Some(held));
    let mut first = Box::pin(sem.acquire());
    let waker = on_drop_waker(|| drop(PERMIT.with(|s| s.borrow_mut().take())));
    assert!(first
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    drop(waker); // the waiter holds the last clone
    let mut second = Box::pin(sem.acquire());
    assert!(second.as_mut().poll(&mut noop_cx()).is_pending());
    drop(first); // leaves the line; its waker's drop releases the held permit
    let got = second.as_mut().poll(&mut noop_cx());
    assert!(
        got.is_ready(),
        "the released permit never reached the next waiter"
    );
}

thread_local! {
    static NOTIFY: RefCell<Option<std::rc::Rc<Notify>>> = const { RefCell::new(None) };
}

/// Same with Notify: a notify_one run while a Notified leaves goes to that leaving waiter
/// and is lost (neither passed on nor stored as a permit).
#[test]
fn notify_one_during_leave_is_lost() {
    let notify = std::rc::Rc::new(Notify::new());
    NOTIFY.with(|s| *s.borrow_mut() = Some(notify.clone()));
    let mut first = Box::pin(notify.notified());
    let waker = on_drop_waker(|| {
        if let Some(n) = NOTIFY.with(|s| s.borrow().clone()) {
            n.notify_one();
        }
    });
    assert!(first
        .as_mut()
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    drop(waker);
    let mut second = Box::pin(notify.notified());
    assert!(second.as_mut().poll(&mut noop_cx()).is_pending());
    drop(first);
    NOTIFY.with(|s| s.borrow_mut().take());
    let got = second.as_mut().poll(&mut noop_cx());
    assert!(
        got.is_ready(),
        "the notification sent while the first left was lost"
    );
}

struct Flag(std::rc::Rc<std::cell::Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Receiver::drop = close() (whose resumed panic ends the drop) then receiver_gone and the
/// queue's drop: behind a panicking sender waker, the queued values live on with the
/// senders, and receiver_gone stays false.
#[test]
fn mpsc_receiver_drop_behind_a_panicking_waker_keeps_queued_values() {
    overlap::block_on(async {
        let dropped = std::rc::Rc::new(std::cell::Cell::new(false));
        let (tx, rx) = mpsc::channel::<Flag>(1);
        tx.try_send(Flag(dropped.clone())).ok().unwrap();
        let mut blocked = Box::pin(tx.send(Flag(std::rc::Rc::default())));
        let waker = Waker::from(Arc::new(PanickingWaker));
        assert!(blocked
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        let r = catch_unwind(AssertUnwindSafe(|| drop(rx)));
        assert!(r.is_err());
        assert!(dropped.get(), "the queued value outlived the receiver");
    });
}

/// A dropped receiver left its waker in the channel, where a reserved slot given back or the
/// last sender's drop woke it: the task that last polled the receiver (a `StreamMap` it was
/// removed from) woke for a channel it no longer had, and the senders kept its waker alive.
#[overlap::test]
async fn mpsc_dropped_receiver_leaves_no_waker_behind() {
    let task = ManualTask::default();
    let (tx, mut rx) = mpsc::channel::<u8>(2);
    let permit = tx.try_reserve().unwrap();
    wait_on(&task, pin!(rx.recv()));
    assert_eq!(
        task.wakers_held(),
        1,
        "the waiting receive registered the waker"
    );
    drop(rx);
    assert_eq!(
        task.wakers_held(),
        0,
        "the dropped receiver's waker stayed in the channel"
    );
    drop(permit);
    drop(tx);
    assert!(!task.is_woken(), "the dropped receiver's task was woken");
}
