//! `overlap::sync::cross_thread::Semaphore` under load: four threads, each with a runtime
//! of its own, make 200 acquires each of one to three permits, a seeded share of them
//! cancelled at random points (before or after being granted), some permits moved into
//! `spawn_blocking` jobs. The permits held never exceed the semaphore's, and none is lost.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures_util::future::{select, Either};
use overlap::sync::cross_thread::Semaphore;
use support::{for_seeds, on_thread_within, within, SeedOnPanic, XorShift};

const PERMITS: usize = 4;
const THREADS: u64 = 4;
const TASKS_PER_THREAD: u64 = 2;
const ACQUIRES_PER_TASK: u64 = 100;
const HANG: Duration = Duration::from_secs(60);

/// What the run saw, shared by every thread.
#[derive(Default)]
struct Tally {
    /// Permits held right now, and the most ever held at once.
    held: AtomicUsize,
    most: AtomicUsize,
    granted: AtomicUsize,
    cancelled: AtomicUsize,
}

impl Tally {
    fn take(&self, n: usize) {
        let now = self.held.fetch_add(n, Ordering::SeqCst) + n;
        self.most.fetch_max(now, Ordering::SeqCst);
        self.granted.fetch_add(1, Ordering::SeqCst);
    }

    fn give(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::SeqCst);
    }
}

/// Yields `n` times to the other tasks of this runtime.
async fn yields(n: u64) {
    for _ in 0..n {
        overlap::task::yield_now().await;
    }
}

/// Awaits `acquire`, for at most `patience` yields of this task if it is `Some`: `None`
/// if it was dropped unfinished (cancelled, perhaps after it was woken with its permits
/// granted).
async fn with_patience<F: Future>(acquire: F, patience: Option<u64>) -> Option<F::Output> {
    let Some(patience) = patience else {
        return Some(acquire.await);
    };
    match select(pin!(acquire), pin!(yields(patience))).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => None,
    }
}

/// One task's acquires: random sizes, random patience, held for a random while.
async fn acquirer(sem: Arc<Semaphore>, tally: Arc<Tally>, seed: u64) {
    let mut rng = XorShift(seed);
    for _ in 0..ACQUIRES_PER_TASK {
        let n = 1 + rng.below(3) as u32;
        // A third are given up after a few yields; the rest wait as long as it takes.
        let patience = (rng.below(3) == 0).then(|| rng.below(4));
        let Some(permit) = with_patience(sem.clone().acquire_many_owned(n), patience).await else {
            tally.cancelled.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        let permit = permit.expect("never closed");
        tally.take(n as usize);
        let hold = rng.below(4);
        if rng.below(4) == 0 {
            // The permit moves into a blocking job, which gives it back on a pool thread.
            let tally = tally.clone();
            let job = overlap::spawn_blocking(move || {
                std::thread::yield_now();
                tally.give(permit.num_permits());
                drop(permit);
            });
            job.await.unwrap();
        } else {
            yields(hold).await;
            tally.give(n as usize);
            drop(permit);
        }
    }
}

#[test]
fn held_permits_never_exceed_the_semaphore_and_none_is_lost_under_random_cancellation() {
    for_seeds(1..=3, |seed| {
        on_thread_within(HANG, "the stress run", move || {
            let sem = Arc::new(Semaphore::new(PERMITS));
            let tally = Arc::new(Tally::default());
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (sem, tally) = (sem.clone(), tally.clone());
                    std::thread::spawn(move || {
                        let _seed = SeedOnPanic(seed);
                        overlap::block_on(async move {
                            let tasks: Vec<_> = (0..TASKS_PER_THREAD)
                                .map(|k| {
                                    let task_seed = seed * 1_000 + t * 10 + k + 1;
                                    overlap::spawn(acquirer(sem.clone(), tally.clone(), task_seed))
                                })
                                .collect();
                            for task in tasks {
                                within(HANG, task, "an acquirer hung").await.unwrap();
                            }
                        })
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            let most = tally.most.load(Ordering::SeqCst);
            assert!(most <= PERMITS, "{most} permits held at once, of {PERMITS}");
            let done =
                tally.granted.load(Ordering::SeqCst) + tally.cancelled.load(Ordering::SeqCst);
            assert_eq!(done as u64, THREADS * TASKS_PER_THREAD * ACQUIRES_PER_TASK);
            assert_eq!(tally.held.load(Ordering::SeqCst), 0);
            assert_eq!(sem.available_permits(), PERMITS, "a permit was lost");
            // Every permit can be taken at once: none is stuck with a gone waiter.
            assert_eq!(
                sem.try_acquire_many(PERMITS as u32).unwrap().num_permits(),
                PERMITS
            );
        });
    });
}

/// A poll-level check that the stress run's cancellation reaches both cases: a wait
/// dropped in line, and one dropped after it was granted (woken, never polled again).
#[test]
fn a_cancelled_wait_gives_back_what_it_was_granted_whichever_thread_granted_it() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.clone().try_acquire_owned().unwrap();
    let mut waits: Vec<_> = (0..3)
        .map(|_| support::polled(sem.clone().acquire_owned()))
        .collect();
    for w in &mut waits {
        assert!(w.poll().is_pending());
    }
    waits[1].cancel(); // in line
    std::thread::spawn(move || drop(held)).join().unwrap();
    assert!(waits[0].is_woken() && !waits[2].is_woken());
    waits[0].cancel(); // granted
    assert!(waits[2].is_woken(), "the grant moved on to the last waiter");
    let Poll::Ready(Ok(permit)) = waits[2].poll() else {
        panic!("the last waiter still waits");
    };
    drop(permit);
    assert_eq!(sem.available_permits(), 1);
}
