//! `mpsc::Sender::reserve` and `try_reserve`: a permit holds a slot, waits in the same fair
//! line as sends, gives its slot back when dropped, and a cancelled reserve passes its turn.
//! The second half is tokio's reserve and permit tests (tests/sync_mpsc.rs), ported: they
//! poll by hand to check exactly which waiter each step wakes.
//! At the end: `send_timeout` (on paused time) and `reserve_many`, whose batch waits in the
//! same line and whose dropped `PermitIterator` gives its unused slots back. The randomized
//! model of the slot count is in `sync_mpsc_reserve_model.rs`.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::mpsc::{self, error::SendTimeoutError, TrySendError};
use support::{polled, settle, within};

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn a_permit_holds_its_slot_until_used_or_dropped() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let permit = tx.reserve().await.unwrap();
    assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
    assert!(rx.try_recv().is_err(), "a reservation is not a message");
    permit.send(2);
    assert_eq!(rx.recv().await, Some(2));

    // A dropped permit gives its slot to the sender waiting for one.
    let tx = Rc::new(tx);
    let permit = tx.try_reserve().unwrap();
    let t = tx.clone();
    let waiting = overlap::spawn(async move { t.send(3).await });
    settle().await;
    assert!(!waiting.is_finished(), "the only slot is reserved");
    drop(permit);
    within(
        HANG,
        waiting,
        "the dropped permit's slot never reached the waiting sender",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(rx.recv().await, Some(3));
}

#[overlap::test]
async fn reserves_and_sends_wait_in_one_fair_line() {
    let (tx, mut rx) = mpsc::channel::<&'static str>(1);
    let tx = Rc::new(tx);
    tx.send("first").await.unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (t, o) = (tx.clone(), order.clone());
    let sender = overlap::spawn(async move {
        t.send("sent").await.unwrap();
        o.borrow_mut().push("send");
    });
    settle().await;
    let (t, o) = (tx.clone(), order.clone());
    let reserver = overlap::spawn(async move {
        let permit = t.reserve().await.unwrap();
        o.borrow_mut().push("reserve");
        permit.send("reserved");
    });
    settle().await;
    // A reserve that joins later and is cancelled passes nothing on wrongly.
    assert!(tx.reserve().now_or_never().is_none());
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(within(HANG, rx.recv(), "a value never came").await.unwrap());
    }
    within(HANG, sender, "the send never completed")
        .await
        .unwrap();
    within(HANG, reserver, "the reserve never completed")
        .await
        .unwrap();
    assert_eq!(got, ["first", "sent", "reserved"]);
    assert_eq!(*order.borrow(), ["send", "reserve"]);
}

#[overlap::test]
async fn a_cancelled_reserve_passes_its_turn_on() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let tx = Rc::new(tx);
    tx.send(0).await.unwrap();
    // First in line: a reserve that is chosen (a slot frees up) and then dropped unused.
    let mut first = Box::pin(tx.reserve());
    assert!((&mut first).now_or_never().is_none());
    let t = tx.clone();
    let second = overlap::spawn(async move { t.send(1).await });
    settle().await;
    assert_eq!(rx.recv().await, Some(0)); // the freed slot goes to `first`
    drop(first);
    within(HANG, second, "the cancelled reserve kept the slot")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rx.recv().await, Some(1));
}

#[overlap::test]
async fn permits_and_reserves_after_the_receiver_goes() {
    let (tx, rx) = mpsc::channel::<Rc<()>>(1);
    let tx = Rc::new(tx);
    let permit = tx.reserve().await.unwrap();
    let t = tx.clone();
    let waiting = overlap::spawn(async move { t.reserve().await.is_err() });
    settle().await;
    drop(rx);
    assert!(within(
        HANG,
        waiting,
        "a waiting reserve never heard the receiver go"
    )
    .await
    .unwrap());
    // Sending on a permit whose receiver is gone drops the value, quietly.
    let value = Rc::new(());
    permit.send(value.clone());
    assert_eq!(Rc::strong_count(&value), 1, "the value was kept");
    assert!(tx.reserve().await.is_err());
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
}

/// After `close`, new sends fail, but slots reserved before it still deliver: a permit's
/// value and a waiting send that had been granted a slot both arrive, and `recv` ends only
/// once every such slot is filled.
#[overlap::test]
async fn slots_reserved_before_a_close_still_deliver() {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    let tx = Rc::new(tx);
    tx.send(1).await.unwrap();
    let permit = tx.reserve().await.unwrap();
    // The channel is full: this send waits in line.
    let t = tx.clone();
    let granted = overlap::spawn(async move { t.send(3).await });
    settle().await;
    // Taking 1 frees a slot, granted to the waiting send before it runs again.
    assert_eq!(rx.recv().await, Some(1));
    rx.close();
    assert!(tx.send(4).await.is_err(), "closed for new sends");
    assert!(tx.reserve().await.is_err());
    permit.send(2);
    within(HANG, granted, "granted send")
        .await
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    while let Some(v) = within(HANG, rx.recv(), "recv after close").await {
        got.push(v);
    }
    assert_eq!(got, [2, 3]);
}

