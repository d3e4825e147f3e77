//! Behaviours of tokio's blocking-pool tests, ported to overlap's `spawn_blocking`. Each
//! group names the tokio file (tokio/tests/…) it comes from:
//!
//! - `task_blocking.rs`: a job spawning another job and waiting for it on its own thread; a
//!   job that panics (the thread is reused, any payload comes back); a paused clock that
//!   does not jump ahead while a job runs, whether its handle is awaited, dropped or the job
//!   panics; dropping or shutting down a runtime from inside another one; an aborted job's
//!   handle reporting cancelled while the job runs to its end; a detached job's value or
//!   panic payload whose drop panics;
//! - `rt_common.rs`: a runtime, timers and sockets made and driven inside a job
//!   (`sleep_from_blocking`, `socket_from_blocking`); `Handle::block_on` on a pool thread;
//!   dropping the runtime while jobs run and tasks hold timers; jobs and spawns requested
//!   from a task's `Drop` while the runtime shuts down, and from a job after it is gone.
//!
//! tokio's `block_in_place` has no counterpart (every overlap runtime is current-thread),
//! nor can `overlap::spawn_blocking` be called on a pool thread (its rustdoc says so and
//! points at `Handle::spawn_blocking`; checked here).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::runtime::Handle;
use overlap::time::{self, Instant};
use overlap::Runtime;
use support::{panic_message, within};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn a_job_spawns_another_through_the_handle_and_waits_for_it_on_its_thread() {
    overlap::block_on(async {
        let out = overlap::spawn_blocking(|| {
            let handle = Handle::current();
            let inner = handle.spawn_blocking(|| {
                let innermost = Handle::current().spawn_blocking(|| "innermost");
                Handle::current().block_on(innermost).unwrap()
            });
            handle.block_on(inner).unwrap()
        });
        assert_eq!(within(HANG, out, "nested jobs").await.unwrap(), "innermost");
    });
}

#[test]
fn the_free_spawn_blocking_on_a_pool_thread_panics_and_says_what_to_use() {
    overlap::block_on(async {
        let err = overlap::spawn_blocking(|| overlap::spawn_blocking(|| ()).detach())
            .await
            .unwrap_err();
        let message = panic_message(err.into_panic());
        assert!(message.contains("blocking-pool thread"), "{message}");
        assert!(
            message.contains("Handle::current().spawn_blocking"),
            "{message}"
        );
    });
}

#[test]
fn a_panicking_job_gives_back_its_payload_and_its_thread_takes_the_next_job() {
    overlap::block_on(async {
        let err = overlap::spawn_blocking(|| std::panic::panic_any(7_u64))
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(*err.into_panic().downcast::<u64>().unwrap(), 7);
        let first = overlap::spawn_blocking(|| thread::current().id()).await;
        assert_eq!(overlap::metrics().blocking_threads, 1);
        let second = overlap::spawn_blocking(|| thread::current().id()).await;
        assert_eq!(first.unwrap(), second.unwrap());
        // A panic from the remote flavour comes back through its handle too.
        let remote = Handle::current().spawn_blocking(|| panic!("remote job"));
        let message = panic_message(remote.await.unwrap_err().into_panic());
        assert_eq!(message, "remote job");
    });
}

#[test]
fn a_job_runs_a_runtime_of_its_own_with_timers_tasks_and_sockets() {
    overlap::block_on(async {
        let job = overlap::spawn_blocking(|| {
            overlap::block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = overlap::spawn(async move {
                    let (mut conn, _) = listener.accept().await.unwrap();
                    let mut buf = [0; 4];
                    conn.read_exact(&mut buf).await.unwrap();
                    conn.write_all(&buf).await.unwrap();
                });
                time::sleep(Duration::from_millis(1)).await;
                let mut client = TcpStream::connect(addr).await.unwrap();
                client.write_all(b"ping").await.unwrap();
                let mut reply = [0; 4];
                client.read_exact(&mut reply).await.unwrap();
                server.await.unwrap();
                reply
            })
        });
        let reply = within(HANG, job, "a runtime inside a job").await.unwrap();
        assert_eq!(&reply, b"ping");
    });
}

