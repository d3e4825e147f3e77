//! An adversarial review of the point-to-point channels, `oneshot` and `mpsc`: every end and
//! every wait that goes away lets go of the waker it registered (and the other side never
//! wakes it afterwards); a value is dropped once, at the moment the contract says, on the
//! thread that holds it last; waiting senders keep their order through a cancel at the
//! front, a cancel in the middle and a sender that comes back; `close` with queued values,
//! waiting senders and a held permit; the capacity once the receiver is gone. The model of
//! the counts is in `sync_channels_review_counts.rs`.

mod support;

use std::cell::Cell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::Poll;
use std::thread::ThreadId;

use overlap::sync::mpsc::{self, SendError, TryRecvError, TrySendError};
use overlap::sync::{oneshot, PollSender};
use support::{abandon, wait_on, ManualTask};

/// Polls `fut` with `task`'s waker, expecting it to be ready.
fn ready<F: Future + ?Sized>(task: &ManualTask, fut: Pin<&mut F>) -> F::Output {
    match task.poll(fut) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("still waiting"),
    }
}

/// A value that counts its drops in a shared counter.
#[derive(Debug)]
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A value that records the thread it was dropped on.
#[derive(Debug)]
struct DroppedOn(std::sync::Arc<std::sync::Mutex<Vec<ThreadId>>>);

impl Drop for DroppedOn {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(std::thread::current().id());
    }
}

/// A oneshot receiver awaited and then dropped (a timeout around `rx.await` that fired) let
/// its waker stay in the channel, where the sender's drop (after a refused send) woke it: a
/// task woken for a reply it had stopped waiting for, its waker kept by the sender. And a
/// sender that waited in `closed()`, then sent, left its waker for the receiver's drop to
/// call. Both local and `cross_thread`.
#[overlap::test]
async fn oneshot_ends_that_go_take_their_wakers_and_are_never_woken_again() {
    // The receiver waits, then goes; the sender's refused send and drop wake nobody.
    let task = ManualTask::default();
    let (tx, mut rx) = oneshot::channel::<u32>();
    wait_on(&task, Pin::new(&mut rx));
    assert_eq!(task.wakers_held(), 1, "the waiting receive keeps the waker");
    drop(rx);
    assert_eq!(task.wakers_held(), 0, "the dropped receiver's waker stayed");
    assert_eq!(tx.send(7), Err(7), "the value comes back");
    assert!(!task.is_woken(), "the dropped receiver's task was woken");

    // The sender waits in `closed()`, then sends (and so goes); the receiver's drop wakes
    // nobody.
    let task = ManualTask::default();
    let (mut tx, rx) = oneshot::channel::<u32>();
    wait_on(&task, pin!(tx.closed()));
    assert_eq!(task.wakers_held(), 1, "closed() keeps the sender's waker");
    assert_eq!(tx.send(8), Ok(()));
    assert_eq!(
        task.wakers_held(),
        0,
        "the sent (dropped) sender's waker stayed"
    );
    drop(rx);
    assert!(!task.is_woken(), "the gone sender's task was woken");

    // The same through a plain drop of the sender.
    let task = ManualTask::default();
    let (mut tx, mut rx) = oneshot::channel::<u32>();
    wait_on(&task, pin!(tx.closed()));
    drop(tx);
    assert_eq!(task.wakers_held(), 0, "the dropped sender's waker stayed");
    rx.close();
    drop(rx);
    assert!(!task.is_woken(), "the dropped sender's task was woken");

    // cross_thread: the same state behind a lock.
    let task = ManualTask::default();
    let (tx, mut rx) = oneshot::cross_thread::channel::<u32>();
    wait_on(&task, Pin::new(&mut rx));
    drop(rx);
    assert_eq!(
        task.wakers_held(),
        0,
        "cross_thread: the receiver's waker stayed"
    );
    assert_eq!(tx.send(9), Err(9));
    assert!(
        !task.is_woken(),
        "cross_thread: the dropped receiver's task was woken"
    );
    let task = ManualTask::default();
    let (mut tx, rx) = oneshot::cross_thread::channel::<u32>();
    wait_on(&task, pin!(tx.closed()));
    assert_eq!(tx.send(10), Ok(()));
    assert_eq!(
        task.wakers_held(),
        0,
        "cross_thread: the sender's waker stayed"
    );
    drop(rx);
    assert!(
        !task.is_woken(),
        "cross_thread: the gone sender's task was woken"
    );
}

