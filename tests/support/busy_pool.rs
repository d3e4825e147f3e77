//! A runtime whose blocking pool is held busy, so that jobs submitted meanwhile queue.

use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use overlap::Runtime;

/// A runtime whose only pool thread is held by a job waiting at the returned barrier, so
/// that every job submitted meanwhile stays queued (and is dropped unrun by the runtime's
/// drop, unless the barrier is passed first).
pub fn runtime_with_a_busy_pool() -> (Runtime, Arc<Barrier>) {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let gate = Arc::new(Barrier::new(2));
    let (started_tx, started) = mpsc::channel();
    let g = gate.clone();
    rt.block_on(async move {
        drop(overlap::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            g.wait();
        }));
    });
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    (rt, gate)
}

/// A runtime whose blocking pool has one thread, so jobs run one by one, in order, and a
/// job holding that thread (see [`hold_pool`]) keeps every later one queued.
pub fn one_thread_pool() -> Runtime {
    Runtime::builder().max_blocking_threads(1).build().unwrap()
}

/// Queues a job (on the current runtime's pool) that holds the pool's thread until the
/// returned sender is dropped: with [`one_thread_pool`], jobs submitted after it wait in
/// the queue meanwhile.
pub fn hold_pool() -> mpsc::Sender<()> {
    let (release, held) = mpsc::channel::<()>();
    drop(overlap::spawn_blocking(move || {
        let _ = held.recv();
    }));
    release
}
