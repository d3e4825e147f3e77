//! The smaller parts of `overlap::sync` a tokio user reaches for: `oneshot::Sender::closed`
//! and `oneshot::Receiver::close`,
//! `watch::Sender::send_if_modified` and `watch::Receiver::wait_for`, `mpsc::Sender::closed`
//! and `mpsc::Receiver::recv_many`.

mod support;

use std::time::Duration;

use overlap::sync::{mpsc, oneshot, watch};
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn a_oneshot_sender_hears_when_its_receiver_goes() {
    use overlap::future::FutureExt;
    let (mut tx, rx) = oneshot::channel::<u32>();
    assert!(
        tx.closed().now_or_never().is_none(),
        "the receiver is alive"
    );
    let waiter = overlap::spawn(async move {
        tx.closed().await;
        tx.is_closed()
    });
    overlap::yield_now().await;
    drop(rx);
    assert!(within(HANG, waiter, "closed() never woke").await.unwrap());
}

#[overlap::test]
async fn a_closed_oneshot_refuses_later_sends_and_wakes_a_waiting_sender() {
    let (mut tx, mut rx) = oneshot::channel::<u32>();
    let waiter = overlap::spawn(async move {
        tx.closed().await;
        // Closed while the receiver is alive: the send comes back.
        (tx.is_closed(), tx.send(7))
    });
    overlap::yield_now().await;
    rx.close();
    let (closed, sent) = within(HANG, waiter, "close() never woke closed()")
        .await
        .unwrap();
    assert!(closed);
    assert_eq!(sent, Err(7));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    // Awaiting a closed receiver with nothing sent fails at once, it does not hang.
    let got = within(HANG, &mut rx, "a closed receiver waited").await;
    assert_eq!(got, Err(oneshot::RecvError));

    // A value sent before `close` is kept, for `try_recv` or for the await.
    let (tx, mut rx) = oneshot::channel();
    tx.send("kept").unwrap();
    rx.close();
    rx.close(); // twice is harmless
    assert_eq!(rx.try_recv(), Ok("kept"));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    let (tx, mut rx) = oneshot::channel();
    tx.send(1u8).unwrap();
    rx.close();
    assert_eq!(within(HANG, rx, "the value was lost").await, Ok(1));
}

#[overlap::test]
async fn watch_send_if_modified_wakes_only_on_a_change_and_wait_for_checks_each_value() {
    use overlap::future::FutureExt;
    let (tx, mut rx) = watch::channel(0u32);
    assert!(!tx.send_if_modified(|v| {
        *v += 0;
        false
    }));
    assert!(
        rx.changed().now_or_never().is_none(),
        "an unmodified value wakes nobody"
    );
    assert!(tx.send_if_modified(|v| {
        *v = 3;
        true
    }));
    assert!(rx.changed().now_or_never().is_some());

    // The current value already satisfies: no wait.
    assert_eq!(
        *rx.wait_for(|v| *v == 3).now_or_never().unwrap().unwrap(),
        3
    );
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let producer = overlap::spawn(async move {
        for v in 4..=8 {
            tx.send(v).unwrap();
            overlap::yield_now().await;
        }
        // Keep the sender until the reader has looked, then drop it.
        let _ = done_rx.await;
    });
    // Changes may be coalesced (a reader sees the latest value), so ask for a threshold.
    let got = *within(HANG, rx.wait_for(|v| *v >= 7), "wait_for stalled")
        .await
        .unwrap();
    assert!(got >= 7, "{got}");
    done_tx.send(()).unwrap();
    producer.await.unwrap();
    // The last value (8) does not satisfy and no sender is left: an error, not a hang.
    assert!(within(HANG, rx.wait_for(|v| *v > 100), "wait_for hung")
        .await
        .is_err());
}

#[overlap::test]
async fn an_mpsc_sender_hears_when_the_receiver_closes_or_goes() {
    use overlap::future::FutureExt;
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let tx2 = tx.clone();
    assert!(tx.closed().now_or_never().is_none());
    let a = overlap::spawn(async move { tx.closed().await });
    let b = overlap::spawn(async move { tx2.closed().await });
    overlap::yield_now().await;
    rx.close();
    within(HANG, a, "closed() missed close()").await.unwrap();
    within(HANG, b, "closed() woke one sender only")
        .await
        .unwrap();

    let (utx, urx) = mpsc::unbounded_channel::<u32>();
    let c = overlap::spawn(async move { utx.closed().await });
    overlap::yield_now().await;
    drop(urx);
    within(HANG, c, "closed() missed the drop").await.unwrap();
}

#[overlap::test]
async fn recv_many_takes_a_batch_and_lets_every_waiting_sender_in() {
    let (tx, mut rx) = mpsc::channel::<u32>(2);
    for i in 0..6 {
        let tx = tx.clone();
        overlap::spawn(async move { tx.send(i).await.unwrap() });
    }
    drop(tx);
    let mut got = Vec::new();
    let drain = async {
        loop {
            let before = got.len();
            let n = rx.recv_many(&mut got, 10).await;
            assert_eq!(got.len(), before + n);
            assert!(n <= 2, "never more than the channel holds: {n}");
            if n == 0 {
                break;
            }
        }
    };
    within(HANG, drain, "a waiting sender was never let in").await;
    got.sort();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    assert_eq!(rx.recv_many(&mut got, 0).await, 0);
    assert!(rx.is_empty());
    assert_eq!(rx.len(), 0);
}

