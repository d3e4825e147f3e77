//! `Notify::notify_last` (the latest waiter first) and `Notified::enable` (joining the line
//! before the first poll), with their permits, broadcasts and dropped futures.

mod support;

use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::{Notified, Notify};
use support::{settle, within};

const HANG: Duration = Duration::from_secs(30);

fn enable(n: &mut Notified<'_>) -> bool {
    Pin::new(n).enable()
}

#[overlap::test]
async fn notify_last_wakes_the_latest_waiter_and_notify_one_the_earliest() {
    let notify = Rc::new(Notify::new());
    let woke = Rc::new(std::cell::RefCell::new(Vec::new()));
    let tasks: Vec<_> = (0..3)
        .map(|i| {
            let (notify, woke) = (notify.clone(), woke.clone());
            overlap::spawn(async move {
                notify.notified().await;
                woke.borrow_mut().push(i);
            })
        })
        .collect();
    settle().await; // all three wait, in order
    notify.notify_last();
    settle().await;
    assert_eq!(*woke.borrow(), [2]);
    notify.notify_one();
    settle().await;
    assert_eq!(*woke.borrow(), [2, 0]);
    notify.notify_last();
    for t in tasks {
        within(HANG, t, "a waiter was never woken").await.unwrap();
    }
    assert_eq!(*woke.borrow(), [2, 0, 1]);

    // With nobody waiting, a permit, as notify_one stores.
    notify.notify_last();
    assert!(notify.notified().now_or_never().is_some());
    assert!(notify.notified().now_or_never().is_none());
}

#[overlap::test]
async fn a_dropped_waiter_chosen_by_notify_last_passes_it_to_the_new_last() {
    let notify = Notify::new();
    let (mut a, mut b, mut c) = (notify.notified(), notify.notified(), notify.notified());
    assert!(!enable(&mut a) && !enable(&mut b) && !enable(&mut c));
    // Chosen, then dropped before anything reported it: the new last (b) gets it.
    notify.notify_last();
    drop(c);
    assert!(enable(&mut b), "the new last got it");
    assert!(!enable(&mut a));
    // Once `enable` has reported it, the future holds the notification: dropping it
    // passes nothing on.
    drop(b);
    assert!(!enable(&mut a));
    notify.notify_last();
    drop(a);
    assert!(
        notify.notified().now_or_never().is_some(),
        "nobody left: it became the permit"
    );
}

#[overlap::test]
async fn enable_joins_the_line_before_the_first_poll() {
    let notify = Notify::new();
    let mut a = notify.notified();
    let mut b = notify.notified();
    // b joins first: notify_one chooses it, not a, and stores no permit.
    assert!(!enable(&mut b));
    assert!(!enable(&mut b), "again: still waiting");
    notify.notify_one();
    assert!(enable(&mut b));
    assert!(
        (&mut a).now_or_never().is_none(),
        "no permit was left for a"
    );
    assert!((&mut b).now_or_never().is_some());
    drop(a); // it was in line (polled): out of it now

    // Enabling takes a stored permit, once.
    notify.notify_one();
    let mut c = notify.notified();
    assert!(enable(&mut c));
    assert!(
        notify.notified().now_or_never().is_none(),
        "the permit is gone"
    );
    assert!((&mut c).now_or_never().is_some());

    // A notify_waiters after the future was made reaches it, enabled or not.
    let mut d = notify.notified();
    let mut e = notify.notified();
    assert!(!enable(&mut d));
    notify.notify_waiters();
    assert!(enable(&mut d) && enable(&mut e));
    assert!(d.now_or_never().is_some() && e.now_or_never().is_some());

    // An enabled future chosen then dropped unpolled passes the notification on.
    let mut f = notify.notified();
    let mut g = notify.notified();
    assert!(!enable(&mut f) && !enable(&mut g));
    notify.notify_one();
    drop(f);
    assert!(enable(&mut g));
}