/// Each `try_recv` state in turn, and each value dropped exactly once at its moment: a value
/// sent and never read goes with the receiver; one sent after `close` comes back whole; one
/// sent before `close` is still received; `closed()` completes on `close` while the receiver
/// lives.
#[overlap::test]
async fn oneshot_try_recv_states_and_the_moment_each_value_is_dropped() {
    let drops = Rc::new(Cell::new(0));
    let counted = || Counted(drops.clone());

    // Empty, then the value, then Closed; terminated only once an outcome was given.
    let (tx, mut rx) = oneshot::channel::<Counted>();
    assert!(matches!(rx.try_recv(), Err(oneshot::TryRecvError::Empty)));
    assert!(!rx.is_terminated() && rx.is_empty());
    assert!(tx.send(counted()).is_ok());
    assert!(!rx.is_empty() && !rx.is_terminated());
    let got = rx.try_recv().expect("the value sent");
    assert!(rx.is_terminated() && rx.is_empty());
    assert!(matches!(rx.try_recv(), Err(oneshot::TryRecvError::Closed)));
    assert_eq!(drops.get(), 0, "the value is the caller's now");
    drop(got);
    drop(rx);
    assert_eq!(drops.get(), 1, "dropped once, by its taker");

    // Sent, never read: dropped with the receiver, not before.
    let (tx, rx) = oneshot::channel::<Counted>();
    assert!(tx.send(counted()).is_ok());
    assert_eq!(drops.get(), 1, "held for the receiver");
    drop(rx);
    assert_eq!(
        drops.get(),
        2,
        "dropped with the receiver that never read it"
    );

    // Closed first: `closed()` completes while the receiver lives, the send comes back.
    let (mut tx, mut rx) = oneshot::channel::<Counted>();
    let task = ManualTask::default();
    let mut closed = Box::pin(tx.closed());
    wait_on(&task, closed.as_mut());
    rx.close();
    assert!(task.is_woken(), "close woke the sender's closed()");
    ready(&task, closed.as_mut());
    drop(closed);
    assert!(tx.is_closed());
    let back = tx.send(counted()).expect_err("refused after close");
    assert_eq!(drops.get(), 2, "the refused value came back undropped");
    drop(back);
    assert_eq!(drops.get(), 3);
    assert!(matches!(rx.try_recv(), Err(oneshot::TryRecvError::Closed)));
    assert!(rx.is_terminated());

    // Sent, then closed: still received (close stops only what comes later).
    let (tx, mut rx) = oneshot::channel::<Counted>();
    assert!(tx.send(counted()).is_ok());
    rx.close();
    let got = (&mut rx)
        .await
        .expect("a value sent before close is received");
    drop(got);
    assert_eq!(drops.get(), 4);
    assert!(matches!(rx.try_recv(), Err(oneshot::TryRecvError::Closed)));
    drop(rx);
    assert_eq!(drops.get(), 4, "nothing dropped twice");
}

/// `cross_thread`: a value sent from a plain thread and never read is dropped on the thread
/// that drops the receiver (the sender went with its send); a value refused because the
/// receiver went on another thread comes back to the sending thread, where it is dropped.
#[test]
fn oneshot_cross_thread_values_are_dropped_on_the_thread_that_holds_them_last() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let main = std::thread::current().id();

    let (tx, rx) = oneshot::cross_thread::channel::<DroppedOn>();
    let l = log.clone();
    let sender = std::thread::spawn(move || {
        assert!(tx.send(DroppedOn(l)).is_ok());
        std::thread::current().id()
    });
    let sender_id = sender.join().unwrap();
    assert!(log.lock().unwrap().is_empty(), "held for the receiver");
    drop(rx);
    assert_eq!(
        *log.lock().unwrap(),
        [main],
        "dropped by the receiver's drop, here"
    );
    assert_ne!(sender_id, main);

    let (tx, rx) = oneshot::cross_thread::channel::<DroppedOn>();
    std::thread::spawn(move || drop(rx)).join().unwrap();
    let l = log.clone();
    let refusing = std::thread::spawn(move || {
        let back = tx.send(DroppedOn(l)).expect_err("the receiver is gone");
        drop(back);
        std::thread::current().id()
    });
    let refusing_id = refusing.join().unwrap();
    assert_eq!(*log.lock().unwrap(), [main, refusing_id]);
}

