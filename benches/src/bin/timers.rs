//! Timer benchmarks: overlap against tokio (current-thread), in one run, with ratios.
//!
//! 1. One million sleeps with random deadlines in the next second, each registered by a first
//!    poll; every other one is dropped (cancelled); the rest are awaited in creation order.
//!    Reported: thread CPU time per registration and per cancel (the register and cancel loops
//!    never block, so this is their wall time minus any preemption by other processes), and
//!    process CPU time per fired timer over the whole awaiting phase (the loop sleeps in
//!    between, so CPU is the cost).
//!    Each round runs in a fresh process (see `round_in_child`), builds a runtime and runs the
//!    churn twice in it, timing the second (so both runtimes are measured warm, with their
//!    memory already faulted in); best of a few rounds, alternating runtimes.
//!    Freed heap memory stays mapped for the whole run (`keep_heap_mapped`), so the timed
//!    loops do not include the kernel faulting the harness's boxes back in.
//! 2. `sleep(1ms)` 1,000 times in a row: oversleep median and p99, for overlap, tokio and
//!    `std::thread::sleep` (the kernel's own limit, on a thread with the default timer slack).
//!
//! Run: `cargo run --release -p overlap-benches --bin timers`

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

const TIMERS: usize = 1_000_000;
const ROUNDS: usize = 5;
const SLEEPS: usize = 1_000;

