//! A gate that blocking jobs (or other threads) wait at until the test opens it.

use std::sync::{Arc, Condvar, Mutex};

/// A gate jobs wait at until the test opens it; clones share it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    /// Blocks the calling thread until the gate is open (at once if it is).
    pub fn wait(&self) {
        let (open, changed) = &*self.0;
        let mut is_open = open.lock().unwrap();
        while !*is_open {
            is_open = changed.wait(is_open).unwrap();
        }
    }

    /// Opens the gate for good, letting every waiter through.
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

/// `n` blocking jobs, each held at `gate` on a pool thread of its own: returns once all `n`
/// wait there (so the pool runs `n` threads at once), with their handles, to await after
/// [`Gate::open`]; each job then gives what `then` does.
pub async fn jobs_held_at<T: Send + 'static>(
    gate: &Gate,
    n: usize,
    then: fn() -> T,
) -> Vec<overlap::JoinHandle<T>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let arrived = Arc::new(AtomicUsize::new(0));
    let jobs = (0..n)
        .map(|_| {
            let (gate, arrived) = (gate.clone(), arrived.clone());
            overlap::spawn_blocking(move || {
                arrived.fetch_add(1, Ordering::SeqCst);
                gate.wait();
                then()
            })
        })
        .collect();
    let what = format!("{n} jobs held at the gate");
    super::until(|| arrived.load(Ordering::SeqCst) == n, &what).await;
    jobs
}
