//! `sync::mpsc::cross_thread` between real threads: pool jobs feeding tasks and the
//! reverse, plain threads on `blocking_recv`, many senders on many threads, and runtimes on
//! two threads. A lost wake shows as a hang, caught by a 10 s guard on every wait (`within`
//! in a runtime, a watchdog that aborts for the blocking calls); no assertion is on timing.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use overlap::sync::mpsc::cross_thread;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// Runs `f` with a [`Stall`] guard that aborts the process once no thread has ticked it for
/// [`HANG`]: a 10 s guard on each blocking wait, whatever the test's total time.
fn guarded<R>(f: impl FnOnce(&Arc<Stall>) -> R) -> R {
    let stall = Arc::new(Stall::default());
    let watched = stall.clone();
    let watcher = thread::spawn(move || {
        let (mut seen, mut since) = (0, Instant::now());
        while !watched.done.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(50));
            let now = watched.ticks.load(Ordering::SeqCst);
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() > HANG {
                eprintln!("no progress for {HANG:?}: a wait hung");
                std::process::abort();
            }
        }
    });
    let out = f(&stall);
    stall.done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    out
}

/// Progress of a [`guarded`] test.
#[derive(Default)]
struct Stall {
    ticks: AtomicU64,
    done: AtomicBool,
}

impl Stall {
    /// A wait completed.
    fn tick(&self) {
        self.ticks.fetch_add(1, Ordering::SeqCst);
    }
}

const MANY: u32 = 100_000;

#[overlap::test]
async fn a_pool_job_streams_100k_values_through_a_bounded_1_channel_to_a_task_and_back() {
    // Job → task through `blocking_send` / `recv().await`, then task → job through
    // `send().await` / `blocking_recv`: with a capacity of 1, nearly every value makes one
    // side sleep, so a lost wake on either path hangs the test.
    let (tx, mut rx) = cross_thread::channel::<u32>(1);
    let (back_tx, mut back_rx) = cross_thread::channel::<u32>(1);
    let producer = overlap::spawn_blocking(move || {
        for i in 0..MANY {
            tx.blocking_send(i).unwrap();
        }
    });
    let consumer = overlap::spawn_blocking(move || {
        let mut next = 0;
        while let Some(v) = back_rx.blocking_recv() {
            assert_eq!(v, next, "out of order on the way back");
            next += 1;
        }
        next
    });
    let mut expected = 0;
    while let Some(v) = within(HANG, rx.recv(), "a value from the job").await {
        assert_eq!(v, expected, "out of order");
        expected += 1;
        within(HANG, back_tx.send(v), "room towards the job")
            .await
            .unwrap();
    }
    assert_eq!(expected, MANY);
    drop(back_tx);
    within(HANG, producer, "the producer").await.unwrap();
    assert_eq!(within(HANG, consumer, "the consumer").await.unwrap(), MANY);
}

#[test]
fn two_plain_threads_trade_100k_values_through_bounded_1_channels() {
    guarded(|stall| {
        let (tx, mut rx) = cross_thread::channel::<u32>(1);
        let (back_tx, mut back_rx) = cross_thread::channel::<u32>(1);
        let echo = thread::spawn(move || {
            while let Some(v) = rx.blocking_recv() {
                back_tx.blocking_send(v).unwrap();
            }
        });
        let reader = thread::spawn(move || {
            let mut n = 0;
            while let Some(v) = back_rx.blocking_recv() {
                assert_eq!(v, n);
                n += 1;
            }
            n
        });
        for i in 0..MANY {
            tx.blocking_send(i).unwrap();
            stall.tick();
        }
        drop(tx);
        echo.join().unwrap();
        assert_eq!(reader.join().unwrap(), MANY);
    });
}