/// tokio's paths and helpers that code moved from tokio uses: the error modules, an owned
/// `try_acquire`, and a bounded sender's capacity.
#[test]
fn tokio_paths_and_helpers_exist() {
    use overlap::sync::{broadcast, mpsc, oneshot, watch, Semaphore};
    let _: Option<mpsc::error::TrySendError<u8>> = None;
    let _: Option<mpsc::error::SendError<u8>> = None;
    let _: Option<broadcast::error::RecvError> = None;
    let _: Option<oneshot::error::RecvError> = None;
    let _: Option<watch::error::RecvError> = None;
    let sem = std::rc::Rc::new(Semaphore::new(1));
    let permit = sem.clone().try_acquire_owned().unwrap();
    assert!(sem.clone().try_acquire_owned().is_err());
    drop(permit);
    overlap::block_on(async {
        let (tx, _rx) = mpsc::channel::<u8>(3);
        tx.send(1).await.unwrap();
        assert_eq!((tx.capacity(), tx.max_capacity()), (2, 3));
    });
}

/// `PollSender` (tokio-util's): a bounded sender driven from a `poll_*` method, as a `Sink`
/// or by hand. A full channel parks the task until a slot frees; a reserved slot is used
/// by `send_item`, given back by `abort_send`; a gone receiver is an error carrying no value.
#[overlap::test]
async fn poll_sender_reserves_sends_and_parks_on_a_full_channel() {
    use overlap::sink::SinkExt;
    use overlap::sync::PollSender;
    use std::future::poll_fn;

    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let mut sender = PollSender::new(tx);
    assert!(!sender.is_closed() && sender.get_ref().is_some());
    // No slot reserved: send_item gives the value back.
    assert_eq!(sender.send_item(0).unwrap_err().into_inner(), Some(0));
    poll_fn(|cx| sender.poll_reserve(cx)).await.unwrap();
    sender.send_item(1).unwrap();

    // The channel is full: a reserve waits until the receiver takes the value.
    let task = support::ManualTask::default();
    let reserve =
        |s: &mut PollSender<u32>| task.poll(std::pin::pin!(poll_fn(|cx| s.poll_reserve(cx))));
    assert!(reserve(&mut sender).is_pending());
    assert_eq!(rx.recv().await, Some(1));
    assert!(task.is_woken(), "a freed slot woke nobody");
    assert!(reserve(&mut sender).is_ready());
    // The reserved slot is held: another sender finds the channel full until it is given back.
    let other = sender.clone();
    assert!(other.get_ref().unwrap().try_send(2).is_err());
    assert!(sender.abort_send());
    assert!(!sender.abort_send(), "nothing left to give back");
    other.get_ref().unwrap().try_send(2).unwrap();
    assert_eq!(rx.recv().await, Some(2));

    // A reserve in progress, aborted, leaves its place for others.
    other.get_ref().unwrap().try_send(3).unwrap();
    assert!(reserve(&mut sender).is_pending());
    assert!(sender.abort_send());
    assert_eq!(rx.recv().await, Some(3));

    // As a Sink.
    sender.send(4).await.unwrap();
    assert_eq!(rx.recv().await, Some(4));
    let mut items = overlap::stream::iter([5, 6, 7].map(Ok));
    let forward = async {
        let mut sink = sender.clone();
        sink.send_all(&mut items).await.unwrap();
    };
    let take = async {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv().await.unwrap());
        }
        got
    };
    let ((), got) = within(HANG, async { overlap::join!(forward, take) }, "send_all").await;
    assert_eq!(got, [5, 6, 7]);

    // The receiver gone: errors with no value, and closed.
    drop(rx);
    assert!(sender.is_closed());
    let err = poll_fn(|cx| sender.poll_reserve(cx)).await.unwrap_err();
    assert!(err.into_inner().is_none());
    assert!(sender.send(8).await.is_err());
    sender.close();
    assert!(sender.get_ref().is_none() && sender.is_closed());
    drop(other);
}

/// `PollSemaphore` (tokio-util's): permits from a `poll_*` method or as a `Stream`, the
/// task woken when one frees, `None` once the semaphore is closed.
#[overlap::test]
async fn poll_semaphore_acquires_parks_and_ends_when_closed() {
    use overlap::stream::StreamExt;
    use overlap::sync::{PollSemaphore, Semaphore};
    use std::future::poll_fn;
    use std::rc::Rc;

    let mut sem = PollSemaphore::new(Rc::new(Semaphore::new(2)));
    let two = poll_fn(|cx| sem.poll_acquire_many(cx, 2)).await.unwrap();
    assert_eq!(sem.available_permits(), 0);
    let task = support::ManualTask::default();
    assert!(task
        .poll(std::pin::pin!(poll_fn(|cx| sem.poll_acquire(cx))))
        .is_pending());
    drop(two);
    assert!(task.is_woken(), "freed permits woke nobody");
    // The wait kept its place: the next poll gets a permit.
    let one = poll_fn(|cx| sem.poll_acquire(cx)).await.unwrap();
    assert_eq!(sem.available_permits(), 1);
    let another = sem.next().await.unwrap();
    drop((one, another));
    sem.add_permits(1);
    assert_eq!(sem.clone().available_permits(), 3);
    sem.clone_inner().close();
    assert!(sem.next().await.is_none(), "closed: the stream ends");
    assert!(poll_fn(|cx| sem.poll_acquire(cx)).await.is_none());
}
