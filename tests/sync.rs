//! `overlap::sync`: mpsc and oneshot channels between tasks: ordering, back-pressure,
//! fairness, cancellation, closing, and no wasted polls.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use overlap::stream::StreamExt;
use overlap::sync::mpsc::{self, TryRecvError, TrySendError};
use overlap::sync::oneshot;

/// Counts drops, to check that values are neither lost nor dropped twice.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[overlap::test]
async fn three_senders_through_a_small_channel_keep_each_senders_order() {
    let (tx, mut rx) = mpsc::channel::<(u8, u32)>(4);
    for id in 0..3u8 {
        let tx = tx.clone();
        overlap::spawn(async move {
            for n in 0..1000 {
                tx.send((id, n)).await.unwrap();
            }
        });
    }
    drop(tx);
    let mut next = [0u32; 3];
    while let Some((id, n)) = rx.recv().await {
        assert_eq!(n, next[id as usize], "sender {id} out of order");
        next[id as usize] += 1;
    }
    assert_eq!(next, [1000; 3], "every value arrived, then None");
}

#[overlap::test]
async fn a_full_channel_refuses_try_send_until_a_value_is_received() {
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
    assert_eq!(rx.try_recv(), Ok(1));
    tx.try_send(3).unwrap();
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(rx.recv().await, Some(3));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv().await, None);
}

#[overlap::test]
async fn waiting_senders_get_room_in_the_order_they_came() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(100).await.unwrap(); // full now
    for id in 0..3 {
        let tx = tx.clone();
        overlap::spawn(async move { tx.send(id).await.unwrap() });
        // Each starts waiting before the next is spawned.
        overlap::yield_now().await;
    }
    // A newcomer cannot jump the line.
    assert!(matches!(tx.try_send(99), Err(TrySendError::Full(99))));
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(rx.recv().await.unwrap());
    }
    assert_eq!(got, [100, 0, 1, 2]);
}

#[overlap::test]
async fn a_cancelled_sender_passes_its_turn_on() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(Counted(Rc::new(Cell::new(0)))).await.unwrap();
    let dropped = Rc::new(Cell::new(0));
    let (tx_a, d) = (tx.clone(), dropped.clone());
    let a = overlap::spawn(async move { tx_a.send(Counted(d)).await.is_ok() });
    overlap::yield_now().await;
    let tx_b = tx.clone();
    let b = overlap::spawn(async move { tx_b.send(Counted(Rc::new(Cell::new(0)))).await });
    overlap::yield_now().await;
    // Room for one: it is promised to `a`, which is aborted before it can use it.
    let first = rx.recv().await.unwrap();
    drop(first);
    a.abort();
    assert!(a.await.unwrap_err().is_cancelled());
    assert_eq!(
        dropped.get(),
        1,
        "the cancelled send's value was dropped, not sent"
    );
    // `b` got the turn: its value arrives, and it completes.
    let _from_b = rx.recv().await.unwrap();
    b.await.unwrap().unwrap();
}

#[overlap::test]
async fn a_closed_channel_fails_sends_and_wakes_waiting_senders_with_their_values() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(1).await.unwrap();
    let waiting = {
        let tx = tx.clone();
        overlap::spawn(async move { tx.send(2).await })
    };
    overlap::yield_now().await;
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(waiting.await.unwrap().unwrap_err().0, 2);
    assert!(matches!(tx.try_send(3), Err(TrySendError::Closed(3))));
    // What was queued before closing can still be received; then the end, although a
    // sender is still alive (nothing can come any more).
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    let end = overlap::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await;
    assert_eq!(end, Ok(None), "recv on a closed, drained channel must end");
    drop(rx);
    assert_eq!(tx.send(4).await.unwrap_err().0, 4);
}

