//! A failed task's error (panic payload or cancellation) on each way it can go: read by the
//! handle, dropped unread, dropped with a detached task, kept past the runtime's drop. Each
//! payload is dropped exactly once, when its last owner goes, and a payload whose own
//! destructor panics takes nothing down.

use std::future::Future;
use std::panic::panic_any;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use overlap::{block_on, spawn, yield_now, Runtime};

/// A panic payload that counts its drops, and may panic in its destructor.
struct Counted {
    drops: Arc<AtomicUsize>,
    panic_on_drop: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panic_on_drop {
            panic!("payload destructor panics");
        }
    }
}

fn payload(drops: &Arc<AtomicUsize>, panic_on_drop: bool) -> Counted {
    Counted {
        drops: drops.clone(),
        panic_on_drop,
    }
}

/// Panics with a counted payload after one yield, so a handle awaiting it waits first.
fn failing(drops: &Arc<AtomicUsize>, panic_on_drop: bool) -> impl Future<Output = u64> {
    let p = payload(drops, panic_on_drop);
    async move {
        yield_now().await;
        panic_any(p)
    }
}

#[test]
fn an_awaited_panic_hands_over_its_payload_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    block_on(async {
        let err = spawn(failing(&drops, false)).await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "the error owns the payload"
        );
        let payload = err.into_panic();
        assert!(payload.downcast_ref::<Counted>().is_some());
        drop(payload);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn an_unread_error_is_dropped_with_its_handle_and_not_before() {
    let drops = Arc::new(AtomicUsize::new(0));
    block_on(async {
        let handle = spawn(failing(&drops, false));
        while !handle.is_finished() {
            yield_now().await;
        }
        assert_eq!(drops.load(Ordering::SeqCst), 0, "kept for the handle");
        drop(handle);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        // The cell the error lived in is reused by later tasks as usual.
        let outputs: Vec<u64> = {
            let handles: Vec<_> = (0..64).map(|i| spawn(async move { i })).collect();
            let mut v = Vec::new();
            for h in handles {
                v.push(h.await.unwrap());
            }
            v
        };
        assert_eq!(outputs, (0..64).collect::<Vec<_>>());
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_detached_task_drops_its_panic_when_it_fails() {
    let drops = Arc::new(AtomicUsize::new(0));
    block_on(async {
        drop(spawn(failing(&drops, false)));
        for _ in 0..4 {
            yield_now().await;
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_payload_whose_destructor_panics_takes_nothing_down() {
    let drops = Arc::new(AtomicUsize::new(0));
    let sum = block_on(async {
        // Detached: dropped by the loop when the task fails.
        drop(spawn(failing(&drops, true)));
        // Kept, then dropped unread by its handle.
        let handle = spawn(failing(&drops, true));
        while !handle.is_finished() {
            yield_now().await;
        }
        drop(handle);
        // Cancelled while kept, then dropped unread.
        let aborted = spawn(std::future::pending::<u64>());
        aborted.abort();
        while !aborted.is_finished() {
            yield_now().await;
        }
        drop(aborted);
        spawn(async { 40 }).await.unwrap() + spawn(async { 2 }).await.unwrap()
    });
    assert_eq!(sum, 42);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

#[test]
fn a_handle_outliving_its_runtime_reads_or_drops_the_cancellation() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::new().unwrap();
    let (read, unread, failed) = rt.block_on(async {
        let p = payload(&drops, false);
        let read = spawn(async move {
            let _p = p;
            std::future::pending::<u64>().await
        });
        let unread = spawn(std::future::pending::<u64>());
        let failed = spawn(failing(&drops, false));
        while !failed.is_finished() {
            yield_now().await;
        }
        (read, unread, failed)
    });
    drop(rt);
    // The runtime's drop cancelled the pending tasks, dropping their futures.
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(read).poll(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.is_cancelled()),
        other => panic!("expected a cancellation, got {other:?}"),
    }
    drop(unread);
    // The failure stored before the runtime went is still the handle's to read.
    match pin!(failed).poll(&mut cx) {
        Poll::Ready(Err(e)) => {
            assert!(e.is_panic());
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// What a `StoringWaker`'s first clone does, while the handle stores a clone of it.
#[derive(Clone, Copy)]
enum OnClone {
    /// Drives the runtime until the task fails.
    Drive,
    /// Drops the runtime, which cancels the task.
    DropRuntime,
}

/// A waker whose first clone runs user code that completes the task: the handle stores its
/// waker while the task fails.
struct StoringWaker {
    rt: std::cell::RefCell<Option<Runtime>>,
    on_clone: std::cell::Cell<Option<OnClone>>,
    /// Wakers of this kind alive: the one the test holds, plus clones.
    live: std::cell::Cell<isize>,
}

static STORING: std::task::RawWakerVTable =
    std::task::RawWakerVTable::new(storing_clone, storing_drop, |_| {}, storing_drop);

fn storing_clone(data: *const ()) -> std::task::RawWaker {
    // SAFETY: `data` is the `StoringWaker` the test keeps alive past every waker.
    let w = unsafe { &*data.cast::<StoringWaker>() };
    match w.on_clone.take() {
        Some(OnClone::Drive) => w.rt.borrow().as_ref().unwrap().block_on(async {
            for _ in 0..16 {
                yield_now().await;
            }
        }),
        Some(OnClone::DropRuntime) => drop(w.rt.borrow_mut().take()),
        None => {}
    }
    w.live.set(w.live.get() + 1);
    std::task::RawWaker::new(data, &STORING)
}

fn storing_drop(data: *const ()) {
    // SAFETY: as in `storing_clone`.
    let w = unsafe { &*data.cast::<StoringWaker>() };
    w.live.set(w.live.get() - 1);
}

/// Panics with a counted payload when dropped.
struct PanicsWhenDropped(Option<Counted>);

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        panic_any(self.0.take().unwrap());
    }
}

/// The handle's first poll clones a waker whose clone makes the task fail (see `OnClone`):
/// the handle must still read the task's panic, and store or drop that clone exactly once.
fn fail_while_the_handle_clones_its_waker(on_clone: OnClone) {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::new().unwrap();
    let handle = match on_clone {
        OnClone::Drive => rt.spawn(failing(&drops, false)),
        OnClone::DropRuntime => {
            let guard = PanicsWhenDropped(Some(payload(&drops, false)));
            rt.spawn(async move {
                let _guard = guard;
                std::future::pending::<u64>().await
            })
        }
    };
    // Boxed, so that the test can drop it before counting the waker's clones.
    let mut handle = Box::pin(handle);
    let ctx = StoringWaker {
        rt: std::cell::RefCell::new(Some(rt)),
        on_clone: std::cell::Cell::new(Some(on_clone)),
        live: std::cell::Cell::new(1),
    };
    // SAFETY: STORING's functions uphold the RawWaker contract for `ctx`, which
    // outlives the waker and all its clones (checked by `live` below).
    let waker = unsafe {
        Waker::from_raw(std::task::RawWaker::new(
            (&ctx as *const StoringWaker).cast(),
            &STORING,
        ))
    };
    let mut cx = Context::from_waker(&waker);
    let mut result = handle.as_mut().poll(&mut cx);
    assert!(ctx.on_clone.take().is_none(), "the clone ran its code");
    if result.is_pending() {
        result = handle.as_mut().poll(&mut cx);
    }
    let Poll::Ready(Err(err)) = result else {
        panic!("the task failed with a panic: its handle must say so");
    };
    assert!(err.is_panic());
    let payload = err.into_panic();
    assert!(payload.downcast_ref::<Counted>().is_some());
    drop(payload);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(handle);
    drop(waker);
    assert_eq!(
        ctx.live.get(),
        0,
        "every clone of the waker was dropped once"
    );
}

#[test]
fn a_task_panicking_while_its_handle_clones_a_waker_still_reports_it() {
    fail_while_the_handle_clones_its_waker(OnClone::Drive);
}

#[test]
fn a_task_cancelled_while_its_handle_clones_a_waker_still_reports_its_destructor_panic() {
    fail_while_the_handle_clones_its_waker(OnClone::DropRuntime);
}
