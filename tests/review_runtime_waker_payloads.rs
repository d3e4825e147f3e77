//! A waker of the user's own (a hand-written combinator's) that panics when the loop wakes
//! it, with a payload whose own destructor panics too: the loop contains both panics, as it
//! contains a plain one, whether the wake comes from a timer firing, from an fd's event or
//! from a blocking-pool thread finishing a job.
//! (The payload's panic used to unwind out of the loop, through `block_on`.)

mod support;

use std::future::Future;
use std::task::Context;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::Runtime;
use support::{tcp_pair, within};

/// Polls `fut` once with the panicking waker; it must be left waiting.
fn park_with_panicking_waker(fut: std::pin::Pin<&mut impl Future>) {
    let waker = support::waker_panicking_twice();
    assert!(fut.poll(&mut Context::from_waker(&waker)).is_pending());
}

/// Runs `body` on a new runtime; the test fails if a panic unwinds out of `block_on`.
fn run_contained(body: impl Future<Output = ()>) {
    let rt = Runtime::new().unwrap();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(body)));
    assert!(ran.is_ok(), "the payload's panic unwound out of the loop");
    // The loop goes on.
    assert_eq!(
        rt.block_on(async { overlap::spawn(async { 6 }).await })
            .unwrap(),
        6
    );
}

#[test]
fn a_timer_waking_a_waker_whose_panic_payload_panics_when_dropped() {
    run_contained(async {
        let mut sleep = Box::pin(overlap::time::sleep(Duration::from_millis(1)));
        park_with_panicking_waker(sleep.as_mut());
        // The loop fires the timer while this waits for a later one.
        overlap::time::sleep(Duration::from_millis(20)).await;
        assert!(futures_util::FutureExt::now_or_never(sleep).is_some());
    });
}

#[test]
fn an_fd_event_waking_a_waker_whose_panic_payload_panics_when_dropped() {
    run_contained(async {
        let (mut a, b) = tcp_pair().await;
        let mut readable = Box::pin(b.readable());
        park_with_panicking_waker(readable.as_mut());
        a.write_all(b"x").await.unwrap();
        // The loop dispatches the event while this waits for its own wake-up.
        let event = b.readable();
        within(Duration::from_secs(10), event, "b readable")
            .await
            .unwrap();
        overlap::time::sleep(Duration::from_millis(1)).await;
    });
}

/// The same waker on the handle of a job that the pool's thread completes: the thread
/// goes on serving jobs (it used to die, leaving the pool counting a thread that no longer
/// took work, so with a limit of one thread every later job waited for ever).
#[test]
fn a_pool_job_waking_a_waker_whose_panic_payload_panics_when_dropped() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let out = rt.block_on(async {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let mut job = Box::pin(overlap::Handle::current().spawn_blocking(move || {
            wait.recv().unwrap();
            3
        }));
        park_with_panicking_waker(job.as_mut());
        // The job ends while the panicking waker is the one its handle holds.
        go.send(()).unwrap();
        let ended = async {
            while !job.is_finished() {
                overlap::yield_now().await;
            }
        };
        within(Duration::from_secs(10), ended, "the job's end").await;
        let what = "the job of a pool thread that woke the panicking waker";
        let first = within(Duration::from_secs(10), job, what).await.unwrap();
        let next = overlap::spawn_blocking(|| 4);
        let what = "a later job of the pool's only thread";
        let second = within(Duration::from_secs(10), next, what).await.unwrap();
        (first, second)
    });
    assert_eq!(out, (3, 4));
}

/// The same waker on a `Signal` that a delivered signal wakes: the runtime's signal
/// reader goes on, so a later signal still reaches the other listeners.
#[test]
fn a_signal_waking_a_waker_whose_panic_payload_panics_when_dropped() {
    use overlap::signal::{signal, SignalKind};
    run_contained(async {
        let kind = SignalKind::from_raw(libc::SIGUSR2);
        let mut parked = signal(kind).unwrap();
        let mut other = signal(kind).unwrap();
        let waker = support::waker_panicking_twice();
        assert!(parked
            .poll_recv(&mut Context::from_waker(&waker))
            .is_pending());
        // SAFETY: raise(2) sends a signal to this process; it has a handler.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
        within(Duration::from_secs(10), other.recv(), "the first signal")
            .await
            .unwrap();
        // Once more, after the reader woke the panicking waker.
        assert!(parked
            .poll_recv(&mut Context::from_waker(&waker))
            .is_ready());
        drop(parked);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
        within(Duration::from_secs(10), other.recv(), "a later signal")
            .await
            .unwrap();
    });
}
