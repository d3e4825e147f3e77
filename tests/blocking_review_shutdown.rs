//! An adversarial review of the blocking pool at its runtime's end: a runtime dropped with
//! jobs of every flavour queued behind a running one drops each unrun capture exactly
//! once, cancels their handles and lets the running one finish detached; jobs queued from
//! four threads while the runtime is dropped each run (and report their value) or report
//! cancelled, and drop their captures once; a job outlasting `shutdown_timeout` ends later
//! on its thread, which then stops (hook run, gone from the kernel), while a job queued
//! through the dead runtime's handle meanwhile is cancelled unrun.
//!
//! No timing assertion: a wait is for a state, under a generous hang guard.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use overlap::Runtime;
use support::{threads_named, wait_until, Gate};

/// Only a hang gets near this.
const HANG: Duration = Duration::from_secs(20);

/// Runs `body` on a thread of its own, failing the test if it has not ended within
/// [`HANG`] (a lost job is a hang, not a failure, otherwise).
fn hang_guarded(what: &str, body: impl FnOnce() + Send + 'static) {
    support::on_thread_within(HANG, what, body);
}

/// A job that counts its run, holding a clone of `captured` until it ends (or is dropped).
fn counted(
    captured: &Arc<()>,
    ran: &Arc<AtomicUsize>,
    value: usize,
) -> impl FnOnce() -> usize + Send + 'static {
    let (captured, ran) = (captured.clone(), ran.clone());
    move || {
        let _captured = captured;
        ran.fetch_add(1, Ordering::SeqCst);
        value
    }
}

#[test]
fn a_runtime_dropped_with_jobs_queued_drops_each_unrun_capture_exactly_once() {
    let captured = Arc::new(());
    let ran = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let handle = rt.handle();
    let gate = Gate::default();
    let (held_tx, held) = mpsc::channel();
    let running = {
        let (gate, capture) = (gate.clone(), captured.clone());
        handle.spawn_blocking(move || {
            let _capture = capture;
            held_tx.send(()).unwrap();
            gate.wait();
            "ran detached"
        })
    };
    held.recv_timeout(HANG).unwrap();
    let local: Vec<_> = rt.block_on(async {
        (0..10)
            .map(|i| overlap::spawn_blocking(counted(&captured, &ran, i)))
            .collect()
    });
    let from_runtime: Vec<_> = (10..20)
        .map(|i| rt.spawn_blocking(counted(&captured, &ran, i)))
        .collect();
    let remote: Vec<_> = (20..30)
        .map(|i| handle.spawn_blocking(counted(&captured, &ran, i)))
        .collect();
    assert_eq!(Arc::strong_count(&captured), 1 + 1 + 30);
    assert_eq!(rt.metrics().blocking_queued, 30);

    drop(rt);
    assert_eq!(
        Arc::strong_count(&captured),
        2,
        "the drop did not drop each queued capture (the running job holds one)"
    );
    overlap::block_on(async {
        for job in local.into_iter().chain(from_runtime) {
            assert!(job.await.unwrap_err().is_cancelled());
        }
        for job in remote {
            assert!(job.await.unwrap_err().is_cancelled());
        }
    });
    gate.open();
    // Its result goes straight to its handle, no loop needed: it arrives after the drop.
    let out = overlap::block_on(async { support::within(HANG, running, "the running job").await });
    assert_eq!(out.unwrap(), "ran detached");
    assert!(
        wait_until(HANG, || Arc::strong_count(&captured) == 1),
        "the running job's capture outlived it"
    );
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a queued job ran after the drop"
    );
}

#[test]
fn handle_jobs_racing_the_runtimes_drop_each_run_or_report_cancelled_and_drop_once() {
    hang_guarded("jobs queued as the runtime is dropped", || {
        for round in 0..10 {
            let captured = Arc::new(());
            let ran = Arc::new(AtomicUsize::new(0));
            let rt = Runtime::builder().max_blocking_threads(2).build().unwrap();
            let start = Arc::new(Barrier::new(5));
            let submitters: Vec<_> = (0..4)
                .map(|t| {
                    let (handle, start) = (rt.handle(), start.clone());
                    let (captured, ran) = (captured.clone(), ran.clone());
                    thread::spawn(move || {
                        start.wait();
                        let jobs: Vec<_> = (0..100)
                            .map(|i| handle.spawn_blocking(counted(&captured, &ran, t * 1000 + i)))
                            .collect();
                        drop(captured);
                        let mut finished = 0;
                        for (i, job) in jobs.into_iter().enumerate() {
                            match handle.block_on(job) {
                                Ok(value) => {
                                    assert_eq!(value, t * 1000 + i);
                                    finished += 1;
                                }
                                Err(e) => assert!(e.is_cancelled(), "{e}"),
                            }
                        }
                        finished
                    })
                })
                .collect();
            start.wait();
            // Dropped once jobs run: some ran, some may be running, queued or refused.
            assert!(wait_until(HANG, || ran.load(Ordering::SeqCst) > 0));
            drop(rt);
            let finished: usize = submitters.into_iter().map(|s| s.join().unwrap()).sum();
            assert!(finished > 0);
            // A job that ran reported its value: the handle waits for a running job.
            assert_eq!(finished, ran.load(Ordering::SeqCst), "round {round}");
            assert!(
                wait_until(HANG, || Arc::strong_count(&captured) == 1),
                "round {round}: a capture leaked ({} left)",
                Arc::strong_count(&captured) - 1
            );
        }
    });
}

#[test]
fn a_job_outlasting_shutdown_timeout_ends_later_and_its_thread_then_stops() {
    const NAME: &str = "review-outlast";
    let (starts, stops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (on_start, on_stop) = (starts.clone(), stops.clone());
    let rt = Runtime::builder()
        .max_blocking_threads(1)
        .thread_name(NAME)
        .on_thread_start(move || {
            on_start.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            on_stop.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let handle = rt.handle();
    let gate = Gate::default();
    let (held_tx, held) = mpsc::channel();
    let running = {
        let gate = gate.clone();
        handle.spawn_blocking(move || {
            held_tx.send(()).unwrap();
            gate.wait();
            7
        })
    };
    held.recv_timeout(HANG).unwrap();
    let (captured, ran) = (Arc::new(()), Arc::new(AtomicUsize::new(0)));
    let queued = handle.spawn_blocking(counted(&captured, &ran, 1));
    // The job waits at its gate, however long this waits for it.
    rt.shutdown_timeout(Duration::from_millis(1));
    assert_eq!(Arc::strong_count(&captured), 1, "the queued job was kept");
    assert_eq!(
        (starts.load(Ordering::SeqCst), stops.load(Ordering::SeqCst)),
        (1, 0)
    );
    assert_eq!(threads_named(NAME), 1, "the busy thread is still there");
    // The pool still has a thread, busy: a job queued now through the handle is refused.
    let late = thread::spawn({
        let (handle, captured, ran) = (handle.clone(), captured.clone(), ran.clone());
        move || handle.block_on(handle.spawn_blocking(counted(&captured, &ran, 2)))
    });
    assert!(late.join().unwrap().unwrap_err().is_cancelled());
    overlap::block_on(async {
        assert!(queued.await.unwrap_err().is_cancelled());
    });
    gate.open();
    assert_eq!(overlap::block_on(running).unwrap(), 7);
    assert!(
        wait_until(HANG, || stops.load(Ordering::SeqCst) == 1
            && threads_named(NAME) == 0),
        "the thread never stopped after its job"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(Arc::strong_count(&captured), 1);
}
