//! Idle costs nothing, and dropping a runtime releases everything it owns.

mod support;

use std::cell::Cell;
use std::future::poll_fn;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use overlap::{spawn, AsyncFd, Runtime};
use support::{open_fds, pipe, read, socketpair};

/// Tests in this file count the process's fds, so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn idle_runtime_sleeps() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    let before = rt.metrics();
    let start = Instant::now();
    rt.block_on(overlap::time::sleep(Duration::from_millis(200)));
    assert!(start.elapsed() >= Duration::from_millis(200));
    let after = rt.metrics();
    // No fd is registered, so the loop sleeps on its futex rather than in epoll.
    let sleeps = after.futex_sleeps - before.futex_sleeps;
    let waits = after.epoll_waits - before.epoll_waits;
    assert!(
        (1..=3).contains(&sleeps) && waits == 0,
        "idle 200 ms took {sleeps} futex sleeps and {waits} epoll_wait calls"
    );
}

#[test]
fn idle_with_parked_io_tasks_sleeps_too() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    let (_keep_a, _keep_b) = rt.block_on(async {
        let (a, b) = socketpair();
        let a = AsyncFd::new(a).unwrap();
        let raw = a.as_raw_fd();
        let h = spawn(async move {
            let _ = a
                .async_io_read(|fd| read(fd.as_raw_fd(), &mut [0u8; 8]))
                .await;
        });
        (h, (b, raw))
    });
    let before = rt.metrics();
    rt.block_on(overlap::time::sleep(Duration::from_millis(100)));
    let after = rt.metrics();
    assert!(after.epoll_waits - before.epoll_waits <= 3);
    assert!(
        after.task_polls - before.task_polls <= 1,
        "a parked task was polled while idle"
    );
}

#[test]
fn dropping_runtime_with_tasks_parked_on_fds_leaks_no_fd() {
    let _serial = serial();
    // Warm up anything lazily opened, then measure.
    drop(Runtime::new().unwrap());
    let fds_before = open_fds();
    let dropped = Arc::new(AtomicUsize::new(0));
    {
        let rt = Runtime::new().unwrap();
        let mut peers: Vec<OwnedFd> = Vec::new();
        for _ in 0..50 {
            let (r, w) = pipe();
            peers.push(w);
            let d = dropped.clone();
            struct CountDrop(Arc<AtomicUsize>);
            impl Drop for CountDrop {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            rt.spawn(async move {
                let _c = CountDrop(d);
                let r = AsyncFd::new(r).unwrap();
                let _ = r
                    .async_io_read(|fd| read(fd.as_raw_fd(), &mut [0u8; 8]))
                    .await;
            });
        }
        rt.block_on(overlap::yield_now());
        assert_eq!(rt.metrics().registered_fds, 50);
        assert_eq!(rt.metrics().tasks_alive, 50);
        drop(rt);
        drop(peers);
    }
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        50,
        "every parked future is dropped"
    );
    assert_eq!(open_fds(), fds_before, "runtime drop leaked fds");
}

#[test]
fn dropping_runtime_drops_futures_on_its_thread_and_cancels_handles() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    let owner = std::thread::current().id();
    let on_owner = Rc::new(Cell::new(false));
    struct Check(std::thread::ThreadId, Rc<Cell<bool>>);
    impl Drop for Check {
        fn drop(&mut self) {
            self.1.set(std::thread::current().id() == self.0);
        }
    }
    let c = Check(owner, on_owner.clone());
    let h = rt.spawn(async move {
        let _c = c;
        std::future::pending::<()>().await
    });
    rt.block_on(overlap::yield_now());
    drop(rt);
    assert!(on_owner.get());
    assert!(h.is_finished());
    // Awaiting the handle after the runtime is gone: a fresh runtime polls it once.
    let err = overlap::block_on(h).unwrap_err();
    assert!(err.is_cancelled());
}

/// Drops a runtime whose only pool thread is busy while a job capturing `bomb` waits in
/// the queue, next to a pending task; asserts the drop did not unwind and the task's future
/// was dropped all the same.
fn drop_runtime_with_a_queued_job_holding(bomb: impl Send + 'static) {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let (flag, dropped) = support::DropFlag::new();
    rt.block_on(async {
        // The only pool thread is busy; the next job waits in the queue.
        drop(overlap::spawn_blocking(move || blocked.recv()));
        drop(overlap::spawn_blocking(move || drop(bomb)));
        drop(spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await
        }));
        overlap::yield_now().await;
    });
    let dropping = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(rt)));
    let _ = release.send(());
    assert!(dropping.is_ok(), "the panic escaped Runtime::drop");
    assert!(dropped.get(), "the task's future was still dropped");
}

#[test]
fn a_queued_blocking_job_whose_drop_panics_does_not_cut_shutdown_short() {
    let _serial = serial();
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            panic!("a blocking job's capture panics when dropped");
        }
    }
    drop_runtime_with_a_queued_job_holding(PanicOnDrop);
}

#[test]
fn futures_that_spawn_and_wake_while_dropped_do_not_hang_shutdown() {
    let _serial = serial();
    let rt = Runtime::new().unwrap();
    struct SpawnOnDrop;
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            spawn(async { std::future::pending::<()>().await });
        }
    }
    for _ in 0..10 {
        rt.spawn(async {
            let _s = SpawnOnDrop;
            poll_fn(|cx| {
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            })
            .await
        });
    }
    rt.block_on(overlap::yield_now());
    drop(rt);
}

#[test]
fn runtime_can_be_dropped_inside_another_runtime() {
    let _serial = serial();
    overlap::block_on(async {
        let inner = Runtime::new().unwrap();
        inner.spawn(std::future::pending::<()>());
        drop(inner);
        assert_eq!(spawn(async { 3 }).await.unwrap(), 3);
    });
}

#[test]
fn a_queued_blocking_job_whose_drop_panics_with_a_payload_that_panics_too_is_contained() {
    let _serial = serial();
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            support::panic_twice();
        }
    }
    drop_runtime_with_a_queued_job_holding(PanicOnDrop);
}
