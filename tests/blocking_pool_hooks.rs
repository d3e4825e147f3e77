//! `Builder::thread_name`, `on_thread_start` and `on_thread_stop`: every pool thread carries
//! the name and runs the start hook before its first job and the stop hook after its last
//! (also when a hook panics).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use overlap::Runtime;

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
