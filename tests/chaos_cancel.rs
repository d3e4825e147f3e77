//! Seeded chaos for cancellation: per seed, one runtime on which many tasks run random
//! operations (TCP, Unix and pipe streams, some through a `splice` relay or split into
//! owned halves; UDP; accept; files; `mpsc`, `cross_thread`, `oneshot`, `watch` and
//! `broadcast` channels; `Mutex`, `RwLock`, `Semaphore`, `Notify`; `spawn_blocking`; child
//! processes; signals raised at this process; a `PositionalFile` shared by several tasks; `Unblock`, `io::copy` and
//! `copy_bidirectional` between pipes and sockets), each maybe cut short by a `timeout`, a
//! lost `select` race or a drop after a few polls, while a monkey aborts random tasks, from
//! the runtime's thread or another. Half the seeds run on the paused clock, where which
//! timeouts fire depends less on the machine's speed.
//!
//! Whatever was cut, every operation completes with the right data or a clear error (never
//! `WouldBlock` or `Interrupted`), accepted bytes and values arrive in order and are never
//! duplicated, nothing waits for ever, every child is reaped, the idle runtime sleeps, and
//! once the runtime is dropped every fd it used is closed (at once, or, for an `Unblock`
//! job that outlives it, when that job ends) and every byte a `File` accepted is on disk.
//!
//! `OVERLAP_CHAOS_SEEDS` sets how many seeds run (50 by default), `OVERLAP_CHAOS_FIRST_SEED`
//! the first one: a failure names its seed, and `OVERLAP_CHAOS_FIRST_SEED=<seed>
//! OVERLAP_CHAOS_SEEDS=1` replays it.

mod support;

#[path = "chaos_cancel/copies.rs"]
mod copies;
#[path = "chaos_cancel/cut.rs"]
mod cut;
#[path = "chaos_cancel/file.rs"]
mod file;
#[path = "chaos_cancel/net.rs"]
mod net;
#[path = "chaos_cancel/positional.rs"]
mod positional;
#[path = "chaos_cancel/process.rs"]
mod process;
#[path = "chaos_cancel/signals.rs"]
mod signals;
#[path = "chaos_cancel/streams.rs"]
mod streams;
#[path = "chaos_cancel/sync.rs"]
mod sync;
#[path = "chaos_cancel/sync_more.rs"]
mod sync_more;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{open_fds_polled, run_in_child, wait_until, Rng, TempDir};

/// Seeds per run unless `OVERLAP_CHAOS_SEEDS` says otherwise.
const SEEDS: u64 = 50;
/// Seeds per run without `pidfd_open`, unless `OVERLAP_CHAOS_SEEDS` says otherwise.
const SEEDS_WITHOUT_PIDFD: u64 = 20;
/// How long one seed may run before the test is taken to hang.
const HANG: Duration = Duration::from_secs(30);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().expect(name))
}

#[test]
fn chaos_cancel() {
    run_in_child("chaos_cancel", || run_seeds(SEEDS));
}

/// The same seeds where `pidfd_open` is missing (`ENOSYS`, as on kernels before 5.3): each
/// child's exit is then watched through `SIGCHLD` (and ticks, on a running clock), and a
/// dropped child left to the orphan reaper is looked at every 100 ms. Fewer seeds by
/// default; `OVERLAP_CHAOS_SEEDS` sets both.
#[test]
fn chaos_cancel_without_pidfd() {
    run_in_child("chaos_cancel_without_pidfd", || {
        support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
        assert!(!process::pidfd_works());
        run_seeds(SEEDS_WITHOUT_PIDFD)
    });
}

/// Runs the seeds `OVERLAP_CHAOS_FIRST_SEED` (1 by default) on, `OVERLAP_CHAOS_SEEDS` of
/// them (`default` otherwise), each checked for fds left open.
fn run_seeds(default: u64) {
    let seeds = env_u64("OVERLAP_CHAOS_SEEDS").unwrap_or(default);
    let first = env_u64("OVERLAP_CHAOS_FIRST_SEED").unwrap_or(1);
    let running = hang_guard();
    // Two pipes live as long as the process once made: made before the fds are counted.
    // The signal self-pipe, by the first listener; the orphan reaper's wake pipe, by the
    // first child left to it (here a `status()` future dropped unpolled outside a runtime,
    // its child still running: long enough that it is, on a loaded machine too, where a
    // 10 ms child once exited before the drop, which then reaped it itself, and the
    // reaper's pipe came with a seed's first dropped child, counted as leaked).
    overlap::block_on(async {
        drop(overlap::signal::signal(overlap::signal::SignalKind::window_change()).unwrap());
    });
    drop(overlap::process::Command::new("sleep").arg("0.5").status());
    // Reaped, and its pidfd closed.
    assert!(wait_until(Duration::from_secs(30), process::all_gone));
    let fds = open_fds_polled();
    for seed in first..first + seeds {
        running.store(seed, Ordering::SeqCst);
        let lingering = run_seed(seed);
        // An `Unblock` dropped while its job ran closes its fd when the job ends, on a pool
        // thread the runtime does not wait for.
        let limit = Duration::from_secs(if lingering { 20 } else { 0 });
        wait_until(limit, || open_fds_polled() <= fds);
        let now = open_fds_polled();
        assert!(
            now <= fds,
            "seed {seed}: {now} fds open after the runtime was dropped, {fds} before: {}",
            fd_list()
        );
    }
    running.store(0, Ordering::SeqCst);
}

