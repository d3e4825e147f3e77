//! The contract audit of `sync_contracts_audit.rs`, continued past `mpsc`: oneshot (and its
//! `cross_thread`), broadcast, watch, `CancellationToken` and `PollSender`. Each test pins
//! sentences of the rustdoc (quoted above it) that no earlier test held to.

mod support;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use overlap::future::FutureExt;
use overlap::sync::{broadcast, mpsc, oneshot, watch, CancellationToken, PollSender};
use support::polled;

/// oneshot `Receiver::close`: "awaiting the receiver ... with no value, fails at once
/// instead of waiting" while the sender lives; "Closing twice, or after the value was
/// taken, changes nothing". The same for `cross_thread`.
#[overlap::test]
async fn a_closed_oneshot_receiver_with_no_value_fails_at_once_while_the_sender_lives() {
    let (tx, mut rx) = oneshot::channel::<u32>();
    rx.close();
    rx.close();
    let mut recv = polled(&mut rx);
    assert!(matches!(recv.poll(), Poll::Ready(Err(oneshot::RecvError))));
    drop(recv);
    assert!(rx.is_terminated());
    assert!(tx.is_closed(), "the sender lives and sees the close");
    assert_eq!(tx.send(5), Err(5));

    let (tx, mut rx) = oneshot::channel::<u32>();
    tx.send(1).unwrap();
    assert_eq!(rx.try_recv(), Ok(1));
    rx.close();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));

    let (tx, mut rx) = oneshot::cross_thread::channel::<u32>();
    rx.close();
    rx.close();
    let mut recv = polled(&mut rx);
    assert!(matches!(recv.poll(), Poll::Ready(Err(_))));
    drop(recv);
    assert!(tx.is_closed());
    assert_eq!(tx.send(6), Err(6));
}

/// broadcast `WeakSender::upgrade`: "(With no receiver, the sender's sends fail, as any
/// other's: a receiver may still subscribe.)"; and the receivers see `Closed` "(after the
/// values still held), whatever weak senders remain"; `Receiver::is_closed`: "Values
/// already sent may still be read: `recv` reports `Closed` only once they are."
#[test]
fn a_broadcast_weak_sender_upgrades_with_no_receiver_and_does_not_hold_the_channel_open() {
    let tx = broadcast::Sender::<u32>::new(4);
    let weak = tx.downgrade();
    let up = weak.upgrade().expect("a strong sender lives");
    assert_eq!(up.send(1).unwrap_err().0, 1, "nobody listens yet");
    let mut rx = up.subscribe();
    assert_eq!(up.send(2), Ok(1), "one receiver now");
    assert_eq!(tx.send(3), Ok(1));

    drop((up, tx));
    assert!(weak.upgrade().is_none());
    assert!(rx.is_closed(), "every strong sender is gone");
    assert_eq!(rx.try_recv(), Ok(2), "held values still come");
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(broadcast::TryRecvError::Closed));
    assert_eq!(weak.weak_count(), 1, "the weak sender is still there");
}

/// broadcast `Sender::send`: "Sends `value` to every receiver, returning how many there
/// are"; `channel`: "each value sent reaches every `Receiver` that existed when it was
/// sent"; `resubscribe`: "gets the values sent from now on (not the ones this receiver has
/// yet to read)"; `Sender::is_empty`: "Whether every value sent was read by every receiver".
#[test]
fn a_broadcast_send_counts_the_receivers_it_reaches_and_is_empty_waits_for_the_slowest() {
    let (tx, mut a) = broadcast::channel::<u32>(8);
    assert_eq!(tx.send(1), Ok(1));
    let mut b = a.resubscribe();
    assert_eq!(tx.send(2), Ok(2));
    let mut c = tx.subscribe();
    assert_eq!(tx.send(3), Ok(3));
    assert_eq!(c.try_recv(), Ok(3), "c existed when 3 was sent");
    drop(c);
    assert_eq!(tx.send(4), Ok(2), "c went");

    assert_eq!(b.try_recv(), Ok(2), "not 1: sent before b existed");
    assert_eq!(b.try_recv(), Ok(3));
    assert_eq!(b.try_recv(), Ok(4));
    assert!(!tx.is_empty(), "a has read nothing");
    assert_eq!(tx.len(), 4);
    for want in 1..=4 {
        assert_eq!(a.try_recv(), Ok(want));
    }
    assert!(tx.is_empty());
    assert_eq!(tx.len(), 0);
    assert_eq!(a.try_recv(), Err(broadcast::TryRecvError::Empty));
}

