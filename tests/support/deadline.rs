//! A hang guard that a lost wakeup cannot slip past.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};

/// Awaits `fut`, panicking with `what` if `limit` passes first.
///
/// Unlike `overlap::time::timeout`, the deadline is checked before `fut` is polled again:
/// with `timeout`, the timer's own wake re-polls the inner future, and a future that was
/// never woken but would be ready when looked at (its readiness set, a counter moved) passes
/// as a slow success instead of failing.
pub async fn within<F: Future>(limit: Duration, fut: F, what: &str) -> F::Output {
    match select(pin!(overlap::time::sleep(limit)), pin!(fut)).await {
        Either::Left(_) => panic!("{what} (nothing for {limit:?})"),
        Either::Right((out, _)) => out,
    }
}

/// Lets every other ready task run a few times: long enough for anything already woken to
/// get where it is going, without waiting on a clock.
pub async fn settle() {
    for _ in 0..8 {
        overlap::yield_now().await;
    }
}

/// Waits until `cond` holds, looking every millisecond, panicking with `what` after 20 s:
/// for a state another task or thread reaches with no wake to wait on (a count at a
/// server, a connection gone).
pub async fn until(mut cond: impl FnMut() -> bool, what: &str) {
    let wait = async {
        while !cond() {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    };
    within(
        Duration::from_secs(20),
        wait,
        &format!("waiting for {what}"),
    )
    .await
}

/// A real-time hang guard for a test run in a child process on a paused clock (where
/// [`within`]'s sleep would be jumped past): after `limit` of real time, prints `what` and
/// ends the whole process with status 1, whatever it is doing.
pub fn exit_if_still_running_after(limit: Duration, what: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("{what}");
        std::process::exit(1);
    });
}

/// Runs `body` on a thread of its own, failing the test (`hung: {what}`) if it has not ended
/// within `limit` of real time: for synchronous code that waits on other threads (a pool's
/// jobs), where a lost job would otherwise hang the test instead of failing it. A panic of
/// `body` is the test's failure.
pub fn on_thread_within(limit: Duration, what: &str, body: impl FnOnce() + Send + 'static) {
    use std::sync::mpsc;
    let (done, ended) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match ended.recv_timeout(limit) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(runner.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung: {what}"),
    }
}
