//! Helpers of the randomized model tests: a small seeded generator, a watchdog that ends a
//! hung test, and a waker that counts its wakes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Wake;
use std::time::{Duration, Instant};

/// xorshift64: reproducible numbers from a seed (not zero), so a failing seed can be replayed.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Aborts the process if the returned flag is not set within `secs`: a hung model test then
/// fails instead of stalling the suite.
pub fn watchdog(secs: u64) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            if d.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("watchdog: test hung for {secs} s");
        std::process::abort();
    });
    done
}

/// A waker that counts how often it was woken.
#[derive(Default)]
pub struct WakeCount(pub AtomicUsize);

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `run(seed)` for each seed, naming the seed of any panic (then passed on).
pub fn for_seeds(seeds: std::ops::RangeInclusive<u64>, run: impl Fn(u64)) {
    use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
    for seed in seeds {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(seed))) {
            eprintln!("failing seed: {seed}");
            resume_unwind(panic);
        }
    }
}

/// Prints the seed of a run that panics while this is alive, to replay it: for a seeded
/// run inside a runtime or thread, where [`for_seeds`] cannot catch it.
pub struct SeedOnPanic(pub u64);

impl Drop for SeedOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failing seed {:#x}", self.0);
        }
    }
}
