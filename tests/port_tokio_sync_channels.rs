//! Behaviours of tokio's channel tests, ported to `overlap::sync`'s single-threaded
//! channels. Each group names the tokio file (tokio/tests/…) it comes from:
//!
//! - `sync_oneshot.rs`: closing from either side, `try_recv` after the outcome, which waker
//!   a send or a close wakes when the waiting task changed;
//! - `sync_mpsc.rs`: reserved slots and who a freed one wakes, `try_recv` on a channel
//!   that closed with values still queued, capacity after reserves;
//! - `sync_broadcast.rs`: lagging across the ring's wrap with the sender gone, a receive
//!   moved between tasks, a slow receiver that holds values others have read;
//! - `sync_watch.rs`: the final value seen before the close, a `send_modify` that panics.
//!
//! Threads and `blocking_*` calls have no counterpart here (no end is `Send`).

mod support;

use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use overlap::sync::mpsc::error::{TryRecvError, TrySendError};
use overlap::sync::{broadcast, mpsc, oneshot, watch};
use support::{polled, ManualTask};

// ---- sync_oneshot.rs ----

#[test]
fn a_oneshot_sender_dropped_unsent_wakes_the_receiver_with_an_error() {
    let (tx, rx) = oneshot::channel::<u8>();
    let mut rx = polled(rx);
    assert_eq!(
        rx.woken_by(|| drop(tx)),
        Poll::Ready(Err(oneshot::RecvError))
    );
}

#[test]
fn closing_the_receiver_keeps_a_sent_value_and_otherwise_wakes_closed() {
    let (tx, mut rx) = oneshot::channel();
    tx.send(1).unwrap();
    rx.close();
    assert_eq!(polled(&mut rx).poll(), Poll::Ready(Ok(1)));

    let (mut tx, mut rx) = oneshot::channel::<u8>();
    let task = ManualTask::default();
    assert!(task.poll(std::pin::pin!(tx.closed())).is_pending());
    rx.close();
    assert!(task.is_woken(), "close woke the sender's closed");
    assert!(tx.is_closed());
    assert_eq!(task.poll(std::pin::pin!(tx.closed())), Poll::Ready(()));
    assert_eq!(tx.send(3), Err(3));
    assert_eq!(polled(&mut rx).poll(), Poll::Ready(Err(oneshot::RecvError)));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
}

#[test]
fn try_recv_after_the_value_was_taken_reports_closed() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    tx.send(17).unwrap();
    assert_eq!(rx.try_recv(), Ok(17));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    rx.close();

    let (tx, mut rx) = oneshot::channel::<u8>();
    tx.send(18).unwrap();
    assert_eq!(polled(&mut rx).poll(), Poll::Ready(Ok(18)));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    assert!(rx.is_terminated() && rx.is_empty());
    rx.close();
}

#[test]
fn a_oneshot_end_moved_to_another_task_wakes_only_the_new_one_and_lets_the_old_go() {
    let (tx, mut rx) = oneshot::channel();
    let (t1, t2) = (ManualTask::default(), ManualTask::default());
    assert!(t1.poll(Pin::new(&mut rx)).is_pending());
    assert_eq!((t1.wakers_held(), t2.wakers_held()), (1, 0));
    assert!(t2.poll(Pin::new(&mut rx)).is_pending());
    assert_eq!((t1.wakers_held(), t2.wakers_held()), (0, 1));
    tx.send(1).unwrap();
    assert!(!t1.is_woken() && t2.is_woken());
    assert_eq!(t2.poll(Pin::new(&mut rx)), Poll::Ready(Ok(1)));

    let (mut tx, rx) = oneshot::channel::<u8>();
    assert!(t1
        .poll(Pin::new(&mut std::future::poll_fn(|cx| tx.poll_closed(cx))))
        .is_pending());
    assert!(t2
        .poll(Pin::new(&mut std::future::poll_fn(|cx| tx.poll_closed(cx))))
        .is_pending());
    assert_eq!((t1.wakers_held(), t2.wakers_held()), (0, 1));
    drop(rx);
    assert!(!t1.is_woken() && t2.is_woken());

    // Both ends gone: no waker is kept alive by the channel.
    let (mut tx, mut rx) = oneshot::channel::<u8>();
    assert!(t1
        .poll(Pin::new(&mut std::future::poll_fn(|cx| tx.poll_closed(cx))))
        .is_pending());
    assert!(t2.poll(Pin::new(&mut rx)).is_pending());
    drop((tx, rx));
    assert_eq!((t1.wakers_held(), t2.wakers_held()), (0, 0));
}

