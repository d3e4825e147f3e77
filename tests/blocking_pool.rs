//! The blocking pool: results, panics, saturation, keep-alive, thread-start failure.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use overlap::Runtime;
use support::wait_until;

/// Only a hang gets near this.
const HANG: Duration = Duration::from_secs(30);

#[test]
fn returns_the_value() {
    let v = overlap::block_on(async {
        overlap::spawn_blocking(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap()
    });
    assert_eq!(v.as_deref(), Some("overlap-blocking"));
}

#[test]
fn panic_becomes_a_panic_join_error() {
    overlap::block_on(async {
        let err = overlap::spawn_blocking(|| -> u32 { panic!("boom in the pool") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(err.to_string(), "task panicked: boom in the pool");
        // The pool still works afterwards.
        assert_eq!(overlap::spawn_blocking(|| 5).await.unwrap(), 5);
    });
}

/// 1,000 jobs on 4 threads, held at a gate until the loop's 100 ms sleep has fired: the
/// sleep fires while the pool is saturated and nearly all of them wait in its queue.
#[test]
fn saturated_pool_does_not_stall_timers() {
    // Open once the sleep has fired, or by the watchdog after `HANG` if the loop stalled
    // (a loop blocked on the pool would otherwise never get there: a hang, not a failure).
    let gate = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let open = |gate: &(std::sync::Mutex<bool>, std::sync::Condvar)| {
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    };
    let (fired, fired_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            let stalled = fired_rx.recv_timeout(HANG).is_err();
            if stalled {
                open(&gate);
            }
            stalled
        })
    };
    let rt = Runtime::builder().max_blocking_threads(4).build().unwrap();
    rt.block_on(async {
        let done = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..1000)
            .map(|_| {
                let (done, gate) = (done.clone(), gate.clone());
                overlap::spawn_blocking(move || {
                    let mut is_open = gate.0.lock().unwrap();
                    while !*is_open {
                        is_open = gate.1.wait(is_open).unwrap();
                    }
                    drop(is_open);
                    std::thread::sleep(Duration::from_millis(1));
                    done.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        // Each thread holds one job at the gate: the rest are queued.
        let m = overlap::metrics();
        assert!(m.blocking_threads <= 4, "{m:?}");
        assert!(m.blocking_queued >= 996, "{m:?}");

        overlap::time::sleep(Duration::from_millis(100)).await;
        let _ = fired.send(());
        let finished_when_fired = done.load(Ordering::Relaxed);
        let queued_when_fired = overlap::metrics().blocking_queued;
        open(&gate);
        assert!(!watchdog.join().unwrap(), "the sleep waited for the pool");
        assert_eq!(finished_when_fired, 0, "the sleep waited for jobs");
        assert!(queued_when_fired >= 996, "the sleep waited for the queue");

        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(done.load(Ordering::Relaxed), 1000);
        assert_eq!(overlap::metrics().blocking_queued, 0);
    });
}

#[test]
fn idle_threads_exit_after_keep_alive() {
    let rt = Runtime::builder()
        .blocking_keep_alive(Duration::from_millis(20))
        .build()
        .unwrap();
    rt.block_on(async {
        let jobs: Vec<_> = (0..3)
            .map(|_| overlap::spawn_blocking(|| std::thread::sleep(Duration::from_millis(10))))
            .collect();
        for j in jobs {
            j.await.unwrap();
        }
        assert!(overlap::metrics().blocking_threads >= 1);
        let start = Instant::now();
        while overlap::metrics().blocking_threads > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "threads never exited"
            );
            overlap::time::sleep(Duration::from_millis(5)).await;
        }
        // New work starts a new thread.
        assert_eq!(overlap::spawn_blocking(|| 1).await.unwrap(), 1);
    });
}

/// `blocking_running` counts the jobs on a thread now: two parked jobs count 2 (and the
/// third, queued behind them on a two-thread pool, counts as queued), and the count drops
/// to 0 once they are done.
#[test]
fn thread_keep_alive_is_tokios_name_for_the_keep_alive() {
    // A tokio builder, unchanged: `thread_keep_alive` sets what `blocking_keep_alive` does.
    let rt = overlap::runtime::Builder::new_current_thread()
        .max_blocking_threads(2)
        .thread_keep_alive(Duration::from_millis(20))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        overlap::spawn_blocking(|| ()).await.unwrap();
        let start = Instant::now();
        while overlap::metrics().blocking_threads > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the idle thread outlived its 20 ms keep-alive"
            );
            overlap::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

#[test]
fn metrics_count_running_blocking_jobs() {
    let rt = Runtime::builder().max_blocking_threads(2).build().unwrap();
    rt.block_on(async {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
        let jobs: Vec<_> = (0..3)
            .map(|_| {
                let gate = gate.clone();
                overlap::spawn_blocking(move || gate.lock().unwrap().recv().unwrap())
            })
            .collect();
        let start = Instant::now();
        while (
            overlap::metrics().blocking_running,
            overlap::metrics().blocking_queued,
        ) != (2, 1)
        {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{:?}",
                overlap::metrics()
            );
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for j in jobs {
            j.await.unwrap();
        }
        while overlap::metrics().blocking_running > 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{:?}",
                overlap::metrics()
            );
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(overlap::metrics().blocking_queued, 0);
    });
}

#[test]
fn idle_thread_is_reused() {
    overlap::block_on(async {
        for i in 0..50 {
            assert_eq!(overlap::spawn_blocking(move || i).await.unwrap(), i);
        }
    });
}

/// The kernel refuses a 64 TiB stack, so no pool thread can start: the handle reports the
/// error as a panic `JoinError`, nothing panics in the runtime, and it keeps working.
#[test]
fn thread_start_failure_reports_through_the_handle() {
    let rt = Runtime::builder()
        .thread_stack_size(1 << 46)
        .build()
        .unwrap();
    rt.block_on(async {
        let err = overlap::spawn_blocking(|| 1).await.unwrap_err();
        assert!(err.is_panic());
        let msg = err.to_string();
        assert!(msg.contains("could not start a blocking thread"), "{msg}");
        // fs operations get an io::Error, not a panic.
        let err = overlap::fs::read("/etc/hostname").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("could not start a blocking thread"),
            "{err}"
        );
        // The loop itself is fine.
        overlap::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(overlap::spawn(async { 2 }).await.unwrap(), 2);
        assert_eq!(overlap::metrics().blocking_threads, 0);
        assert_eq!(overlap::metrics().blocking_queued, 0);
    });
}