#[overlap::test]
async fn dropping_the_receiver_drops_what_is_queued() {
    let dropped = Rc::new(Cell::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    for _ in 0..10 {
        tx.send(Counted(dropped.clone())).unwrap();
    }
    drop(rx);
    assert_eq!(dropped.get(), 10);
}

#[overlap::test]
async fn an_unbounded_channel_never_waits_and_is_a_stream() {
    let (tx, rx) = mpsc::unbounded_channel();
    for i in 0..100_000u32 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let got: Vec<u32> = rx.collect().await;
    assert_eq!(got.len(), 100_000);
    assert!(got.iter().copied().eq(0..100_000));
}

#[overlap::test]
async fn a_ping_pong_costs_one_poll_per_message_and_side() {
    let (to_b, mut from_a) = mpsc::channel::<u32>(1);
    let (to_a, mut from_b) = mpsc::channel::<u32>(1);
    let b = overlap::spawn(async move {
        while let Some(v) = from_a.recv().await {
            to_a.send(v + 1).await.unwrap();
        }
    });
    let before = overlap::metrics().task_polls;
    let a = overlap::spawn(async move {
        let mut v = 0;
        for _ in 0..10_000 {
            to_b.send(v).await.unwrap();
            v = from_b.recv().await.unwrap();
        }
        v
    });
    assert_eq!(a.await.unwrap(), 10_000);
    b.await.unwrap();
    let polls = overlap::metrics().task_polls - before;
    assert!(
        polls <= 2 * 10_000 + 10,
        "{polls} polls for 10,000 round trips"
    );
}

#[overlap::test]
async fn oneshot_delivers_once_and_reports_a_vanished_side() {
    let (tx, rx) = oneshot::channel();
    let task = overlap::spawn(rx);
    assert!(!tx.is_closed());
    tx.send(7u8).unwrap();
    assert_eq!(task.await.unwrap(), Ok(7));

    let (tx, mut rx) = oneshot::channel::<u8>();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    assert_eq!(rx.await, Err(oneshot::RecvError));

    let (tx, rx) = oneshot::channel::<u8>();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(9), Err(9));
}

#[overlap::test]
async fn notify_one_wakes_waiters_in_order_and_stores_one_permit() {
    use overlap::sync::Notify;

    let notify = Rc::new(Notify::new());
    // A notification with nobody waiting is kept (once): the next wait returns at once.
    notify.notify_one();
    notify.notify_one();
    notify.notified().await;
    let order = Rc::new(RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let (notify, order) = (notify.clone(), order.clone());
            overlap::spawn(async move {
                notify.notified().await;
                order.borrow_mut().push(i);
            })
        })
        .collect();
    overlap::yield_now().await;
    assert!(order.borrow().is_empty(), "the second permit was not kept");
    for _ in 0..3 {
        notify.notify_one();
        overlap::yield_now().await;
    }
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(*order.borrow(), [0, 1, 2]);
}

#[overlap::test]
async fn notify_waiters_wakes_everyone_waiting_and_keeps_no_permit() {
    use overlap::sync::Notify;

    let notify = Rc::new(Notify::new());
    let woken = Rc::new(Cell::new(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (notify, woken) = (notify.clone(), woken.clone());
            overlap::spawn(async move {
                notify.notified().await;
                woken.set(woken.get() + 1);
            })
        })
        .collect();
    // Made before the broadcast but never polled until after it: it counts too.
    let early = notify.notified();
    overlap::yield_now().await;
    notify.notify_waiters();
    early.await;
    for w in waiters {
        w.await.unwrap();
    }
    assert_eq!(woken.get(), 5);
    // No permit left behind: a new wait stays pending.
    let mut late = std::pin::pin!(notify.notified());
    let polled = overlap::future::poll_immediate(late.as_mut()).await;
    assert!(polled.is_none());
}

#[overlap::test]
async fn a_chosen_waiter_that_is_cancelled_passes_the_notification_on() {
    use overlap::sync::Notify;

    let notify = Rc::new(Notify::new());
    let first = {
        let notify = notify.clone();
        overlap::spawn(async move { notify.notified().await })
    };
    overlap::yield_now().await;
    let second = {
        let notify = notify.clone();
        overlap::spawn(async move { notify.notified().await })
    };
    overlap::yield_now().await;
    // `first` is chosen, then aborted before it runs: `second` must get the notification.
    notify.notify_one();
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    overlap::time::timeout(std::time::Duration::from_secs(10), second)
        .await
        .expect("the notification was lost with the cancelled waiter")
        .unwrap();
}

