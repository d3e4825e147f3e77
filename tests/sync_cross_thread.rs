//! `sync::mpsc::cross_thread`: the semantics one thread can check step by step — which end
//! is `Send`, close and drop rules, cancel safety (no value lost, no waker left behind, a
//! freed slot waking exactly the first waiting sender), and the panics of the blocking
//! calls inside a runtime. The traffic between real threads is in
//! `sync_cross_thread_threads.rs`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use overlap::sync::mpsc::cross_thread::{self, Permit, Receiver, Sender, UnboundedSender};
use overlap::sync::mpsc::error::{SendError, TryRecvError, TrySendError};
use support::{abandon, panic_message, polled, wait_on, watchdog, within, ManualTask, XorShift};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn the_ends_and_their_futures_are_send_and_the_senders_sync() {
    fn send<T: std::marker::Send>(_: &T) {}
    fn sync<T: Sync>(_: &T) {}
    let (tx, mut rx) = cross_thread::channel::<String>(1);
    let (utx, _urx) = cross_thread::unbounded_channel::<String>();
    send(&tx);
    sync(&tx);
    send(&utx);
    sync(&utx);
    send(&rx);
    send(&tx.send(String::new()));
    send(&tx.reserve());
    send(&tx.closed());
    send(&rx.recv());
    send(&tx.try_reserve().unwrap());
    send(&rx.recv_many(&mut Vec::new(), 1));
    let _: (Sender<String>, Receiver<String>, UnboundedSender<String>) = (tx.clone(), rx, utx);
}

#[overlap::test]
async fn dropping_every_sender_ends_recv_after_the_queued_values() {
    let (tx, mut rx) = cross_thread::channel(4);
    let tx2 = tx.clone();
    tx.send(1).await.unwrap();
    tx2.send(2).await.unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(!rx.is_closed(), "one sender is left");
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(rx.recv().await, None);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[overlap::test]
async fn the_last_sender_dropped_wakes_a_waiting_receiver() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let mut recv = polled(rx.recv());
    assert!(recv.poll().is_pending());
    let tx2 = tx.clone();
    drop(tx);
    assert!(!recv.is_woken(), "a sender is left");
    drop(tx2);
    assert!(recv.is_woken());
    assert_eq!(recv.poll(), Poll::Ready(None));
}

#[overlap::test]
async fn dropping_the_receiver_fails_every_send_with_its_value() {
    let (tx, rx) = cross_thread::channel(1);
    let (utx, urx) = cross_thread::unbounded_channel();
    tx.send(String::from("queued")).await.unwrap();
    let mut waiting = polled(tx.send(String::from("waits")));
    assert!(waiting.poll().is_pending());
    drop(rx);
    drop(urx);
    assert!(waiting.is_woken(), "the waiting send is woken to fail");
    match waiting.poll() {
        Poll::Ready(Err(SendError(v))) => assert_eq!(v, "waits"),
        other => panic!("{other:?}"),
    }
    assert_eq!(tx.send(String::from("a")).await.unwrap_err().0, "a");
    assert_eq!(
        tx.try_send(String::from("b")),
        Err(TrySendError::Closed(String::from("b")))
    );
    assert_eq!(utx.send(String::from("c")).unwrap_err().0, "c");
    assert!(tx.reserve().await.is_err());
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
    assert!(tx.is_closed() && utx.is_closed());
    within(HANG, tx.closed(), "closed() after the drop").await;
    within(HANG, utx.closed(), "closed() after the drop").await;
}

#[test]
fn dropping_the_receiver_drops_the_queued_values_at_once() {
    let counted = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (tx, rx) = cross_thread::channel(4);
    for _ in 0..3 {
        tx.try_send(Counted(counted.clone())).unwrap();
    }
    drop(rx);
    assert_eq!(counted.load(Ordering::SeqCst), 3, "while a sender is left");
    // A permit taken before the drop: its value is dropped, not kept.
    let (tx, rx) = cross_thread::channel(1);
    let permit: Permit<'_, Counted> = tx.try_reserve().unwrap();
    drop(rx);
    permit.send(Counted(counted.clone()));
    assert_eq!(counted.load(Ordering::SeqCst), 4);
}

