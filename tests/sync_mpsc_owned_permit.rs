//! `mpsc::Sender::reserve_owned` and `try_reserve_owned`: an `OwnedPermit` holds a slot and
//! the sender it was reserved with; using it hands the sender back, dropping it gives the
//! slot back (waking a waiting sender), and while it lives the channel is not over for the
//! receiver.

mod support;

use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::mpsc::{self, SendError, TrySendError};
use support::{polled, within};

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn send_fills_the_slot_and_hands_the_sender_back() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let permit = tx.reserve_owned().await.unwrap();
    assert!(rx.try_recv().is_err(), "a reservation is not a message");
    let tx = permit.send(456);
    assert_eq!(rx.recv().await, Some(456));
    tx.send(789).await.unwrap();
    assert_eq!(rx.recv().await, Some(789));
    drop(tx);
    assert_eq!(rx.recv().await, None);
}

#[overlap::test]
async fn release_gives_the_slot_to_the_waiting_sender_and_keeps_the_sender() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let permit = tx.clone().reserve_owned().await.unwrap();
    assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
    let mut waiting = polled(tx.reserve());
    assert!(waiting.poll().is_pending());
    let tx2 = permit.release();
    assert!(waiting.is_woken());
    let Poll::Ready(Ok(p)) = waiting.poll() else {
        panic!("the released slot went to the waiting reserve");
    };
    p.send(2);
    assert!(tx2.same_channel(&tx));
    assert_eq!(rx.recv().await, Some(2));
}

#[test]
fn a_dropped_permit_gives_its_slot_to_the_first_waiter() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let permit = tx.clone().try_reserve_owned().unwrap();
    let mut first = polled(tx.reserve());
    assert!(first.poll().is_pending());
    let mut second = polled(tx.send(2));
    assert!(second.poll().is_pending());
    drop(permit);
    assert!(first.is_woken());
    assert!(!second.is_woken(), "one slot, one wake");
    let Poll::Ready(Ok(p)) = first.poll() else {
        panic!("the dropped permit's slot went to the first waiter");
    };
    p.send(1);
    assert_eq!(rx.recv().now_or_never(), Some(Some(1)));
    assert!(second.is_woken());
    assert!(matches!(second.poll(), Poll::Ready(Ok(()))));
    assert_eq!(rx.recv().now_or_never(), Some(Some(2)));
}

/// The permit owns a sender: with every other sender gone, the receiver still waits for the
/// permit's value; dropping the permit unused then ends the channel.
#[test]
fn the_receiver_waits_while_a_permit_holds_the_last_sender() {
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    let permit = tx.reserve_owned().now_or_never().unwrap().unwrap();
    {
        let mut recv = polled(rx.recv());
        assert!(recv.poll().is_pending(), "the permit's sender is alive");
        let tx = permit.send(7);
        assert!(recv.is_woken());
        assert_eq!(recv.poll(), Poll::Ready(Some(7)));
        drop(recv);
        let permit = tx.try_reserve_owned().unwrap();
        let mut recv = polled(rx.recv());
        assert!(recv.poll().is_pending());
        drop(permit);
        assert!(recv.is_woken(), "the last sender went with the permit");
        assert_eq!(recv.poll(), Poll::Ready(None));
    }
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
}

#[overlap::test]
async fn a_permit_moves_into_another_task() {
    let (tx, mut rx) = mpsc::channel::<&'static str>(1);
    let permit = tx.reserve_owned().await.unwrap();
    let task = overlap::spawn(async move {
        overlap::yield_now().await;
        permit.send("from the task")
    });
    assert_eq!(
        within(HANG, rx.recv(), "the permit's value never came").await,
        Some("from the task")
    );
    let tx = task.await.unwrap();
    drop(tx);
    assert_eq!(rx.recv().await, None);
}

#[test]
fn try_reserve_owned_gives_the_sender_back_when_full_or_closed() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let permit = tx.clone().try_reserve_owned().unwrap();
    let Err(TrySendError::Full(tx)) = tx.try_reserve_owned() else {
        panic!("the permit holds the only slot");
    };
    assert!(permit.same_channel_as_sender(&tx));
    drop(permit);
    rx.close();
    let Err(TrySendError::Closed(tx)) = tx.try_reserve_owned() else {
        panic!("closed for new reservations");
    };
    assert!(tx.is_closed());
    assert_eq!(
        rx.recv().now_or_never(),
        Some(None),
        "closed, nothing reserved"
    );
}

