//! An adversarial review of the fan-out channels, `broadcast` and `watch`, and of every
//! channel's wakes: a ring of one behind a thousand lagging receivers, receivers made by
//! `resubscribe` or after the close, values dropped once each; ends that go let go of their
//! wakers; `watch`'s unmodified sends, sends with no receiver and late subscribers; a
//! receiver's waker that panics, or that sends into its own channel from `wake`.

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use overlap::sync::{broadcast, mpsc, oneshot, watch};
use support::{wait_on, ManualTask};

/// A value that counts its drops in a shared counter (its clones too).
#[derive(Clone, Debug)]
struct Counted(u32, Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.1.set(self.1.get() + 1);
    }
}

/// A broadcast ring of one and a thousand receivers that read nothing while five values
/// go by: each evicted value is dropped by the send that evicts it (once, not once per
/// receiver); `len` stays at one for the sender and every receiver; each receiver learns it
/// lost four, then reads the fifth, then waits; the fifth is dropped when the last receiver
/// has read it. A `resubscribe` of a lagging receiver starts after it, with no lag; a
/// receiver made after the last sender went is closed at once, while an old one first reads
/// what it had not.
#[overlap::test]
async fn broadcast_a_ring_of_one_behind_a_thousand_lagging_receivers() {
    let drops = Rc::new(Cell::new(0));
    let (tx, first) = broadcast::channel::<Counted>(1);
    let mut rxs: Vec<_> = (0..999).map(|_| tx.subscribe()).collect();
    rxs.push(first);
    assert_eq!(tx.receiver_count(), 1000);
    for v in 1..=5 {
        assert_eq!(tx.send(Counted(v, drops.clone())).ok(), Some(1000));
        assert_eq!(drops.get(), v as usize - 1, "evicted once, by the send");
    }
    assert_eq!(tx.len(), 1);
    assert!(
        rxs.iter().all(|rx| rx.len() == 1),
        "one value held for each"
    );

    // A resubscribe starts at the tail: no lag, nothing to read.
    let mut late = rxs[0].resubscribe();
    assert_eq!((late.len(), tx.receiver_count()), (0, 1001));
    assert_eq!(
        late.try_recv().err(),
        Some(broadcast::error::TryRecvError::Empty)
    );

    for (i, rx) in rxs.iter_mut().enumerate() {
        assert_eq!(
            rx.try_recv().err(),
            Some(broadcast::error::TryRecvError::Lagged(4)),
            "receiver {i}"
        );
        let got = rx.try_recv().expect("the value held");
        assert_eq!(got.0, 5, "receiver {i}");
        drop(got);
        assert_eq!(
            rx.try_recv().err(),
            Some(broadcast::error::TryRecvError::Empty)
        );
        // Its clone, and the held value itself once the last receiver has read it.
        let held_gone = usize::from(i == 999);
        assert_eq!(drops.get(), 4 + (i + 1) + held_gone, "receiver {i}");
    }
    assert_eq!((tx.len(), drops.get()), (0, 1005), "read by all: dropped");

    // One more value, read by half; then the sender goes.
    assert_eq!(tx.send(Counted(6, drops.clone())).ok(), Some(1001));
    for rx in rxs.iter_mut().take(500) {
        assert_eq!(rx.try_recv().ok().map(|v| v.0), Some(6));
    }
    rxs.truncate(750); // 250 unread receivers go
    assert_eq!(tx.receiver_count(), 751);
    drop(tx);
    let mut after = rxs[0].resubscribe();
    assert_eq!(
        after.try_recv().err(),
        Some(broadcast::error::TryRecvError::Closed)
    );
    assert!(after.is_closed());
    assert_eq!(
        rxs[0].try_recv().err(),
        Some(broadcast::error::TryRecvError::Closed)
    );
    let last = &mut rxs[749];
    assert_eq!(
        last.try_recv().ok().map(|v| v.0),
        Some(6),
        "unread before the close"
    );
    assert_eq!(
        last.try_recv().err(),
        Some(broadcast::error::TryRecvError::Closed)
    );
    assert_eq!(late.try_recv().ok().map(|v| v.0), Some(6));
    let before = drops.get();
    drop(rxs);
    drop(late);
    assert_eq!(
        drops.get(),
        before + 1,
        "the sixth went with the last who had not read it"
    );
}

