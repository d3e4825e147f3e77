//! A job's result that nobody will take (its handle aborted or dropped while the job ran) is dropped on
//! the job's pool thread, and that drop is the job's own work: until it ends, the thread is
//! not free. A job queued meanwhile gets a thread of its own while the pool is below its
//! limit. It used to wait for that thread, counted as already looking for work: behind a
//! drop that waits for the new job (a writer flushing to a reader that the next job runs),
//! the pool stalled for good with three of its four threads never started.

use std::sync::mpsc;
use std::time::Duration;

use overlap::Runtime;

/// Only a hang gets near this.
const HANG: Duration = Duration::from_secs(10);

/// A result whose drop says it began, then waits for a signal (for at most [`HANG`]) and
/// reports whether it came.
#[derive(Debug)]
struct WaitsWhenDropped {
    entered: mpsc::Sender<()>,
    signal: mpsc::Receiver<()>,
    outcome: mpsc::Sender<bool>,
}

impl Drop for WaitsWhenDropped {
    fn drop(&mut self) {
        let _ = self.entered.send(());
        let signalled = self.signal.recv_timeout(HANG).is_ok();
        let _ = self.outcome.send(signalled);
    }
}

/// The test's side of a [`WaitsWhenDropped`].
struct Probe {
    entered: mpsc::Receiver<()>,
    signal: mpsc::Sender<()>,
    outcome: mpsc::Receiver<bool>,
}

impl Probe {
    /// Waits until the result's drop has begun on the pool thread.
    fn wait_for_the_drop(&self) {
        self.entered
            .recv_timeout(HANG)
            .expect("the abandoned result was never dropped");
    }

    /// Whether the drop got the signal, which the next job sends, while it waited.
    fn next_job_ran_during_the_drop(&self) -> bool {
        self.outcome.recv_timeout(2 * HANG).unwrap()
    }
}

fn waits_when_dropped() -> (WaitsWhenDropped, Probe) {
    let (entered_tx, entered) = mpsc::channel();
    let (signal, signal_rx) = mpsc::channel();
    let (outcome_tx, outcome) = mpsc::channel();
    let result = WaitsWhenDropped {
        entered: entered_tx,
        signal: signal_rx,
        outcome: outcome_tx,
    };
    let probe = Probe {
        entered,
        signal,
        outcome,
    };
    (result, probe)
}

/// A job that returns `result` once `go` says so; returns once it runs.
fn held_job(
    result: WaitsWhenDropped,
) -> (
    impl FnOnce() -> WaitsWhenDropped + Send + 'static,
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
) {
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let job = move || {
        started_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        result
    };
    (job, started, go)
}

/// How a handle gives up on its job's result.
#[derive(Clone, Copy, Debug)]
enum GiveUp {
    Abort,
    Drop,
}

#[test]
fn a_handle_jobs_abandoned_result_dropped_on_its_thread_does_not_hold_back_the_next_job() {
    for give_up in [GiveUp::Abort, GiveUp::Drop] {
        handle_job_result_abandoned(give_up);
    }
}

fn handle_job_result_abandoned(give_up: GiveUp) {
    let rt = Runtime::builder().max_blocking_threads(4).build().unwrap();
    let handle = rt.handle();
    let (result, probe) = waits_when_dropped();
    let (job, started, go) = held_job(result);
    let job = handle.spawn_blocking(job);
    started.recv_timeout(HANG).unwrap();
    match give_up {
        GiveUp::Abort => job.abort(),
        GiveUp::Drop => drop(job),
    }
    go.send(()).unwrap();
    probe.wait_for_the_drop();
    let signal = probe.signal.clone();
    let next = handle.spawn_blocking(move || {
        let _ = signal.send(());
    });
    assert!(
        probe.next_job_ran_during_the_drop(),
        "{give_up:?}: the next job waited for the thread dropping the last one's result"
    );
    handle.block_on(next).unwrap();
}

#[test]
fn a_free_jobs_abandoned_result_dropped_on_its_thread_does_not_hold_back_the_next_job() {
    let rt = Runtime::builder().max_blocking_threads(4).build().unwrap();
    let (result, probe) = waits_when_dropped();
    rt.block_on(async {
        let (job, started, go) = held_job(result);
        let job = overlap::spawn_blocking(job);
        started.recv_timeout(HANG).unwrap();
        job.abort();
        // The task relaying the result is gone once the handle says so.
        assert!(job.await.unwrap_err().is_cancelled());
        go.send(()).unwrap();
        probe.wait_for_the_drop();
        let signal = probe.signal.clone();
        let next = overlap::spawn_blocking(move || {
            let _ = signal.send(());
        });
        assert!(
            probe.next_job_ran_during_the_drop(),
            "the next job waited for the thread dropping the last one's result"
        );
        next.await.unwrap();
    });
}
