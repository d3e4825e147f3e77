//! `cross_thread::Sender::reserve_owned` / `try_reserve_owned` and `OwnedPermit`: a slot
//! reserved by a permit that owns its sender, moved across threads, filled or given back,
//! and what dropping it (or the wait for it) does to the slot and to the channel's end.

mod support;

use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;

use overlap::sync::mpsc::cross_thread::{self, OwnedPermit, Sender};
use overlap::sync::mpsc::{TryRecvError, TrySendError};
use support::{on_thread_within, polled};

const HANG: Duration = Duration::from_secs(20);

fn assert_send<T: Send>(_: &T) {}

/// A full channel: the owned reserve waits, is woken by a receive on another thread, and
/// its permit, moved to a third thread, fills the slot and hands the sender back.
#[test]
fn a_reserve_owned_waits_for_room_and_its_permit_sends_from_another_thread() {
    let (tx, mut rx) = cross_thread::channel(1);
    tx.try_send(1).unwrap();
    let mut reserve = polled(tx.clone().reserve_owned());
    assert!(reserve.poll().is_pending(), "the only slot is taken");
    let receiver = std::thread::spawn(move || {
        let first = rx.blocking_recv();
        (first, rx)
    });
    let (first, mut rx) = receiver.join().unwrap();
    assert_eq!(first, Some(1));
    assert!(reserve.is_woken(), "the receive woke the waiting reserve");
    let permit = match reserve.poll() {
        std::task::Poll::Ready(permit) => permit.unwrap(),
        std::task::Poll::Pending => panic!("room was made, yet the reserve still waits"),
    };
    assert_send(&permit);
    assert!(
        matches!(tx.try_send(9), Err(TrySendError::Full(9))),
        "the permit holds the slot"
    );
    let back: Sender<i32> = std::thread::spawn(move || permit.send(2)).join().unwrap();
    assert!(back.same_channel(&tx));
    assert_eq!(rx.try_recv(), Ok(2));
    back.try_send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn try_reserve_owned_hands_the_sender_back_when_full_or_closed() {
    let (tx, rx) = cross_thread::channel::<u8>(1);
    let permit = tx.clone().try_reserve_owned().unwrap();
    let Err(TrySendError::Full(tx)) = tx.try_reserve_owned() else {
        panic!("the permit holds the only slot");
    };
    assert!(permit.same_channel_as_sender(&tx));
    let tx = permit.release();
    let again = tx.clone().try_reserve_owned().unwrap();
    let other = tx.clone();
    drop(again);
    drop(rx);
    let Err(TrySendError::Closed(back)) = other.try_reserve_owned() else {
        panic!("the receiver is gone");
    };
    assert!(back.same_channel(&tx));
}

/// A permit dropped unused gives its slot to a sender parked in `blocking_send` on another
/// thread; `release` does the same and keeps the sender.
#[test]
fn an_unused_permit_gives_its_slot_to_a_parked_sender_when_dropped_or_released() {
    for release in [false, true] {
        let (tx, mut rx) = cross_thread::channel::<u32>(1);
        let permit = tx.clone().try_reserve_owned().unwrap();
        let (parked_tx, parked) = sync_channel(0);
        let sender = tx.clone();
        let blocked = std::thread::spawn(move || {
            parked_tx.send(()).unwrap();
            sender.blocking_send(7)
        });
        parked.recv().unwrap();
        // The thread may be about to park or parked already: either way the slot is the
        // permit's until it goes.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        if release {
            let kept = permit.release();
            assert!(kept.same_channel(&tx));
        } else {
            drop(permit);
        }
        on_thread_within(HANG, "the parked sender gets the slot", move || {
            blocked.join().unwrap().unwrap();
        });
        assert_eq!(rx.try_recv(), Ok(7));
    }
}

/// The permit's sender keeps the channel open after every other sender is gone; sending
/// through it then dropping the sender ends the channel after the value.
#[test]
fn a_permit_keeps_the_channel_open_until_its_sender_goes() {
    let (tx, mut rx) = cross_thread::channel::<&str>(4);
    let permit: OwnedPermit<&str> = tx.try_reserve_owned().unwrap();
    assert_eq!(rx.sender_strong_count(), 1);
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "not ended: the permit holds a sender"
    );
    let tx = permit.send("last");
    drop(tx);
    assert_eq!(rx.blocking_recv(), Some("last"));
    assert_eq!(rx.blocking_recv(), None);

    // Dropped unused, a permit holding the only sender ends the channel.
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let permit = tx.try_reserve_owned().unwrap();
    drop(permit);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

/// A reserve dropped while it waits reserved nothing and dropped its sender: the slot
/// freed afterwards goes to a plain send, and the sender count went down.
#[test]
fn a_reserve_owned_dropped_while_waiting_reserves_nothing_and_drops_its_sender() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    tx.try_send(1).unwrap();
    let mut reserve = polled(tx.clone().reserve_owned());
    assert!(reserve.poll().is_pending());
    assert_eq!(rx.sender_strong_count(), 2);
    reserve.cancel();
    assert_eq!(rx.sender_strong_count(), 1);
    assert_eq!(rx.try_recv(), Ok(1));
    tx.try_send(2)
        .expect("the cancelled reserve left the freed slot to others");
    assert_eq!(rx.try_recv(), Ok(2));
}

/// A permit filled after the receiver is gone drops the value at once (on the filling
/// thread) and still hands the sender back.
#[test]
fn a_permit_filled_after_the_receiver_dropped_drops_the_value() {
    let (tx, rx) = cross_thread::channel::<Arc<()>>(1);
    let permit = tx.try_reserve_owned().unwrap();
    drop(rx);
    let value = Arc::new(());
    let back = permit.send(value.clone());
    assert_eq!(
        Arc::strong_count(&value),
        1,
        "the value was dropped, not kept"
    );
    assert!(back.is_closed());
}

#[test]
fn the_owned_reserve_future_is_send_and_runs_under_block_on() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let reserve = tx.reserve_owned();
    assert_send(&reserve);
    overlap::block_on(async move {
        let tx = reserve.await.unwrap().send(5);
        assert_eq!(rx.recv().await, Some(5));
        drop(tx);
        assert_eq!(rx.recv().await, None);
    });
}