/// Receivers and senders' `closed()` waits, once dropped, keep no waker in a broadcast or
/// watch channel, and what the other side does next wakes none of their tasks; a receiver
/// that waited and was dropped leaves the others' wakes alone.
#[overlap::test]
async fn broadcast_and_watch_dropped_ends_let_go_of_their_wakers() {
    let (btx, mut brx) = broadcast::channel::<u8>(2);
    let mut other = btx.subscribe();
    let (gone, stays) = (ManualTask::default(), ManualTask::default());
    wait_on(&gone, pin!(brx.recv()));
    let mut staying = Box::pin(other.recv());
    wait_on(&stays, staying.as_mut());
    assert_eq!(gone.wakers_held(), 1, "the receiver's slot holds the waker");
    drop(brx);
    assert_eq!(
        gone.wakers_held(),
        0,
        "the dropped broadcast receiver kept its waker"
    );
    assert_eq!(btx.send(1), Ok(1));
    assert!(!gone.is_woken() && stays.is_woken());
    assert_eq!(stays.poll(staying.as_mut()), Poll::Ready(Ok(1)));
    drop(staying);

    let (wtx, mut wrx) = watch::channel(0u8);
    let other = wrx.clone();
    let task = ManualTask::default();
    wait_on(&task, pin!(wrx.changed()));
    drop(wrx);
    assert_eq!(
        task.wakers_held(),
        0,
        "the dropped watch receiver kept its waker"
    );
    wtx.send(1).unwrap();
    drop(wtx);
    assert!(!task.is_woken());
    assert_eq!(*other.borrow(), 1);

    // A sender's `closed()` abandoned, then the last receiver goes.
    let (btx, brx) = broadcast::channel::<u8>(1);
    let task = ManualTask::default();
    wait_on(&task, pin!(btx.closed()));
    assert_eq!(task.wakers_held(), 0, "broadcast closed() kept its waker");
    drop(brx);
    assert!(!task.is_woken());
}

/// `watch`: an unmodified `send_if_modified` wakes nobody and is no change; a send with no
/// receiver gives its value back and changes nothing, while `send_replace` stores it and
/// hands the old one back; a late subscriber sees the current value as seen; the final
/// value is a change once after the sender goes, then `Err`, also for a receiver cloned
/// after that. Each value is dropped exactly once.
#[overlap::test]
async fn watch_unmodified_sends_sends_to_nobody_and_late_subscribers() {
    let drops = Rc::new(Cell::new(0));
    let c = |v| Counted(v, drops.clone());
    let (tx, mut rx) = watch::channel(c(0));
    let task = ManualTask::default();
    let mut changed = Box::pin(rx.changed());
    wait_on(&task, changed.as_mut());
    assert!(!tx.send_if_modified(|v| {
        v.0 = 0; // written, but reported unmodified
        false
    }));
    assert!(!task.is_woken(), "an unmodified send woke the receiver");
    assert!(tx.send_if_modified(|v| {
        v.0 = 1;
        true
    }));
    assert!(task.is_woken());
    assert_eq!(task.poll(changed.as_mut()), Poll::Ready(Ok(())));
    drop(changed);
    assert_eq!(rx.has_changed(), Ok(false), "seen by changed()");
    assert_eq!(drops.get(), 0, "modified in place");

    drop(rx);
    let back = tx.send(c(2)).expect_err("nobody to send to");
    assert_eq!((back.0 .0, tx.borrow().0, drops.get()), (2, 1, 0));
    drop(back);
    assert_eq!(drops.get(), 1);
    let old = tx.send_replace(c(3));
    assert_eq!(
        (old.0, tx.borrow().0, drops.get()),
        (1, 3, 1),
        "the old value comes back"
    );
    drop(old);

    let mut late = tx.subscribe();
    assert_eq!(
        late.has_changed(),
        Ok(false),
        "the current value counts as seen"
    );
    assert_eq!(late.borrow().0, 3);
    let mut before_close = late.clone();
    tx.send_modify(|v| v.0 = 4);
    drop(tx);
    assert_eq!(
        late.has_changed(),
        Err(watch::error::RecvError),
        "closed, as documented"
    );
    assert_eq!(late.changed().await, Ok(()), "the final value, once");
    assert_eq!(late.borrow_and_update().0, 4);
    assert_eq!(late.changed().await, Err(watch::error::RecvError));
    let mut cloned = late.clone();
    assert_eq!(
        cloned.changed().await,
        Err(watch::error::RecvError),
        "seen, as its source"
    );
    assert_eq!(before_close.changed().await, Ok(()));
    assert_eq!(drops.get(), 2);
    drop((late, cloned, before_close));
    assert_eq!(drops.get(), 3, "the last value went with the last end");
}