/// Process CPU time (user + system, all threads).
fn cpu_now() -> Duration {
    clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// This thread's CPU time: unlike wall time, it does not count time the thread was preempted,
/// so it stays meaningful on a busy machine.
fn thread_cpu_now() -> Duration {
    clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({id})");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Random offsets in `[0, 1 s)`, reproducible (xorshift64*).
fn offsets() -> Vec<Duration> {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..TIMERS)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            Duration::from_nanos(s.wrapping_mul(0x2545_f491_4f6c_dd1d) % 1_000_000_000)
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
struct Costs {
    register_ns: f64,
    cancel_ns: f64,
    fire_cpu_ns: f64,
}

impl Costs {
    fn best(self, other: Costs) -> Costs {
        Costs {
            register_ns: self.register_ns.min(other.register_ns),
            cancel_ns: self.cancel_ns.min(other.cancel_ns),
            fire_cpu_ns: self.fire_cpu_ns.min(other.fire_cpu_ns),
        }
    }
}

/// The body shared by both runtimes: `make` builds a sleep for a deadline.
async fn churn<S, M>(offsets: &[Duration], make: M) -> Costs
where
    S: Future<Output = ()>,
    M: Fn(Instant) -> S,
{
    let mut sleeps: Vec<Pin<Box<S>>> = Vec::with_capacity(offsets.len());
    let mut kept: Vec<Pin<Box<S>>> = Vec::with_capacity(offsets.len() / 2);
    let base = Instant::now();

    let t = thread_cpu_now();
    poll_fn(|cx| {
        for &off in offsets {
            let mut s = Box::pin(make(base + off));
            let _ = s.as_mut().poll(cx);
            sleeps.push(s);
        }
        Poll::Ready(())
    })
    .await;
    let register = thread_cpu_now() - t;

    let t = thread_cpu_now();
    for (i, s) in sleeps.drain(..).enumerate() {
        if i % 2 == 0 {
            kept.push(s);
        } else {
            drop(s);
        }
    }
    let cancel = thread_cpu_now() - t;

    let c = cpu_now();
    let n = kept.len();
    for s in kept.drain(..) {
        s.await;
    }
    let fire = cpu_now() - c;
    Costs {
        register_ns: register.as_nanos() as f64 / offsets.len() as f64,
        cancel_ns: cancel.as_nanos() as f64 / (offsets.len() - n) as f64,
        fire_cpu_ns: fire.as_nanos() as f64 / n as f64,
    }
}

fn overlap_churn(offsets: &[Duration]) -> Costs {
    overlap::block_on(async {
        churn(offsets, |d| overlap::time::sleep_until(d.into())).await;
        let m0 = overlap::metrics();
        let c = churn(offsets, |d| overlap::time::sleep_until(d.into())).await;
        if std::env::var_os("TIMERS_DEBUG").is_some() {
            let m = overlap::metrics();
            eprintln!(
                "epoll_waits {} fired {}",
                m.epoll_waits - m0.epoll_waits,
                m.timers_fired - m0.timers_fired
            );
        }
        c
    })
}

/// Register and cancel costs with the sleeps stored inline instead of boxed: overlap's `Sleep`
/// is `Unpin` (40 bytes), so callers need not box or pin it. Informational; tokio's `Sleep` is
/// `!Unpin` and has no equivalent.
fn overlap_unboxed(offsets: &[Duration]) -> (f64, f64) {
    overlap::block_on(async {
        let mut sleeps = Vec::with_capacity(offsets.len());
        let mut best = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            let base = Instant::now() + Duration::from_secs(1);
            let t = thread_cpu_now();
            poll_fn(|cx| {
                for &off in offsets {
                    let mut s = overlap::time::sleep_until((base + off).into());
                    let _ = Pin::new(&mut s).poll(cx);
                    sleeps.push(s);
                }
                Poll::Ready(())
            })
            .await;
            let register = thread_cpu_now() - t;
            let t = thread_cpu_now();
            sleeps.clear();
            let cancel = thread_cpu_now() - t;
            let n = offsets.len() as f64;
            best.0 = best.0.min(register.as_nanos() as f64 / n);
            best.1 = best.1.min(cancel.as_nanos() as f64 / n);
        }
        best
    })
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn tokio_churn(offsets: &[Duration]) -> Costs {
    let make = |d| tokio::time::sleep_until(tokio::time::Instant::from_std(d));
    tokio_rt().block_on(async {
        churn(offsets, make).await;
        churn(offsets, make).await
    })
}

/// Runs one churn round of `runtime` ("overlap" or "tokio") in a child process of this
/// benchmark and returns its costs.
///
/// On these VMs a whole process is sometimes a third slower than the next one started a
/// moment later (all of its rounds alike, in every phase: it looks like where its memory
/// landed), so rounds repeated inside one process cannot vote such a process down. A fresh
/// process per round can, for both runtimes alike.
fn round_in_child(runtime: &str) -> Costs {
    let exe = std::env::current_exe().expect("own executable");
    let out = std::process::Command::new(exe)
        .env("TIMERS_ONLY", runtime)
        .env("TIMERS_ROUNDS", "1")
        .output()
        .expect("run a benchmark round");
    assert!(out.status.success(), "{runtime} round failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("costs "));
    let v: Vec<f64> = line
        .unwrap_or_else(|| panic!("no costs from the {runtime} round: {text:?}"))
        .split(' ')
        .map(|x| x.parse().expect("a number"))
        .collect();
    Costs {
        register_ns: v[0],
        cancel_ns: v[1],
        fire_cpu_ns: v[2],
    }
}

/// Oversleep of `sleep(1ms)` in microseconds: (median, p99).
fn stats(mut over: Vec<Duration>) -> (f64, f64) {
    over.sort();
    let us = |d: Duration| d.as_nanos() as f64 / 1e3;
    (us(over[over.len() / 2]), us(over[over.len() * 99 / 100]))
}

async fn oversleep<S: Future<Output = ()>>(sleep: impl Fn(Duration) -> S) -> (f64, f64) {
    let period = Duration::from_millis(1);
    let mut over = Vec::with_capacity(SLEEPS);
    for _ in 0..SLEEPS {
        let t = Instant::now();
        sleep(period).await;
        over.push(t.elapsed() - period);
    }
    stats(over)
}

/// Keeps freed heap memory mapped for the whole run. By default glibc hands it back to the
/// kernel after every round and the next round faults it in again, inside the timed loops:
/// those are the harness's own boxes and vectors, the same for both runtimes, yet on these
/// VMs the faults added about 25 ns to every registration and made the figure jump from run
/// to run.
fn keep_heap_mapped() {
    // SAFETY: mallopt only tunes glibc's allocator; it is called before any other thread
    // exists and before anything is allocated that depends on the old settings.
    let ok = unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
    };
    assert!(ok, "mallopt failed");
}

fn main() {
    keep_heap_mapped();
    let offsets = offsets();
    // One side only: TIMERS_ONLY=overlap or TIMERS_ONLY=tokio runs just its churn,
    // TIMERS_ROUNDS times (default ROUNDS), printing one line of costs per round. The full
    // benchmark runs every round in such a child process (see `round_in_child`).
    if let Some(only) = std::env::var_os("TIMERS_ONLY") {
        let rounds = std::env::var("TIMERS_ROUNDS").map_or(ROUNDS, |r| r.parse().unwrap());
        for _ in 0..rounds {
            let c = if only == "tokio" {
                tokio_churn(&offsets)
            } else {
                overlap_churn(&offsets)
            };
            println!("costs {} {} {}", c.register_ns, c.cancel_ns, c.fire_cpu_ns);
        }
        return;
    }
    println!(
        "overlap timer benchmarks ({TIMERS} timers, best of {ROUNDS} rounds, each in a fresh \
         process)\n"
    );

    let mut ov: Option<Costs> = None;
    let mut tk: Option<Costs> = None;
    for _ in 0..ROUNDS {
        let t = round_in_child("tokio");
        tk = Some(tk.map_or(t, |b| b.best(t)));
        let o = round_in_child("overlap");
        ov = Some(ov.map_or(o, |b| b.best(o)));
    }
    let (ov, tk) = (ov.unwrap(), tk.unwrap());
    let unboxed = overlap_unboxed(&offsets);

    let std_sleep = std::thread::spawn(|| {
        let period = Duration::from_millis(1);
        let over = (0..SLEEPS)
            .map(|_| {
                let t = Instant::now();
                std::thread::sleep(period);
                t.elapsed() - period
            })
            .collect();
        stats(over)
    })
    .join()
    .unwrap();
    let tk_sleep = tokio_rt().block_on(oversleep(tokio::time::sleep));
    let ov_sleep = overlap::block_on(oversleep(overlap::time::sleep));

    println!(
        "{:<34} {:>10} {:>10} {:>14} {:>10}",
        "metric", "overlap", "tokio", "tokio/overlap", "std"
    );
    let row = |name: &str, o: f64, t: f64, s: Option<f64>| {
        let s = s.map_or("-".to_string(), |s| format!("{s:.1}"));
        println!("{name:<34} {o:>10.1} {t:>10.1} {:>13.2}x {s:>10}", t / o);
    };
    row(
        "register (ns CPU/timer)",
        ov.register_ns,
        tk.register_ns,
        None,
    );
    row("cancel (ns CPU/timer)", ov.cancel_ns, tk.cancel_ns, None);
    row("fire (ns CPU/timer)", ov.fire_cpu_ns, tk.fire_cpu_ns, None);
    row(
        "sleep(1ms) oversleep median (us)",
        ov_sleep.0,
        tk_sleep.0,
        Some(std_sleep.0),
    );
    row(
        "sleep(1ms) oversleep p99 (us)",
        ov_sleep.1,
        tk_sleep.1,
        Some(std_sleep.1),
    );
    println!(
        "{:<34} {:>10.1} {:>10} (Sleep is Unpin: no Box needed)",
        "register, unboxed (ns CPU/timer)", unboxed.0, "-"
    );
    println!(
        "{:<34} {:>10.1} {:>10}",
        "cancel, unboxed (ns CPU/timer)", unboxed.1, "-"
    );
    println!("\ntokio/overlap > 1 means overlap is faster (or more precise).");
}