#[overlap::test]
async fn close_fails_new_and_waiting_sends_but_keeps_what_was_queued_or_reserved() {
    let (tx, mut rx) = cross_thread::channel(2);
    tx.send(1).await.unwrap();
    let permit = tx.reserve().await.unwrap();
    let mut waiting = polled(tx.send(9));
    assert!(waiting.poll().is_pending());
    let mut closed = polled(tx.closed());
    assert!(closed.poll().is_pending());
    rx.close();
    assert!(waiting.is_woken() && closed.is_woken());
    assert!(matches!(waiting.poll(), Poll::Ready(Err(SendError(9)))));
    assert_eq!(closed.poll(), Poll::Ready(()));
    assert!(tx.is_closed() && rx.is_closed());
    assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    // The reserved slot still takes its value, and the receiver waits for it.
    assert_eq!(rx.recv().await, Some(1));
    let mut recv = polled(rx.recv());
    assert!(
        recv.poll().is_pending(),
        "a permit from before the close is out"
    );
    drop(recv);
    permit.send(2);
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(
        rx.recv().await,
        None,
        "senders remain, but the channel is closed"
    );
}

#[overlap::test]
async fn after_a_close_the_last_permit_given_back_ends_a_waiting_recv() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let permit = tx.try_reserve().unwrap();
    rx.close();
    let mut recv = polled(rx.recv());
    assert!(recv.poll().is_pending());
    drop(permit);
    assert!(recv.is_woken());
    assert_eq!(recv.poll(), Poll::Ready(None));
}

#[overlap::test]
async fn a_freed_slot_wakes_exactly_the_first_waiting_sender() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.send(0).await.unwrap();
    let mut first = polled(tx.send(1));
    let mut second = polled(tx.send(2));
    let mut third = polled(tx.send(3));
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    assert!(third.poll().is_pending());
    assert_eq!(tx.try_send(4), Err(TrySendError::Full(4)));
    assert_eq!(rx.try_recv(), Ok(0));
    assert!(first.is_woken());
    assert!(
        !second.is_woken() && !third.is_woken(),
        "one slot, one wake"
    );
    assert_eq!(
        tx.try_send(4),
        Err(TrySendError::Full(4)),
        "the slot is promised"
    );
    assert!(matches!(first.poll(), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(second.is_woken() && !third.is_woken());
    assert!(matches!(second.poll(), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(2));
    assert!(matches!(third.poll(), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(3));
}

#[overlap::test]
async fn a_send_dropped_after_its_grant_passes_the_slot_on_and_sends_nothing() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.send(0).await.unwrap();
    let mut first = polled(tx.send(1));
    let mut second = polled(tx.send(2));
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    assert_eq!(rx.try_recv(), Ok(0));
    assert!(first.is_woken());
    first.cancel();
    assert!(
        second.is_woken(),
        "the granted slot went to the next in line"
    );
    assert!(matches!(second.poll(), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(2), "the dropped send sent nothing");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // Nobody waiting: a slot given back is simply free.
    let mut lone = polled(tx.send(3));
    tx.try_send(9).unwrap();
    assert!(lone.poll().is_pending());
    assert_eq!(rx.try_recv(), Ok(9));
    lone.cancel();
    assert_eq!(tx.capacity(), 1);
    tx.try_send(4).unwrap();
    assert_eq!(rx.try_recv(), Ok(4));
}

#[overlap::test]
async fn a_reserve_dropped_after_its_grant_passes_the_slot_on() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.send(0).await.unwrap();
    let mut first = polled(tx.reserve());
    let mut second = polled(tx.send(2));
    assert!(first.poll().is_pending());
    assert!(second.poll().is_pending());
    assert_eq!(rx.try_recv(), Ok(0));
    first.cancel();
    assert!(second.is_woken());
    assert!(matches!(second.poll(), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(2));
}

/// Polling a `send` again after it completed is the caller's bug, and panics; but the
/// channel must come out as it was: that poll used to reserve a slot before panicking,
/// leaving a capacity-1 channel full for good, every later send waiting for ever.
#[test]
fn a_send_polled_after_completion_panics_without_taking_a_slot() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let task = ManualTask::default();
    let mut send = Box::pin(tx.send(1));
    assert!(matches!(task.poll(send.as_mut()), Poll::Ready(Ok(()))));
    assert_eq!(rx.try_recv(), Ok(1));
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = task.poll(send.as_mut());
    }))
    .expect_err("a second poll of a completed send panics");
    assert!(
        panic_message(payload).contains("polled after completion"),
        "a clear message"
    );
    drop(send);
    assert_eq!(tx.capacity(), 1, "no slot was taken by the second poll");
    tx.try_send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
}

#[overlap::test]
async fn dropped_waits_leave_no_waker_behind() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    abandon(rx.recv());
    tx.try_send(0).unwrap();
    abandon(tx.send(1));
    abandon(tx.reserve());
    abandon(tx.closed());
    // And nothing was lost or half-taken on the way.
    assert_eq!(rx.try_recv(), Ok(0));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(tx.capacity(), 1);
}

