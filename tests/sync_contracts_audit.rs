//! A contract audit of the channels' rustdoc: each test pins a sentence of the docs that no
//! earlier test held to (the sentence is quoted above the test). `mpsc` here; oneshot,
//! broadcast, `CancellationToken` and `PollSender` in `sync_contracts_audit_more.rs`.
//! Futures are polled by hand (`support::polled`) where the exact step matters.

mod support;

use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::sync::mpsc::{self, error::SendTimeoutError, TryRecvError, TrySendError};
use support::polled;

/// `Receiver::close`: "the values already queued can still be received, and so can those
/// sent through slots reserved before the close (a `Permit`, or a `send` that was granted
/// a slot)" while "waiting senders are woken to fail"; and `capacity` after it.
#[test]
fn a_send_granted_a_slot_before_close_is_received_and_one_still_waiting_fails() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    tx.try_send(1).unwrap();
    let mut granted = polled(tx.send(2));
    let mut waiting = polled(tx.send(3));
    assert!(granted.poll().is_pending(), "full");
    assert!(waiting.poll().is_pending(), "full, and second in line");

    assert_eq!(
        rx.try_recv(),
        Ok(1),
        "frees the slot: it goes to the first in line"
    );
    assert!(granted.is_woken());
    assert!(!waiting.is_woken(), "one slot, one grant");

    rx.close();
    assert!(
        waiting.is_woken(),
        "close wakes the waiter that has no slot"
    );
    assert!(
        matches!(waiting.poll(), Poll::Ready(Err(mpsc::SendError(3)))),
        "no slot before the close: its value comes back"
    );
    assert!(
        matches!(granted.poll(), Poll::Ready(Ok(()))),
        "its slot was granted before the close"
    );
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Disconnected),
        "then the end"
    );
    assert!(matches!(tx.try_send(4), Err(TrySendError::Closed(4))));
    // `capacity`: "A closed channel keeps its count, though every send then fails at once".
    assert_eq!((tx.capacity(), rx.capacity()), (1, 1));
}

/// `TrySendError::Full`: "The channel is full (or its free slots are promised to waiting
/// senders)"; `try_reserve_many`: "Reserves `n` slots if they are free now (and no sender
/// waits before)"; "`n == 0` gives an empty iterator while the channel is open";
/// `reserve_many`: "`n == 0` gives an empty iterator at once while the channel is open,
/// full or not" and "Fails ... if `n` is above the channel's capacity".
#[test]
fn free_slots_a_waiting_batch_needs_are_not_taken_by_the_senders_behind_it() {
    let (tx, mut rx) = mpsc::channel::<u32>(3);
    tx.try_send(0).unwrap();
    let mut batch = polled(tx.reserve_many(3));
    assert!(batch.poll().is_pending(), "two free, three wanted");

    assert!(
        matches!(tx.try_send(9), Err(TrySendError::Full(9))),
        "the batch waits first"
    );
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
    assert!(matches!(
        tx.try_reserve_many(1),
        Err(TrySendError::Full(()))
    ));
    assert_eq!(tx.try_reserve_many(0).map(|p| p.len()).ok(), Some(0));
    let mut nothing = polled(tx.reserve_many(0));
    assert!(matches!(nothing.poll(), Poll::Ready(Ok(ref p)) if p.len() == 0));
    assert!(matches!(
        tx.try_reserve_many(4),
        Err(TrySendError::Full(()))
    ));
    let mut too_many = polled(tx.reserve_many(4));
    assert!(
        matches!(too_many.poll(), Poll::Ready(Err(_))),
        "never that many slots"
    );

    assert_eq!(rx.try_recv(), Ok(0));
    assert!(batch.is_woken());
    let Poll::Ready(Ok(mut permits)) = batch.poll() else {
        panic!("three slots free: the batch has them");
    };
    assert_eq!(permits.len(), 3);
    assert_eq!(tx.capacity(), 0, "all three reserved");
    for v in [7, 8] {
        permits.next().unwrap().send(v);
    }
    drop(permits);
    assert_eq!(tx.capacity(), 1, "the unused one came back");
    assert_eq!(rx.try_recv(), Ok(7));
    assert_eq!(rx.try_recv(), Ok(8));
}