#[overlap::test]
async fn an_enabled_waiter_is_woken_once_its_task_polls() {
    let notify = Rc::new(Notify::new());
    let (ready_tx, ready_rx) = overlap::sync::oneshot::channel();
    let waiter = {
        let notify = notify.clone();
        overlap::spawn(async move {
            let mut wait = std::pin::pin!(notify.notified());
            wait.as_mut().enable();
            ready_tx.send(()).unwrap();
            wait.await;
        })
    };
    ready_rx.await.unwrap();
    // The waiter is in line (enabled before the send); it also polled by now or soon.
    notify.notify_one();
    within(HANG, waiter, "the enabled waiter was not woken")
        .await
        .unwrap();
    assert!(notify.notified().now_or_never().is_none(), "no permit left");
}

#[overlap::test]
async fn an_owned_notified_moved_into_a_task_is_woken_by_notify_one() {
    let notify = Rc::new(Notify::new());
    let woke = Rc::new(std::cell::Cell::new(false));
    let wait = notify.clone().notified_owned();
    let task = {
        let woke = woke.clone();
        overlap::spawn(async move {
            wait.await;
            woke.set(true);
        })
    };
    settle().await;
    assert!(!woke.get(), "nothing notified it yet");
    notify.notify_one();
    within(HANG, task, "the owned waiter was never woken")
        .await
        .unwrap();
    assert!(woke.get());
    assert!(
        notify.notified().now_or_never().is_none(),
        "the waiter took the notification: no permit was stored"
    );
}

#[overlap::test]
async fn an_owned_notified_enables_and_passes_on_what_it_was_chosen_for_when_dropped() {
    let notify = Rc::new(Notify::new());
    let mut first = Box::pin(notify.clone().notified_owned());
    let mut second = Box::pin(notify.clone().notified_owned());
    assert!(!first.as_mut().enable() && !second.as_mut().enable());
    notify.notify_one(); // chooses the first in line
    drop(first);
    assert!(second.as_mut().enable(), "the next in line got it");
    second.await;
    // A broadcast reaches an owned future made before it, enabled or not.
    let late = notify.clone().notified_owned();
    notify.notify_waiters();
    assert!(late.now_or_never().is_some());
}

/// A `Notified` is a `FusedFuture`, as overlap's other waits are: made and enabled once
/// before a `select!` loop (so a `notify_waiters` while the task is busy elsewhere is not
/// missed), it goes in by name, and once it has fired that branch is skipped instead of
/// firing again on every turn.
#[overlap::test]
async fn a_notified_in_a_select_loop_fires_once_and_is_then_skipped() {
    use overlap::future::FusedFuture;
    let notify = Rc::new(Notify::new());
    let (tx, mut rx) = overlap::sync::mpsc::channel::<u32>(4);
    let notified = notify.notified();
    overlap::pin_mut!(notified);
    notified.as_mut().enable();
    assert!(!notified.is_terminated());
    // Broadcast before the loop polls anything: the enabled future still holds it.
    notify.notify_waiters();
    let feeder = overlap::spawn(async move {
        for n in 1..=3 {
            tx.send(n).await.unwrap();
        }
    });
    let (mut fired, mut got) = (0, Vec::new());
    within(
        HANG,
        async {
            loop {
                overlap::select_biased! {
                    _ = notified => fired += 1,
                    n = rx.recv().fuse() => match n {
                        Some(n) => got.push(n),
                        None => break,
                    },
                }
            }
        },
        "the loop's end",
    )
    .await;
    feeder.await.unwrap();
    assert_eq!((fired, got), (1, vec![1, 2, 3]));
    assert!(notified.is_terminated());

    // The owned future too.
    let mut owned = Box::pin(notify.clone().notified_owned());
    assert!(!owned.is_terminated());
    notify.notify_one();
    (&mut owned).await;
    assert!(owned.is_terminated());
}