/// watch `Receiver`: "cloning makes another receiver that has seen what this one has";
/// `channel`: "Changes are not queued: a receiver that looks after two sends sees only the
/// second."
#[overlap::test]
async fn a_cloned_watch_receiver_has_seen_what_its_original_has() {
    let (tx, mut rx) = watch::channel(0u32);
    tx.send(1).unwrap();
    let mut unseen = rx.clone();
    assert!(
        unseen.has_changed().unwrap(),
        "1 is unseen by the original, so by the clone"
    );
    assert_eq!(*rx.borrow_and_update(), 1);
    let mut seen = rx.clone();
    assert!(!seen.has_changed().unwrap(), "the original had seen 1");
    assert!(seen.changed().now_or_never().is_none());

    tx.send(2).unwrap();
    tx.send(3).unwrap();
    assert_eq!(unseen.changed().await, Ok(()));
    assert_eq!(*unseen.borrow_and_update(), 3, "only the latest");
    assert!(!unseen.has_changed().unwrap(), "two sends, one change");
    assert_eq!(seen.changed().await, Ok(()));
    assert_eq!(*seen.borrow(), 3);
}

/// `CancellationToken::cancelled`: "It is fused ... and ready again each time it is polled
/// after the cancellation" (and the owned future as well).
#[test]
fn a_cancelled_wait_is_ready_again_each_time_it_is_polled() {
    let token = CancellationToken::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut wait = pin!(token.cancelled());
    let mut owned = pin!(token.clone().cancelled_owned());
    assert!(wait.as_mut().poll(&mut cx).is_pending());
    assert!(owned.as_mut().poll(&mut cx).is_pending());
    token.cancel();
    for _ in 0..3 {
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        assert!(owned.as_mut().poll(&mut cx).is_ready());
    }
}

/// `CancellationToken`: "Dropping tokens never cancels anything, even the last clone (a
/// waiting future then waits for ever)"; `child_token`: "cancelled when this one is (at
/// once, if it already is)"; `is_cancelled`: "(by itself, a clone or an ancestor)".
#[test]
fn dropping_every_parent_token_leaves_its_child_uncancelled_and_waiting() {
    let parent = CancellationToken::new();
    let child = parent.child_token();
    let grandchild = child.child_token();
    let mut wait = polled(grandchild.clone().cancelled_owned());
    assert!(wait.poll().is_pending());
    drop(parent);
    assert!(!child.is_cancelled(), "a dropped parent cancels nothing");
    assert!(!wait.is_woken());
    assert!(wait.poll().is_pending());

    let dropped_alone = CancellationToken::new();
    let mut last = polled(dropped_alone.clone().cancelled_owned());
    assert!(last.poll().is_pending());
    drop(dropped_alone);
    assert!(!last.is_woken());
    assert!(
        last.poll().is_pending(),
        "waits for ever: nothing cancels it"
    );

    child.cancel();
    assert!(wait.is_woken());
    assert!(wait.poll().is_ready());
    assert!(grandchild.is_cancelled(), "by an ancestor");
    let late = child.child_token();
    assert!(
        late.is_cancelled(),
        "a child of a cancelled token is cancelled at once"
    );
}

/// `PollSender::send_item`: "With no slot reserved (or the sender closed), the value comes
/// back in the error and nothing changes"; `abort_send`: "true if there was either. The
/// sender stays usable"; `Clone`: "with no slot reserved (closed if this one is)";
/// `close`: "the receiver sees the channel end once every other sender is gone too".
#[test]
fn poll_sender_without_a_slot_gives_the_item_back_and_abort_send_frees_the_slot() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let mut ps = PollSender::new(tx);
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(
        ps.send_item(1).unwrap_err().into_inner(),
        Some(1),
        "no slot yet"
    );
    assert!(!ps.abort_send(), "nothing to abort");

    assert!(matches!(ps.poll_reserve(&mut cx), Poll::Ready(Ok(()))));
    let mut other = ps.clone();
    assert!(!other.abort_send(), "the clone has no slot");
    assert_eq!(ps.get_ref().unwrap().capacity(), 0, "the slot is held");
    assert!(ps.abort_send());
    assert_eq!(ps.get_ref().unwrap().capacity(), 1, "given back");
    assert_eq!(ps.send_item(2).unwrap_err().into_inner(), Some(2));
    assert_eq!(
        rx.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "nothing was sent"
    );

    assert!(matches!(ps.poll_reserve(&mut cx), Poll::Ready(Ok(()))));
    ps.send_item(3).unwrap();
    ps.close();
    assert!(ps.is_closed());
    assert!(
        ps.clone().is_closed(),
        "a clone of a closed sender is closed"
    );
    assert!(matches!(ps.poll_reserve(&mut cx), Poll::Ready(Err(_))));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(
        rx.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "the clone keeps the channel open"
    );
    other.close();
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
}
