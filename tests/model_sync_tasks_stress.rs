//! Task-level randomized stress of the sync primitives under cancellation: every operation runs
//! under a random timeout (or is dropped after a few polls), and at the end nothing is lost:
//! every message a send reported sent is received exactly once, every permit is back, every
//! lock is free, and no task hung.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use overlap::sync::{mpsc, Mutex, Notify, RwLock, Semaphore};
use overlap::time::timeout;
use support::watchdog;

#[derive(Clone)]
struct Rng(Rc<Cell<u64>>);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(Rc::new(Cell::new(seed | 1)))
    }
    fn below(&self, n: u64) -> u64 {
        let mut x = self.0.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.set(x);
        x % n
    }
}

/// Runs `f` to completion, or cancels it: under a random timeout, or by dropping it after a
/// random number of polls (yielding between them). Returns `None` if cancelled.
async fn maybe_cancel<F: Future>(rng: &Rng, f: F) -> Option<F::Output> {
    match rng.below(3) {
        0 => Some(f.await),
        1 => timeout(Duration::from_micros(rng.below(400)), f).await.ok(),
        _ => {
            let mut f = pin!(f);
            for _ in 0..rng.below(5) {
                if let Poll::Ready(v) = futures_util::poll!(f.as_mut()) {
                    return Some(v);
                }
                overlap::yield_now().await;
            }
            None
        }
    }
}

#[test]
fn mpsc_loses_nothing_under_cancellation() {
    let done = watchdog(90);
    for seed in 1..=8u64 {
        overlap::block_on(async move {
            let rng = Rng::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let (tx, mut rx) = mpsc::channel::<u64>(1 + (seed % 3) as usize);
            let sent = Rc::new(RefCell::new(Vec::new()));
            let mut producers = Vec::new();
            for p in 0..20u64 {
                let tx = tx.clone();
                let sent = sent.clone();
                let rng = Rng::new(rng.below(u64::MAX).wrapping_add(p));
                producers.push(overlap::spawn(async move {
                    for i in 0..100u64 {
                        let v = p * 1000 + i;
                        if let Some(r) = maybe_cancel(&rng, tx.send(v)).await {
                            r.unwrap();
                            sent.borrow_mut().push(v);
                        }
                    }
                }));
            }
            drop(tx);
            let mut got = Vec::new();
            let consumer_rng = Rng::new(seed);
            loop {
                match maybe_cancel(&consumer_rng, rx.recv()).await {
                    Some(Some(v)) => got.push(v),
                    Some(None) => break,
                    None => {}
                }
            }
            for p in producers {
                p.await.unwrap();
            }
            let sent: HashSet<u64> = sent.borrow().iter().copied().collect();
            let got_set: HashSet<u64> = got.iter().copied().collect();
            assert_eq!(got.len(), got_set.len(), "a message was received twice");
            assert_eq!(sent, got_set, "sent and received differ");
            // Per-producer FIFO.
            for p in 0..20u64 {
                let mine: Vec<u64> = got.iter().copied().filter(|v| v / 1000 == p).collect();
                assert!(
                    mine.windows(2).all(|w| w[0] < w[1]),
                    "producer {p} reordered"
                );
            }
        });
    }
    done.store(true, Ordering::Relaxed);
}

#[test]
fn locks_semaphore_and_notify_under_cancellation() {
    let done = watchdog(90);
    for seed in 1..=6u64 {
        overlap::block_on(async move {
            let rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
            let sem = Rc::new(Semaphore::new(3));
            let mutex = Rc::new(Mutex::new(0u64));
            let rw = Rc::new(RwLock::new(0u64));
            let notify = Rc::new(Notify::new());
            let in_mutex = Rc::new(Cell::new(0));
            let writers = Rc::new(Cell::new(0));
            let readers = Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for t in 0..30u64 {
                let (sem, mutex, rw, notify) =
                    (sem.clone(), mutex.clone(), rw.clone(), notify.clone());
                let (in_mutex, writers, readers) =
                    (in_mutex.clone(), writers.clone(), readers.clone());
                let rng = Rng::new(rng.below(u64::MAX).wrapping_add(t));
                tasks.push(overlap::spawn(async move {
                    for _ in 0..150 {
                        match rng.below(6) {
                            0 => {
                                if let Some(p) =
                                    maybe_cancel(&rng, sem.acquire_many(1 + rng.below(3) as u32))
                                        .await
                                {
                                    let p = p.unwrap();
                                    overlap::yield_now().await;
                                    drop(p);
                                }
                            }
                            1 => {
                                if let Some(mut g) = maybe_cancel(&rng, mutex.lock()).await {
                                    in_mutex.set(in_mutex.get() + 1);
                                    assert_eq!(in_mutex.get(), 1);
                                    *g += 1;
                                    overlap::yield_now().await;
                                    in_mutex.set(in_mutex.get() - 1);
                                }
                            }
                            2 => {
                                if let Some(mut g) = maybe_cancel(&rng, rw.write()).await {
                                    writers.set(writers.get() + 1);
                                    assert_eq!((writers.get(), readers.get()), (1, 0));
                                    *g += 1;
                                    overlap::yield_now().await;
                                    writers.set(writers.get() - 1);
                                }
                            }
                            3 => {
                                if let Some(g) = maybe_cancel(&rng, rw.read()).await {
                                    readers.set(readers.get() + 1);
                                    assert_eq!(writers.get(), 0);
                                    let _ = *g;
                                    overlap::yield_now().await;
                                    readers.set(readers.get() - 1);
                                }
                            }
                            4 => {
                                let _ = maybe_cancel(&rng, notify.notified()).await;
                            }
                            _ => {
                                if rng.below(2) == 0 {
                                    notify.notify_one();
                                } else {
                                    notify.notify_waiters();
                                }
                            }
                        }
                    }
                }));
            }
            // Keep notifying so that notified() waits end, while tasks run.
            let n2 = notify.clone();
            let pump = overlap::spawn(async move {
                loop {
                    overlap::time::sleep(Duration::from_micros(300)).await;
                    n2.notify_waiters();
                }
            });
            for t in tasks {
                t.await.unwrap();
            }
            pump.abort();
            assert_eq!(sem.available_permits(), 3, "semaphore permits lost");
            assert!(mutex.try_lock().is_ok(), "mutex left locked");
            assert!(rw.try_write().is_ok(), "rwlock left held");
        });
    }
    done.store(true, Ordering::Relaxed);
}
