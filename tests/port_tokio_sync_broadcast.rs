//! The later half of tokio's `sync_broadcast.rs` (tokio/tests/sync_broadcast.rs), ported:
//! `resubscribe` (at the tail, on a lagging or closed channel), the sender's `len`, the
//! sender's `closed` as receivers come and go, and the lagging counts of a ring that is
//! full.
//!
//! One difference on purpose: tokio rounds the capacity up to a power of two (3 holds 4
//! values) and its `Receiver::len` counts values already overwritten; overlap holds exactly
//! `capacity` values and its `len` counts only those still held. tokio's cases with a power
//! of two for capacity behave the same in both; the others are checked against overlap's
//! exact capacity here.

mod support;

use std::task::Poll;

use overlap::sync::broadcast::{self, TryRecvError};
use support::{polled, Rng};

#[test]
fn a_resubscribed_receiver_starts_at_the_tail_and_leaves_the_original_alone() {
    let (tx, mut rx) = broadcast::channel(3);
    tx.send(1).unwrap();
    let mut resub = rx.resubscribe();
    assert_eq!(resub.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.try_recv(), Ok(1));
    tx.send(2).unwrap();
    assert_eq!(resub.try_recv(), Ok(2));
    tx.send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(resub.try_recv(), Ok(3));
    assert_eq!(resub.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn resubscribing_a_lagging_receiver_does_not_inherit_its_lag() {
    let (tx, mut rx) = broadcast::channel(1);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let mut resub = rx.resubscribe();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(1)));
    assert_eq!(resub.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(resub.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn resubscribing_on_a_closed_channel_gives_a_closed_receiver() {
    let (tx, rx) = broadcast::channel::<u32>(2);
    drop(tx);
    let mut resub = rx.resubscribe();
    assert_eq!(resub.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn the_senders_len_counts_what_the_slowest_receiver_has_not_read() {
    let (tx, mut rx1) = broadcast::channel(4);
    let mut rx2 = tx.subscribe();
    assert!(tx.is_empty());
    for v in 1..=3 {
        tx.send(v).unwrap();
    }
    assert_eq!(tx.len(), 3);
    rx1.try_recv().unwrap();
    rx1.try_recv().unwrap();
    assert_eq!(tx.len(), 3, "rx2 has read nothing yet");
    rx2.try_recv().unwrap();
    assert_eq!(tx.len(), 2);
    for v in 4..=6 {
        tx.send(v).unwrap();
    }
    assert_eq!(tx.len(), 4, "never more than the capacity");
}

#[test]
fn the_senders_len_follows_random_sends_and_receives() {
    let mut rng = Rng(0x5eed_b0ad);
    let (tx, mut rx1) = broadcast::channel(16);
    let mut rx2 = tx.subscribe();
    for _ in 0..2000 {
        match rng.below(4) {
            0 => drop(rx1.try_recv()),
            1 => drop(rx2.try_recv()),
            _ => drop(tx.send(0)),
        }
        assert_eq!(tx.len(), rx1.len().max(rx2.len()).min(16));
    }
}

#[test]
fn closed_waits_for_the_last_receiver_each_time_the_channel_empties() {
    let (tx, rx) = broadcast::channel::<()>(1);
    let rx2 = tx.subscribe();
    let mut closed = polled(tx.closed());
    assert!(closed.poll().is_pending());
    drop(rx);
    assert!(!closed.is_woken());
    assert!(closed.poll().is_pending());
    drop(rx2);
    assert!(closed.is_woken());

    // A receiver subscribed before the woken `closed` looks again keeps it waiting.
    let rx3 = tx.subscribe();
    assert!(closed.poll().is_pending());
    drop(rx3);
    assert!(closed.is_woken());
    assert_eq!(closed.poll(), Poll::Ready(()));
    assert_eq!(polled(tx.closed()).poll(), Poll::Ready(()));

    let rx4 = tx.subscribe();
    let mut again = polled(tx.closed());
    assert!(again.poll().is_pending());
    drop(rx4);
    assert!(again.is_woken());
    assert_eq!(again.poll(), Poll::Ready(()));
}

#[test]
fn a_sender_made_alone_is_closed_until_someone_subscribes() {
    let tx = broadcast::Sender::<()>::new(1);
    assert_eq!(polled(tx.closed()).poll(), Poll::Ready(()));
    let _rx = tx.subscribe();
    assert!(polled(tx.closed()).poll().is_pending());
}

#[test]
fn a_full_ring_lags_each_receiver_by_what_it_lost() {
    // Within the capacity, a slow receiver loses nothing.
    let (tx, mut slow) = broadcast::channel(2);
    let mut fast = tx.subscribe();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert_eq!((fast.try_recv(), fast.try_recv()), (Ok(1), Ok(2)));
    assert_eq!((slow.try_recv(), slow.try_recv()), (Ok(1), Ok(2)));

    // Only the receiver that fell behind lags, by exactly what it lost.
    tx.send(3).unwrap();
    tx.send(4).unwrap();
    assert_eq!((fast.try_recv(), fast.try_recv()), (Ok(3), Ok(4)));
    tx.send(5).unwrap();
    tx.send(6).unwrap();
    assert_eq!(slow.try_recv(), Err(TryRecvError::Lagged(2)));
    assert_eq!((slow.try_recv(), slow.try_recv()), (Ok(5), Ok(6)));
    assert_eq!(slow.try_recv(), Err(TryRecvError::Empty));

    // Lagging again before reading what was left after the first lag.
    let (tx, mut rx) = broadcast::channel(2);
    for v in 1..=3 {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(1)));
    for v in 4..=6 {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(3)));
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(5), Ok(6)));

    // Four of capacity 4, one read, four more: the three unread ones are lost.
    let (tx, mut rx) = broadcast::channel(4);
    for v in 1..=4 {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.try_recv(), Ok(1));
    for v in 5..=8 {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(3)));
    for v in 5..=8 {
        assert_eq!(rx.try_recv(), Ok(v));
    }
}

#[test]
fn len_counts_what_is_held_after_a_lag_and_shrinks_as_it_is_read() {
    let (tx, mut rx) = broadcast::channel(2);
    for v in 1..=4 {
        tx.send(v).unwrap();
    }
    // tokio says 4 here (it counts the two overwritten values too).
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(2)));
    assert_eq!(rx.len(), 2);
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(rx.len(), 1);
    assert_eq!(rx.try_recv(), Ok(4));
    assert_eq!(rx.len(), 0);

    // Capacity 3 holds 3 here, where tokio's holds 4.
    let (tx, mut rx) = broadcast::channel(3);
    for v in 1..=4 {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Lagged(1)));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[overlap::test]
async fn recv_reports_the_lag_then_resumes_from_the_oldest_held() {
    let (tx, mut rx) = broadcast::channel(2);
    for v in [10, 20, 30] {
        tx.send(v).unwrap();
    }
    assert_eq!(rx.recv().await, Err(broadcast::RecvError::Lagged(1)));
    assert_eq!(rx.recv().await, Ok(20));
    assert_eq!(rx.recv().await, Ok(30));
}