#[overlap::test]
async fn many_senders_on_many_threads_each_keep_their_order() {
    const THREADS: u32 = 8;
    const EACH: u32 = 5_000;
    let (tx, mut rx) = cross_thread::channel::<(u32, u32)>(4);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    // Half the threads share one sender by reference, half own a clone:
                    // both are allowed (`Sender: Sync`).
                    if i % 2 == 0 {
                        tx.blocking_send((t, i)).unwrap();
                    } else {
                        let tx = tx.clone();
                        tx.blocking_send((t, i)).unwrap();
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let mut next: HashMap<u32, u32> = HashMap::new();
    let mut total = 0;
    while let Some((t, i)) = within(HANG, rx.recv(), "a value").await {
        let n = next.entry(t).or_default();
        assert_eq!(i, *n, "thread {t} out of order");
        *n += 1;
        total += 1;
    }
    assert_eq!(total, THREADS * EACH);
    assert!(next.values().all(|&n| n == EACH));
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn many_async_senders_in_runtimes_on_many_threads_feed_a_blocking_receiver() {
    guarded(|stall| {
        let (tx, mut rx) = cross_thread::channel::<u64>(2);
        let (utx, mut urx) = cross_thread::unbounded_channel::<u64>();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (tx, utx) = (tx.clone(), utx.clone());
                thread::spawn(move || {
                    overlap::block_on(async move {
                        for i in 0..2_000 {
                            tx.send(t * 10_000 + i).await.unwrap();
                            utx.send(i).unwrap();
                        }
                    })
                })
            })
            .collect();
        drop((tx, utx));
        let mut sum = 0;
        let mut count = 0;
        while let Some(v) = rx.blocking_recv() {
            sum += v;
            count += 1;
            stall.tick();
        }
        let mut unbounded = 0;
        while urx.blocking_recv().is_some() {
            unbounded += 1;
            stall.tick();
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((count, unbounded), (8_000, 8_000));
        let want: u64 = (0..4u64)
            .flat_map(|t| (0..2_000).map(move |i| t * 10_000 + i))
            .sum();
        assert_eq!(sum, want);
    });
}

#[test]
fn a_task_on_one_runtime_feeds_a_task_on_another() {
    guarded(|stall| {
        let (tx, mut rx) = cross_thread::channel::<u32>(1);
        let (done_tx, mut done_rx) = cross_thread::channel::<()>(1);
        let receiver = thread::spawn(move || {
            overlap::block_on(async move {
                let mut got = Vec::new();
                while let Some(v) = rx.recv().await {
                    got.push(v);
                }
                done_tx.send(()).await.unwrap();
                got
            })
        });
        overlap::block_on(async move {
            for i in 0..1_000 {
                within(HANG, tx.send(i), "room").await.unwrap();
                stall.tick();
            }
            drop(tx);
            assert_eq!(
                within(HANG, done_rx.recv(), "the other runtime").await,
                Some(())
            );
        });
        assert_eq!(receiver.join().unwrap(), (0..1_000).collect::<Vec<_>>());
    });
}

#[test]
fn a_receiver_dropped_on_another_thread_fails_a_blocked_sender_with_its_value() {
    guarded(|_| {
        let (tx, rx) = cross_thread::channel::<String>(1);
        tx.try_send(String::from("fills it")).unwrap();
        let dropper = thread::spawn(move || {
            // Take nothing: let the sender block, then go.
            thread::sleep(Duration::from_millis(10));
            drop(rx);
        });
        let err = tx.blocking_send(String::from("mine")).unwrap_err();
        assert_eq!(err.0, "mine");
        dropper.join().unwrap();
    });
}

#[overlap::test]
async fn closed_completes_when_a_blocking_worker_closes_its_receiver() {
    let (tx, mut rx) = cross_thread::channel::<u32>(8);
    let worker = overlap::spawn_blocking(move || {
        let first = rx.blocking_recv();
        rx.close();
        let mut rest = Vec::new();
        while let Some(v) = rx.blocking_recv() {
            rest.push(v);
        }
        (first, rest)
    });
    tx.send(1).await.unwrap();
    within(HANG, tx.closed(), "the worker's close").await;
    assert!(tx.send(2).await.is_err());
    let (first, rest) = within(HANG, worker, "the worker").await.unwrap();
    assert_eq!(first, Some(1));
    assert!(rest.is_empty());
}

#[overlap::test]
async fn senders_racing_a_receiver_drop_either_send_or_get_their_value_back() {
    // Whatever the interleaving, each value is either received or given back: none lost.
    for round in 0..50u32 {
        let (tx, mut rx) = cross_thread::channel::<u32>(1);
        let jobs: Vec<_> = (0..3u32)
            .map(|j| {
                let tx = tx.clone();
                overlap::spawn_blocking(move || {
                    let mut back = Vec::new();
                    for i in 0..20 {
                        if let Err(e) = tx.blocking_send(j * 100 + i) {
                            back.push(e.0);
                        }
                    }
                    back
                })
            })
            .collect();
        drop(tx);
        let mut got = Vec::new();
        for _ in 0..(round % 7) * 5 {
            match within(HANG, rx.recv(), "a value").await {
                Some(v) => got.push(v),
                None => break,
            }
        }
        drop(rx);
        for job in jobs {
            got.extend(within(HANG, job, "a job").await.unwrap());
        }
        got.sort_unstable();
        let len = got.len();
        got.dedup();
        assert_eq!(got.len(), len, "round {round}: a value came twice");
        let want: Vec<u32> = (0..3)
            .flat_map(|j| (0..20).map(move |i| j * 100 + i))
            .collect();
        assert!(got.iter().all(|v| want.contains(v)));
        // Only a value still queued when the receiver went is neither received nor given
        // back (dropped with the queue): at most the capacity, 1.
        assert!(
            len >= want.len() - 1,
            "round {round}: {len} of 60 accounted for"
        );
    }
}

/// tokio's actor pattern across threads: each request carries a `oneshot::Sender` for its
/// reply, answered by a runtime on another thread, awaited by a task, or waited for by a
/// plain thread with `blocking_recv`. overlap's `oneshot` is not `Send`: its
/// `oneshot::cross_thread` is, where a port had to make each reply an mpsc channel of one.
#[test]
fn replies_come_back_across_runtimes_through_a_send_oneshot() {
    use overlap::sync::oneshot::{self, cross_thread as reply};
    fn send_sync<T: Send + Sync>(_: &T) {}
    let (requests, mut inbox) = cross_thread::unbounded_channel::<(u64, reply::Sender<u64>)>();
    let server = thread::spawn(move || {
        overlap::block_on(async move {
            while let Some((n, answer)) = inbox.recv().await {
                send_sync(&answer);
                // A client that gave up gets nothing; the server goes on.
                let _ = answer.send(n * 2);
            }
        })
    });
    let client = requests.clone();
    let sum = overlap::block_on(async move {
        let mut sum = 0;
        for n in 0..1000 {
            let (answer, reply) = reply::channel();
            client.send((n, answer)).unwrap();
            sum += within(HANG, reply, "a reply").await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..1000).map(|n| n * 2).sum::<u64>());
    // A plain thread waits with `blocking_recv`.
    let (answer, reply) = reply::channel();
    requests.send((21, answer)).unwrap();
    assert_eq!(
        thread::spawn(move || reply.blocking_recv()).join().unwrap(),
        Ok(42)
    );
    // A request dropped unanswered (the server gone) is an error, not a hang.
    drop(requests);
    server.join().unwrap();
    let (answer, reply) = reply::channel::<u64>();
    thread::spawn(move || drop(answer)).join().unwrap();
    assert_eq!(reply.blocking_recv(), Err(oneshot::RecvError));
    // A sender learns on its thread that the receiver went on another.
    let (mut answer, reply) = reply::channel::<u64>();
    let waiter = thread::spawn(move || {
        overlap::block_on(async move {
            within(HANG, answer.closed(), "the receiver's drop").await;
            answer.send(1)
        })
    });
    drop(reply);
    assert_eq!(waiter.join().unwrap(), Err(1));
}
