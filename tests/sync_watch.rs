//! `overlap::sync::watch` with several senders, and closing both ways: the receivers hear
//! that the channel closed only when the last sender goes, a sender's `closed` waits for
//! the last receiver, and `mark_changed` makes a receiver see the current value as new.
//! The second half is tokio's tests (tests/sync_watch.rs) on changes, `has_changed` and
//! closing, ported: they poll by hand to check exactly which waiter each step wakes.

mod support;

use std::task::Poll;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::watch;
use support::{polled, within};

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

    // Marked after every sender went: `has_changed` reports the close (as tokio's does),
    // while `changed` reports the last value, then the close.
    drop(tx);
    rx.mark_changed();
    assert_eq!(rx.has_changed(), Err(watch::RecvError));
    assert_eq!(rx.changed().await, Ok(()));
    assert_eq!(*rx.borrow(), "next");
    assert_eq!(rx.changed().await, Err(watch::RecvError));
}

#[test]
fn mark_unchanged_makes_only_later_sends_a_change() {
    let (tx, mut rx) = watch::channel(0u32);
    tx.send(1).unwrap();
    rx.mark_unchanged();
    assert_eq!(rx.has_changed(), Ok(false));
    assert!(rx.changed().now_or_never().is_none());
    assert_eq!(*rx.borrow(), 1, "the value is there, only seen");
    tx.send(2).unwrap();
    assert_eq!(rx.has_changed(), Ok(true));
    // Undoes a `mark_changed` too.
    rx.mark_unchanged();
    rx.mark_changed();
    rx.mark_unchanged();
    assert!(rx.changed().now_or_never().is_none());
}

// Ported from tokio's tests/sync_watch.rs.

#[test]
fn changed_waits_for_a_send_and_fails_once_the_sender_goes() {
    let (tx, mut rx) = watch::channel("one");
    assert!(
        polled(rx.changed()).poll().is_pending(),
        "not changed at first"
    );
    assert_eq!(*rx.borrow(), "one");
    let sent = polled(rx.changed()).woken_by(|| tx.send("two").unwrap());
    assert_eq!(sent, Poll::Ready(Ok(())));
    assert_eq!(*rx.borrow(), "two");
    let closed = polled(rx.changed()).woken_by(|| drop(tx));
    assert_eq!(closed, Poll::Ready(Err(watch::RecvError)));
    assert_eq!(*rx.borrow(), "two", "the last value stays readable");
}

#[test]
fn every_receiver_is_woken_by_a_send() {
    let (tx, mut rx1) = watch::channel("one");
    let mut rx2 = rx1.clone();
    let mut t2 = polled(rx2.changed());
    {
        let mut t1 = polled(rx1.changed());
        assert!(t1.poll().is_pending());
        assert!(t2.poll().is_pending());
        tx.send("two").unwrap();
        assert!(t1.is_woken());
        assert!(t2.is_woken());
        assert_eq!(t1.poll(), Poll::Ready(Ok(())));
    }
    assert_eq!(*rx1.borrow(), "two");
    {
        let mut t1 = polled(rx1.changed());
        assert_eq!(
            t1.woken_by(|| tx.send("three").unwrap()),
            Poll::Ready(Ok(()))
        );
        // `t2` was ready since "two" and was not polled: it reports the change once.
        assert_eq!(t2.poll(), Poll::Ready(Ok(())));
    }
    drop(t2);
    assert_eq!(*rx2.borrow(), "three");
}

#[test]
fn the_final_value_is_reported_before_the_close() {
    let (tx, mut rx) = watch::channel("one");
    drop(tx);
    assert_eq!(
        polled(rx.changed()).poll(),
        Poll::Ready(Err(watch::RecvError))
    );
    assert_eq!(*rx.borrow(), "one");

    let (tx, mut rx) = watch::channel("one");
    tx.send("two").unwrap();
    assert_eq!(polled(rx.changed()).poll(), Poll::Ready(Ok(())));
    assert_eq!(*rx.borrow(), "two");
    let last = polled(rx.changed()).woken_by(|| {
        tx.send("three").unwrap();
        drop(tx);
    });
    assert_eq!(last, Poll::Ready(Ok(())), "the send before the close");
    assert_eq!(*rx.borrow(), "three");
    assert_eq!(
        polled(rx.changed()).poll(),
        Poll::Ready(Err(watch::RecvError))
    );
}

#[test]
fn sender_closed_is_woken_when_the_receiver_goes_and_sends_fail() {
    let (tx, rx) = watch::channel("one");
    assert_eq!(polled(tx.closed()).woken_by(|| drop(rx)), Poll::Ready(()));
    assert!(tx.send("two").is_err());
}

#[test]
fn has_changed_follows_sends_and_borrow_and_update_and_fails_once_closed() {
    let (tx, mut rx) = watch::channel("one");
    assert_eq!(rx.has_changed(), Ok(false));
    tx.send("two").unwrap();
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(polled(rx.changed()).poll(), Poll::Ready(Ok(())));
    assert!(polled(rx.changed()).poll().is_pending());
    assert_eq!(rx.has_changed(), Ok(false));

    tx.send("three").unwrap();
    assert_eq!(rx.has_changed(), Ok(true));
    assert_eq!(*rx.borrow_and_update(), "three");
    assert!(polled(rx.changed()).poll().is_pending());
    assert_eq!(rx.has_changed(), Ok(false));

    drop(tx);
    assert_eq!(*rx.borrow_and_update(), "three");
    assert_eq!(
        polled(rx.changed()).poll(),
        Poll::Ready(Err(watch::RecvError))
    );
    assert_eq!(rx.has_changed(), Err(watch::RecvError));
}

#[test]
fn a_subscribe_reopens_a_channel_whose_receivers_all_went() {
    let (tx, rx) = watch::channel("one");
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    let rx = tx.subscribe();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
}

#[test]
fn only_the_last_sender_s_drop_wakes_a_waiting_receiver() {
    let (tx1, mut rx) = watch::channel(0);
    let tx2 = tx1.clone();
    let mut t = polled(rx.changed());
    assert!(t.poll().is_pending());
    drop(tx1);
    assert!(!t.is_woken());
    drop(tx2);
    assert!(t.is_woken());
}

/// Once every sender is gone, `has_changed` fails whether or not the last value was seen,
/// while `changed` and `wait_for` still report an unseen or matching last value.
#[overlap::test]
async fn a_closed_channel_fails_has_changed_but_reports_the_unseen_value() {
    let (tx, mut rx) = watch::channel("A");
    tx.send("B").unwrap();
    drop(tx);
    assert_eq!(
        rx.has_changed(),
        Err(watch::RecvError),
        "though B is unseen"
    );
    assert_eq!(rx.changed().await, Ok(()));
    assert_eq!(rx.has_changed(), Err(watch::RecvError));
    assert_eq!(rx.changed().await, Err(watch::RecvError));

    let (tx, mut rx) = watch::channel("A");
    tx.send("B").unwrap();
    drop(tx);
    assert_eq!(rx.wait_for(|_| true).await.as_deref(), Ok(&"B"));
    assert!(rx.wait_for(|v| *v == "C").await.is_err());
}