#[test]
fn reserve_owned_fails_once_the_receiver_is_gone_and_drops_the_sender() {
    let (tx, rx) = mpsc::channel::<Rc<()>>(1);
    let mut waiting = polled(tx.clone().reserve_owned());
    let permit = tx.clone().try_reserve_owned().unwrap();
    assert!(waiting.poll().is_pending());
    drop(rx);
    assert!(waiting.is_woken());
    assert!(matches!(waiting.poll(), Poll::Ready(Err(SendError(())))));
    assert!(tx.clone().reserve_owned().now_or_never().unwrap().is_err());
    // Sending on a permit whose receiver is gone drops the value.
    let value = Rc::new(());
    let tx = permit.send(value.clone());
    assert_eq!(Rc::strong_count(&value), 1, "the value was kept");
    assert!(tx.is_closed());
}

/// After `close`, a permit reserved before still delivers, and one dropped unused lets the
/// receive end, as for the borrowing `Permit`.
#[test]
fn permits_reserved_before_a_close_deliver_or_end_the_channel() {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    let keep = tx.clone();
    let sending = tx.clone().try_reserve_owned().unwrap();
    let dropping = tx.try_reserve_owned().unwrap();
    rx.close();
    assert!(keep.clone().try_reserve_owned().is_err());
    drop(sending.send(1));
    assert_eq!(rx.try_recv(), Ok(1));
    let mut recv = polled(rx.recv());
    assert!(recv.poll().is_pending(), "a reserved slot is still to come");
    drop(dropping);
    assert!(recv.is_woken());
    assert_eq!(
        recv.poll(),
        Poll::Ready(None),
        "a sender is left, yet closed"
    );
}

/// A `reserve_owned` waiting in line and cancelled after it was granted a slot passes the
/// slot on, and drops its sender.
#[test]
fn a_cancelled_reserve_owned_passes_its_slot_on_and_drops_its_sender() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    tx.try_send(0).unwrap();
    let mut first = polled(tx.clone().reserve_owned());
    assert!(first.poll().is_pending());
    let mut second = polled(tx.reserve());
    assert!(second.poll().is_pending());
    assert_eq!(rx.try_recv(), Ok(0)); // the freed slot goes to `first`
    assert!(first.is_woken());
    assert!(!second.is_woken());
    first.cancel();
    assert!(second.is_woken(), "the cancelled reserve kept the slot");
    let Poll::Ready(Ok(p)) = second.poll() else {
        panic!("the slot was passed on");
    };
    p.send(1);
    drop(second);
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(
        rx.try_recv(),
        Err(mpsc::TryRecvError::Disconnected),
        "the cancelled reserve's sender is gone"
    );
}

#[overlap::test]
async fn same_channel_tells_permits_and_senders_of_one_channel_apart() {
    let (tx, _rx) = mpsc::channel::<()>(4);
    let (other, _other_rx) = mpsc::channel::<()>(2);
    let a = tx.clone().reserve_owned().await.unwrap();
    let b = tx.clone().reserve_owned().await.unwrap();
    let c = other.clone().reserve_owned().await.unwrap();
    assert!(a.same_channel(&b));
    assert!(!a.same_channel(&c));
    assert!(a.same_channel_as_sender(&tx));
    assert!(!c.same_channel_as_sender(&tx));

    let p = tx.reserve().await.unwrap();
    let q = tx.reserve().await.unwrap();
    let r = other.reserve().await.unwrap();
    assert!(p.same_channel(&q));
    assert!(!p.same_channel(&r));
    assert!(p.same_channel_as_sender(&tx));
    assert!(!p.same_channel_as_sender(&other));
    assert!(!tx.same_channel(&other));
}

#[test]
fn debug_shows_whether_a_permit_was_used() {
    let (tx, _rx) = mpsc::channel::<u32>(1);
    let permit = tx.try_reserve_owned().unwrap();
    assert_eq!(format!("{permit:?}"), "OwnedPermit { used: false }");
}