/// A permit dropped unused after the close lets a waiting `recv` end.
#[overlap::test]
async fn a_permit_dropped_after_the_close_ends_the_receive() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let permit = tx.reserve().await.unwrap();
    rx.close();
    assert!(rx.try_recv().is_err());
    let drop_later = async move {
        settle().await;
        drop(permit);
    };
    let (got, ()) = within(
        HANG,
        overlap::future::join(rx.recv(), drop_later),
        "recv never ended",
    )
    .await;
    assert_eq!(got, None);
}

// Ported from tokio's tests/sync_mpsc.rs.

#[overlap::test]
async fn a_permit_and_a_try_send_arrive_in_order_then_the_end() {
    let (tx, mut rx) = mpsc::channel::<i32>(16);
    tx.reserve().await.unwrap().send(1);
    tx.try_send(2).unwrap();
    drop(tx);
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(rx.recv().await, None);
}

#[test]
fn a_freed_slot_wakes_only_the_first_waiting_reserve() {
    let (tx, mut rx) = mpsc::channel::<i32>(2);
    let (tx1, tx2, tx3, tx4) = (tx.clone(), tx.clone(), tx.clone(), tx);
    let permit1 = tx1.reserve().now_or_never().unwrap().unwrap();
    let permit2 = tx2.reserve().now_or_never().unwrap().unwrap();
    let mut r3 = polled(tx3.reserve());
    assert!(r3.poll().is_pending());
    let mut r4 = polled(tx4.reserve());
    assert!(r4.poll().is_pending());

    // A filled slot is still taken until the value is received.
    permit1.send(1);
    assert!(!r3.is_woken());
    assert_eq!(rx.recv().now_or_never(), Some(Some(1)));
    assert!(r3.is_woken());
    assert!(!r4.is_woken());

    // A dropped permit frees its slot at once.
    drop(permit2);
    assert!(r4.is_woken());
    let mut r1 = polled(tx1.reserve());
    assert!(r1.poll().is_pending(), "both slots went to r3 and r4");
}

#[test]
fn a_cancelled_waiting_reserve_is_not_woken_and_its_turn_goes_on() {
    let (tx1, mut rx) = mpsc::channel::<()>(1);
    let tx2 = tx1.clone();
    tx1.try_send(()).unwrap();
    let mut r1 = polled(tx1.reserve());
    assert!(r1.poll().is_pending());
    let mut r2 = polled(tx2.reserve());
    assert!(r2.poll().is_pending());
    r1.cancel();
    assert_eq!(rx.recv().now_or_never(), Some(Some(())));
    assert!(r2.is_woken());
    assert!(!r1.is_woken());
    drop((r1, r2));
    drop((tx1, tx2));
    assert_eq!(rx.recv().now_or_never(), Some(None));
}

#[test]
fn a_slot_granted_to_a_waiting_reserve_is_not_taken_by_try_send() {
    let (tx, mut rx) = mpsc::channel::<i32>(1);
    tx.reserve().now_or_never().unwrap().unwrap().send(1);
    let mut p2 = polled(tx.reserve());
    assert!(p2.poll().is_pending());
    assert_eq!(rx.recv().now_or_never(), Some(Some(1)));
    assert!(p2.is_woken());
    assert!(matches!(tx.try_send(1337), Err(TrySendError::Full(1337))));
    let Poll::Ready(Ok(permit)) = p2.poll() else {
        panic!("the woken reserve has its slot");
    };
    permit.send(2);
    assert_eq!(rx.recv().now_or_never(), Some(Some(2)));
}

#[test]
fn close_fails_a_waiting_reserve_but_a_held_permit_still_delivers() {
    let (tx1, mut rx) = mpsc::channel::<i32>(1);
    let tx2 = tx1.clone();
    let permit1 = tx1.reserve().now_or_never().unwrap().unwrap();
    let mut permit2 = polled(tx2.reserve());
    assert!(permit2.poll().is_pending());
    rx.close();
    assert!(permit2.is_woken());
    assert!(matches!(permit2.poll(), Poll::Ready(Err(_))));
    {
        let mut recv = polled(rx.recv());
        assert!(recv.poll().is_pending(), "a reserved slot is still to come");
        permit1.send(123);
        assert!(recv.is_woken());
        assert_eq!(recv.poll(), Poll::Ready(Some(123)));
    }
    assert_eq!(rx.recv().now_or_never(), Some(None));
}