#[overlap::test]
async fn a_dropped_recv_takes_no_value() {
    let (tx, mut rx) = cross_thread::channel(2);
    {
        let mut recv = polled(rx.recv());
        assert!(recv.poll().is_pending());
        tx.try_send(7).unwrap();
        assert!(recv.is_woken());
        // Woken, dropped before its next poll: the value stays queued.
    }
    assert_eq!(within(HANG, rx.recv(), "the kept value").await, Some(7));
}

#[overlap::test]
async fn capacity_and_len_count_queued_and_reserved_slots() {
    let (tx, mut rx) = cross_thread::channel(3);
    assert_eq!(
        (tx.capacity(), tx.max_capacity(), rx.max_capacity()),
        (3, 3, 3)
    );
    tx.send(1).await.unwrap();
    let permit = tx.reserve().await.unwrap();
    assert_eq!((tx.capacity(), rx.capacity(), rx.len()), (1, 1, 1));
    drop(permit);
    assert_eq!(tx.capacity(), 2);
    assert_eq!(rx.recv().await, Some(1));
    assert!(rx.is_empty());
    let (utx, urx) = cross_thread::unbounded_channel::<u8>();
    assert_eq!(urx.max_capacity(), usize::MAX);
    utx.send(1).unwrap();
    assert_eq!(urx.len(), 1);
    assert_eq!(rx.sender_strong_count(), 1);
    assert!(tx.same_channel(&tx.clone()));
    assert!(utx.same_channel(&utx.clone()));
}

#[test]
fn blocking_send_inside_a_runtime_panics_instead_of_stalling_it() {
    let (tx, _rx) = cross_thread::channel(1);
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        overlap::block_on(async { tx.blocking_send(1) }).ok();
    }))
    .unwrap_err();
    let msg = panic_message(payload);
    assert!(
        msg.contains("Sender::blocking_send") && msg.contains("block_on"),
        "{msg}"
    );
    // In a spawned task too, reported through its JoinHandle.
    let tx = Arc::new(tx);
    let err = overlap::block_on(async move {
        overlap::spawn(async move { tx.blocking_send(2).ok() })
            .await
            .unwrap_err()
    });
    assert!(err.is_panic());
    let msg = panic_message(err.into_panic());
    assert!(msg.contains("Sender::blocking_send"), "{msg}");
}

#[test]
fn blocking_recv_inside_a_runtime_panics_instead_of_stalling_it() {
    let (_tx, mut rx) = cross_thread::channel::<u8>(1);
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        overlap::block_on(async { rx.blocking_recv() });
    }))
    .unwrap_err();
    let msg = panic_message(payload);
    assert!(
        msg.contains("Receiver::blocking_recv") && msg.contains("recv().await"),
        "{msg}"
    );
}

#[test]
fn oneshot_blocking_recv_inside_a_runtime_panics_instead_of_stalling_it() {
    let (_tx, rx) = overlap::sync::oneshot::cross_thread::channel::<u8>();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        overlap::block_on(async { rx.blocking_recv() })
    }))
    .unwrap_err();
    let msg = panic_message(payload);
    assert!(
        msg.contains("oneshot::cross_thread::Receiver::blocking_recv") && msg.contains(".await"),
        "{msg}"
    );
}

#[test]
fn the_blocking_calls_work_on_a_thread_that_only_entered_a_runtime() {
    // Not driving a loop, so blocking stalls no task (as `Handle::block_on`).
    let rt = overlap::Runtime::new().unwrap();
    let _guard = rt.enter();
    let (tx, mut rx) = cross_thread::channel(1);
    tx.blocking_send(5).unwrap();
    assert_eq!(rx.blocking_recv(), Some(5));
}

#[test]
fn the_receiver_is_a_fused_stream() {
    use futures_util::stream::FusedStream;
    use overlap::stream::StreamExt;
    let (tx, mut rx) = cross_thread::unbounded_channel();
    tx.send(1).unwrap();
    drop(tx);
    let got: Vec<i32> = overlap::block_on(async { (&mut rx).collect().await });
    assert_eq!(got, [1]);
    assert!(rx.is_terminated());
}