#[test]
fn a_oneshot_receiver_is_empty_before_and_after_its_value() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    assert!(rx.is_empty());
    tx.send(17).unwrap();
    assert!(!rx.is_empty());
    assert_eq!(polled(&mut rx).poll(), Poll::Ready(Ok(17)));
    assert!(rx.is_empty());

    let (tx, mut rx) = oneshot::channel::<u8>();
    drop(tx);
    assert!(rx.is_empty());
    assert_eq!(polled(&mut rx).poll(), Poll::Ready(Err(oneshot::RecvError)));
    assert!(rx.is_empty());
}

// ---- sync_mpsc.rs ----

#[test]
fn a_slot_freed_by_a_receive_or_a_dropped_permit_wakes_one_waiting_reserve_each() {
    let (tx, mut rx) = mpsc::channel::<i32>(2);
    let p1 = tx.try_reserve().unwrap();
    let p2 = tx.try_reserve().unwrap();
    let (t3, t4) = (ManualTask::default(), ManualTask::default());
    let mut r3 = Box::pin(tx.reserve());
    let mut r4 = Box::pin(tx.reserve());
    assert!(t3.poll(r3.as_mut()).is_pending());
    assert!(t4.poll(r4.as_mut()).is_pending());
    p1.send(1);
    assert!(
        !t3.is_woken(),
        "a used permit's slot is free only once received"
    );
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(t3.is_woken() && !t4.is_woken());
    drop(p2);
    assert!(t4.is_woken());
    // Both slots are promised to r3 and r4: a new reserve waits.
    let t1 = ManualTask::default();
    assert!(t1.poll(std::pin::pin!(tx.reserve())).is_pending());
    let Poll::Ready(Ok(p3)) = t3.poll(r3.as_mut()) else {
        panic!("r3 has its slot")
    };
    p3.send(3);
    assert_eq!(tx.capacity(), 0);
    assert!(matches!(tx.try_send(9), Err(TrySendError::Full(9))));
    drop(r4);
    assert_eq!(
        tx.capacity(),
        1,
        "a woken reserve dropped unpolled gives its slot back"
    );
}

