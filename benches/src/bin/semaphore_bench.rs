//! Semaphores shared between threads: overlap's `sync::cross_thread::Semaphore` vs tokio's
//! `sync::Semaphore` vs async-lock's (smol's), each driven by its own executor.
//!
//! Run: `cargo run --release -p overlap-benches --bin semaphore_bench`
//!
//! Two rows: an acquire and release with nobody else about (the cost a limit adds to every
//! request), and two threads, each with its own executor, sharing one permit that each
//! holds across a yield to its executor (so an acquire often waits for a release on the
//! other thread, and is woken from there). Every figure is the best of several runs in this
//! one process, the contenders interleaved.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use overlap_benches::{ns_per, print_table, Row};

const RUNS: usize = 5;
const ALONE: u64 = 1_000_000;
const TURNS: u64 = 100_000;

/// The three contenders: each runs a future to completion on the calling thread, with its
/// reactor (overlap always has one; tokio's I/O and timer drivers on; smol's `block_on`).
#[derive(Clone, Copy)]
enum Contender {
    Overlap,
    Tokio,
    Smol,
}

impl Contender {
    fn block_on<F: Future>(self, f: F) -> F::Output {
        match self {
            Contender::Overlap => overlap::Runtime::new().unwrap().block_on(f),
            Contender::Tokio => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f),
            Contender::Smol => async_io::block_on(f),
        }
    }
}

/// Returns `Pending` once, waking itself: a turn of whichever executor polls it.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// `$ops` acquires and releases of a fresh `Arc` of `$sem` with `$permits` permits, by
/// `$threads` threads at once, each on its own executor, holding each permit across a
/// yield when more than one thread shares it; the wall time of the whole.
macro_rules! acquire_release {
    ($who:expr, $sem:expr, $permits:expr, $threads:expr, $ops:expr) => {{
        let sem = Arc::new($sem($permits));
        let start = Instant::now();
        let threads: Vec<_> = (0..$threads)
            .map(|_| {
                let sem = sem.clone();
                std::thread::spawn(move || {
                    $who.block_on(async move {
                        for _ in 0..$ops {
                            let permit = sem.acquire().await;
                            if $threads > 1 {
                                YieldOnce(false).await;
                            }
                            drop(permit);
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        start.elapsed()
    }};
}

fn run(who: Contender, permits: usize, threads: u64, ops: u64) -> Duration {
    match who {
        Contender::Overlap => acquire_release!(
            who,
            overlap::sync::cross_thread::Semaphore::new,
            permits,
            threads,
            ops
        ),
        Contender::Tokio => {
            acquire_release!(who, tokio::sync::Semaphore::new, permits, threads, ops)
        }
        Contender::Smol => acquire_release!(who, async_lock::Semaphore::new, permits, threads, ops),
    }
}

fn main() {
    let contenders = [Contender::Overlap, Contender::Tokio, Contender::Smol];
    let shapes = [
        ("acquire + release, alone", 1, 1, ALONE),
        ("2 threads, 1 permit held over a yield", 1, 2, TURNS),
    ];
    let mut rows = Vec::new();
    for (name, permits, threads, ops) in shapes {
        let mut best = [Duration::MAX; 3];
        for _ in 0..RUNS {
            for (b, who) in best.iter_mut().zip(contenders) {
                *b = (*b).min(run(who, permits, threads, ops));
            }
        }
        rows.push(Row {
            name: name.into(),
            unit: "ns/op",
            values: best.iter().map(|d| ns_per(*d, ops * threads)).collect(),
        });
    }
    println!(
        "overlap semaphore_bench: best of {RUNS} runs, same process; ratio > 1 means overlap is better"
    );
    print_table(&["overlap", "tokio", "smol"], &rows);
}
