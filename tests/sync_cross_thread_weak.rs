//! `sync::mpsc::cross_thread`'s weak senders: `downgrade`, `upgrade` (only while a strong
//! sender lives), the counts, and the end of the channel once the last strong sender goes,
//! whatever weak ones remain; then upgrades racing with that last drop on other threads.
//! A lost wake shows as a hang, caught by a guard of 10 s or more; nothing is timed.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use overlap::sync::mpsc::cross_thread::{self, WeakSender, WeakUnboundedSender};
use overlap::sync::mpsc::error::{SendError, TryRecvError};
use support::{polled, watchdog, within};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn weak_senders_are_send_sync_clone_and_debug() {
    fn send_sync<T: Send + Sync + Clone + std::fmt::Debug>(_: &T) {}
    let (tx, _rx) = cross_thread::channel::<String>(1);
    let (utx, _urx) = cross_thread::unbounded_channel::<String>();
    let weak: WeakSender<String> = tx.downgrade();
    let uweak: WeakUnboundedSender<String> = utx.downgrade();
    send_sync(&weak);
    send_sync(&uweak);
    let shown = format!("{weak:?} {uweak:?}");
    assert!(
        shown.contains("WeakSender") && shown.contains("WeakUnboundedSender"),
        "{shown}"
    );
    assert!(shown.contains("strong_count: 1"), "{shown}");
}

#[test]
fn the_counts_follow_clones_upgrades_and_drops() {
    let (tx, rx) = cross_thread::channel::<u8>(1);
    assert_eq!((tx.strong_count(), tx.weak_count()), (1, 0));
    let weak = tx.downgrade();
    let weak2 = weak.clone();
    assert_eq!((tx.strong_count(), tx.weak_count()), (1, 2));
    assert_eq!((weak.strong_count(), weak.weak_count()), (1, 2));
    assert_eq!((rx.sender_strong_count(), rx.sender_weak_count()), (1, 2));
    let up = weak.upgrade().unwrap();
    assert_eq!((up.strong_count(), rx.sender_strong_count()), (2, 2));
    assert!(up.same_channel(&tx));
    drop(weak2);
    assert_eq!((weak.weak_count(), rx.sender_weak_count()), (1, 1));
    drop((tx, up));
    assert_eq!((weak.strong_count(), rx.sender_strong_count()), (0, 0));
    assert_eq!(
        rx.sender_weak_count(),
        1,
        "a weak sender outlives the strong ones"
    );
    drop(weak);
    assert_eq!(rx.sender_weak_count(), 0);

    let (utx, urx) = cross_thread::unbounded_channel::<u8>();
    let uweak = utx.downgrade();
    let _uweak2 = uweak.clone();
    assert_eq!((utx.strong_count(), utx.weak_count()), (1, 2));
    let up = uweak.upgrade().unwrap();
    assert_eq!((uweak.strong_count(), uweak.weak_count()), (2, 2));
    assert!(up.same_channel(&utx));
    assert_eq!((urx.sender_strong_count(), urx.sender_weak_count()), (2, 2));
}

#[overlap::test]
async fn an_upgraded_sender_sends_and_keeps_the_channel_open() {
    let (tx, mut rx) = cross_thread::channel(2);
    let weak = tx.downgrade();
    let up = weak.upgrade().expect("a strong sender lives");
    drop(tx);
    assert!(
        !rx.is_closed(),
        "the upgraded sender counts as a strong one"
    );
    up.send(1).await.unwrap();
    let up2 = weak.upgrade().expect("the upgraded one keeps it open");
    drop(up);
    up2.try_send(2).unwrap();
    drop(up2);
    assert!(rx.is_closed());
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(rx.recv().await, None);
    assert!(weak.upgrade().is_none());
}

#[overlap::test]
async fn the_receiver_sees_the_end_when_the_last_strong_sender_drops_despite_weak_ones() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let (utx, mut urx) = cross_thread::unbounded_channel::<u8>();
    let weak = tx.downgrade();
    let uweak = utx.downgrade();
    tx.try_send(1).unwrap();
    utx.send(2).unwrap();
    drop(tx);
    drop(utx);
    assert!(rx.is_closed() && urx.is_closed());
    assert_eq!(rx.recv().await, Some(1), "queued values are still received");
    assert_eq!(urx.recv().await, Some(2));
    assert_eq!(rx.recv().await, None);
    assert_eq!(urx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(weak.upgrade().is_none() && uweak.upgrade().is_none());
    assert!(weak.clone().upgrade().is_none(), "nor through a clone");
}

