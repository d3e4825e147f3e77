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
use support::{abandon, panic_message, polled, within};

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
