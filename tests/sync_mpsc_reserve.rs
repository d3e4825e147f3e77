//! `mpsc::Sender::reserve` and `try_reserve`: a permit holds a slot, waits in the same fair
//! line as sends, gives its slot back when dropped, and a cancelled reserve passes its turn.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::mpsc::{self, TrySendError};
use support::{settle, within};

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