#[overlap::test]
async fn the_last_strong_drop_wakes_a_waiting_receiver_despite_weak_ones() {
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let weak = tx.downgrade();
    let mut recv = polled(rx.recv());
    assert!(recv.poll().is_pending());
    let up = weak.upgrade().unwrap();
    drop(tx);
    assert!(!recv.is_woken(), "the upgraded sender is left");
    drop(up);
    assert!(recv.is_woken());
    assert_eq!(recv.poll(), Poll::Ready(None));
    // And from another thread, with a task waiting.
    let (tx, mut rx) = cross_thread::channel::<u8>(1);
    let weak = tx.downgrade();
    let dropper = thread::spawn(move || drop(tx));
    assert_eq!(
        within(HANG, rx.recv(), "the end of the channel").await,
        None
    );
    dropper.join().unwrap();
    assert!(weak.upgrade().is_none());
}

#[overlap::test]
async fn a_closed_channel_still_upgrades_but_its_sends_fail() {
    let (tx, mut rx) = cross_thread::channel(1);
    let weak = tx.downgrade();
    rx.close();
    let up = weak.upgrade().expect("a strong sender still lives");
    assert_eq!(up.send(1).await, Err(SendError(1)));
    drop(rx);
    let up2 = weak
        .upgrade()
        .expect("the receiver's drop does not end the senders");
    assert!(up2.is_closed());
    drop((tx, up, up2));
    assert!(weak.upgrade().is_none());
}

/// Many rounds of: one thread drops the last strong sender while others upgrade the weak
/// one and send through what they got (a bounded number of times, so that upgraders
/// handing the count on to each other cannot keep the channel open forever). Whatever the
/// interleaving, every upgrade that succeeded kept the channel open for its sends: each of
/// them is received before the receiver sees the end, and no upgrade succeeds after it.
#[test]
fn upgrades_racing_with_the_last_strong_drop_never_revive_an_ended_channel() {
    const ROUNDS: usize = 100;
    const UPGRADERS: usize = 3;
    let done = watchdog(60);
    for round in 0..ROUNDS {
        let (tx, mut rx) = cross_thread::unbounded_channel::<usize>();
        let weak = tx.downgrade();
        let start = Arc::new(Barrier::new(UPGRADERS + 2));
        let ended = Arc::new(AtomicBool::new(false));
        let upgraders: Vec<_> = (0..UPGRADERS)
            .map(|u| {
                let (weak, start, ended) = (weak.clone(), start.clone(), ended.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut sent = 0;
                    while let Some(tx) = weak.upgrade().filter(|_| sent < 200) {
                        assert!(
                            !ended.load(Ordering::SeqCst),
                            "round {round}: upgraded after the receiver saw the end"
                        );
                        tx.send(u).expect("the receiver lives");
                        sent += 1;
                        if sent % 8 == 0 {
                            thread::yield_now();
                        }
                    }
                    sent
                })
            })
            .collect();
        let dropper = {
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                drop(tx);
            })
        };
        start.wait();
        let mut received = 0;
        while rx.blocking_recv().is_some() {
            received += 1;
        }
        ended.store(true, Ordering::SeqCst);
        assert!(weak.upgrade().is_none(), "round {round}");
        dropper.join().unwrap();
        let sent: usize = upgraders.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(received, sent, "round {round}: every upgraded send arrived");
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
    done.store(true, Ordering::SeqCst);
}

/// The same race on a bounded channel with a task receiving: the upgraders block in
/// `blocking_send` while the one slot is taken, holding their upgraded senders, and the
/// task must see every value they got in before the end.
#[overlap::test]
async fn a_task_receives_every_value_of_senders_upgraded_on_threads_before_the_end() {
    for _ in 0..50 {
        let (tx, mut rx) = cross_thread::channel::<u32>(1);
        let weak = tx.downgrade();
        let upgraders: Vec<_> = (0..3)
            .map(|_| {
                let weak = weak.clone();
                thread::spawn(move || {
                    let mut sent = 0u32;
                    while let Some(tx) = weak.upgrade().filter(|_| sent < 20) {
                        tx.blocking_send(1).expect("the receiver lives");
                        sent += 1;
                    }
                    sent
                })
            })
            .collect();
        let dropper = thread::spawn(move || {
            thread::yield_now();
            drop(tx);
        });
        let mut received = 0u32;
        while let Some(v) = within(HANG, rx.recv(), "the next value or the end").await {
            received += v;
        }
        dropper.join().unwrap();
        let sent: u32 = upgraders.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(received, sent);
        assert!(weak.upgrade().is_none());
    }
}
