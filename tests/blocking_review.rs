//! An adversarial review of the blocking pool while it serves: a saturated pool (one
//! submitter or four on their own threads) never runs more jobs at once than its limit, as
//! a high-water mark and the kernel's thread list both see, and runs every job; a one-thread
//! pool runs the jobs of every flavour (`spawn_blocking`, `Runtime::spawn_blocking`,
//! `Handle::spawn_blocking`) in the order they were queued; a job queued from a job waits
//! for a thread of a full pool; jobs that panic leave their threads serving, their handles
//! the payloads, the next job its own task ID and the hooks paired and outside any runtime;
//! odd thread names (empty, 15 and 16 bytes, 40, a UTF-8 character across byte 15); two
//! runtimes' pools kept apart while one is saturated; idle threads leaving the kernel after
//! a tiny keep-alive; keep-alives of zero and of `Duration::MAX`.
//!
//! No timing assertion: a wait is for a state, under a generous hang guard.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use overlap::{Handle, Runtime};
use support::{comm_of, threads_named, until, within, Gate};

/// Only a hang gets near this.
const HANG: Duration = Duration::from_secs(20);

/// How many jobs run at once, and the most that ever did.
#[derive(Clone, Default)]
struct Load {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// A job's share of the [`Load`], given back when dropped (a panic included).
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Load {
    fn enter(&self) -> Running {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Running(self.now.clone())
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Runs `body` on a thread of its own, failing the test if it has not ended within
/// [`HANG`] (a lost job is a hang, not a failure, otherwise).
fn hang_guarded(what: &str, body: impl FnOnce() + Send + 'static) {
    support::on_thread_within(HANG, what, body);
}

#[test]
fn a_saturated_pool_never_runs_more_jobs_than_its_limit_and_runs_every_one() {
    const LIMIT: usize = 3;
    const NAME: &str = "review-saturate";
    let rt = Runtime::builder()
        .max_blocking_threads(LIMIT)
        .thread_name(NAME)
        .build()
        .unwrap();
    let (gate, load) = (Gate::default(), Load::default());
    let started: Arc<Mutex<Vec<usize>>> = Arc::default();
    rt.block_on(async {
        let jobs: Vec<_> = (0..10 * LIMIT)
            .map(|i| {
                let (gate, load, started) = (gate.clone(), load.clone(), started.clone());
                overlap::spawn_blocking(move || {
                    let _running = load.enter();
                    started.lock().unwrap().push(i);
                    gate.wait();
                    i * 7
                })
            })
            .collect();
        // Threads start as jobs are queued: all this burst will ever have are counted now.
        assert_eq!(overlap::metrics().blocking_threads, LIMIT as u64);
        until(|| started.lock().unwrap().len() == LIMIT, "the first jobs").await;
        let m = overlap::metrics();
        let limit = LIMIT as u64;
        assert_eq!((m.blocking_threads, m.blocking_queued), (limit, 9 * limit));
        // FIFO: the first three queued hold the three threads; nothing else started.
        let mut first = started.lock().unwrap().clone();
        first.sort_unstable();
        assert_eq!(first, [0, 1, 2]);
        assert_eq!(threads_named(NAME), LIMIT, "the kernel sees another thread");
        gate.open();
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(within(HANG, job, "a queued job").await.unwrap(), i * 7);
        }
    });
    assert_eq!(load.peak(), LIMIT, "jobs at once");
    let mut all = started.lock().unwrap().clone();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..10 * LIMIT).collect::<Vec<_>>(),
        "each job ran once"
    );
}

