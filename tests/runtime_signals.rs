//! Signals landing on the runtime thread while it sleeps in `epoll_wait`: the kernel answers
//! EINTR, which the loop must treat as "no events" (not an error, not a lost wake).
//! In its own test binary because it installs a process-wide SIGUSR1 handler.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use overlap::io::AsyncReadExt;

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Installs the counting handler, without SA_RESTART (epoll_wait is never restarted anyway).
fn install_handler() {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only
    // touches an atomic, which is async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Sends SIGUSR1 to `target` every 500 µs until the returned flag is set.
fn pester(target: libc::pthread_t) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let t = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            // SAFETY: `target` is the test thread, which outlives this thread (it joins it).
            unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    (stop, t)
}

#[test]
fn interrupted_epoll_waits_lose_no_timer_and_no_fd_event() {
    install_handler();
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let (stop, pest) = pester(me);
    let before = SIGNALS.load(Ordering::Relaxed);
    overlap::block_on(async {
        // Timers: each sleep still ends at or after its deadline, and does end.
        for _ in 0..20 {
            let start = Instant::now();
            overlap::time::sleep(Duration::from_millis(3)).await;
            assert!(start.elapsed() >= Duration::from_millis(3));
        }
        // An fd event that arrives while the loop keeps being interrupted.
        let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
        let writer = overlap::spawn(async move {
            overlap::time::sleep(Duration::from_millis(30)).await;
            overlap::io::AsyncWriteExt::write_all(&mut tx, b"still here")
                .await
                .unwrap();
        });
        let mut got = String::new();
        rx.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "still here");
        writer.await.unwrap();
        // A wake from another thread while signals keep coming.
        let (wtx, wrx) = futures_channel_like();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            wtx();
        });
        wrx.await;
    });
    stop.store(true, Ordering::Relaxed);
    pest.join().unwrap();
    assert!(
        SIGNALS.load(Ordering::Relaxed) > before,
        "no signal was delivered, so nothing was tested"
    );
}

/// A one-shot cross-thread wake: the sender half is a closure, the receiver a future.
fn futures_channel_like() -> (impl FnOnce() + Send, impl std::future::Future<Output = ()>) {
    use std::sync::Mutex;
    use std::task::{Poll, Waker};
    let state: Arc<Mutex<(bool, Option<Waker>)>> = Arc::default();
    let s = state.clone();
    let send = move || {
        let waker = {
            let mut g = s.lock().unwrap();
            g.0 = true;
            g.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    };
    let recv = std::future::poll_fn(move |cx| {
        let mut g = state.lock().unwrap();
        if g.0 {
            Poll::Ready(())
        } else {
            g.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    });
    (send, recv)
}