/// `WeakSender::upgrade`: "A sender of the channel if a sender still keeps it open, else
/// `None` (also when only the receiver closed it: the sender would then fail its sends, as
/// any other)".
#[test]
fn a_weak_sender_upgrades_after_a_close_and_its_sender_fails_then_not_after_the_last_drop() {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    let weak = tx.downgrade();
    rx.close();
    let up = weak
        .upgrade()
        .expect("a strong sender lives: the receiver only closed");
    assert_eq!(weak.strong_count(), 2);
    assert!(matches!(up.try_send(1), Err(TrySendError::Closed(1))));
    assert!(up.is_closed());
    drop(up);
    drop(tx);
    assert!(weak.upgrade().is_none(), "no strong sender left");
    assert_eq!(weak.strong_count(), 0);
    assert_eq!(weak.weak_count(), 1);

    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let weak = tx.downgrade();
    rx.close();
    let up = weak
        .upgrade()
        .expect("closed by the receiver, a sender still lives");
    assert_eq!(up.send(2).unwrap_err().0, 2);
    drop((up, tx));
    assert!(weak.upgrade().is_none());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// `Permit::send` and `OwnedPermit::send`: "if the receiver was dropped, `value` is
/// dropped"; the permit's slot "is free again".
#[test]
fn a_permit_filled_after_the_receiver_dropped_drops_its_value_at_once() {
    let (tx, rx) = mpsc::channel::<Rc<()>>(2);
    let permit = tx.try_reserve().unwrap();
    let owned = tx.clone().try_reserve_owned().unwrap();
    drop(rx);
    let value = Rc::new(());

    permit.send(value.clone());
    assert_eq!(
        Rc::strong_count(&value),
        1,
        "dropped by the send, not kept in the queue"
    );
    let sender = owned.send(value.clone());
    assert_eq!(
        Rc::strong_count(&value),
        1,
        "dropped by the owned permit's send too"
    );
    assert!(sender.same_channel(&tx), "the sender comes back");
    assert_eq!(tx.capacity(), 2, "both slots free again");
}

/// `reserve_owned`: "Fails if the receiver is gone (this sender is then dropped)";
/// `try_reserve_owned`: "On failure the sender comes back in the error".
#[test]
fn reserve_owned_drops_its_sender_on_a_gone_receiver_and_try_reserve_owned_gives_it_back() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let weak = tx.downgrade();
    tx.try_send(1).unwrap();

    let back = match tx.clone().try_reserve_owned() {
        Err(TrySendError::Full(sender)) => sender,
        other => panic!("full, expected the sender back: {:?}", other.is_ok()),
    };
    assert_eq!(weak.strong_count(), 2, "the sender came back alive");
    assert!(back.same_channel(&tx));
    drop(back);

    rx.close();
    match tx.clone().try_reserve_owned() {
        Err(TrySendError::Closed(sender)) => assert!(sender.same_channel(&tx)),
        other => panic!("closed, expected the sender back: {:?}", other.is_ok()),
    }
    assert_eq!(
        weak.strong_count(),
        1,
        "the returned sender was dropped with the error"
    );

    let mut reserve = polled(tx.clone().reserve_owned());
    assert_eq!(weak.strong_count(), 2, "the future holds the clone");
    assert!(matches!(
        reserve.poll(),
        Poll::Ready(Err(mpsc::SendError(())))
    ));
    assert_eq!(
        weak.strong_count(),
        1,
        "the failing reserve dropped its sender"
    );
    drop(reserve);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(weak.strong_count(), 1);
}

/// `send_timeout`: "With room at once it sends even with a zero `timeout`" and "Panics:
/// When it has to wait outside a runtime": so with room it needs no runtime at all; and a
/// receiver that is gone gives the value back in `Closed`, zero timeout or not.
#[test]
fn send_timeout_with_room_sends_at_once_with_a_zero_timeout_outside_a_runtime() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let mut send = polled(tx.send_timeout(1, Duration::ZERO));
    assert!(matches!(send.poll(), Poll::Ready(Ok(()))));
    drop(send);
    assert_eq!(rx.try_recv(), Ok(1));

    rx.close();
    let mut send = polled(tx.send_timeout(2, Duration::ZERO));
    assert!(matches!(
        send.poll(),
        Poll::Ready(Err(SendTimeoutError::Closed(2)))
    ));
}

/// `Receiver::recv_many`: "`0` means the channel has ended (as `recv`'s `None`), or `limit`
/// was 0" — a `limit` of 0 moves nothing even with values queued, and they stay for the next
/// call; after `close`, the queued values still come, then 0.
#[overlap::test]
async fn recv_many_with_limit_zero_takes_nothing_and_after_close_drains_then_ends() {
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    for v in [1, 2, 3] {
        tx.send(v).await.unwrap();
    }
    let mut buf = vec![0];
    assert_eq!(rx.recv_many(&mut buf, 0).await, 0);
    assert_eq!(buf, [0], "nothing moved");
    assert_eq!(rx.len(), 3, "nothing taken");
    rx.close();
    assert!(rx.is_closed());
    assert_eq!(rx.recv_many(&mut buf, 2).await, 2);
    assert_eq!(rx.recv_many(&mut buf, 2).await, 1);
    assert_eq!(rx.recv_many(&mut buf, 2).await, 0, "ended, though tx lives");
    assert_eq!(buf, [0, 1, 2, 3]);
    drop(tx);
}

/// `PermitIterator`: "Dropping the iterator gives the slots it has not handed out back to
/// the channel at once"; after a close, reserved slots given back go "towards the end of
/// the channel (the last one lets `recv` return `None`)", while a permit handed out before
/// is "not affected" and still delivers.
#[test]
fn a_permit_iterator_dropped_after_close_ends_the_receive_once_its_permit_delivered() {
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    let mut permits = tx.try_reserve_many(3).unwrap();
    let first = permits.next().unwrap();
    rx.close();

    let mut recv = polled(rx.recv());
    assert!(
        recv.poll().is_pending(),
        "three slots reserved before the close"
    );
    first.send(1);
    assert!(recv.is_woken());
    assert_eq!(
        recv.poll(),
        Poll::Ready(Some(1)),
        "sent through a slot held before"
    );
    drop(recv);

    let mut recv = polled(rx.recv());
    assert!(
        recv.poll().is_pending(),
        "two slots still held by the iterator"
    );
    drop(permits);
    assert!(
        recv.is_woken(),
        "both given back at once: the last lets recv end"
    );
    assert_eq!(
        recv.poll(),
        Poll::Ready(None),
        "tx lives, yet the channel ended"
    );
}