#[test]
fn submitters_on_four_threads_never_push_the_pool_past_its_limit() {
    const LIMIT: usize = 2;
    const NAME: &str = "review-submit";
    hang_guarded("jobs from four threads on a two-thread pool", || {
        let rt = Runtime::builder()
            .max_blocking_threads(LIMIT)
            .thread_name(NAME)
            .build()
            .unwrap();
        let load = Load::default();
        let submitters: Vec<_> = (0..4)
            .map(|t| {
                let (handle, load) = (rt.handle(), load.clone());
                thread::spawn(move || {
                    let jobs: Vec<_> = (0..50)
                        .map(|i| {
                            let load = load.clone();
                            handle.spawn_blocking(move || {
                                let _running = load.enter();
                                thread::yield_now();
                                (t * 1000 + i, threads_named(NAME))
                            })
                        })
                        .collect();
                    let outputs: Vec<_> = jobs.into_iter().map(|j| handle.block_on(j)).collect();
                    outputs
                })
            })
            .collect();
        for (t, submitter) in submitters.into_iter().enumerate() {
            for (i, output) in submitter.join().unwrap().into_iter().enumerate() {
                let (value, named) = output.unwrap();
                assert_eq!(value, t * 1000 + i);
                assert!(named <= LIMIT, "{named} threads named {NAME} ran at once");
            }
        }
        assert!(load.peak() <= LIMIT, "{} jobs ran at once", load.peak());
        assert!(rt.metrics().blocking_threads <= LIMIT as u64);
    });
}

#[test]
fn a_one_thread_pool_runs_jobs_of_every_flavour_in_the_order_they_were_queued() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let handle = rt.handle();
    let gate = Gate::default();
    let (held_tx, held) = mpsc::channel();
    let hold = {
        let gate = gate.clone();
        handle.spawn_blocking(move || {
            held_tx.send(()).unwrap();
            gate.wait();
        })
    };
    held.recv_timeout(HANG).unwrap();
    let order: Arc<Mutex<Vec<usize>>> = Arc::default();
    let record = |i: usize| {
        let order = order.clone();
        move || {
            order.lock().unwrap().push(i);
            i
        }
    };
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for i in 0..60 {
            match i % 3 {
                0 => local.push((i, overlap::spawn_blocking(record(i)))),
                1 => remote.push((i, handle.spawn_blocking(record(i)))),
                _ => local.push((i, rt.spawn_blocking(record(i)))),
            }
        }
    });
    gate.open();
    rt.block_on(async {
        within(HANG, hold, "the holding job").await.unwrap();
        for (i, job) in local {
            assert_eq!(within(HANG, job, "a local job").await.unwrap(), i);
        }
        for (i, job) in remote {
            assert_eq!(within(HANG, job, "a remote job").await.unwrap(), i);
        }
    });
    assert_eq!(*order.lock().unwrap(), (0..60).collect::<Vec<_>>());
}

/// The limit holds for a job queued from inside a job: on a one-thread pool it waits for
/// the job that queued it to return (so a job that waited for it there would wait for
/// ever: neither documented nor tested here).
#[test]
fn a_job_queued_from_a_job_waits_for_a_thread_of_a_full_pool() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let events: Arc<Mutex<Vec<&str>>> = Arc::default();
    let log = events.clone();
    let (inner, done_while_outer_ran) = rt.block_on(async move {
        overlap::spawn_blocking(move || {
            let inner_log = log.clone();
            let inner = Handle::current().spawn_blocking(move || {
                inner_log.lock().unwrap().push("inner runs");
            });
            log.lock().unwrap().push("outer queued inner");
            thread::yield_now();
            let done = inner.is_finished();
            log.lock().unwrap().push("outer returns");
            (inner, done)
        })
        .await
        .unwrap()
    });
    assert!(!done_while_outer_ran);
    rt.block_on(async { within(HANG, inner, "the inner job").await.unwrap() });
    assert_eq!(
        *events.lock().unwrap(),
        ["outer queued inner", "outer returns", "inner runs"]
    );
}

/// Whether a hook ran inside a runtime (it must not: its rustdoc says `Handle::try_current`
/// is `None` there), and how many times each ran.
#[derive(Clone, Default)]
struct Hooks {
    starts: Arc<AtomicUsize>,
    stops: Arc<AtomicUsize>,
    inside: Arc<AtomicUsize>,
}

impl Hooks {
    fn builder(&self, name: &str) -> overlap::runtime::Builder {
        let (on_start, on_stop) = (self.clone(), self.clone());
        let mut builder = Runtime::builder();
        builder
            .thread_name(name)
            .on_thread_start(move || on_start.count(&on_start.starts))
            .on_thread_stop(move || on_stop.count(&on_stop.stops));
        builder
    }