#[test]
fn a_job_waits_with_handle_block_on_for_timed_work_on_the_runtime_thread() {
    overlap::block_on(async {
        let home = thread::current().id();
        let job = overlap::spawn_blocking(move || {
            let handle = Handle::current();
            let task = handle.spawn_with(move || async move {
                time::sleep(Duration::from_millis(1)).await;
                thread::current().id()
            });
            let ran_on = handle.block_on(task).unwrap();
            // A plain future that needs no loop works on the pool thread itself.
            let plain = handle.block_on(async { 5 });
            (ran_on, plain)
        });
        let (ran_on, plain) = within(HANG, job, "Handle::block_on in a job")
            .await
            .unwrap();
        assert_eq!(ran_on, home);
        assert_eq!(plain, 5);
    });
}

fn paused() -> Runtime {
    Runtime::builder().start_paused(true).build().unwrap()
}

#[test]
fn a_paused_clock_waits_for_an_awaited_job_instead_of_timing_it_out() {
    paused().block_on(async {
        let start = Instant::now();
        let job = overlap::spawn_blocking(|| thread::sleep(Duration::from_millis(20)));
        time::timeout(Duration::from_secs(15), job)
            .await
            .expect("the paused clock jumped past a running job")
            .unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn a_paused_clock_waits_for_a_job_whose_handle_is_only_polled_for_is_finished() {
    paused().block_on(async {
        let start = Instant::now();
        let job = overlap::spawn_blocking(|| thread::sleep(Duration::from_millis(20)));
        time::timeout(Duration::from_secs(15), async {
            while !job.is_finished() {
                time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the paused clock jumped past a running job");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn a_paused_clock_waits_for_a_job_that_panics() {
    paused().block_on(async {
        let start = Instant::now();
        let job = overlap::spawn_blocking(|| {
            thread::sleep(Duration::from_millis(20));
            panic!("job failed");
        });
        let out = time::timeout(Duration::from_secs(15), job)
            .await
            .expect("the paused clock jumped past a running job");
        assert!(out.unwrap_err().is_panic());
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn a_paused_clock_waits_for_a_detached_job_before_advancing() {
    paused().block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        drop(overlap::spawn_blocking(move || {
            thread::sleep(Duration::from_millis(20));
            flag.store(true, Ordering::SeqCst);
        }));
        time::sleep(Duration::from_secs(3600)).await;
        assert!(
            done.load(Ordering::SeqCst),
            "the clock advanced while the job ran"
        );
    });
}

#[test]
fn dropping_the_runtime_does_not_wait_for_a_running_job_while_tasks_hold_timers() {
    let rt = Runtime::new().unwrap();
    let (started_tx, started) = std_mpsc::channel();
    let (release, released) = std_mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    for secs in [1, 60, 3600] {
        rt.spawn(time::sleep(Duration::from_secs(secs))).detach();
    }
    let flag = finished.clone();
    let job = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        // Waits for the test, which sends only after the runtime's drop returned.
        released.recv_timeout(HANG).unwrap();
        flag.store(true, Ordering::SeqCst);
        "finished detached"
    });
    // The sleeps register their timers.
    rt.block_on(overlap::yield_now());
    assert_eq!(rt.metrics().timers_active, 3);
    started.recv_timeout(HANG).unwrap();
    drop(rt);
    assert!(!finished.load(Ordering::SeqCst));
    release.send(()).unwrap();
    // The handle outlived its runtime: it reports cancelled, whether or not the job ended.
    let out = overlap::block_on(job);
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn a_job_outliving_its_runtime_gets_cancelled_handles_from_its_handle() {
    let rt = Runtime::new().unwrap();
    let (started_tx, started) = std_mpsc::channel();
    let (gone_tx, gone) = std_mpsc::channel::<()>();
    let (out_tx, out) = std_mpsc::channel();
    let job = rt.spawn_blocking(move || {
        let handle = Handle::current();
        started_tx.send(()).unwrap();
        gone.recv_timeout(HANG).unwrap();
        let spawned = handle.spawn(async { 1 });
        let blocking = handle.spawn_blocking(|| 2);
        let with = handle.spawn_with(|| async { 3 });
        out_tx
            .send([
                handle.block_on(spawned).is_err_and(|e| e.is_cancelled()),
                handle.block_on(blocking).is_err_and(|e| e.is_cancelled()),
                handle.block_on(with).is_err_and(|e| e.is_cancelled()),
            ])
            .unwrap();
    });
    started.recv_timeout(HANG).unwrap();
    drop(job);
    drop(rt);
    gone_tx.send(()).unwrap();
    assert_eq!(out.recv_timeout(HANG).unwrap(), [true, true, true]);
}

/// Calls `on_drop` when dropped: a task's future that starts work while the runtime drops
/// it.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

#[test]
fn jobs_and_spawns_requested_from_a_drop_during_shutdown_resolve() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std_mpsc::channel();
    let guard = {
        let ran = ran.clone();
        OnDrop(move || {
            let counted = ran.clone();
            let local = overlap::spawn_blocking(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            });
            let counted = ran.clone();
            let remote = handle.spawn_blocking(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            });
            let spawned = handle.spawn(async { "never polled" });
            tx.send((remote, spawned)).unwrap();
            // A local handle to a job the shutdown drops or lets run: dropping it detaches
            // the job, whose task cell is freed either way (valgrind checks that in CI).
            drop(local);
        })
    };
    rt.spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    })
    .detach();
    rt.block_on(overlap::yield_now());
    drop(rt);
    let (remote, spawned) = rx.recv().unwrap();
    let remote = overlap::block_on(async { within(HANG, remote, "remote job").await });
    assert!(remote.is_ok() || remote.unwrap_err().is_cancelled());
    let spawned = overlap::block_on(async { within(HANG, spawned, "spawn").await });
    assert!(spawned.unwrap_err().is_cancelled());
    assert!(ran.load(Ordering::SeqCst) <= 2);
}

#[test]
fn a_runtime_is_shut_down_from_inside_another_one() {
    overlap::block_on(async {
        for how in 0..3 {
            let inner = Runtime::new().unwrap();
            let task = inner.spawn(std::future::pending::<()>());
            let (started_tx, started) = std_mpsc::channel();
            let (release, released) = std_mpsc::channel::<()>();
            let job = inner.spawn_blocking(move || {
                started_tx.send(()).unwrap();
                let _ = released.recv_timeout(HANG);
            });
            drop(job);
            started.recv_timeout(HANG).unwrap();
            match how {
                0 => inner.shutdown_background(),
                1 => inner.shutdown_timeout(Duration::ZERO),
                _ => drop(inner),
            }
            assert!(task.is_finished());
            release.send(()).unwrap();
            // The outer runtime goes on.
            time::sleep(Duration::from_millis(1)).await;
        }
    });
}

#[test]
fn an_aborted_job_handle_reports_cancelled_while_the_job_runs_to_its_end() {
    overlap::block_on(async {
        let (release, released) = std_mpsc::channel::<()>();
        let (done_tx, done) = std_mpsc::channel();
        let (started_tx, started) = std_mpsc::channel();
        let job = overlap::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            released.recv_timeout(HANG).unwrap();
            done_tx.send(()).unwrap();
        });
        // Running: an abort before the start would keep it from running at all.
        started.recv_timeout(HANG).unwrap();
        job.abort();
        assert!(job.await.unwrap_err().is_cancelled());
        release.send(()).unwrap();
        done.recv_timeout(HANG)
            .expect("the aborted job did not run to its end");
    });
}

/// Panics when dropped: a job's value or panic payload that fails as it is thrown away.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !thread::panicking() {
            panic!("dropped");
        }
    }
}

#[test]
fn a_detached_jobs_value_or_payload_whose_drop_panics_takes_nothing_down() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (done_tx, done) = std_mpsc::channel();
        let tx = done_tx.clone();
        drop(overlap::spawn_blocking(move || {
            tx.send(()).unwrap();
            PanicOnDrop
        }));
        drop(overlap::spawn_blocking(move || {
            done_tx.send(()).unwrap();
            std::panic::panic_any(PanicOnDrop)
        }));
        for _ in 0..2 {
            done.recv_timeout(HANG).unwrap();
        }
        // Let the outcomes come back and be thrown away.
        time::sleep(Duration::from_millis(5)).await;
        support::settle().await;
        assert_eq!(overlap::spawn_blocking(|| 1).await.unwrap(), 1);
        assert_eq!(overlap::spawn(async { 2 }).await.unwrap(), 2);
    });
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 3)).unwrap(), 3);
}