/// What each open fd is, for a failure message.
fn fd_list() -> String {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return "(no /proc/self/fd)".into();
    };
    let mut fds: Vec<String> = dir
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            format!(
                "{} -> {}",
                e.file_name().to_string_lossy(),
                target.display()
            )
        })
        .collect();
    fds.sort();
    let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .map(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}; threads: {}",
        fds.join(", "),
        threads.join(" ").replace('\n', "")
    )
}

/// A thread that aborts the process, naming the seed, if one seed runs longer than
/// [`HANG`]: a lost wakeup stops the runtime's thread, so the guard cannot live on it.
fn hang_guard() -> Arc<AtomicU64> {
    let running = Arc::new(AtomicU64::new(0));
    let seen = running.clone();
    std::thread::spawn(move || {
        let (mut seed, mut since) = (0, Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = seen.load(Ordering::SeqCst);
            if now != seed {
                (seed, since) = (now, Instant::now());
            } else if seed != 0 && since.elapsed() > HANG {
                eprintln!("seed {seed}: hung for {HANG:?}");
                std::process::abort();
            }
        }
    });
    running
}

/// One seed: builds the actors, lets them run, checks what they leave. Whether an
/// `Unblock` job may outlive the runtime.
fn run_seed(seed: u64) -> bool {
    cut::set_seed(seed);
    process::forget_watched();
    let dir = TempDir::new("chaos");
    let rt = overlap::Runtime::new().unwrap();
    let (files, positional, lingering, outliving) = rt.block_on(async {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        if rng.below(2) == 0 {
            overlap::time::pause();
        }
        let mut tasks = sync::Tasks::default();
        let mut tallies = Vec::new();
        for i in 0..rng.below(5) {
            for (j, dir) in streams::pair(&mut rng).await.into_iter().enumerate() {
                let data = streams::data_for(&mut rng, seed as u32 ^ (i * 2 + j) as u32);
                let what = format!("stream {i} ({}, {} bytes)", dir.what, data.len());
                let tally = Rc::new(streams::Tally::new(what.clone()));
                let leave = dir.reader_may_leave;
                let stop = (leave && rng.below(8) == 0).then(|| rng.below(data.len() + 1));
                let (wr, rr) = (Rng(rng.next() | 1), Rng(rng.next() | 1));
                let writer = streams::writer(dir.w, data.clone(), tally.clone(), wr);
                tasks.spawn(format!("{what} writer"), true, writer);
                if let Some(relay) = dir.relay {
                    let relay = streams::relay(relay, tally.clone(), Rng(rng.next() | 1));
                    tasks.spawn(format!("{what} relay"), false, relay);
                }
                let reader = streams::reader(dir.r, data, tally.clone(), rr, stop);
                tasks.spawn(format!("{what} reader"), leave, reader);
                tallies.push(tally);
            }
        }
        let mut files = Vec::new();
        for i in 0..rng.below(3) {
            let (path, model) = (dir.join(&format!("f{i}")), Rc::new(RefCell::default()));
            let frng = Rng(rng.next() | 1);
            let ops = file::file_ops(path.clone(), model.clone(), frng);
            tasks.spawn(format!("file {i}"), true, ops);
            files.push((path, model));
        }
        if rng.below(2) == 0 {
            let mut urng = Rng(rng.next() | 1);
            tasks.spawn(
                "udp".into(),
                false,
                async move { net::udp(&mut urng).await },
            );
        }
        if rng.below(2) == 0 {
            let mut arng = Rng(rng.next() | 1);
            tasks.spawn("accept".into(), false, async move {
                net::accept(&mut arng).await
            });
        }
        if rng.below(2) == 0 {
            sync::channel(&mut rng, &mut tasks);
        }
        let locks_free = (rng.below(2) == 0).then(|| sync::locks(&mut rng, &mut tasks));
        if rng.below(2) == 0 {
            sync::handshake(&mut rng, &mut tasks);
        }
        sync::blocking(&mut rng, &mut tasks);
        if !overlap::time::is_paused() && rng.below(2) == 0 {
            sync::cross_thread(&mut rng, &mut tasks);
        }
        let rwlock_free = (rng.below(3) == 0).then(|| sync_more::rwlock(&mut rng, &mut tasks));
        if rng.below(3) == 0 {
            sync_more::watch(&mut rng, &mut tasks);
        }
        if rng.below(3) == 0 {
            sync_more::broadcast(&mut rng, &mut tasks);
        }
        sync_more::oneshot(&mut rng, &mut tasks);
        if rng.below(2) == 0 {
            sync_more::timers_and_joins(&mut rng, &mut tasks);
        }
        // Some actors use `Unblock`, whose jobs the runtime's drop does not wait for.
        let mut lingering = false;
        let relayed = if rng.below(2) == 0 {
            1 + rng.below(2)
        } else {
            0
        };
        for i in 0..relayed {
            let id = seed as u32 ^ (0x100 + i as u32);
            tallies.extend(copies::relayed(&mut rng, &mut tasks, id).await);
            lingering = true;
        }
        if rng.below(4) == 0 {
            let (path, urng) = (dir.join("unblock"), Rng(rng.next() | 1));
            let ops = copies::unblock_file(path, urng);
            tasks.spawn("unblock file".into(), true, ops);
            lingering = true;
        }
        let processes = if rng.below(2) == 0 {
            1 + rng.below(3)
        } else {
            0
        };
        for i in 0..processes {
            let id = seed as u32 ^ (0x200 + i as u32);
            tallies.extend(process::actor(&mut rng, &mut tasks, dir.path(), id));
        }
        let signals = rng.below(2) == 0;
        if signals {
            signals::actor(&mut rng, &mut tasks);
        }
        let positional = (rng.below(3) == 0).then(|| {
            let path = dir.join("positional");
            (path.clone(), positional::actor(&mut rng, &mut tasks, path))
        });
        let aborts = rng.below(4);
        let monkey = overlap::spawn(sync::monkey(
            std::mem::take(&mut tasks.abortable),
            aborts,
            Rng(rng.next() | 1),
        ));

        for (what, task) in tasks.all {
            match task.await {
                Ok(()) => {}
                Err(e) if e.is_cancelled() => {}
                Err(e) => panic!(
                    "seed {seed}: {what}: {}",
                    support::panic_message(e.into_panic())
                ),
            }
        }
        monkey.await.unwrap();
        process::all_reaped().await;
        for tally in &tallies {
            tally.check();
        }
        if let Some(check) = locks_free {
            check();
        }
        if let Some(check) = rwlock_free {
            check();
        }
        // The signal reader, started by the first listener (or a child watched through
        // `SIGCHLD` where there is no pidfd), lives as long as the runtime.
        let pidfd = process::pidfd_works();
        let reader = signals || (process::any_watched() && !pidfd);
        let maybe_reader = reader || (process::maybe_watched() && !pidfd);
        idle_check(seed, reader as u64..=maybe_reader as u64).await;
        let outliving = if rng.below(4) == 0 {
            process::outliving(&mut rng)
        } else {
            Vec::new()
        };
        (files, positional, lingering, outliving)
    });
    drop(rt);
    drop(outliving);
    for (path, model) in files {
        file::check(&path, &model.borrow());
    }
    if let Some((path, regions)) = positional {
        positional::check(&path, &regions);
    }
    // Children dropped as the runtime ended, or after, are the orphan reaper's.
    let reaped = wait_until(Duration::from_secs(30), process::all_gone);
    assert!(reaped, "seed {seed}: orphans left: {}", support::children());
    lingering
}