    fn count(&self, which: &AtomicUsize) {
        which.fetch_add(1, Ordering::SeqCst);
        if Handle::try_current().is_some() || overlap::task::try_id().is_some() {
            self.inside.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// `(starts, stops, hooks run inside a runtime)`.
    fn counts(&self) -> (usize, usize, usize) {
        let load = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        (load(&self.starts), load(&self.stops), load(&self.inside))
    }
}

#[test]
fn jobs_that_panic_leave_their_threads_serving_and_the_hooks_paired() {
    const NAME: &str = "review-panics";
    let hooks = Hooks::default();
    let rt = hooks.builder(NAME).max_blocking_threads(2).build().unwrap();
    let threads = rt.block_on(async {
        let handle = Handle::current();
        let mut threads = HashSet::new();
        for round in 0..20_u32 {
            // Two of each at once, so both threads serve.
            let local_panic = overlap::spawn_blocking(move || std::panic::panic_any(round));
            let local =
                overlap::spawn_blocking(|| (overlap::task::try_id(), thread::current().id()));
            let remote_panic = handle.spawn_blocking(move || std::panic::panic_any(round + 100));
            let remote =
                handle.spawn_blocking(|| (overlap::task::try_id(), thread::current().id()));
            let payload = local_panic.await.unwrap_err().into_panic();
            assert_eq!(payload.downcast_ref::<u32>(), Some(&round));
            let payload = remote_panic.await.unwrap_err().into_panic();
            assert_eq!(payload.downcast_ref::<u32>(), Some(&(round + 100)));
            let id = local.id();
            let (seen, thread) = local.await.unwrap();
            assert_eq!(seen, Some(id), "a job after a panic saw another task's ID");
            threads.insert(thread);
            let (seen, thread) = remote.await.unwrap();
            assert!(seen.is_some());
            threads.insert(thread);
        }
        threads
    });
    assert!(threads.len() <= 2, "{} threads served", threads.len());
    rt.shutdown_timeout(HANG);
    let (starts, stops, inside) = hooks.counts();
    assert_eq!(starts, threads.len(), "a panic cost its thread");
    assert_eq!(stops, starts, "start and stop hooks unpaired");
    assert_eq!(inside, 0, "a hook ran with a runtime or task current");
    assert_eq!(threads_named(NAME), 0);
}

/// Linux keeps 15 bytes of a thread's name and cuts wherever they fall; the pool's threads
/// still carry the whole name in Rust, and no name short of a NUL byte fails the build.
#[test]
fn odd_thread_names_are_whole_in_rust_and_cut_to_15_bytes_in_the_kernel() {
    let names = [
        "",
        "a",
        "exactly-15-byte",
        "sixteen-bytes-ab",
        "ééééééé-é", // the 8th 'é' spans bytes 14 and 15: the kernel keeps half of it
        "a-blocking-pool-name-of-forty-bytes-long",
    ];
    for name in names {
        let rt = Runtime::builder().thread_name(name).build().unwrap();
        let (rust, comm) = rt.block_on(async {
            overlap::spawn_blocking(|| {
                let rust = thread::current().name().map(String::from);
                (rust, std::fs::read("/proc/thread-self/comm").unwrap())
            })
            .await
            .unwrap()
        });
        assert_eq!(rust.as_deref(), Some(name));
        assert_eq!(comm, [comm_of(name), b"\n"].concat(), "{name:?}");
    }
}

#[test]
fn two_runtimes_keep_their_pools_apart_while_one_is_saturated() {
    hang_guarded("a runtime's jobs behind another's full pool", || {
        let a = Runtime::builder()
            .max_blocking_threads(1)
            .thread_name("review-pool-a")
            .build()
            .unwrap();
        let b = Runtime::builder()
            .max_blocking_threads(2)
            .thread_name("review-pool-b")
            .build()
            .unwrap();
        let gate = Gate::default();
        let (held_tx, held) = mpsc::channel();
        let hold = {
            let gate = gate.clone();
            a.handle().spawn_blocking(move || {
                held_tx.send(thread::current().id()).unwrap();
                gate.wait();
                thread::current().name().map(String::from)
            })
        };
        let a_thread = held.recv().unwrap();
        let outputs = b.block_on(async {
            let jobs: Vec<_> = (0..10)
                .map(|i| {
                    overlap::spawn_blocking(move || {
                        // A task spawned on the job's current handle: awaited below on `b`
                        // while `a` is not driven, it completes only if it landed on `b`.
                        let task = Handle::current().spawn(async move { i });
                        let name = thread::current().name().map(String::from);
                        (name, thread::current().id(), task)
                    })
                })
                .collect();
            let mut outputs = Vec::new();
            for (i, job) in jobs.into_iter().enumerate() {
                let (name, thread, task) = job.await.unwrap();
                assert_eq!(task.await.unwrap(), i);
                outputs.push((name, thread));
            }
            outputs
        });
        for (name, thread) in outputs {
            assert_eq!(name.as_deref(), Some("review-pool-b"));
            assert_ne!(thread, a_thread);
        }
        assert_eq!(threads_named("review-pool-a"), 1);
        let m = a.metrics();
        assert_eq!((m.blocking_threads, m.blocking_queued), (1, 0));
        assert!(b.metrics().blocking_threads <= 2);
        gate.open();
        assert_eq!(a.block_on(hold).unwrap().as_deref(), Some("review-pool-a"));
    });
}

#[test]
fn idle_threads_leave_the_kernel_after_a_tiny_keep_alive_and_new_work_starts_one() {
    const NAME: &str = "review-idle";
    let hooks = Hooks::default();
    let rt = hooks
        .builder(NAME)
        .blocking_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    rt.block_on(async {
        // Three jobs that meet: three threads, all named by then.
        let meet = Arc::new(Barrier::new(3));
        let jobs: Vec<_> = (0..3)
            .map(|_| {
                let meet = meet.clone();
                overlap::spawn_blocking(move || {
                    meet.wait();
                    threads_named(NAME)
                })
            })
            .collect();
        for job in jobs {
            assert_eq!(within(HANG, job, "three jobs meeting").await.unwrap(), 3);
        }
        until(
            || threads_named(NAME) == 0 && hooks.counts().1 == 3,
            "idle threads to exit",
        )
        .await;
        assert_eq!(overlap::metrics().blocking_threads, 0);
        let named = overlap::spawn_blocking(|| threads_named(NAME)).await;
        assert_eq!(named.unwrap(), 1, "new work starts one thread");
    });
    rt.shutdown_timeout(HANG);
    assert_eq!(hooks.counts(), (4, 4, 0));
}

/// A thread with no keep-alive leaves as soon as the queue is empty, racing each new job;
/// one with `Duration::MAX` parks for good. Both serve every job, from one task in turn and
/// from three threads at once, and both stop at the shutdown.
#[test]
fn keep_alives_of_zero_and_of_duration_max_serve_every_job() {
    for (keep_alive, name) in [
        (Duration::ZERO, "review-ka-zero"),
        (Duration::MAX, "review-ka-max"),
    ] {
        hang_guarded(name, move || {
            let hooks = Hooks::default();
            let rt = hooks
                .builder(name)
                .max_blocking_threads(3)
                .blocking_keep_alive(keep_alive)
                .build()
                .unwrap();
            rt.block_on(async {
                for i in 0..300 {
                    assert_eq!(overlap::spawn_blocking(move || i).await.unwrap(), i);
                }
            });
            let submitters: Vec<_> = (0..3)
                .map(|t| {
                    let handle = rt.handle();
                    thread::spawn(move || {
                        (0..100).all(|i| {
                            let job = handle.spawn_blocking(move || t * 1000 + i);
                            handle.block_on(job).unwrap() == t * 1000 + i
                        })
                    })
                })
                .collect();
            for submitter in submitters {
                assert!(submitter.join().unwrap());
            }
            rt.shutdown_timeout(HANG);
            let (starts, stops, inside) = hooks.counts();
            assert_eq!((stops, inside), (starts, 0));
            assert_eq!(threads_named(name), 0);
        });
    }
}
