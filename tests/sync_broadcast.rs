//! `overlap::sync::broadcast`: every value to every receiver in order, lagging receivers
//! told what they lost, values dropped once all have read them, closing (both ways: a
//! sender's `closed` waits for the last receiver), and cancel-safe waiting.

use std::rc::Rc;
use std::time::Duration;

use overlap::sync::broadcast::{self, RecvError, TryRecvError};

#[overlap::test]
async fn every_receiver_gets_every_value_sent_after_it_subscribed() {
    let (tx, mut a) = broadcast::channel(8);
    tx.send(1).unwrap();
    let mut b = tx.subscribe();
    assert_eq!(tx.send(2).unwrap(), 2, "two receivers got it");
    let mut c = b.resubscribe();
    tx.send(3).unwrap();
    let mut got = (Vec::new(), Vec::new(), Vec::new());
    drop(tx);
    while let Ok(v) = a.recv().await {
        got.0.push(v);
    }
    while let Ok(v) = b.recv().await {
        got.1.push(v);
    }
    while let Ok(v) = c.recv().await {
        got.2.push(v);
    }
    assert_eq!(got, (vec![1, 2, 3], vec![2, 3], vec![3]));
    assert_eq!(a.recv().await, Err(RecvError::Closed), "and stays closed");
}

#[overlap::test]
async fn a_lagging_receiver_learns_how_many_it_lost_and_reads_on_from_the_oldest_held() {
    let (tx, mut rx) = broadcast::channel(2);
    for v in 0..5 {
        tx.send(v).unwrap();
    }
    assert_eq!(tx.len(), 2, "only the capacity is held");
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.recv().await, Err(RecvError::Lagged(3)));
    assert_eq!(rx.recv().await, Ok(3));
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert!(tx.is_empty(), "read by its only receiver: dropped");
}

#[overlap::test]
async fn a_value_is_dropped_once_every_receiver_has_read_it_or_gone() {
    let (tx, mut a) = broadcast::channel(4);
    let mut b = tx.subscribe();
    let value = Rc::new(());
    tx.send(value.clone()).unwrap();
    assert_eq!(Rc::strong_count(&value), 2, "held once by the channel");
    drop(a.recv().await.unwrap());
    assert_eq!(Rc::strong_count(&value), 2, "b has not read it yet");
    drop(b.recv().await.unwrap());
    assert_eq!(
        Rc::strong_count(&value),
        1,
        "everyone read it: the channel let go"
    );

    tx.send(value.clone()).unwrap();
    drop(a.recv().await.unwrap());
    drop(b); // never reads it
    assert_eq!(
        Rc::strong_count(&value),
        1,
        "a receiver gone no longer holds values back"
    );
    drop(a);
    assert!(tx.send(value.clone()).is_err(), "no receiver left");
    assert_eq!(
        Rc::strong_count(&value),
        1,
        "the failed send gave the value back"
    );
}

#[overlap::test]
async fn one_send_wakes_every_waiting_receiver_and_a_cancelled_recv_loses_nothing() {
    let (tx, rx) = broadcast::channel::<u32>(4);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let mut rx = rx.resubscribe();
            overlap::spawn(async move { rx.recv().await })
        })
        .collect();
    overlap::yield_now().await;
    tx.send(7).unwrap();
    for w in waiters {
        assert_eq!(w.await.unwrap(), Ok(7));
    }

    let mut rx = rx;
    assert_eq!(rx.recv().await, Ok(7));
    // A recv given up on (timed out) is dropped while waiting; the value sent after it
    // is still there for the next recv.
    let timed_out = overlap::time::timeout(Duration::from_millis(1), rx.recv()).await;
    assert!(timed_out.is_err());
    tx.send(8).unwrap();
    assert_eq!(rx.recv().await, Ok(8));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[overlap::test]
async fn the_last_sender_going_wakes_waiting_receivers_with_closed() {
    let (tx, mut rx) = broadcast::channel::<u32>(1);
    let tx2 = tx.clone();
    let waiter = overlap::spawn(async move { rx.recv().await });
    overlap::yield_now().await;
    drop(tx);
    overlap::yield_now().await;
    assert!(!waiter.is_finished(), "one sender is left");
    drop(tx2);
    let got = overlap::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the receiver was not woken when the senders went");
    assert_eq!(got.unwrap(), Err(RecvError::Closed));
}