/// With every task over (but the signal reader task and its fd, if it started: as many as
/// `reader` allows, 0 or 1), nothing is left registered and the runtime sleeps: a couple of
/// loop turns in 100 ms at most.
async fn idle_check(seed: u64, reader: std::ops::RangeInclusive<u64>) {
    if overlap::time::is_paused() {
        overlap::time::resume();
    }
    // Work that ends on another thread (a pool job's result, an abort by the monkey's
    // thread) reaches the loop when that thread gets the CPU: on a loaded machine that can
    // take longer than a few turns, so look again for a while before calling it left behind.
    let idle = |m: &overlap::RuntimeMetrics| {
        reader.contains(&m.tasks_alive) && m.registered_fds == m.tasks_alive && m.timers_active == 0
    };
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    support::settle().await;
    while !idle(&overlap::metrics()) && std::time::Instant::now() < give_up {
        overlap::time::sleep(Duration::from_millis(5)).await;
        support::settle().await;
    }
    let m = overlap::metrics();
    assert!(
        idle(&m),
        "seed {seed}: left behind: {} tasks, {} fds, {} timers",
        m.tasks_alive,
        m.registered_fds,
        m.timers_active
    );
    let waits = |m: overlap::RuntimeMetrics| m.epoll_waits + m.futex_sleeps;
    let before = waits(m);
    overlap::time::sleep(Duration::from_millis(100)).await;
    let turns = waits(overlap::metrics()) - before;
    assert!(
        turns <= 3,
        "seed {seed}: {turns} loop turns in an idle 100 ms"
    );
}