#[overlap::test]
async fn a_semaphore_caps_concurrency_and_serves_waiters_in_order() {
    use overlap::sync::Semaphore;

    let sem = Rc::new(Semaphore::new(2));
    let (inside, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let order = Rc::new(RefCell::new(Vec::new()));
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (sem, inside, most, order) =
                (sem.clone(), inside.clone(), most.clone(), order.clone());
            overlap::spawn(async move {
                let _permit = sem.acquire().await.unwrap();
                order.borrow_mut().push(i);
                inside.set(inside.get() + 1);
                most.set(most.get().max(inside.get()));
                overlap::time::sleep(std::time::Duration::from_millis(1)).await;
                inside.set(inside.get() - 1);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(most.get(), 2, "never more than two inside");
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(sem.available_permits(), 2);
}

#[overlap::test]
async fn a_cancelled_acquire_passes_its_permit_on_and_close_fails_the_waiters() {
    use overlap::sync::{Semaphore, TryAcquireError};

    let sem = Rc::new(Semaphore::new(1));
    let held = sem.try_acquire().unwrap();
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    let first = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire_owned().await.map(drop) })
    };
    overlap::yield_now().await;
    let second = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire_owned().await.map(drop) })
    };
    overlap::yield_now().await;
    // The permit goes to `first`, which is aborted before it runs: `second` gets it.
    drop(held);
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    overlap::time::timeout(std::time::Duration::from_secs(10), second)
        .await
        .expect("the permit was lost with the cancelled acquire")
        .unwrap()
        .unwrap();
    assert_eq!(sem.available_permits(), 1, "and came back when dropped");

    let held = sem.try_acquire().unwrap();
    let waiting = {
        let sem = sem.clone();
        overlap::spawn(async move { sem.acquire().await.map(drop) })
    };
    overlap::yield_now().await;
    sem.close();
    assert!(waiting.await.unwrap().is_err());
    assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    drop(held);
    sem.add_permits(2);
    assert_eq!(sem.available_permits(), 3);
    // A huge addition saturates instead of overflowing (or looping for ages).
    sem.add_permits(usize::MAX);
    assert_eq!(sem.available_permits(), usize::MAX);
}

#[overlap::test]
async fn watch_receivers_see_the_latest_value_and_wait_for_the_next() {
    use overlap::sync::watch;

    let (tx, mut rx) = watch::channel(0u32);
    let mut rx2 = tx.subscribe();
    assert_eq!(tx.receiver_count(), 2);
    assert_eq!(rx.has_changed(), Ok(false));
    // Changes are not queued: two sends before a look are one change, the latest value.
    tx.send(1).unwrap();
    tx.send_modify(|v| *v += 1);
    assert_eq!(rx.has_changed(), Ok(true));
    rx.changed().await.unwrap();
    assert_eq!(*rx.borrow(), 2);
    assert_eq!(rx.has_changed(), Ok(false));

    // Waiters are woken by a send, each once.
    let waiter = overlap::spawn(async move {
        rx.changed().await.unwrap();
        let v = *rx.borrow_and_update();
        (v, rx)
    });
    overlap::yield_now().await;
    assert_eq!(tx.send_replace(3), 2);
    let (seen, mut rx) = waiter.await.unwrap();
    assert_eq!(seen, 3);
    // `rx2` never looked: it sees the latest value as one change.
    rx2.changed().await.unwrap();
    assert_eq!(*rx2.borrow_and_update(), 3);

    // The sender gone: a pending change is still reported, then the end.
    tx.send(4).unwrap();
    drop(tx);
    rx.changed().await.unwrap();
    assert_eq!(*rx.borrow(), 4);
    assert_eq!(rx.changed().await, Err(watch::RecvError));
    // `has_changed` fails once the senders are gone, though `changed` still reports the
    // unseen value (tokio's contract).
    assert_eq!(rx2.has_changed(), Err(watch::RecvError));
    rx2.changed().await.unwrap();
    assert_eq!(rx2.has_changed(), Err(watch::RecvError));
}

#[overlap::test]
async fn watch_send_fails_without_receivers_and_wakes_a_waiter_when_the_sender_goes() {
    use overlap::sync::watch;

    let (tx, rx) = watch::channel("a");
    let waiter = {
        let mut rx = rx.clone();
        overlap::spawn(async move { rx.changed().await })
    };
    overlap::yield_now().await;
    drop(tx);
    assert_eq!(waiter.await.unwrap(), Err(watch::RecvError));

    let (tx, rx) = watch::channel("a");
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send("b").unwrap_err().0, "b");
    // `send_replace` stores even so, and a new subscriber sees it.
    tx.send_replace("c");
    assert_eq!(*tx.subscribe().borrow(), "c");
}

#[overlap::test]
async fn an_unbounded_send_is_a_plain_call_that_works_from_drop_and_fails_once_closed() {
    struct Report(mpsc::UnboundedSender<&'static str>);
    impl Drop for Report {
        fn drop(&mut self) {
            self.0.send("dropped").unwrap();
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    drop(Report(tx.clone()));
    assert_eq!(rx.recv().await, Some("dropped"));
    assert!(!tx.is_closed());
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(tx.send("late").unwrap_err().0, "late");
}
