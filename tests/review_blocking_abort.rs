//! Review of `Handle::spawn_blocking` (queued straight on the pool) and of the free
//! `spawn_blocking`'s "an aborted queued job is skipped": an abort that races the job's start
//! either stops the job before it runs (its closure dropped unrun) or lets it run to its end,
//! never both, never neither, and the handle never hangs; and a job can start another from its
//! pool thread and wait for it there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;
use std::time::Duration;

use overlap::{Handle, Runtime};

/// A generous hang guard, never a timing assertion.
const HANG: Duration = Duration::from_secs(10);

/// How many jobs race their abort, per test.
const ROUNDS: usize = 500;

/// Counts a job's runs and its closure's drops.
#[derive(Clone, Default)]
struct Tally {
    ran: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

struct OnDrop(Arc<AtomicUsize>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Tally {
    fn job(&self) -> impl FnOnce() + Send + 'static {
        let ran = self.ran.clone();
        let guard = OnDrop(self.dropped.clone());
        move || {
            let _guard = guard;
            ran.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Runs `body` on its own thread and fails the test if it does not end within [`HANG`].
fn within_hang_guard(body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std_mpsc::channel();
    thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    rx.recv_timeout(HANG).expect("hung (or panicked)");
}

#[test]
fn a_handle_job_aborted_as_it_starts_runs_once_or_not_at_all() {
    within_hang_guard(|| {
        let rt = Runtime::builder().max_blocking_threads(2).build().unwrap();
        let handle = rt.handle();
        let tally = Tally::default();
        let mut cancelled = 0;
        for _ in 0..ROUNDS {
            let job = handle.spawn_blocking(tally.job());
            job.abort();
            assert!(job.is_finished(), "an aborted handle reports at once");
            match overlap::block_on(job) {
                Ok(()) => {}
                Err(e) => {
                    assert!(e.is_cancelled(), "{e}");
                    cancelled += 1;
                }
            }
        }
        // Every job's closure is dropped exactly once, run or not: wait for the pool to
        // be done with the last ones (a last job queued behind them runs after them).
        for _ in 0..2 {
            overlap::block_on(handle.spawn_blocking(|| ())).unwrap();
        }
        let spin_until = std::time::Instant::now() + HANG;
        while tally.dropped.load(Ordering::SeqCst) < ROUNDS
            && std::time::Instant::now() < spin_until
        {
            thread::yield_now();
        }
        let (ran, dropped) = (
            tally.ran.load(Ordering::SeqCst),
            tally.dropped.load(Ordering::SeqCst),
        );
        assert_eq!(dropped, ROUNDS, "a closure was leaked or dropped twice");
        assert!(ran <= ROUNDS);
        assert!(
            cancelled >= ROUNDS - ran,
            "a job neither ran nor was reported cancelled"
        );
        drop(rt);
    });
}

#[test]
fn a_free_job_aborted_as_it_starts_runs_once_or_not_at_all() {
    within_hang_guard(|| {
        let rt = Runtime::builder().max_blocking_threads(2).build().unwrap();
        let tally = Tally::default();
        rt.block_on(async {
            for _ in 0..ROUNDS {
                let job = overlap::spawn_blocking(tally.job());
                job.abort();
                if let Err(e) = job.await {
                    assert!(e.is_cancelled(), "{e}");
                }
            }
            for _ in 0..2 {
                overlap::spawn_blocking(|| ()).await.unwrap();
            }
        });
        let spin_until = std::time::Instant::now() + HANG;
        while tally.dropped.load(Ordering::SeqCst) < ROUNDS
            && std::time::Instant::now() < spin_until
        {
            thread::yield_now();
        }
        assert_eq!(
            tally.dropped.load(Ordering::SeqCst),
            ROUNDS,
            "a closure was leaked or dropped twice"
        );
        assert!(tally.ran.load(Ordering::SeqCst) <= ROUNDS);
        drop(rt);
    });
}

#[test]
fn a_handle_job_waits_on_its_pool_thread_for_a_job_it_started() {
    within_hang_guard(|| {
        let rt = Runtime::builder().max_blocking_threads(2).build().unwrap();
        let handle = rt.handle();
        // Nobody drives the runtime's loop: the outer job blocks its pool thread on the inner
        // one, which runs on the pool's second thread.
        let outer = handle.spawn_blocking(|| {
            let current = Handle::current();
            let inner = current.spawn_blocking(|| 6 * 7);
            current.block_on(inner).unwrap()
        });
        assert_eq!(overlap::block_on(outer).unwrap(), 42);
        drop(rt);
    });
}

#[test]
fn a_handle_job_of_one_runtime_is_awaited_in_another() {
    within_hang_guard(|| {
        let first = Runtime::new().unwrap();
        let handle = first.handle();
        let second = Runtime::new().unwrap();
        let (answer, ran_on) = second.block_on(async move {
            handle
                .spawn_blocking(|| {
                    // The job's current handle is the first runtime's: a task spawned there
                    // is not the second's.
                    let task = Handle::current().spawn(async { 1 });
                    (6 * 7, task)
                })
                .await
                .unwrap()
        });
        assert_eq!(answer, 42);
        // The task landed on the first runtime: it runs when that one is driven.
        assert_eq!(first.block_on(ran_on).unwrap(), 1);
    });
}
