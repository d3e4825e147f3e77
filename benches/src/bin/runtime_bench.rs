//! Executor micro-benchmarks: overlap vs tokio (current-thread) vs smol (`LocalExecutor`),
//! and a `select!` loop over each runtime's channel and timer.
//!
//! Run: `cargo run --release -p overlap-benches --bin runtime_bench`
//!
//! Every figure is the best of several runs in this one process; the ratio columns say how
//! many times more time (or memory) the peer needs than overlap.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use overlap_benches::executors::{Exec, Overlap, Smol, Tokio};
use overlap_benches::ping_pong::{ping_pong_by_hand, ping_pong_tasks};
use overlap_benches::select_loop;
use overlap_benches::{
    live_bytes, ns_per, pin_to_cpu, print_table, start_counting, time, unpin, CountingAlloc, Row,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const RUNS: usize = 5;

fn spawn_join<E: Exec>(ex: &E, n: u64) -> Duration {
    time(|| {
        ex.block_on(async {
            let mut handles = Vec::with_capacity(1024);
            let mut done = 0;
            while done < n {
                for i in 0..1024 {
                    handles.push(ex.spawn(async move { i }));
                }
                for h in handles.drain(..) {
                    std::hint::black_box(h.await);
                }
                done += 1024;
            }
        })
    })
}

fn spawn_detached<E: Exec>(ex: &E, n: u64) -> Duration {
    time(|| {
        ex.block_on(async {
            for _ in 0..n {
                ex.spawn_detached(async {});
            }
            // FIFO queues: the last task finishes after all the earlier ones.
            ex.spawn(async {}).await;
        })
    })
}

fn yields<E: Exec>(ex: &E, tasks: u64, per: u64) -> Duration {
    time(|| {
        ex.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    ex.spawn(async move {
                        for _ in 0..per {
                            E::yield_now().await;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await;
            }
        })
    })
}

fn ping_pong<E: Exec>(ex: &E, trips: u64) -> Duration {
    time(|| {
        ex.block_on(async {
            let (echo, driver) = ping_pong_tasks(trips);
            let echo = ex.spawn(echo);
            let driver = ex.spawn(driver);
            assert_eq!(driver.await, trips);
            echo.await;
        })
    })
}

/// The same ping-pong over each runtime's own channel: overlap's `sync::mpsc` (no atomics,
/// tasks not `Send`), tokio's `sync::mpsc`, and `async-channel` (smol's) on smol.
/// overlap's and tokio's channels and tasks have the same shape: one body for both.
macro_rules! native_ping_pong {
    ($rt:expr, $channel:path, $spawn:path, $trips:expr) => {{
        let (rt, trips) = ($rt, $trips);
        time(|| {
            rt.block_on(async {
                let (to_b, mut from_a) = $channel(1);
                let (to_a, mut from_b) = $channel(1);
                let b = $spawn(async move {
                    while let Some(v) = from_a.recv().await {
                        to_a.send(v + 1).await.unwrap();
                    }
                });
                let a = $spawn(async move {
                    let mut v: u64 = 0;
                    for _ in 0..trips {
                        to_b.send(v).await.unwrap();
                        v = from_b.recv().await.unwrap();
                    }
                    v
                });
                assert_eq!(a.await.unwrap(), trips);
                b.await.unwrap();
            })
        })
    }};
}

fn ping_pong_native_overlap(trips: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    native_ping_pong!(&rt, overlap::sync::mpsc::channel, overlap::spawn, trips)
}

/// overlap's thread-safe `sync::mpsc::cross_thread` in the same ping-pong: what its lock
/// costs next to `sync::mpsc` (tokio's and smol's channels are thread-safe already).
fn ping_pong_cross_thread_overlap(trips: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    native_ping_pong!(
        &rt,
        overlap::sync::mpsc::cross_thread::channel,
        overlap::spawn,
        trips
    )
}

fn ping_pong_native_tokio(trips: u64) -> Duration {
    let rt = Tokio::new().0;
    native_ping_pong!(&rt, tokio::sync::mpsc::channel, tokio::spawn, trips)
}

fn ping_pong_native_smol(trips: u64) -> Duration {
    use async_channel::bounded;
    let ex = Smol::new();
    time(|| {
        ex.block_on(async {
            let (to_b, from_a) = bounded::<u64>(1);
            let (to_a, from_b) = bounded::<u64>(1);
            let b = ex.spawn(async move {
                while let Ok(v) = from_a.recv().await {
                    to_a.send(v + 1).await.unwrap();
                }
            });
            let a = ex.spawn(async move {
                let mut v = 0;
                for _ in 0..trips {
                    to_b.send(v).await.unwrap();
                    v = from_b.recv().await.unwrap();
                }
                v
            });
            assert_eq!(a.await, trips);
            b.await;
        })
    })
}

/// A one-value mailbox a plain thread fills, waking whoever waits.
#[derive(Default)]
struct Mailbox(Mutex<(Option<u64>, Option<Waker>)>);

impl Mailbox {
    fn put(&self, v: u64) {
        let w = {
            let mut g = self.0.lock().unwrap();
            g.0 = Some(v);
            g.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
    fn take(&self) -> impl Future<Output = u64> + '_ {
        std::future::poll_fn(move |cx| {
            let mut g = self.0.lock().unwrap();
            match g.0.take() {
                Some(v) => Poll::Ready(v),
                None => {
                    g.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

fn cross_thread<E: Exec>(ex: &E, trips: u64) -> Duration {
    let mailbox = Arc::new(Mailbox::default());
    let (tx, rx) = mpsc::channel::<u64>();
    let mb = mailbox.clone();
    let echo = std::thread::spawn(move || {
        for v in rx {
            mb.put(v + 1);
        }
    });
    let d = time(|| {
        ex.block_on(async {
            let mut v = 0;
            for _ in 0..trips {
                tx.send(v).unwrap();
                v = mailbox.take().await;
            }
            assert_eq!(v, trips);
        })
    });
    drop(tx);
    echo.join().unwrap();
    d
}

/// Another thread spawns `n` tasks onto a runtime that its own thread drives, then awaits
/// every output (outside any runtime); the runtime's `block_on` ends when the sum is in.
/// `spawn` is each contender's cross-thread spawn; it returns a `Send` handle.
fn remote_spawn<H, S, B>(n: u64, spawn: S, block_on: B) -> Duration
where
    H: Future<Output = u64> + Send + 'static,
    S: Fn(u64) -> H + Send + 'static,
    B: FnOnce(std::pin::Pin<Box<dyn Future<Output = u64>>>) -> u64,
{
    let done = Arc::new(Mailbox::default());
    let d = done.clone();
    time(move || {
        let thread = std::thread::spawn(move || {
            let handles: Vec<H> = (0..n).map(&spawn).collect();
            d.put(futures::executor::block_on(async {
                let mut sum = 0;
                for h in handles {
                    sum += h.await;
                }
                sum
            }));
        });
        let sum = block_on(Box::pin(async move { done.take().await }));
        thread.join().unwrap();
        assert_eq!(sum, n * (n - 1) / 2);
    })
}

fn remote_spawn_overlap(n: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    let handle = rt.handle();
    remote_spawn(
        n,
        move |i| {
            let task = handle.spawn(async move { i });
            async move { task.await.unwrap() }
        },
        |until_done| rt.block_on(until_done),
    )
}

fn remote_spawn_tokio(n: u64) -> Duration {
    let rt = Tokio::new().0;
    let handle = rt.handle().clone();
    remote_spawn(
        n,
        move |i| {
            let task = handle.spawn(async move { i });
            async move { task.await.unwrap() }
        },
        |until_done| rt.block_on(until_done),
    )
}

/// smol's `LocalExecutor` cannot be spawned onto from another thread: its `Send` sibling,
/// `Executor`, run on one thread, stands in.
fn remote_spawn_smol(n: u64) -> Duration {
    let ex = Arc::new(async_executor::Executor::new());
    let spawner = ex.clone();
    remote_spawn(
        n,
        move |i| spawner.spawn(async move { i }),
        |until_done| futures_lite::future::block_on(ex.run(until_done)),
    )
}

fn bytes_per_pending_task<E: Exec>(ex: &E, n: u64) -> f64 {
    static STARTED: AtomicU64 = AtomicU64::new(0);
    STARTED.store(0, Ordering::SeqCst);
    ex.block_on(async {
        let before = live_bytes();
        for i in 0..n {
            ex.spawn_detached(async move {
                STARTED.fetch_add(1, Ordering::Relaxed);
                let v = std::hint::black_box(i);
                std::future::pending::<()>().await;
                std::hint::black_box(v);
            });
        }
        while STARTED.load(Ordering::Relaxed) < n {
            E::yield_now().await;
        }
        (live_bytes() - before) as f64 / n as f64
    })
}

/// The same ping-pong with no executor at all (see [`ping_pong_by_hand`]): the "limit"
/// column of that row.
fn ping_pong_floor(trips: u64) -> Duration {
    time(|| ping_pong_by_hand(trips))
}

fn measure(
    name: &str,
    ops: u64,
    f: impl Fn(&Overlap) -> Duration,
    g: impl Fn(&Tokio) -> Duration,
    h: impl Fn(&Smol) -> Duration,
) -> Row {
    let (o, t, s) = (Overlap::new(), Tokio::new(), Smol::new());
    // Interleave the contenders so a noisy moment hurts all of them alike.
    let mut best = [Duration::MAX; 3];
    for _ in 0..RUNS {
        best[0] = best[0].min(f(&o));
        best[1] = best[1].min(g(&t));
        best[2] = best[2].min(h(&s));
    }
    Row {
        name: name.into(),
        unit: "ns/op",
        values: best.iter().map(|d| ns_per(*d, ops)).collect(),
    }
}

fn main() {
    let mut rows = Vec::new();
    const N: u64 = 1 << 20;
    rows.push(measure(
        "spawn + join (1M tasks)",
        N,
        |e| spawn_join(e, N),
        |e| spawn_join(e, N),
        |e| spawn_join(e, N),
    ));
    rows.push(measure(
        "spawn detached (1M tasks)",
        N,
        |e| spawn_detached(e, N),
        |e| spawn_detached(e, N),
        |e| spawn_detached(e, N),
    ));
    rows.push(measure(
        "yield_now (1000 tasks x 1000)",
        1_000_000,
        |e| yields(e, 1000, 1000),
        |e| yields(e, 1000, 1000),
        |e| yields(e, 1000, 1000),
    ));
    const TRIPS: u64 = 500_000;
    // Next to the row it bounds, before the memory rows leave the heap fragmented.
    let floor = (0..RUNS)
        .map(|_| ping_pong_floor(TRIPS))
        .min()
        .unwrap_or_default();
    rows.push(measure(
        "ping-pong mpsc(1) round trip",
        TRIPS,
        |e| ping_pong(e, TRIPS),
        |e| ping_pong(e, TRIPS),
        |e| ping_pong(e, TRIPS),
    ));
    // Once more after the row: a single bare loop is sensitive to where the heap put the
    // channels, and the least disturbed figure is the floor.
    let floor = (0..RUNS)
        .map(|_| ping_pong_floor(TRIPS))
        .fold(floor, Duration::min);
    let mut best = [Duration::MAX; 3];
    let mut overlap_cross_thread = Duration::MAX;
    for _ in 0..RUNS {
        best[0] = best[0].min(ping_pong_native_overlap(TRIPS));
        best[1] = best[1].min(ping_pong_native_tokio(TRIPS));
        best[2] = best[2].min(ping_pong_native_smol(TRIPS));
        overlap_cross_thread = overlap_cross_thread.min(ping_pong_cross_thread_overlap(TRIPS));
    }
    rows.push(Row {
        name: "ping-pong, each runtime's channel".into(),
        unit: "ns/op",
        values: best.iter().map(|d| ns_per(*d, TRIPS)).collect(),
    });
    // The same tokio and smol figures, against overlap's `Send` channel.
    best[0] = overlap_cross_thread;
    rows.push(Row {
        name: "ping-pong, each runtime's Send channel".into(),
        unit: "ns/op",
        values: best.iter().map(|d| ns_per(*d, TRIPS)).collect(),
    });
    const S: u64 = 500_000;
    let mut best = [Duration::MAX; 3];
    let mut futures_macro_on_overlap = Duration::MAX;
    for _ in 0..RUNS {
        best[0] = best[0].min(select_loop::overlap_select(S));
        best[1] = best[1].min(select_loop::tokio_select(S));
        best[2] = best[2].min(select_loop::smol_select(S));
        futures_macro_on_overlap =
            futures_macro_on_overlap.min(select_loop::futures_select_on_overlap(S));
    }
    rows.push(Row {
        name: "select! loop: channel vs idle timer".into(),
        unit: "ns/op",
        values: best.iter().map(|d| ns_per(*d, S)).collect(),
    });
    let select_row = rows.len() - 1;
    const X: u64 = 20_000;
    pin_to_cpu(0).expect("pin to cpu 0");
    rows.push(measure(
        "cross-thread round trip (cpu 0)",
        X,
        |e| cross_thread(e, X),
        |e| cross_thread(e, X),
        |e| cross_thread(e, X),
    ));
    unpin().expect("unpin");
    const R: u64 = 100_000;
    let mut best = [Duration::MAX; 3];
    for _ in 0..RUNS {
        best[0] = best[0].min(remote_spawn_overlap(R));
        best[1] = best[1].min(remote_spawn_tokio(R));
        best[2] = best[2].min(remote_spawn_smol(R));
    }
    rows.push(Row {
        name: "spawn from another thread + join".into(),
        unit: "ns/op",
        values: best.iter().map(|d| ns_per(*d, R)).collect(),
    });
    // The same, free to use both cores: each wake may cross cores (4 or 40 µs here, at
    // random), and a loop that sleeps in epoll pays for being woken up on its own core too.
    rows.push(measure(
        "cross-thread round trip (unpinned)",
        X,
        |e| cross_thread(e, X),
        |e| cross_thread(e, X),
        |e| cross_thread(e, X),
    ));
    const P: u64 = 100_000;
    // Only now: counting taxes every allocation, which the timing rows above must not pay.
    start_counting();
    rows.push(Row {
        name: "memory per pending task".into(),
        unit: "B/task",
        values: vec![
            bytes_per_pending_task(&Overlap::new(), P),
            bytes_per_pending_task(&Tokio::new(), P),
            bytes_per_pending_task(&Smol::new(), P),
        ],
    });
    println!("overlap runtime_bench: best of {RUNS} runs, same process; ratio > 1 means overlap is better");
    print_table(&["overlap", "tokio", "smol"], &rows);
    let sel = ns_per(futures_macro_on_overlap, S);
    println!(
        "select! loop with futures-util's select! on overlap: {sel:.1} ns/op, {:.2}x overlap's \
         select!",
        sel / rows[select_row].values[0]
    );
    let pp = &rows[3].values; // the futures-channel ping-pong
    let floor = ns_per(floor, TRIPS);
    println!(
        "ping-pong floor (channel alone, no executor): {floor:.1} ns; executor overhead above it: \
         overlap {:.1} ns, tokio {:.1} ns, smol {:.1} ns",
        pp[0] - floor,
        pp[1] - floor,
        pp[2] - floor
    );
}
