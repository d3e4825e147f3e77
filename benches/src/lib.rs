//! Shared helpers for overlap's benchmarks: timing, a counting allocator, and table output.
//!
//! Every benchmark binary measures overlap and its peers in the same run and prints ratios;
//! absolute times on shared machines are noise, ratios are the signal.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// A global allocator that counts live heap bytes, to measure memory per pending task.
///
/// Counting is off until [`start_counting`]: an atomic add on every allocation would tax
/// every timing row (a channel message allocates, a spawn allocates) by the same few
/// nanoseconds for every contender, pulling their ratios towards 1. Off, the cost is one
/// relaxed load of a flag.
#[derive(Debug)]
pub struct CountingAlloc;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Turns [`CountingAlloc`]'s counting on, for the rest of the process. Only differences of
/// [`live_bytes`] taken after this are meaningful.
pub fn start_counting() {
    COUNTING.store(true, Ordering::SeqCst);
}

fn count(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` unchanged and only adds bookkeeping.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Heap bytes live now (only meaningful with [`CountingAlloc`] as the global allocator).
pub fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Runs `f` `runs` times and returns the fastest wall time: the least disturbed run.
pub fn best_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap_or_default()
}

/// Times one call of `f`.
pub fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// Nanoseconds per operation.
pub fn ns_per(d: Duration, ops: u64) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

/// CPU time (user + system) this process has used so far.
pub fn process_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time (user + system) the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Pins the calling thread (and threads it starts later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    set_affinity(cpu..cpu + 1)
}

/// Lets the calling thread run on every CPU again.
pub fn unpin() -> std::io::Result<()> {
    // Not `available_parallelism`: that reads this thread's mask, which pinning narrowed.
    // SAFETY: sysconf takes no pointers.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    set_affinity(0..n)
}

/// Lets the calling thread run on exactly `cpus`.
fn set_affinity(cpus: std::ops::Range<usize>) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in cpus.start..cpus.end.min(libc::CPU_SETSIZE as usize) {
        // SAFETY: `cpu` is below CPU_SETSIZE; `set` is valid.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One row of a comparison table: a name, a unit, and one figure per contender.
#[derive(Debug)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// The unit of the figures ("ns/task", "B/task", ...). Lower is better.
    pub unit: &'static str,
    /// Figures in column order.
    pub values: Vec<f64>,
}

/// Prints rows with the figure of each contender and the ratio `other / first` for each
/// other column (above 1: the first column, overlap, is that many times better).
pub fn print_table(columns: &[&str], rows: &[Row]) {
    print!("{:<34} {:>9}", "benchmark", "unit");
    for c in columns {
        print!(" {c:>12}");
    }
    for c in &columns[1..] {
        print!(" {:>16}", format!("{c}/{}", columns[0]));
    }
    println!();
    for r in rows {
        print!("{:<34} {:>9}", r.name, r.unit);
        for v in &r.values {
            print!(" {v:>12.1}");
        }
        for v in &r.values[1..] {
            print!(" {:>15.2}x", v / r.values[0]);
        }
        println!();
    }
}

/// Runs every contender `runs` times, interleaved, and keeps each one's least CPU time and
/// least wall time (`run` returns both for one go). Then makes the two rows "`cpu_name` per
/// GiB" and "wall time per GiB" for `bytes` moved per go.
pub fn cpu_and_wall_per_gib<C>(
    contenders: &[C],
    runs: usize,
    bytes: usize,
    cpu_name: &str,
    mut run: impl FnMut(&C) -> (Duration, Duration),
) -> Vec<Row> {
    let mut best = vec![(Duration::MAX, Duration::MAX); contenders.len()];
    for _ in 0..runs {
        for (b, c) in best.iter_mut().zip(contenders) {
            let (cpu, wall) = run(c);
            b.0 = b.0.min(cpu);
            b.1 = b.1.min(wall);
        }
    }
    let per_gib = |d: Duration| d.as_secs_f64() * 1e3 * (1u64 << 30) as f64 / bytes as f64;
    vec![
        Row {
            name: format!("{cpu_name} per GiB"),
            unit: "ms",
            values: best.iter().map(|b| per_gib(b.0)).collect(),
        },
        Row {
            name: "wall time per GiB".into(),
            unit: "ms",
            values: best.iter().map(|b| per_gib(b.1)).collect(),
        },
    ]
}

pub mod executors;
pub mod ping_pong;
pub mod select_loop;
pub mod server;
