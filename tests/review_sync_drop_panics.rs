//! A broadcast value whose `Drop` panics: the panic reaches the call that dropped the value,
//! but only once that call has done its work for everyone else. The send that evicts it
//! still wakes the waiting receivers, the last receiver's drop still wakes the senders in
//! `closed`, and the other values every receiver has read are still dropped.

mod support;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::broadcast::{self, RecvError};
use support::{settle, within};

/// A value (and its clones) whose next drop panics once `armed` is set.
#[derive(Clone)]
struct Bomb {
    armed: Rc<Cell<bool>>,
    id: u32,
}

impl Bomb {
    fn new(id: u32) -> Bomb {
        Bomb {
            armed: Rc::default(),
            id,
        }
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.armed.replace(false) {
            panic!("bomb {} went off", self.id);
        }
    }
}

#[overlap::test]
async fn a_send_evicting_a_value_whose_drop_panics_still_wakes_waiting_receivers() {
    let (tx, _unread) = broadcast::channel(1);
    let mut reader = tx.subscribe();
    let old = Bomb::new(0);
    let armed = old.armed.clone();
    tx.send(old).unwrap();
    drop(reader.try_recv().unwrap());
    let waiter = overlap::spawn(async move {
        loop {
            match reader.recv().await {
                Ok(b) => break Some(b.id),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break None,
            }
        }
    });
    settle().await;
    // `_unread` has not read value 0, so the channel still holds it: the next send evicts it.
    armed.set(true);
    let sent = catch_unwind(AssertUnwindSafe(|| tx.send(Bomb::new(1))));
    assert!(sent.is_err(), "the evicted value's drop panicked in send");
    let got = within(
        Duration::from_secs(10),
        waiter,
        "the receiver was never woken",
    )
    .await;
    assert_eq!(got.unwrap(), Some(1));
}

#[overlap::test]
async fn the_last_receiver_dropping_a_value_whose_drop_panics_still_wakes_closed() {
    let (tx, rx) = broadcast::channel(4);
    let value = Bomb::new(0);
    let armed = value.armed.clone();
    tx.send(value).unwrap();
    let tx = Rc::new(tx);
    let closed = overlap::spawn({
        let tx = tx.clone();
        async move { tx.closed().await }
    });
    settle().await;
    armed.set(true);
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(rx)));
    assert!(dropped.is_err(), "the unread value's drop panicked");
    let done = within(Duration::from_secs(10), closed, "closed() was never woken").await;
    done.unwrap();
}

#[overlap::test]
async fn a_panicking_drop_stops_none_of_the_other_drops_of_read_values() {
    let (tx, mut a) = broadcast::channel(4);
    let b = tx.subscribe();
    let first = Bomb::new(0);
    let armed = first.armed.clone();
    let second = Rc::new(());
    tx.send((first, None)).unwrap();
    tx.send((Bomb::new(1), Some(second.clone()))).unwrap();
    drop(a.try_recv().unwrap());
    drop(a.try_recv().unwrap());
    armed.set(true);
    // `b` was the last not to have read either: both go with it.
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(b)));
    assert!(dropped.is_err(), "the first value's drop panicked");
    assert_eq!(tx.len(), 0, "both values were read by every receiver left");
    assert_eq!(Rc::strong_count(&second), 1, "the second value was dropped");
}