#[test]
fn try_reserve_fails_while_full_and_a_dropped_permit_frees_the_slot() {
    let (tx, mut rx) = mpsc::channel(1);
    let permit = tx.try_reserve().unwrap();
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
    permit.send("foo");
    assert_eq!(rx.recv().now_or_never(), Some(Some("foo")));
    drop(tx.try_reserve().unwrap());
    let _permit = tx.try_reserve().unwrap();
}

#[test]
fn a_dropped_permit_wakes_the_waiting_reserve_with_its_slot() {
    let (tx1, _rx) = mpsc::channel::<i32>(1);
    let tx2 = tx1.clone();
    let permit = tx1.reserve().now_or_never().unwrap().unwrap();
    let mut reserve2 = polled(tx2.reserve());
    assert!(reserve2.poll().is_pending());
    drop(permit);
    assert!(reserve2.is_woken());
    assert!(matches!(reserve2.poll(), Poll::Ready(Ok(_))));
}

#[test]
fn dropping_the_receiver_fails_reserves_and_drops_the_queued_values() {
    let (tx, rx) = mpsc::channel(100);
    let msg = Rc::new(());
    tx.try_send(msg.clone()).unwrap();
    drop(rx);
    assert!(tx.reserve().now_or_never().unwrap().is_err());
    assert!(matches!(
        tx.try_send(msg.clone()),
        Err(TrySendError::Closed(_))
    ));
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
    assert!(matches!(
        tx.clone().try_reserve_owned(),
        Err(TrySendError::Closed(_))
    ));
    assert_eq!(Rc::strong_count(&msg), 1);
}

#[test]
fn a_permit_dropped_after_close_wakes_the_receive_to_its_end() {
    let (tx, mut rx) = mpsc::channel::<()>(100);
    let _tx2 = tx.clone();
    let permit = tx.reserve().now_or_never().unwrap().unwrap();
    rx.close();
    let mut recv = polled(rx.recv());
    assert!(recv.poll().is_pending());
    drop(permit);
    assert!(recv.is_woken());
    assert_eq!(recv.poll(), Poll::Ready(None), "senders remain, yet closed");
}

#[test]
fn a_reserve_woken_by_close_and_dropped_leaves_the_channel_ended() {
    let (tx1, mut rx) = mpsc::channel::<()>(1);
    let tx2 = tx1.clone();
    let permit1 = tx1.reserve().now_or_never().unwrap().unwrap();
    let mut permit2 = polled(tx2.reserve());
    assert!(permit2.poll().is_pending());
    rx.close();
    drop(permit1);
    assert!(permit2.is_woken());
    drop(permit2);
    assert_eq!(rx.recv().now_or_never(), Some(None));
}

#[overlap::test]
async fn capacity_counts_reserved_and_queued_slots_and_max_capacity_stays() {
    let (tx, _rx) = mpsc::channel::<()>(10);
    assert_eq!((tx.capacity(), tx.max_capacity()), (10, 10));
    let _permit = tx.reserve().await.unwrap();
    assert_eq!((tx.capacity(), tx.max_capacity()), (9, 10));
    tx.send(()).await.unwrap();
    assert_eq!((tx.capacity(), tx.max_capacity()), (8, 10));
}

// `send_timeout`, on paused time: the timer fires at once when the runtime idles.

#[overlap::test(start_paused = true)]
async fn send_timeout_on_a_full_channel_gives_the_value_back_and_leaves_the_line() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.send_timeout(1, Duration::ZERO).await.unwrap();
    let start = overlap::time::now();
    let res = tx.send_timeout(2, Duration::from_secs(5)).await;
    assert_eq!(res, Err(SendTimeoutError::Timeout(2)));
    assert_eq!(overlap::time::now() - start, Duration::from_secs(5));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(mpsc::error::TryRecvError::Empty));
    tx.try_send(3)
        .expect("the timed-out send left no one in line");
}

#[overlap::test(start_paused = true)]
async fn send_timeout_sends_when_the_receiver_frees_a_slot_in_time() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let reader = overlap::spawn(async move {
        overlap::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(rx.recv().await, Some(1));
        rx
    });
    tx.send_timeout(2, Duration::from_secs(5)).await.unwrap();
    let mut rx = reader.await.unwrap();
    assert_eq!(rx.recv().await, Some(2));
}

