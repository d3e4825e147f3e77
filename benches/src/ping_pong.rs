//! The `futures::channel::mpsc(1)` ping-pong that the runtime benchmarks time: the same two
//! futures for every executor, and for none.

use std::future::Future;
use std::task::{Context, Waker};

use futures::{SinkExt, StreamExt};

/// The two ends: `echo` answers each number it gets with that number plus one, until the
/// channel closes; `driver` sends `trips` numbers through it, one at a time, and returns
/// the last answer (`trips`).
pub fn ping_pong_tasks(
    trips: u64,
) -> (
    impl Future<Output = ()> + Send + 'static,
    impl Future<Output = u64> + Send + 'static,
) {
    let (mut to_echo, mut from_driver) = futures::channel::mpsc::channel::<u64>(1);
    let (mut to_driver, mut from_echo) = futures::channel::mpsc::channel::<u64>(1);
    let echo = async move {
        while let Some(v) = from_driver.next().await {
            to_driver.send(v + 1).await.unwrap();
        }
    };
    let driver = async move {
        let mut v = 0;
        for _ in 0..trips {
            to_echo.send(v).await.unwrap();
            v = from_echo.next().await.unwrap();
        }
        v
    };
    (echo, driver)
}

/// The ping-pong with no executor at all: both futures polled in turn by a bare loop with
/// a no-op waker. No runtime can go below this.
pub fn ping_pong_by_hand(trips: u64) {
    let (echo, driver) = ping_pong_tasks(trips);
    let (mut echo, mut driver) = (std::pin::pin!(echo), std::pin::pin!(driver));
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = driver.as_mut().poll(&mut cx) {
            assert_eq!(v, trips);
            return;
        }
        let _ = echo.as_mut().poll(&mut cx);
    }
}