#[test]
fn a_reserve_dropped_while_waiting_is_passed_over() {
    let (tx1, mut rx) = mpsc::channel::<()>(1);
    let tx2 = tx1.clone();
    tx1.try_send(()).unwrap();
    let (t1, t2) = (ManualTask::default(), ManualTask::default());
    let mut r1 = Box::pin(tx1.reserve());
    assert!(t1.poll(r1.as_mut()).is_pending());
    let mut r2 = Box::pin(tx2.reserve());
    assert!(t2.poll(r2.as_mut()).is_pending());
    drop(r1);
    assert_eq!(rx.try_recv(), Ok(()));
    assert!(t2.is_woken() && !t1.is_woken());
    drop(r2);
    drop((tx1, tx2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn a_close_fails_waiting_reserves_and_a_held_permit_still_delivers() {
    let (tx1, mut rx) = mpsc::channel::<i32>(1);
    let tx2 = tx1.clone();
    let permit1 = tx1.try_reserve().unwrap();
    let t2 = ManualTask::default();
    let mut r2 = Box::pin(tx2.reserve());
    assert!(t2.poll(r2.as_mut()).is_pending());
    rx.close();
    assert!(t2.is_woken());
    assert!(matches!(t2.poll(r2.as_mut()), Poll::Ready(Err(_))));
    assert!(matches!(tx1.try_send(5), Err(TrySendError::Closed(5))));
    assert!(matches!(tx2.try_reserve(), Err(TrySendError::Closed(()))));

    let receiver = ManualTask::default();
    assert!(receiver.poll(std::pin::pin!(rx.recv())).is_pending());
    permit1.send(123);
    assert!(receiver.is_woken());
    assert_eq!(rx.try_recv(), Ok(123));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn after_a_close_the_last_permit_dropped_ends_the_waiting_receive() {
    let (tx, mut rx) = mpsc::channel::<()>(100);
    let _tx2 = tx.clone();
    let permit = tx.try_reserve().unwrap();
    rx.close();
    let task = ManualTask::default();
    let mut recv = Box::pin(std::future::poll_fn(|cx| rx.poll_recv(cx)));
    assert!(
        task.poll(recv.as_mut()).is_pending(),
        "a permit may still send"
    );
    drop(permit);
    assert!(task.is_woken());
    assert_eq!(task.poll(recv.as_mut()), Poll::Ready(None));
}

#[test]
fn a_slot_freed_after_the_close_wakes_a_reserve_that_then_fails() {
    let (tx1, mut rx) = mpsc::channel::<()>(1);
    let tx2 = tx1.clone();
    let permit1 = tx1.try_reserve().unwrap();
    let t2 = ManualTask::default();
    let mut r2 = Box::pin(tx2.reserve());
    assert!(t2.poll(r2.as_mut()).is_pending());
    rx.close();
    drop(permit1);
    assert!(t2.is_woken());
    drop(r2);
    let done = ManualTask::default();
    assert_eq!(done.poll(std::pin::pin!(rx.recv())), Poll::Ready(None));
}

#[test]
fn try_recv_takes_what_is_queued_then_reports_empty_or_disconnected() {
    let (tx, mut rx) = mpsc::channel(5);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    for round in 0..3 {
        for i in 0..5 {
            tx.try_send(round * 10 + i).unwrap();
        }
        assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
        assert_eq!(rx.try_recv(), Ok(round * 10));
        tx.try_send(round * 10 + 5).unwrap();
        for i in 1..6 {
            assert_eq!(rx.try_recv(), Ok(round * 10 + i));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
    tx.try_send(7).unwrap();
    tx.try_send(8).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(7));
    assert_eq!(rx.try_recv(), Ok(8));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    for n in 0..40 {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..n {
            tx.send(i).unwrap();
        }
        for i in 0..n {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}

#[test]
fn try_recv_on_a_closed_receiver_drains_then_disconnects_while_senders_live() {
    let (tx, mut rx) = mpsc::channel(4);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

    let (utx, mut urx) = mpsc::unbounded_channel();
    utx.send(1).unwrap();
    urx.close();
    assert!(utx.send(2).is_err());
    assert_eq!(urx.try_recv(), Ok(1));
    assert_eq!(urx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn dropping_the_receiver_fails_every_try_and_drops_the_queue() {
    let (tx, rx) = mpsc::channel(100);
    let msg = Rc::new(());
    tx.try_send(msg.clone()).unwrap();
    drop(rx);
    assert!(matches!(
        tx.try_send(msg.clone()),
        Err(TrySendError::Closed(_))
    ));
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
    assert!(tx.clone().try_reserve_owned().is_err());
    assert_eq!(Rc::strong_count(&msg), 1);
    let task = ManualTask::default();
    assert!(matches!(
        task.poll(std::pin::pin!(tx.reserve())),
        Poll::Ready(Err(_))
    ));
}

#[test]
fn capacity_drops_by_one_per_reserve_and_per_send_while_max_capacity_stays() {
    let (tx, mut rx) = mpsc::channel::<()>(10);
    assert_eq!((tx.capacity(), tx.max_capacity()), (10, 10));
    let permit = tx.try_reserve().unwrap();
    assert_eq!((tx.capacity(), tx.max_capacity()), (9, 10));
    tx.try_send(()).unwrap();
    assert_eq!((tx.capacity(), tx.max_capacity()), (8, 10));
    drop(permit);
    rx.try_recv().unwrap();
    assert_eq!(tx.capacity(), 10);
    rx.close();
    assert_eq!(tx.max_capacity(), 10);
}

#[overlap::test]
async fn recv_many_batches_what_the_sender_gets_in() {
    let (tx, mut rx) = mpsc::channel(2);
    overlap::spawn(async move {
        for v in [1, 2, 7] {
            tx.send(v).await.unwrap();
        }
    });
    let mut buf = Vec::with_capacity(16);
    let (mut got, mut rounds) = (0, 0);
    while got < 3 {
        buf.clear();
        let n = rx.recv_many(&mut buf, 16).await;
        assert_eq!(n, buf.len());
        assert!(n > 0);
        got += n;
        rounds += 1;
    }
    assert!(rounds > 1, "a capacity of 2 cannot hold all 3 at once");
    assert_eq!(rx.recv().await, None);
    assert_eq!(rx.recv_many(&mut buf, 16).await, 0, "closed and empty");
}

// ---- sync_broadcast.rs ----

#[test]
fn a_receive_moved_to_another_task_wakes_the_new_task() {
    let (tx, mut rx) = broadcast::channel(1);
    let mut recv = Box::pin(rx.recv());
    let (t1, t2) = (ManualTask::default(), ManualTask::default());
    assert!(t1.poll(recv.as_mut()).is_pending());
    assert!(t2.poll(recv.as_mut()).is_pending());
    tx.send("hello").unwrap();
    assert!(t2.is_woken());
    assert_eq!(t2.poll(recv.as_mut()), Poll::Ready(Ok("hello")));
}

#[test]
fn a_slow_receiver_keeps_what_it_has_not_read_while_another_moves_on() {
    let (tx, mut rx1) = broadcast::channel(16);
    let mut rx2 = tx.subscribe();
    let t2 = ManualTask::default();
    let mut recv2 = Box::pin(rx2.recv());
    assert!(t2.poll(recv2.as_mut()).is_pending());
    tx.send("one").unwrap();
    tx.send("two").unwrap();
    assert!(t2.is_woken());
    assert_eq!(rx1.try_recv(), Ok("one"));
    assert_eq!(rx1.try_recv(), Ok("two"));
    tx.send("three").unwrap();
    assert_eq!(rx1.try_recv(), Ok("three"));
    assert_eq!(t2.poll(recv2.as_mut()), Poll::Ready(Ok("one")));
    drop(recv2);
    assert_eq!(rx2.try_recv(), Ok("two"));
    assert_eq!(rx2.try_recv(), Ok("three"));
    assert_eq!(rx2.try_recv(), Err(broadcast::TryRecvError::Empty));
}

#[test]
fn a_lagging_receiver_recovers_after_the_ring_wraps_with_the_sender_gone() {
    for (sent, lost) in [(3, 1), (4, 2), (7, 5)] {
        let (tx, mut rx) = broadcast::channel(2);
        for v in 1..=sent {
            tx.send(v).unwrap();
        }
        drop(tx);
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(lost)));
        assert_eq!(rx.try_recv(), Ok(sent - 1));
        assert_eq!(rx.try_recv(), Ok(sent));
        assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed));
    }
    // Sender still there: empty, not closed.
    let (tx, mut rx) = broadcast::channel(2);
    for v in 1..=3 {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Empty));
}

#[test]
fn capacity_one_holds_the_last_value_and_dropping_the_sender_overwrites_nothing() {
    let (tx, mut rx) = broadcast::channel(1);
    tx.send(1).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed));

    let (tx, mut rx) = broadcast::channel(1);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed));

    let (tx, mut rx) = broadcast::channel(2);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed));
}

