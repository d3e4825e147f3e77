//! Many streams read as one: overlap's `stream::StreamMap` vs tokio-stream's `StreamMap` on
//! tokio's current-thread runtime, with a limit that needs no map.
//!
//! Run: `cargo run --release -p overlap-benches --bin stream_bench`
//!
//! Two shapes, each over `n` channels carrying `ITEMS` values in all:
//! - *drain*: every channel filled first, its sender dropped, then all of them read through
//!   the map until it is empty (each stream removed as it ends). The limit reads the
//!   channels one after the other with `recv`, no map at all.
//! - *live*: `n` producer tasks each send their share into a bounded channel (capacity 16)
//!   while one consumer reads them all through the map, so each value costs a wakeup
//!   somewhere. The limit is the same producers sharing one channel: fan-in without keys.
//!
//! Every figure is the best of several runs in this one process; the ratios compare overlap
//! with tokio-stream and with the limit.

use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use overlap_benches::executors::Tokio;
use overlap_benches::{ns_per, print_table, Row};

const RUNS: usize = 5;
const ITEMS: u64 = 400_000;

/// The sum of the values the `n` channels carry, each `0..ITEMS / n`.
fn expected_sum(n: u64) -> u64 {
    n * (ITEMS / n) * (ITEMS / n - 1) / 2
}

/// Reads every value out of `map` until it ends, checks their sum, and returns the time
/// since `start`.
async fn read_all(
    mut map: impl Stream<Item = (u64, u64)> + Unpin,
    n: u64,
    start: Instant,
) -> Duration {
    let mut sum = 0u64;
    while let Some((_, v)) = map.next().await {
        sum += v;
    }
    let took = start.elapsed();
    assert_eq!(sum, expected_sum(n));
    took
}

fn overlap_drain(n: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async {
        let mut map = overlap::stream::StreamMap::new();
        for key in 0..n {
            let (tx, rx) = overlap::sync::mpsc::unbounded_channel();
            for i in 0..ITEMS / n {
                tx.send(i).unwrap();
            }
            map.insert(key, rx);
        }
        read_all(map, n, Instant::now()).await
    })
}

fn tokio_drain(n: u64) -> Duration {
    let rt = Tokio::new().0;
    rt.block_on(async {
        let mut map = tokio_stream::StreamMap::new();
        for key in 0..n {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            for i in 0..ITEMS / n {
                tx.send(i).unwrap();
            }
            map.insert(
                key,
                tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
            );
        }
        read_all(map, n, Instant::now()).await
    })
}

fn limit_drain(n: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async {
        let mut receivers = Vec::new();
        for _ in 0..n {
            let (tx, rx) = overlap::sync::mpsc::unbounded_channel();
            for i in 0..ITEMS / n {
                tx.send(i).unwrap();
            }
            receivers.push(rx);
        }
        let start = Instant::now();
        let mut sum = 0u64;
        for rx in &mut receivers {
            while let Some(v) = rx.recv().await {
                sum += v;
            }
        }
        let took = start.elapsed();
        assert_eq!(sum, expected_sum(n));
        took
    })
}

fn overlap_live(n: u64, shared: bool) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let mut map = overlap::stream::StreamMap::new();
        let (shared_tx, shared_rx) = overlap::sync::mpsc::channel(16);
        for key in 0..n {
            let tx = if shared {
                shared_tx.clone()
            } else {
                let (tx, rx) = overlap::sync::mpsc::channel(16);
                map.insert(key, rx);
                tx
            };
            drop(overlap::spawn(async move {
                for i in 0..ITEMS / n {
                    tx.send(i).await.unwrap();
                }
            }));
        }
        drop(shared_tx);
        if shared {
            read_all(shared_rx.map(|v| (0, v)), n, start).await
        } else {
            read_all(map, n, start).await
        }
    })
}

fn tokio_live(n: u64) -> Duration {
    let rt = Tokio::new().0;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let start = Instant::now();
        let mut map = tokio_stream::StreamMap::new();
        for key in 0..n {
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            map.insert(key, tokio_stream::wrappers::ReceiverStream::new(rx));
            tokio::task::spawn_local(async move {
                for i in 0..ITEMS / n {
                    tx.send(i).await.unwrap();
                }
            });
        }
        read_all(map, n, start).await
    })
}

fn main() {
    let mut rows = Vec::new();
    for n in [1, 16, 256] {
        let mut best = [Duration::MAX; 3];
        for _ in 0..RUNS {
            best[0] = best[0].min(overlap_drain(n));
            best[1] = best[1].min(tokio_drain(n));
            best[2] = best[2].min(limit_drain(n));
        }
        rows.push(Row {
            name: format!("drain, {n} streams"),
            unit: "ns/item",
            values: best.iter().map(|d| ns_per(*d, ITEMS)).collect(),
        });
    }
    for n in [1, 16, 256] {
        let mut best = [Duration::MAX; 3];
        for _ in 0..RUNS {
            best[0] = best[0].min(overlap_live(n, false));
            best[1] = best[1].min(tokio_live(n));
            best[2] = best[2].min(overlap_live(n, true));
        }
        rows.push(Row {
            name: format!("live, {n} producers"),
            unit: "ns/item",
            values: best.iter().map(|d| ns_per(*d, ITEMS)).collect(),
        });
    }
    println!(
        "overlap stream_bench: StreamMap, best of {RUNS} runs, same process; ratio > 1 means \
         overlap is better"
    );
    print_table(&["overlap", "tokio-stream", "limit (no map)"], &rows);
}
