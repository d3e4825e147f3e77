//! A waker that panics when woken (a buggy hand-written combinator's, say) costs the other
//! waiters of a sync primitive nothing: each of them is still woken, or handed its permits,
//! and the panic reaches only whoever did the waking. A channel receive that does the waking
//! (the slot it frees goes to a sender with such a waker) loses no value to the panic, and
//! a barrier wait that completes a round stays that round's leader.

mod support;

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::sync::mpsc::{self, cross_thread};
use overlap::sync::{Barrier, Notify, Semaphore};
use support::within;

const HANG: Duration = Duration::from_secs(30);

struct PanickingWaker;

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("this waker panics on purpose");
    }
}

/// Polls `fut` once with the panicking waker; it must be left waiting.
fn park_with_panicking_waker(fut: std::pin::Pin<&mut impl Future>) {
    let waker = Waker::from(Arc::new(PanickingWaker));
    assert!(fut.poll(&mut Context::from_waker(&waker)).is_pending());
}

#[overlap::test]
async fn notify_waiters_wakes_everyone_behind_a_panicking_waker() {
    let notify = std::rc::Rc::new(Notify::new());
    let mut first = pin!(notify.notified());
    park_with_panicking_waker(first.as_mut());
    let behind: Vec<_> = (0..3)
        .map(|_| {
            let notify = notify.clone();
            overlap::spawn(async move { notify.notified().await })
        })
        .collect();
    overlap::yield_now().await; // all three wait behind the first
    let woke = catch_unwind(AssertUnwindSafe(|| notify.notify_waiters()));
    assert!(woke.is_err(), "the waker's panic reaches the notifier");
    for task in behind {
        within(
            HANG,
            task,
            "a waiter behind the panicking waker was never woken",
        )
        .await
        .unwrap();
    }
}

#[overlap::test]
async fn released_permits_reach_everyone_behind_a_panicking_waker() {
    let sem = std::rc::Rc::new(Semaphore::new(0));
    let mut first = pin!(sem.acquire());
    park_with_panicking_waker(first.as_mut());
    let behind = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire().await.unwrap().forget() })
    };
    overlap::yield_now().await;
    let added = catch_unwind(AssertUnwindSafe(|| sem.add_permits(2)));
    assert!(added.is_err(), "the waker's panic reaches whoever released");
    within(
        HANG,
        behind,
        "the permit behind the panicking waker was never granted",
    )
    .await
    .unwrap();
    // The first waiter was handed its permit too, despite its waker.
    let permit = within(HANG, first, "the first waiter lost its permit").await;
    drop(permit.unwrap());
    assert_eq!(sem.available_permits(), 1);
}

/// A receive frees a slot, which goes to the sender waiting for it, whose waker panics: the
/// panic reaches the receive, but the value it was taking stays first in the queue (it was
/// dropped with the panic), and the sender keeps its slot.
#[overlap::test]
async fn a_receive_waking_a_panicking_sender_keeps_its_value() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let mut send = pin!(tx.send(1));
    park_with_panicking_waker(send.as_mut());
    let taken = catch_unwind(AssertUnwindSafe(|| rx.try_recv()));
    assert!(taken.is_err(), "the waker's panic reaches the receiver");
    assert_eq!(rx.try_recv(), Ok(0), "the value taken is still first");
    within(HANG, send, "the sender lost its slot")
        .await
        .unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    // And through `recv`.
    tx.try_send(2).unwrap();
    let mut send = pin!(tx.send(3));
    park_with_panicking_waker(send.as_mut());
    let taken = catch_unwind(AssertUnwindSafe(|| {
        let task = support::ManualTask::default();
        task.poll(pin!(rx.recv()))
    }));
    assert!(taken.is_err());
    assert_eq!(within(HANG, rx.recv(), "the kept value").await, Some(2));
    within(HANG, send, "the second sender").await.unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

/// The same for `cross_thread`, whose queue sits behind a lock.
#[overlap::test]
async fn a_cross_thread_receive_waking_a_panicking_sender_keeps_its_value() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(0).unwrap();
    let mut send = pin!(tx.send(1));
    park_with_panicking_waker(send.as_mut());
    let taken = catch_unwind(AssertUnwindSafe(|| rx.try_recv()));
    assert!(taken.is_err(), "the waker's panic reaches the receiver");
    assert_eq!(rx.try_recv(), Ok(0), "the value taken is still first");
    within(HANG, send, "the sender lost its slot")
        .await
        .unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    tx.try_send(2).unwrap();
    let mut send = pin!(tx.send(3));
    park_with_panicking_waker(send.as_mut());
    let taken = catch_unwind(AssertUnwindSafe(|| {
        let task = support::ManualTask::default();
        task.poll(pin!(rx.recv()))
    }));
    assert!(taken.is_err());
    assert_eq!(within(HANG, rx.recv(), "the kept value").await, Some(2));
    within(HANG, send, "the second sender").await.unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

