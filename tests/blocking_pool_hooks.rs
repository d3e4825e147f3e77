//! `Builder::thread_name`, `on_thread_start` and `on_thread_stop`: every pool thread carries
//! the name and runs the start hook before its first job and the stop hook after its last
//! (also when a hook panics, even with a payload that panics again when dropped).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use overlap::Runtime;
use support::within;

#[test]
fn hooks_run_once_per_thread_around_its_jobs() {
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    // Per thread: was the start hook run before its jobs?
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    thread_local! {
        static HOOKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    let (s, t) = (started.clone(), stopped.clone());
    let rt = Runtime::builder()
        .thread_name("hooked-pool")
        .blocking_keep_alive(Duration::from_millis(20))
        .on_thread_start(move || {
            HOOKED.with(|h| h.set(true));
            s.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            t.fetch_add(1, Ordering::SeqCst);
            panic!("a stop hook that panics is ignored");
        })
        .build()
        .unwrap();
    let names = rt.block_on(async {
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let seen = seen.clone();
                overlap::spawn_blocking(move || {
                    seen.lock().unwrap().push(HOOKED.with(|h| h.get()));
                    std::thread::sleep(Duration::from_millis(5));
                    std::thread::current().name().map(String::from)
                })
            })
            .collect();
        let mut names = Vec::new();
        for j in jobs {
            names.push(j.await.unwrap());
        }
        names
    });
    assert!(
        names.iter().all(|n| n.as_deref() == Some("hooked-pool")),
        "{names:?}"
    );
    assert!(
        seen.lock().unwrap().iter().all(|&hooked| hooked),
        "a job ran before its thread's start hook"
    );
    let threads = started.load(Ordering::SeqCst);
    assert!(threads >= 1);
    drop(rt);
    // Idle threads exit after their keep-alive (or at once, the runtime being gone); each
    // runs the stop hook on its way out. Generous: only a missing hook gets near it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stopped.load(Ordering::SeqCst) < threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(stopped.load(Ordering::SeqCst), threads);
}

#[test]
fn a_thread_name_with_a_nul_byte_is_refused_at_build() {
    let err = Runtime::builder()
        .thread_name("bad\0name")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_start_hook_whose_panic_payload_panics_when_dropped_leaves_the_thread_serving_jobs() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let rt = Runtime::builder()
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::SeqCst);
            support::panic_twice();
        })
        .build()
        .unwrap();
    let outputs = rt.block_on(async {
        let mut outputs = Vec::new();
        for i in 0..4 {
            let job = overlap::spawn_blocking(move || i * 10);
            let what = "a job waits for a pool thread whose start hook panicked";
            outputs.push(within(Duration::from_secs(10), job, what).await.unwrap());
        }
        outputs
    });
    assert_eq!(outputs, [0, 10, 20, 30]);
    assert!(started.load(Ordering::SeqCst) >= 1);
}

#[test]
fn a_stop_hook_whose_panic_payload_panics_when_dropped_still_counts_its_thread_stopped() {
    let stopped = Arc::new(AtomicUsize::new(0));
    let t = stopped.clone();
    let (done_tx, done) = std::sync::mpsc::channel();
    // The runtime lives on a thread of its own, so that a `shutdown_timeout` that waits
    // for a thread it wrongly counts as running cannot hold the test for its whole hour.
    std::thread::spawn(move || {
        let rt = Runtime::builder()
            .on_thread_stop(move || {
                t.fetch_add(1, Ordering::SeqCst);
                support::panic_twice();
            })
            .build()
            .unwrap();
        let out = rt.block_on(async { overlap::spawn_blocking(|| 7).await.unwrap() });
        rt.shutdown_timeout(Duration::from_secs(3600));
        done_tx.send(out).unwrap();
    });
    let out = done.recv_timeout(Duration::from_secs(20));
    assert_eq!(
        out,
        Ok(7),
        "shutdown_timeout still waits for a pool thread whose stop hook has run"
    );
    assert_eq!(stopped.load(Ordering::SeqCst), 1);
}