/// A waker that panics when woken.
struct Panicking;

impl Wake for Panicking {
    fn wake(self: Arc<Self>) {
        panic!("a receiver's waker panics on purpose");
    }
}

/// A receiver's waker that panics, between two others, when a value is sent: the panic
/// reaches the sender, yet the value is in the channel for every receiver (the panicking
/// one's too) and the others were woken. For broadcast, watch, mpsc (unbounded, bounded)
/// and oneshot.
#[overlap::test]
async fn a_panicking_receiver_waker_costs_no_value_and_no_other_wake() {
    let panicking = Waker::from(Arc::new(Panicking));
    let mut cx = Context::from_waker(&panicking);

    let (tx, mut a) = broadcast::channel::<u8>(2);
    let (mut b, mut c) = (tx.subscribe(), tx.subscribe());
    let (ta, tc) = (ManualTask::default(), ManualTask::default());
    wait_on(&ta, pin!(a.recv()));
    assert!(pin!(b.recv()).poll(&mut cx).is_pending());
    wait_on(&tc, pin!(c.recv()));
    assert!(catch_unwind(AssertUnwindSafe(|| tx.send(7))).is_err());
    assert!(ta.is_woken() && tc.is_woken(), "broadcast: a wake was lost");
    for rx in [&mut a, &mut b, &mut c] {
        assert_eq!(rx.try_recv(), Ok(7));
    }
    assert_eq!(tx.len(), 0);

    let (tx, mut a) = watch::channel(0u8);
    let (mut b, mut c) = (a.clone(), a.clone());
    wait_on(&ta, pin!(a.changed()));
    assert!(pin!(b.changed()).poll(&mut cx).is_pending());
    wait_on(&tc, pin!(c.changed()));
    assert!(catch_unwind(AssertUnwindSafe(|| tx.send(7))).is_err());
    assert!(ta.is_woken() && tc.is_woken(), "watch: a wake was lost");
    for rx in [&mut a, &mut b, &mut c] {
        assert_eq!(rx.has_changed(), Ok(true));
        assert_eq!(*rx.borrow_and_update(), 7);
    }

    for bounded in [false, true] {
        let (tx, mut rx) = if bounded {
            let (tx, rx) = mpsc::channel::<u8>(4);
            (Ok(tx), rx)
        } else {
            let (tx, rx) = mpsc::unbounded_channel::<u8>();
            (Err(tx), rx)
        };
        assert!(pin!(rx.recv()).poll(&mut cx).is_pending());
        let sent = catch_unwind(AssertUnwindSafe(|| match &tx {
            Ok(tx) => tx.try_send(7).is_ok(),
            Err(tx) => tx.send(7).is_ok(),
        }));
        assert!(sent.is_err(), "the waker ran");
        assert_eq!(
            rx.try_recv(),
            Ok(7),
            "mpsc (bounded: {bounded}): the value was lost"
        );
        assert_eq!(rx.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    }

    let (tx, mut rx) = oneshot::channel::<u8>();
    assert!(Pin::new(&mut rx).poll(&mut cx).is_pending());
    assert!(catch_unwind(AssertUnwindSafe(|| tx.send(7))).is_err());
    assert_eq!(rx.try_recv(), Ok(7), "oneshot: the value was lost");
}

thread_local! {
    /// What the next [`Reentrant`] wake runs (once).
    static ON_WAKE: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
}

/// A waker that runs the thread's [`ON_WAKE`] when woken: user code that uses the channel
/// that is waking it.
struct Reentrant;

impl Wake for Reentrant {
    fn wake(self: Arc<Self>) {
        if let Some(f) = ON_WAKE.with(|a| a.borrow_mut().take()) {
            f();
        }
    }
}

fn on_wake(f: impl FnOnce() + 'static) {
    ON_WAKE.with(|a| *a.borrow_mut() = Some(Box::new(f)));
}

/// A receiver's waker that, from `wake`, sends the next value into the same channel (or,
/// for oneshot, takes the value from its receiver): no borrow error, no wake lost, and the
/// values arrive in order. The channel is woken from inside its own send.
#[overlap::test]
async fn a_receiver_waker_that_uses_its_own_channel_from_wake() {
    let reentrant = Waker::from(Arc::new(Reentrant));
    let mut cx = Context::from_waker(&reentrant);

    let (tx, mut rx) = broadcast::channel::<u8>(4);
    let mut other = tx.subscribe();
    let tx = Rc::new(tx);
    assert!(pin!(rx.recv()).poll(&mut cx).is_pending());
    let t = tx.clone();
    on_wake(move || assert_eq!(t.send(2), Ok(2)));
    assert_eq!(tx.send(1), Ok(2));
    for r in [&mut rx, &mut other] {
        assert_eq!((r.try_recv(), r.try_recv()), (Ok(1), Ok(2)));
    }

    let (tx, mut rx) = watch::channel(0u8);
    let tx = Rc::new(tx);
    let task = ManualTask::default();
    let mut other = rx.clone();
    assert!(pin!(rx.changed()).poll(&mut cx).is_pending());
    let mut waiting = Box::pin(other.changed());
    wait_on(&task, waiting.as_mut());
    let t = tx.clone();
    on_wake(move || t.send_modify(|v| *v += 10));
    tx.send(1).unwrap();
    assert!(task.is_woken(), "watch: the other receiver's wake was lost");
    assert_eq!(task.poll(waiting.as_mut()), Poll::Ready(Ok(())));
    drop(waiting);
    assert_eq!((*rx.borrow_and_update(), *other.borrow()), (11, 11));

    let (tx, mut rx) = mpsc::channel::<u8>(2);
    let tx = Rc::new(tx);
    assert!(pin!(rx.recv()).poll(&mut cx).is_pending());
    let t = tx.clone();
    on_wake(move || assert_eq!(t.try_send(2), Ok(())));
    tx.try_send(1).unwrap();
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(1), Ok(2)));
    assert_eq!(tx.capacity(), 2);

    let (tx, rx) = oneshot::channel::<u8>();
    let rx = Rc::new(RefCell::new(rx));
    assert!(Pin::new(&mut *rx.borrow_mut()).poll(&mut cx).is_pending());
    let (r, got) = (rx.clone(), Rc::new(Cell::new(None)));
    let g = got.clone();
    on_wake(move || g.set(r.borrow_mut().try_recv().ok()));
    assert_eq!(tx.send(7), Ok(()));
    assert_eq!(
        got.get(),
        Some(7),
        "oneshot: the value was not there when woken"
    );
    assert!(rx.borrow().is_terminated());
}