#[overlap::test(start_paused = true)]
async fn send_timeout_gives_closed_and_the_value_once_the_receiver_is_gone() {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    // Gone while the send waits for room.
    let dropper = overlap::spawn(async move {
        overlap::yield_now().await;
        drop(rx);
    });
    let res = tx.send_timeout(2, Duration::from_secs(5)).await;
    assert_eq!(res, Err(SendTimeoutError::Closed(2)));
    dropper.await.unwrap();
    // Already gone.
    let res = tx.send_timeout(3, Duration::from_secs(5)).await;
    assert_eq!(res.unwrap_err().into_inner(), 3);
}

// `reserve_many`: several slots at once, in the same fair line.

#[overlap::test]
async fn reserve_many_waits_for_all_its_slots_then_its_permits_send_in_order() {
    let (tx, mut rx) = mpsc::channel(4);
    tx.try_send(0).unwrap();
    let single = tx.reserve().await.unwrap();
    let mut many = polled(tx.reserve_many(3));
    assert!(many.poll().is_pending(), "2 free, 3 wanted");
    let other = tx.clone();
    assert!(
        matches!(other.try_send(9), Err(TrySendError::Full(9))),
        "the free slots wait for the batch first in line"
    );
    let Poll::Ready(Ok(mut permits)) = many.woken_by(|| assert_eq!(rx.try_recv(), Ok(0))) else {
        panic!("3 slots were free");
    };
    assert_eq!((permits.len(), tx.capacity()), (3, 0));
    for v in [1, 2, 3] {
        permits.next().unwrap().send(v);
    }
    assert!(permits.next().is_none());
    single.send(4);
    for v in 1..=4 {
        assert_eq!(rx.recv().await, Some(v));
    }
}

#[overlap::test]
async fn dropping_a_half_used_permit_iterator_frees_the_rest_for_the_waiting_senders() {
    let (tx, mut rx) = mpsc::channel(3);
    let mut permits = tx.try_reserve_many(3).unwrap();
    permits.next().unwrap().send("kept");
    let (mut a, mut b) = (polled(tx.send("a")), polled(tx.send("b")));
    assert!(a.poll().is_pending() && b.poll().is_pending());
    drop(permits);
    assert!(a.is_woken() && b.is_woken(), "both fit in the 2 given back");
    assert!(matches!(a.poll(), Poll::Ready(Ok(()))));
    assert!(matches!(b.poll(), Poll::Ready(Ok(()))));
    assert_eq!(tx.capacity(), 0);
    for v in ["kept", "a", "b"] {
        assert_eq!(rx.recv().await, Some(v));
    }
}

#[overlap::test]
async fn a_cancelled_reserve_many_first_in_line_lets_a_smaller_send_behind_it_in() {
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(0).unwrap();
    let mut many = polled(tx.reserve_many(2));
    let mut send = polled(tx.send(1));
    assert!(many.poll().is_pending() && send.poll().is_pending());
    many.cancel();
    assert!(send.is_woken(), "the send fits in the free slot");
    assert!(matches!(send.poll(), Poll::Ready(Ok(()))));
    assert_eq!(rx.recv().await, Some(0));
    assert_eq!(rx.recv().await, Some(1));
}

#[overlap::test]
async fn reserve_many_of_none_or_of_more_than_the_capacity_as_tokio() {
    let (tx, rx) = mpsc::channel::<u8>(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.reserve_many(0).await.unwrap().len(), 0, "even when full");
    assert_eq!(tx.try_reserve_many(0).unwrap().len(), 0);
    assert!(tx.reserve_many(3).await.is_err(), "3 can never be free");
    assert!(matches!(
        tx.try_reserve_many(3),
        Err(TrySendError::Full(()))
    ));
    drop(rx);
    assert!(tx.reserve_many(0).await.is_err());
    assert!(matches!(
        tx.try_reserve_many(0),
        Err(TrySendError::Closed(()))
    ));
    assert!(matches!(
        tx.try_reserve_many(3),
        Err(TrySendError::Closed(()))
    ));
}

#[overlap::test(start_paused = true)]
async fn send_timeout_granted_at_its_deadline_leaks_no_slot() {
    // The slot frees at the very tick the timeout runs out: whichever wins, the value is
    // sent or given back, and the slot is not lost.
    for yield_first in [false, true] {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        tx.send(1).await.unwrap();
        let tx2 = tx.clone();
        let t =
            overlap::spawn(
                async move { tx2.send_timeout(2, Duration::from_millis(10)).await.is_ok() },
            );
        if yield_first {
            overlap::task::yield_now().await;
        }
        overlap::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(rx.recv().await, Some(1));
        if t.await.unwrap() {
            assert_eq!(rx.recv().await, Some(2));
        }
        assert_eq!(tx.capacity(), 1);
    }
}