/// A `CancellationToken` wait parked with a panicking waker: the cancel still sets every
/// child's flag and wakes every other wait (on the token and its children), and only then
/// passes the panic on; the token's tree is cancelled whole.
#[overlap::test]
async fn a_cancel_reaches_every_wait_and_child_behind_a_panicking_waker() {
    let root = overlap::sync::CancellationToken::new();
    let child = root.child_token();
    let grandchild = child.child_token();
    let mut first = pin!(root.cancelled());
    park_with_panicking_waker(first.as_mut());
    let mut child_first = pin!(child.cancelled());
    park_with_panicking_waker(child_first.as_mut());
    let behind: Vec<_> = [&root, &child, &grandchild]
        .into_iter()
        .map(|t| overlap::spawn(t.clone().cancelled_owned()))
        .collect();
    overlap::yield_now().await;
    let cancelled = catch_unwind(AssertUnwindSafe(|| root.cancel()));
    assert!(
        cancelled.is_err(),
        "the waker's panic reaches the canceller"
    );
    assert!(child.is_cancelled() && grandchild.is_cancelled());
    for wait in behind {
        within(HANG, wait, "a wait behind the panicking waker")
            .await
            .unwrap();
    }
}

/// The same for a `TaskTracker`'s waits: the close wakes each wait behind the panicking one.
#[overlap::test]
async fn a_tracker_done_wakes_every_wait_behind_a_panicking_waker() {
    let tracker = overlap::task::TaskTracker::new();
    let mut first = pin!(tracker.wait());
    park_with_panicking_waker(first.as_mut());
    let behind: Vec<_> = (0..3)
        .map(|_| {
            let tracker = tracker.clone();
            overlap::spawn(async move { tracker.wait().await })
        })
        .collect();
    overlap::yield_now().await;
    let closed = catch_unwind(AssertUnwindSafe(|| tracker.close()));
    assert!(closed.is_err(), "the waker's panic reaches the closer");
    assert!(tracker.is_closed());
    for wait in behind {
        within(HANG, wait, "a wait behind the panicking waker")
            .await
            .unwrap();
    }
}

/// The wait that completes a barrier's round wakes the others; one of their wakers panics:
/// the panic reaches the completing wait's poll, but the round it completed is its own
/// (everyone else in it is released), and polled again it is ready as the leader instead of
/// arriving a second time, in the next round.
#[test]
fn the_wait_completing_a_round_behind_a_panicking_waker_stays_its_leader() {
    let barrier = Barrier::new(3);
    let mut first = pin!(barrier.wait());
    park_with_panicking_waker(first.as_mut());
    let task = support::ManualTask::default();
    let mut second = pin!(barrier.wait());
    assert!(task.poll(second.as_mut()).is_pending());
    let mut last = pin!(barrier.wait());
    let noop = &mut Context::from_waker(Waker::noop());
    let polled = catch_unwind(AssertUnwindSafe(|| last.as_mut().poll(noop).is_ready()));
    assert!(
        polled.is_err(),
        "the waker's panic reaches the completing wait"
    );
    assert!(
        task.is_woken(),
        "the wait behind the panicking waker is released"
    );
    let again = last.as_mut().poll(noop).map(|r| r.is_leader());
    assert_eq!(
        again,
        Poll::Ready(true),
        "the leader, not an arrival in the next round"
    );
    let others: Vec<_> = [first.as_mut().poll(noop), task.poll(second.as_mut())]
        .into_iter()
        .map(|p| p.map(|r| r.is_leader()))
        .collect();
    assert_eq!(others, [Poll::Ready(false), Poll::Ready(false)]);
    // The next round starts empty: three new waits complete it, one of them leading.
    let mut next: Vec<_> = (0..3).map(|_| Box::pin(barrier.wait())).collect();
    let results: Vec<_> = next.iter_mut().map(|w| w.as_mut().poll(noop)).collect();
    assert_eq!(results[..2], [Poll::Pending, Poll::Pending]);
    assert!(matches!(results[2], Poll::Ready(r) if r.is_leader()));
}
