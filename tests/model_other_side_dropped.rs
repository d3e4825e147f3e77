//! Waiting on one side of a channel while the other side goes away: every waiter is woken and
//! gets the documented result (values queued before still come first); nothing hangs.

use std::time::Duration;

use overlap::sync::{broadcast, mpsc, oneshot, watch};
use overlap::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

#[overlap::test]
async fn waiting_receivers_see_the_senders_go() {
    // mpsc: queued values first, then None.
    let (tx, mut rx) = mpsc::channel::<u32>(4);
    let tx2 = tx.clone();
    let h = overlap::spawn(async move {
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
        }
        got
    });
    overlap::yield_now().await;
    tx.send(1).await.unwrap();
    drop(tx);
    tx2.try_send(2).unwrap();
    drop(tx2);
    assert_eq!(timeout(LIMIT, h).await.unwrap().unwrap(), [1, 2]);

    // oneshot
    let (tx, rx) = oneshot::channel::<u32>();
    let h = overlap::spawn(rx);
    overlap::yield_now().await;
    drop(tx);
    assert_eq!(
        timeout(LIMIT, h).await.unwrap().unwrap(),
        Err(oneshot::RecvError)
    );

    // watch: a last change is reported, then the error.
    let (tx, mut rx) = watch::channel(0u32);
    let h = overlap::spawn(async move {
        let first = rx.changed().await;
        let v = *rx.borrow();
        let second = rx.changed().await;
        (first, v, second)
    });
    overlap::yield_now().await;
    tx.send(7).unwrap();
    drop(tx);
    let (a, v, b) = timeout(LIMIT, h).await.unwrap().unwrap();
    assert_eq!((a, v, b), (Ok(()), 7, Err(watch::RecvError)));

    // broadcast: values, then Closed, for every receiver.
    let (tx, mut rx1) = broadcast::channel::<u32>(4);
    let mut rx2 = tx.subscribe();
    let h1 = overlap::spawn(async move {
        let mut got = Vec::new();
        while let Ok(v) = rx1.recv().await {
            got.push(v);
        }
        got
    });
    let h2 = overlap::spawn(async move { rx2.recv().await });
    overlap::yield_now().await;
    tx.send(3).unwrap();
    let tx2 = tx.clone();
    drop(tx);
    overlap::yield_now().await;
    drop(tx2);
    assert_eq!(timeout(LIMIT, h1).await.unwrap().unwrap(), [3]);
    assert_eq!(timeout(LIMIT, h2).await.unwrap().unwrap(), Ok(3));
}

#[overlap::test]
async fn waiting_senders_see_the_receiver_go() {
    let (tx, rx) = mpsc::channel::<u32>(1);
    tx.try_send(0).unwrap();
    let tx = std::rc::Rc::new(tx);
    let mut hs = Vec::new();
    for i in 1..=3 {
        let tx = tx.clone();
        hs.push(overlap::spawn(async move { tx.send(i).await }));
    }
    overlap::yield_now().await;
    drop(rx);
    for (i, h) in hs.into_iter().enumerate() {
        let r = timeout(LIMIT, h).await.unwrap().unwrap();
        assert_eq!(r.unwrap_err().0, i as u32 + 1, "the value comes back");
    }
    assert!(tx.is_closed());

    let (tx, rx) = oneshot::channel::<u32>();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(5), Err(5));

    let (tx, rx) = watch::channel(0u32);
    drop(rx);
    assert!(tx.send(1).is_err());
    assert_eq!(tx.send_replace(2), 0);

    let (tx, rx) = broadcast::channel::<u32>(2);
    drop(rx);
    assert!(tx.send(1).is_err());
}