/// 20,000 sends waiting on a full channel, each polled again (back to front, with a new
/// waker) and a third of them dropped from the middle of the line: the rest complete one
/// by one, in the order they started waiting, each freed slot waking exactly the next of
/// them (on the waker it registered last) and none of the dropped ones. A correctness
/// test of the line at a size where a search through it on each poll would be quadratic;
/// its only clock is a generous hang guard.
#[test]
fn twenty_thousand_senders_waiting_on_a_full_channel_complete_in_order() {
    const N: usize = 20_000;
    let done = watchdog(60);
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(0).unwrap();
    let mut sends: Vec<_> = (1..=N).map(|n| Some(Box::pin(tx.send(n)))).collect();
    let first: Vec<ManualTask> = (0..N).map(|_| ManualTask::default()).collect();
    let last: Vec<ManualTask> = (0..N).map(|_| ManualTask::default()).collect();
    for (send, task) in sends.iter_mut().zip(&first) {
        wait_on(task, send.as_mut().unwrap().as_mut());
    }
    for ((send, task), old) in sends.iter_mut().zip(&last).zip(&first).rev() {
        wait_on(task, send.as_mut().unwrap().as_mut());
        assert_eq!(old.wakers_held(), 0, "the replaced waker was let go");
    }
    // Every third send leaves the line, from the middle.
    for send in sends.iter_mut().skip(1).step_by(3) {
        *send = None;
    }
    assert_eq!(
        tx.try_send(0),
        Err(TrySendError::Full(0)),
        "the line comes first"
    );
    let mut expected = 0;
    for (i, send) in sends.iter_mut().enumerate() {
        let Some(send) = send else { continue };
        assert_eq!(rx.try_recv(), Ok(expected));
        assert!(last[i].is_woken(), "send {} was not woken", i + 1);
        if let Some(next) = last.get(i + 1) {
            assert!(!next.is_woken(), "one slot, one wake");
        }
        assert!(matches!(last[i].poll(send.as_mut()), Poll::Ready(Ok(()))));
        expected = i + 1;
    }
    assert_eq!(rx.try_recv(), Ok(expected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(first.iter().chain(&last).all(|t| t.wakers_held() == 0));
    assert_eq!(tx.capacity(), 1);
    done.store(true, Ordering::SeqCst);
}

/// A channel of 5,000 slots drained at once while 12,000 sends wait: the first 5,000 are
/// all granted a slot before any of them is polled again, then polled in a scrambled order
/// (and some dropped unpolled, passing their slot on to the line), and every value that
/// was sent arrives, with no slot lost.
#[test]
fn thousands_of_slots_granted_at_once_are_each_taken_or_passed_on() {
    const CAP: usize = 5_000;
    const N: usize = 12_000;
    let done = watchdog(60);
    let (tx, mut rx) = cross_thread::channel(CAP);
    for _ in 0..CAP {
        tx.try_send(usize::MAX).unwrap();
    }
    let mut sends: Vec<_> = (0..N).map(|n| Some(Box::pin(tx.send(n)))).collect();
    let tasks: Vec<ManualTask> = (0..N).map(|_| ManualTask::default()).collect();
    for (send, task) in sends.iter_mut().zip(&tasks) {
        wait_on(task, send.as_mut().unwrap().as_mut());
    }
    for _ in 0..CAP {
        assert_eq!(rx.try_recv(), Ok(usize::MAX));
    }
    assert!(tasks[..CAP].iter().all(ManualTask::is_woken));
    assert!(!tasks[CAP].is_woken());
    // Granted sends polled in a scrambled order; every seventh dropped instead.
    let mut order: Vec<usize> = (0..CAP).collect();
    let mut rng = XorShift(0x5eed);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut dropped = Vec::new();
    for &i in &order {
        if i % 7 == 0 {
            sends[i] = None;
            dropped.push(i);
        } else {
            let send = sends[i].as_mut().unwrap().as_mut();
            assert!(matches!(tasks[i].poll(send), Poll::Ready(Ok(()))));
            sends[i] = None;
        }
    }
    // Each dropped grant passed its slot to the next in line, in line order.
    let passed = CAP..CAP + dropped.len();
    for i in passed.clone() {
        assert!(tasks[i].is_woken(), "send {i} got no slot");
        let send = sends[i].take().unwrap();
        assert!(matches!(
            tasks[i].poll(std::pin::pin!(send)),
            Poll::Ready(Ok(()))
        ));
    }
    assert!(!tasks[passed.end].is_woken(), "one slot per dropped grant");
    assert_eq!(tx.capacity(), 0);
    let mut got: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    got.sort_unstable();
    let mut want: Vec<usize> = (0..passed.end)
        .filter(|i| i % 7 != 0 || *i >= CAP)
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
    done.store(true, Ordering::SeqCst);
}