/// Dropping the runtime drops queued jobs without running them, lets the running one finish
/// on its thread, and returns at once: while that job is still held, not within some time.
#[test]
fn runtime_drop_with_queued_and_running_jobs_does_not_hang() {
    // The running job waits for `release`, sent once the drop has returned: a drop that
    // waited for it would never return (the watchdog below releases it after `HANG` and
    // reports the wait), however slow or fast the machine.
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let dropped_unrun = Arc::new(AtomicUsize::new(0));

    /// Counts jobs dropped without running.
    struct Unrun(Arc<AtomicUsize>, bool);
    impl Drop for Unrun {
        fn drop(&mut self) {
            if !self.1 {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let handles: Vec<_> = rt.block_on(async {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let (started, finished) = (started.clone(), finished.clone());
                let gate = gate.clone();
                let guard = Unrun(dropped_unrun.clone(), false);
                overlap::spawn_blocking(move || {
                    let mut guard = guard; // the whole guard moves in, not just the field
                    guard.1 = true;
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = gate.lock().unwrap().recv();
                    finished.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Wait until the first job runs; the other nine are queued behind it.
        while started.load(Ordering::SeqCst) == 0 {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
        handles
    });
    let (dropped, dropped_rx) = std::sync::mpsc::channel::<()>();
    let unstick = release.clone();
    let watchdog = std::thread::spawn(move || {
        let waited = dropped_rx.recv_timeout(HANG).is_err();
        if waited {
            let _ = unstick.send(());
        }
        waited
    });
    drop(rt);
    let _ = dropped.send(());
    assert!(!watchdog.join().unwrap(), "drop waited for jobs");
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    assert_eq!(dropped_unrun.load(Ordering::SeqCst), 9);
    release.send(()).unwrap();
    // The running job finishes, detached; the queued ones never start.
    assert!(wait_until(Duration::from_secs(5), || finished
        .load(Ordering::SeqCst)
        == 1));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(started.load(Ordering::SeqCst), 1);
    // Handles outliving their runtime are harmless to drop.
    drop(handles);
}

#[test]
fn handle_dropped_job_still_runs() {
    let ran = Arc::new(AtomicUsize::new(0));
    overlap::block_on(async {
        let r = ran.clone();
        drop(overlap::spawn_blocking(move || {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        // Stay in the runtime until the job ran: dropping the runtime earlier would drop the
        // job if it were still queued (documented), which is not what this test is about.
        let start = std::time::Instant::now();
        while ran.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(10) {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn a_blocking_job_sees_its_runtimes_handle_and_a_plain_thread_none() {
    overlap::block_on(async {
        let (remote, had_handle) = overlap::spawn_blocking(|| {
            let handle = overlap::Handle::try_current();
            let had = handle.is_some();
            (handle.map(|h| h.spawn(async { 6 * 7 })), had)
        })
        .await
        .unwrap();
        assert!(had_handle);
        assert_eq!(remote.unwrap().await.unwrap(), 42);
        let plain = std::thread::spawn(|| overlap::Handle::try_current().is_none())
            .join()
            .unwrap();
        assert!(plain, "only pool threads running a job get a handle");
        // A job that panics does not break the next one's handle.
        assert!(overlap::spawn_blocking(|| panic!("job panics"))
            .await
            .is_err());
        let again = overlap::spawn_blocking(|| overlap::Handle::try_current().is_some());
        assert!(again.await.unwrap());
    });
}

#[test]
fn a_blocking_job_spawns_more_blocking_work_through_its_handle() {
    overlap::block_on(async {
        // `spawn_blocking` itself needs a runtime's thread, and says what to use instead.
        let refused = overlap::spawn_blocking(|| {
            let payload =
                std::panic::catch_unwind(|| drop(overlap::spawn_blocking(|| 1))).unwrap_err();
            match payload.downcast::<&str>() {
                Ok(message) => message.to_string(),
                Err(payload) => payload.downcast::<String>().map(|m| *m).unwrap_or_default(),
            }
        })
        .await
        .unwrap();
        assert!(
            refused.contains("Handle::current().spawn_blocking"),
            "unhelpful message: {refused}"
        );
        let inner = overlap::spawn_blocking(|| {
            let handle = overlap::Handle::current();
            let ok = handle.spawn_blocking(|| std::thread::current().name().map(String::from));
            let panics = handle.spawn_blocking(|| panic!("inner job panics"));
            (ok, panics)
        });
        let (ok, panics) = inner.await.unwrap();
        assert_eq!(ok.await.unwrap().as_deref(), Some("overlap-blocking"));
        assert!(panics.await.unwrap_err().is_panic());
    });
    // From a plain thread, once the runtime is gone: cancelled, never run.
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    drop(rt);
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    let late = handle.spawn_blocking(move || counter.fetch_add(1, Ordering::SeqCst));
    assert!(overlap::block_on(late).unwrap_err().is_cancelled());
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

/// A child process, a socket or a pipe made in a blocking job (where `Handle::current()`
/// works, as in tokio) cannot join the runtime from the pool thread: the error says so and
/// names the way that works, where it said "outside an overlap runtime" and advised
/// `block_on`. The same done through `spawn_with` works.
#[test]
fn an_io_object_made_in_a_blocking_job_fails_naming_spawn_with() {
    overlap::block_on(async {
        let errors = overlap::spawn_blocking(|| {
            let child = overlap::process::Command::new("true").spawn().map(drop);
            let socket = overlap::net::UdpSocket::from_std(
                std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            );
            [
                child.unwrap_err(),
                socket.map(drop).unwrap_err(),
                overlap::pipe::pipe().map(drop).unwrap_err(),
            ]
        })
        .await
        .unwrap();
        for e in errors {
            assert_eq!(e.kind(), std::io::ErrorKind::Other);
            let said = e.to_string();
            assert!(
                said.contains("blocking-pool thread") && said.contains("spawn_with"),
                "{said}"
            );
        }
        let status = overlap::spawn_blocking(|| {
            let handle = overlap::Handle::current();
            let task = handle
                .spawn_with(|| async { overlap::process::Command::new("true").status().await });
            handle.block_on(task)
        });
        assert!(status.await.unwrap().unwrap().unwrap().success());
    });
}

/// A timer polled in a blocking job (`Handle::block_on` of a `sleep` or a `timeout`, as
/// tokio's blocking threads allow) panics saying it is off its runtime's thread and naming
/// `spawn_with`, where it said "polled outside of a runtime"; through `spawn_with` it works.
#[test]
fn a_timer_polled_in_a_blocking_job_panics_naming_spawn_with() {
    overlap::block_on(async {
        let job = overlap::spawn_blocking(|| {
            let handle = overlap::Handle::current();
            let sleep = overlap::time::sleep(Duration::from_millis(1));
            let polled = std::panic::AssertUnwindSafe(|| handle.block_on(sleep));
            let panicked = std::panic::catch_unwind(polled).unwrap_err();
            let task = handle.spawn_with(|| overlap::time::sleep(Duration::from_millis(1)));
            (support::panic_message(panicked), handle.block_on(task))
        });
        let (said, slept) = job.await.unwrap();
        assert!(
            said.contains("blocking-pool thread") && said.contains("spawn_with"),
            "{said}"
        );
        slept.unwrap();
    });
}
