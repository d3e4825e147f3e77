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
