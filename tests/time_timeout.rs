//! `timeout`, `timeout_at` and `Elapsed`.

use std::future::{pending, ready, Future};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use overlap::time::{sleep, timeout, timeout_at, Elapsed, Instant};
use overlap::AsyncFd;

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn ready_future_wins_even_with_huge_or_zero_durations() {
    overlap::block_on(async {
        assert_eq!(timeout(Duration::MAX, ready(1)).await, Ok(1));
        assert_eq!(timeout(Duration::ZERO, ready(2)).await, Ok(2));
        assert_eq!(
            timeout_at(Instant::now() - Duration::ZERO, ready(3)).await,
            Ok(3)
        );
        // A ready future never even registers a timer.
        let m = overlap::metrics();
        assert_eq!((m.timers_active, m.timers_fired), (0, 0));
    });
}

#[test]
fn huge_timeout_around_a_pending_future_stays_pending_and_drops_cleanly() {
    overlap::block_on(async {
        let waker = Waker::from(Arc::new(Noop));
        let mut t = Box::pin(timeout(Duration::MAX, pending::<()>()));
        assert!(t
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        assert_eq!(overlap::metrics().timers_active, 1);
        drop(t);
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn slow_future_times_out_at_or_after_the_deadline() {
    overlap::block_on(async {
        let deadline = Instant::now() + Duration::from_millis(3);
        let res = timeout_at(deadline, sleep(Duration::from_secs(3600))).await;
        assert_eq!(res, Err(Elapsed::clone(&res.unwrap_err())));
        assert!(Instant::now() >= deadline);
        assert_eq!(overlap::metrics().timers_active, 0);
        let res = timeout(Duration::from_millis(50), sleep(Duration::from_millis(1))).await;
        assert_eq!(res, Ok(()));
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn elapsed_then_the_inner_io_is_still_usable() {
    overlap::block_on(async {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let a = AsyncFd::new(a).unwrap();

        // Nothing to read: the read times out and is dropped mid-wait.
        let read = a.async_io_read(|s| {
            let mut buf = [0u8; 16];
            (&*s).read(&mut buf)
        });
        let res = timeout(Duration::from_millis(5), read).await;
        let err = res.unwrap_err();
        assert_eq!(err.to_string(), "deadline has elapsed");

        // The fd still works: data written now is read by a fresh operation.
        b.write_all(b"still alive").unwrap();
        let mut buf = [0u8; 32];
        let n = timeout(
            Duration::from_secs(10),
            a.async_io_read(|s| (&*s).read(&mut buf)),
        )
        .await
        .expect("read timed out")
        .unwrap();
        assert_eq!(&buf[..n], b"still alive");
        assert_eq!(overlap::metrics().timers_active, 0);
    });
}

#[test]
fn elapsed_converts_to_a_timed_out_io_error() {
    async fn read_with_deadline() -> io::Result<()> {
        timeout(Duration::from_millis(1), pending::<()>()).await?;
        Ok(())
    }
    let err = overlap::block_on(read_with_deadline()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(err.to_string(), "deadline has elapsed");
    let source: &dyn std::error::Error = err.get_ref().unwrap();
    assert!(source.is::<Elapsed>());
    assert!(format!("{:?}", err.into_inner().unwrap()).contains("Elapsed"));
}

#[test]
fn timeout_gives_access_to_the_inner_future() {
    overlap::block_on(async {
        let mut t = timeout(Duration::from_secs(1), ready(7));
        assert!(t.deadline() > Instant::now());
        let inner: &mut std::future::Ready<i32> = t.get_mut();
        assert_eq!(Pin::new(inner).await, 7);
        let mut t = timeout(Duration::from_secs(1), ready(7));
        let r: *const _ = t.get_ref();
        assert!(std::ptr::eq(r, t.get_mut()));
        let inner = t.into_inner();
        assert_eq!(inner.await, 7);
        let t = timeout(Duration::from_secs(1), ready(8));
        assert!(format!("{t:?}").starts_with("Timeout"));
        assert_eq!(Pin::new(&mut Box::pin(t)).await, Ok(8));
    });
}

/// A ready operation inside a zero timeout wins however much budget the task spent before:
/// 1,000 receives of queued values in one task, each under `Duration::ZERO`, all succeed.
/// (A receive on a spent budget returns `Pending` without looking; the clock must not win
/// then: the timeout yields once, and the next poll's fresh budget lets the receive look.)
#[test]
fn a_ready_operation_wins_a_zero_timeout_on_a_spent_budget() {
    overlap::block_on(async {
        let (tx, mut rx) = overlap::sync::mpsc::unbounded_channel();
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
        for i in 0..1000 {
            let got = timeout(Duration::ZERO, rx.recv()).await;
            assert_eq!(got, Ok(Some(i)), "receive {i} lost to a zero timeout");
        }
    });
}

/// A future that spends the task's whole budget on every poll (here: before the timeout is
/// polled, in the same poll) still sees its deadline pass: the timeout yields once on a
/// spent budget, not forever.
#[test]
fn a_timeout_polled_after_its_task_spent_the_budget_still_fires() {
    overlap::block_on(async {
        let mut t = Box::pin(timeout(Duration::ZERO, pending::<()>()));
        let mut polls = 0;
        let res = std::future::poll_fn(|cx| {
            polls += 1;
            // Spend everything first, as a hot sibling branch would.
            while overlap::coop_poll_proceed(cx).is_ready() {}
            t.as_mut().poll(cx)
        })
        .await;
        assert!(res.is_err(), "the deadline passed");
        assert!(polls <= 2, "fired only after {polls} polls");
    });
}
