//! `overlap::sync::watch` with several senders, and closing both ways: the receivers hear
//! that the channel closed only when the last sender goes, a sender's `closed` waits for
//! the last receiver, and `mark_changed` makes a receiver see the current value as new.

mod support;

use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::watch;
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn receivers_hear_the_close_only_when_the_last_sender_goes() {
    let (tx, mut rx) = watch::channel(0u32);
    let tx2 = tx.clone();
    assert_eq!((tx.sender_count(), tx2.sender_count()), (2, 2));
    let waiter = overlap::spawn(async move {
        let first = rx.changed().await;
        let second = rx.changed().await;
        (first, *rx.borrow(), second)
    });
    overlap::yield_now().await;
    drop(tx);
    overlap::yield_now().await;
    assert!(!waiter.is_finished(), "a sender is left: not closed");
    assert_eq!(tx2.sender_count(), 1);
    tx2.send(5).unwrap();
    overlap::yield_now().await;
    drop(tx2);
    let got = within(HANG, waiter, "the last sender's drop woke nobody")
        .await
        .unwrap();
    assert_eq!(got, (Ok(()), 5, Err(watch::RecvError)));
}

#[overlap::test]
async fn closed_waits_for_the_last_receiver_and_wakes_every_waiting_sender() {
    let (tx, a) = watch::channel(0u32);
    let b = a.clone();
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
        let left = within(HANG, w, "closed() hung").await.unwrap();
        assert_eq!(left, 0);
    }
    assert!(tx.closed().now_or_never().is_some(), "none left: at once");
    let c = tx.subscribe();
    assert!(tx.closed().now_or_never().is_none());
    drop(c);
    assert!(tx.closed().now_or_never().is_some());
}

#[overlap::test]
async fn a_sender_made_alone_keeps_its_value_for_later_subscribers() {
    let tx = watch::Sender::new(1u32);
    assert_eq!(tx.receiver_count(), 0);
    assert!(tx.send(2).is_err());
    assert_eq!(tx.send_replace(3), 1, "send_replace sets it regardless");
    let mut rx = tx.subscribe();
    assert_eq!(*rx.borrow(), 3);
    assert!(!rx.has_changed().unwrap());
    tx.send(4).unwrap();
    assert!(rx.changed().now_or_never().is_some());
    assert_eq!(*rx.borrow(), 4);
}

#[overlap::test]
async fn mark_changed_makes_the_current_value_a_change_for_that_receiver_only() {
    let (tx, mut rx) = watch::channel("initial");
    let mut other = rx.clone();
    assert!(!rx.has_changed().unwrap());
    assert!(rx.changed().now_or_never().is_none());
    rx.mark_changed();
    assert!(rx.has_changed().unwrap());
    assert!(!other.has_changed().unwrap(), "only the one marked");
    assert!(other.changed().now_or_never().is_none());
    assert_eq!(rx.changed().now_or_never(), Some(Ok(())));
    assert!(!rx.has_changed().unwrap(), "seen again once reported");
    assert!(rx.changed().now_or_never().is_none());

    // A real send after the mark is still a change; the two are reported once.
    rx.mark_changed();
    tx.send("next").unwrap();
    assert_eq!(rx.changed().now_or_never(), Some(Ok(())));
    assert!(rx.changed().now_or_never().is_none());

    // Marked after every sender went: the last value is reported, then the close.
    drop(tx);
    rx.mark_changed();
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(rx.changed().await, Ok(()));
    assert_eq!(*rx.borrow(), "next");
    assert_eq!(rx.changed().await, Err(watch::RecvError));
}