/// A value whose `Clone` panics is consumed by the receive that panicked: the receiver
/// moves on to the next value instead of panicking on the same one for ever.
#[test]
fn a_panicking_clone_consumes_the_value() {
    #[derive(Debug, PartialEq)]
    struct Fragile(u32);
    impl Clone for Fragile {
        fn clone(&self) -> Fragile {
            assert_ne!(self.0, 0, "cloning the zero panics");
            Fragile(self.0)
        }
    }
    let (tx, mut rx) = broadcast::channel(4);
    tx.send(Fragile(0)).unwrap();
    tx.send(Fragile(1)).unwrap();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.try_recv()));
    assert!(first.is_err());
    assert_eq!(rx.try_recv().unwrap(), Fragile(1));
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[overlap::test]
async fn closed_waits_for_the_last_receiver_and_wakes_every_waiting_sender() {
    use overlap::future::FutureExt;
    const HANG: Duration = Duration::from_secs(30);
    let (tx, a) = broadcast::channel::<u32>(4);
    let b = tx.subscribe();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let tx = tx.clone();
            overlap::spawn(async move {
                tx.closed().await;
                tx.receiver_count()
            })
        })
        .collect();
    overlap::yield_now().await;
    drop(a);
    overlap::yield_now().await;
    assert!(
        waiters.iter().all(|w| !w.is_finished()),
        "one receiver is still there"
    );
    drop(b);
    for w in waiters {
        let left = overlap::time::timeout(HANG, w)
            .await
            .expect("closed() hung");
        assert_eq!(left.unwrap(), 0);
    }
    // With no receiver, at once; a new subscriber makes a new call wait again.
    assert!(tx.closed().now_or_never().is_some());
    let c = tx.subscribe();
    assert!(tx.closed().now_or_never().is_none());
    drop(c);
    assert!(tx.closed().now_or_never().is_some());
}

#[overlap::test]
async fn a_sender_made_alone_has_no_receiver_until_one_subscribes() {
    let tx = broadcast::Sender::<u32>::new(2);
    assert_eq!(tx.receiver_count(), 0);
    assert_eq!(tx.send(1).unwrap_err().0, 1);
    let mut rx = tx.subscribe();
    assert_eq!(tx.send(2).unwrap(), 1);
    drop(tx);
    assert_eq!(rx.recv().await, Ok(2));
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
}

#[overlap::test]
async fn a_weak_sender_does_not_keep_the_channel_open() {
    let (tx, mut rx) = broadcast::channel(4);
    let weak = tx.downgrade();
    assert_eq!((tx.strong_count(), tx.weak_count()), (1, 1));
    let weak2 = weak.clone();
    assert_eq!((weak.strong_count(), weak.weak_count()), (1, 2));
    drop(weak2);

    let upgraded = weak.upgrade().expect("a sender keeps it open");
    assert!(upgraded.same_channel(&tx));
    assert_eq!(tx.strong_count(), 2);
    upgraded.send(1).unwrap();
    drop(upgraded);
    tx.send(2).unwrap();
    drop(tx);
    // The weak sender counts for nothing: the receiver reads what was sent, then Closed.
    assert_eq!(rx.recv().await, Ok(1));
    assert_eq!(rx.recv().await, Ok(2));
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
    assert!(weak.upgrade().is_none(), "closed for good");
    assert_eq!((weak.strong_count(), weak.weak_count()), (0, 1));
}

#[overlap::test]
async fn a_weak_sender_upgrades_while_receivers_are_gone_and_senders_are_not() {
    let tx = broadcast::Sender::<u8>::new(2);
    let weak = tx.downgrade();
    // No receiver yet: the upgraded sender fails its sends as the first one does.
    let again = weak.upgrade().unwrap();
    assert!(again.send(1).is_err());
    let mut rx = again.subscribe();
    tx.send(5).unwrap();
    assert_eq!(rx.recv().await, Ok(5));
    assert!(format!("{weak:?}").contains("WeakSender"));
}
