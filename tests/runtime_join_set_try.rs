//! `JoinSet::try_join_next` between a `poll_join_next` and a `Pending` return keeps the stored
//! waker: a task that finishes afterwards still wakes the waiting future.

use std::future::poll_fn;
use std::task::Poll;
use std::time::Duration;

use overlap::time::sleep;
use overlap::JoinSet;

#[test]
fn try_join_next_after_poll_join_next_does_not_lose_the_wake() {
    overlap::block_on(async {
        let waiter = overlap::spawn(async {
            let mut set = JoinSet::new();
            set.spawn(async {
                sleep(Duration::from_millis(10)).await;
                7
            });
            // Poll with our waker, then opportunistically drain without waiting.
            poll_fn(|cx| {
                if let Poll::Ready(r) = set.poll_join_next(cx) {
                    return Poll::Ready(r);
                }
                if let Some(r) = set.try_join_next() {
                    return Poll::Ready(Some(r));
                }
                Poll::Pending
            })
            .await
        });
        sleep(Duration::from_millis(500)).await;
        assert!(
            waiter.is_finished(),
            "the child finished after ~10 ms but the waiter was never woken"
        );
        assert_eq!(waiter.await.unwrap().unwrap().unwrap(), 7);
    });
}