/// Every way a bounded sender waits (`send`, `reserve`, `reserve_many`, `reserve_owned`,
/// `closed`, `PollSender`'s reserve), abandoned on a full channel, keeps no waker and no
/// place: the freed slot goes to the next value at once. A `PollSender` dropped or aborted
/// mid-reserve too.
#[overlap::test]
async fn mpsc_every_abandoned_sender_wait_lets_go_of_its_waker_and_its_place() {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    abandon(tx.send(3));
    abandon(tx.reserve());
    abandon(tx.reserve_many(2));
    abandon(tx.clone().reserve_owned());
    abandon(tx.closed());
    let (utx, _urx) = mpsc::unbounded_channel::<u32>();
    abandon(utx.closed());
    assert_eq!(
        tx.strong_count(),
        1,
        "the owned reserve's sender went with it"
    );

    for abort in [false, true] {
        let task = ManualTask::default();
        let mut poll = PollSender::new(tx.clone());
        let pending = task.poll(pin!(std::future::poll_fn(|cx| Poll::Ready(
            poll.poll_reserve(cx)
        ))));
        assert!(matches!(pending, Poll::Ready(Poll::Pending)));
        assert_eq!(
            task.wakers_held(),
            1,
            "the reserve in progress holds the waker"
        );
        if abort {
            assert!(poll.abort_send(), "a reserve was in progress");
            assert_eq!(task.wakers_held(), 0, "abort_send kept the waker");
            drop(poll);
        } else {
            drop(poll);
            assert_eq!(
                task.wakers_held(),
                0,
                "the dropped PollSender kept the waker"
            );
        }
    }
    assert_eq!(tx.strong_count(), 1);

    // Nobody is left in line: a freed slot is free at once.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(tx.capacity(), 1);
    assert_eq!(tx.try_send(4), Ok(()));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

/// Five senders wait on a full channel of one. The second leaves the middle of the line and
/// comes back (at the end); the first is granted the freed slot and dropped before filling
/// it, which passes it to the third, not to the one that came back. Each step wakes exactly
/// the one it serves, and the values arrive in that order.
#[overlap::test]
async fn mpsc_waiting_senders_keep_order_through_cancels_and_a_sender_that_comes_back() {
    let (tx, mut rx) = mpsc::channel::<&str>(1);
    tx.try_send("first").unwrap();
    let tasks: Vec<ManualTask> = (0..5).map(|_| ManualTask::default()).collect();
    let mut a = Box::pin(tx.send("a"));
    let mut b = Box::pin(tx.send("b"));
    let mut c = Box::pin(tx.send("c"));
    let mut d = Box::pin(tx.send("d"));
    wait_on(&tasks[0], a.as_mut());
    wait_on(&tasks[1], b.as_mut());
    wait_on(&tasks[2], c.as_mut());
    wait_on(&tasks[3], d.as_mut());
    drop(b); // leaves the middle
    assert_eq!(tasks[1].wakers_held(), 0);
    let mut b2 = Box::pin(tx.send("b again"));
    wait_on(&tasks[4], b2.as_mut()); // back, at the end
    assert_eq!(
        tx.try_send("late"),
        Err(TrySendError::Full("late")),
        "no cutting in"
    );

    let woken = |tasks: &[ManualTask]| -> Vec<usize> {
        (0..tasks.len()).filter(|&i| tasks[i].is_woken()).collect()
    };
    assert_eq!(rx.recv().await, Some("first"));
    assert_eq!(woken(&tasks), [0], "the slot went to the first in line");
    assert_eq!(tx.capacity(), 0, "reserved for it");
    drop(a); // granted, never filled
    assert_eq!(
        woken(&tasks),
        [0, 2],
        "passed to the third, the second having left"
    );
    assert_eq!(ready(&tasks[2], c.as_mut()), Ok(()));
    assert_eq!(rx.recv().await, Some("c"));
    assert!(tasks[3].is_woken() && !tasks[4].is_woken());
    assert_eq!(ready(&tasks[3], d.as_mut()), Ok(()));
    assert_eq!(rx.try_recv(), Ok("d"));
    assert!(tasks[4].is_woken());
    assert_eq!(ready(&tasks[4], b2.as_mut()), Ok(()));
    assert_eq!(rx.try_recv(), Ok("b again"));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!((tx.capacity(), rx.len()), (1, 0));
}

/// `close` with two values queued, a permit held, a send and a `reserve_many` waiting and a
/// `closed()` watcher: the waiters are woken, the send gets its value back, the watcher
/// completes; the queued values and then the permit's come out in order, then `None`, with
/// the lengths, capacity and flags right at every step.
#[overlap::test]
async fn mpsc_close_drains_the_queue_and_the_held_permit_then_ends() {
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    let permit = tx.try_reserve().unwrap();
    tx.try_send(3).unwrap();
    let (ts, tm, tw) = (
        ManualTask::default(),
        ManualTask::default(),
        ManualTask::default(),
    );
    let mut send = Box::pin(tx.send(4));
    let mut many = Box::pin(tx.reserve_many(2));
    let mut closed = Box::pin(tx.closed());
    wait_on(&ts, send.as_mut());
    wait_on(&tm, many.as_mut());
    wait_on(&tw, closed.as_mut());
    assert_eq!((rx.len(), rx.capacity(), rx.is_closed()), (3, 0, false));

    rx.close();
    assert!(ts.is_woken() && tm.is_woken() && tw.is_woken());
    assert_eq!(ready(&ts, send.as_mut()), Err(SendError(4)));
    assert!(ready(&tm, many.as_mut()).is_err());
    ready(&tw, closed.as_mut());
    assert!(rx.is_closed() && tx.is_closed());
    assert_eq!(tx.try_send(5), Err(TrySendError::Closed(5)));
    assert_eq!((rx.len(), rx.capacity()), (3, 0), "one slot still reserved");

    let task = ManualTask::default();
    for want in [1, 2, 3] {
        assert_eq!(rx.try_recv(), Ok(want));
    }
    assert!(rx.is_empty());
    let mut next = Box::pin(rx.recv());
    wait_on(&task, next.as_mut());
    permit.send(6);
    assert!(task.is_woken(), "the permit's value woke the receive");
    assert_eq!(ready(&task, next.as_mut()), Some(6));
    drop(next);
    assert_eq!(rx.recv().await, None);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!((rx.capacity(), rx.max_capacity()), (4, 4));
    drop(send);
    drop(many);
    drop(closed);
}

/// Once the receiver is gone nothing is queued, and a permit given back or used frees its
/// slot as before: the capacity climbs back to the maximum (the docs' "the capacity less
/// what is queued or reserved"), and a value sent through a permit is dropped at once. For
/// the local channel and `cross_thread`.
#[overlap::test]
async fn mpsc_capacity_comes_back_as_permits_go_after_the_receiver_is_dropped() {
    let drops = Rc::new(Cell::new(0));
    let (tx, rx) = mpsc::channel::<Counted>(3);
    let kept = tx.try_reserve().unwrap();
    let given_back = tx.try_reserve().unwrap();
    assert!(tx.try_send(Counted(drops.clone())).is_ok());
    drop(rx);
    assert_eq!(drops.get(), 1, "the queued value went with the receiver");
    assert_eq!(tx.capacity(), 1, "two slots still reserved");
    drop(given_back);
    assert_eq!(
        tx.capacity(),
        2,
        "a permit dropped after the receiver frees its slot"
    );
    kept.send(Counted(drops.clone()));
    assert_eq!(drops.get(), 2, "sent to nobody: dropped at once");
    assert_eq!((tx.capacity(), tx.max_capacity()), (3, 3));
    assert!(tx.try_reserve().is_err(), "closed");

    // Sends granted a slot just before the receiver went: one polled (refused), one
    // dropped unpolled; both slots come back.
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    let (ta, tb) = (ManualTask::default(), ManualTask::default());
    let mut a = Box::pin(tx.send(3));
    let mut b = Box::pin(tx.send(4));
    wait_on(&ta, a.as_mut());
    wait_on(&tb, b.as_mut());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert!(ta.is_woken() && tb.is_woken(), "both granted");
    drop(rx);
    assert_eq!(tx.capacity(), 0, "both slots granted");
    assert_eq!(ready(&ta, a.as_mut()), Err(SendError(3)));
    assert_eq!(tx.capacity(), 1, "the refused send's slot");
    drop(b);
    assert_eq!(tx.capacity(), 2, "the dropped send's slot");

    let (tx, rx) = mpsc::cross_thread::channel::<u32>(3);
    let kept = tx.try_reserve().unwrap();
    let given_back = tx.try_reserve().unwrap();
    tx.try_send(1).unwrap();
    drop(rx);
    assert_eq!(tx.capacity(), 1, "cross_thread: two slots still reserved");
    drop(given_back);
    assert_eq!(tx.capacity(), 2, "cross_thread: the dropped permit's slot");
    kept.send(2);
    assert_eq!(tx.capacity(), 3, "cross_thread: the used permit's slot");
}
