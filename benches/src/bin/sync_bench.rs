//! Waits that are given up: overlap's `sync::Notify` vs tokio's `sync::Notify` vs
//! `async-channel` (smol's) `recv`.
//!
//! Run: `cargo run --release -p overlap-benches --bin sync_bench`
//!
//! A wait polled once and then dropped (a `select!` branch not taken, a timeout) must leave
//! the line of waiters in O(1), however many other tasks wait in it: otherwise `n` timeouts
//! cost `n²`. Each row polls a fresh wait once and drops it, with `idle` other tasks parked
//! on the same primitive; every figure is the best of several runs in this one process.

use std::time::Duration;

use futures::poll;
use overlap_benches::executors::{Exec, Smol, Tokio};
use overlap_benches::{ns_per, print_table, Row};

const RUNS: usize = 5;
const WAITS: u64 = 200_000;

/// An `async` block that parks `idle` tasks on the primitive, then times `WAITS` waits
/// polled once and dropped. `$wait` is the method making a wait; `$spawn` spawns a task;
/// `$yield` lets the parked tasks run.
macro_rules! given_up_waits {
    ($make:expr, $wait:ident, $spawn:expr, $yield:expr, $idle:expr) => {
        async {
            let prim = std::rc::Rc::new($make);
            let started = std::rc::Rc::new(std::cell::Cell::new(0));
            let mut parked = Vec::new();
            for _ in 0..$idle {
                let (p, started) = (prim.clone(), started.clone());
                parked.push($spawn(async move {
                    let mut wait = std::pin::pin!(p.$wait());
                    assert!(poll!(wait.as_mut()).is_pending());
                    started.set(started.get() + 1);
                    let _ = wait.await;
                }));
            }
            while started.get() < $idle {
                $yield.await;
            }
            let start = std::time::Instant::now();
            for _ in 0..WAITS {
                let mut wait = std::pin::pin!(prim.$wait());
                assert!(poll!(wait.as_mut()).is_pending());
            }
            let took = start.elapsed();
            drop(parked);
            took
        }
    };
}

fn overlap_notify(idle: usize) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(given_up_waits!(
        overlap::sync::Notify::new(),
        notified,
        overlap::spawn,
        overlap::yield_now(),
        idle
    ))
}

fn tokio_notify(idle: usize) -> Duration {
    let rt = Tokio::new().0;
    let local = tokio::task::LocalSet::new();
    local.block_on(
        &rt,
        given_up_waits!(
            tokio::sync::Notify::new(),
            notified,
            tokio::task::spawn_local,
            tokio::task::yield_now(),
            idle
        ),
    )
}

fn smol_recv(idle: usize) -> Duration {
    let ex = Smol::new();
    let (tx, rx) = async_channel::bounded::<()>(1);
    let took = ex.block_on(given_up_waits!(
        rx.clone(),
        recv,
        |f| ex.0.spawn(f),
        futures_lite::future::yield_now(),
        idle
    ));
    drop((tx, rx));
    took
}

fn main() {
    let mut rows = Vec::new();
    for idle in [0, 10_000] {
        let mut best = [Duration::MAX; 3];
        for _ in 0..RUNS {
            best[0] = best[0].min(overlap_notify(idle));
            best[1] = best[1].min(tokio_notify(idle));
            best[2] = best[2].min(smol_recv(idle));
        }
        rows.push(Row {
            name: format!("wait given up, {idle} waiting"),
            unit: "ns/op",
            values: best.iter().map(|d| ns_per(*d, WAITS)).collect(),
        });
    }
    println!(
        "overlap sync_bench: best of {RUNS} runs, same process; ratio > 1 means overlap is better"
    );
    print_table(&["overlap", "tokio", "smol"], &rows);
}