#[test]
fn lag_is_counted_again_each_time_the_receiver_falls_behind() {
    let (tx, mut rx1) = broadcast::channel(2);
    let mut rx2 = tx.subscribe();
    tx.send("one").unwrap();
    tx.send("two").unwrap();
    assert_eq!(rx1.try_recv(), Ok("one"));
    tx.send("three").unwrap();
    assert_eq!(rx2.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
    assert_eq!(rx2.try_recv(), Ok("two"));
    assert_eq!(rx1.try_recv(), Ok("two"));
    assert_eq!(rx1.try_recv(), Ok("three"));
    tx.send("four").unwrap();
    tx.send("five").unwrap();
    assert_eq!(rx2.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
    tx.send("six").unwrap();
    assert_eq!(rx2.try_recv(), Err(broadcast::TryRecvError::Lagged(1)));
    assert_eq!(rx2.try_recv(), Ok("five"));
    assert_eq!(rx2.try_recv(), Ok("six"));
}

#[test]
fn only_the_last_sender_dropped_wakes_receivers_with_closed() {
    let (tx, mut rx1) = broadcast::channel::<()>(16);
    let mut rx2 = tx.subscribe();
    let tx2 = tx.clone();
    let (t1, t2) = (ManualTask::default(), ManualTask::default());
    let mut recv1 = Box::pin(rx1.recv());
    let mut recv2 = Box::pin(rx2.recv());
    assert!(t1.poll(recv1.as_mut()).is_pending());
    assert!(t2.poll(recv2.as_mut()).is_pending());
    drop(tx);
    assert!(t1.poll(recv1.as_mut()).is_pending());
    assert!(t2.poll(recv2.as_mut()).is_pending());
    drop(tx2);
    assert!(t1.is_woken() && t2.is_woken());
    assert_eq!(
        t1.poll(recv1.as_mut()),
        Poll::Ready(Err(broadcast::RecvError::Closed))
    );
    assert_eq!(
        t2.poll(recv2.as_mut()),
        Poll::Ready(Err(broadcast::RecvError::Closed))
    );
}

#[test]
fn a_send_with_no_receiver_fails_until_one_subscribes() {
    let (tx, rx) = broadcast::channel(16);
    drop(rx);
    assert_eq!(tx.send("hello").map_err(|e| e.0), Err("hello"));
    let mut rx = tx.subscribe();
    assert_eq!(tx.send("world"), Ok(1));
    assert_eq!(rx.try_recv(), Ok("world"));
    let msg = Rc::new(());
    tx.send("x").unwrap();
    drop(rx);
    let (tx, rx) = broadcast::channel(16);
    tx.send(msg.clone()).unwrap();
    assert_eq!(Rc::strong_count(&msg), 2);
    drop(rx);
    assert_eq!(
        Rc::strong_count(&msg),
        1,
        "unread values go with the last receiver"
    );
}

// ---- sync_watch.rs ----

#[test]
fn a_receiver_sees_the_final_value_then_the_close() {
    let (tx, mut rx) = watch::channel("one");
    drop(tx);
    assert!(matches!(polled(rx.changed()).poll(), Poll::Ready(Err(_))));
    assert_eq!(*rx.borrow(), "one");

    let (tx, mut rx) = watch::channel("one");
    tx.send("two").unwrap();
    assert_eq!(polled(rx.changed()).poll(), Poll::Ready(Ok(())));
    assert_eq!(*rx.borrow(), "two");
    let task = ManualTask::default();
    let mut changed = Box::pin(rx.changed());
    assert!(task.poll(changed.as_mut()).is_pending());
    tx.send("three").unwrap();
    drop(tx);
    assert!(task.is_woken());
    assert_eq!(task.poll(changed.as_mut()), Poll::Ready(Ok(())));
    drop(changed);
    assert_eq!(*rx.borrow_and_update(), "three");
    assert!(matches!(polled(rx.changed()).poll(), Poll::Ready(Err(_))));
    assert!(rx.has_changed().is_err());
    assert_eq!(*rx.borrow(), "three");
}

#[test]
fn a_send_modify_that_panics_keeps_the_change_but_wakes_nobody() {
    let (tx, mut rx) = watch::channel("one");
    tx.send_modify(|v| *v = "two");
    assert_eq!(*rx.borrow_and_update(), "two");
    let mut rx2 = rx.clone();
    assert_eq!(*rx2.borrow_and_update(), "two");
    let task = ManualTask::default();
    let mut changed = Box::pin(rx2.changed());
    assert!(task.poll(changed.as_mut()).is_pending());
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tx.send_modify(|v| {
            *v = "panicked";
            panic!("in the closure");
        })
    }));
    assert!(panicked.is_err());
    assert!(task.poll(changed.as_mut()).is_pending());
    assert_eq!(*rx.borrow(), "panicked");
    tx.send_modify(|v| *v = "three");
    assert_eq!(task.poll(changed.as_mut()), Poll::Ready(Ok(())));
    drop(changed);
    assert_eq!(*rx.borrow_and_update(), "three");
    assert_eq!(*rx2.borrow_and_update(), "three");
}

#[test]
fn a_subscribe_after_every_receiver_went_reopens_the_channel() {
    let (tx, rx) = watch::channel("one");
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert!(tx.send("lost").is_err());
    assert_eq!(*tx.borrow(), "one", "a failed send stores nothing");
    let mut rx = tx.subscribe();
    assert!(!tx.is_closed());
    assert!(
        !rx.has_changed().unwrap(),
        "a new receiver has seen the current value"
    );
    tx.send("two").unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), "two");
    drop(rx);
    assert!(tx.is_closed());
}
