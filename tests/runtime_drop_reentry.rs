//! Runtime drop against code that re-enters it: a thread that keeps spawning through a
//! `Handle` cannot hold the drop up, and a join waker whose destructor drops the runtime is
//! never woken mid-drop.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

#[test]
fn runtime_drop_ends_while_another_thread_keeps_spawning() {
    let rt = overlap::Runtime::new().unwrap();
    let h = rt.handle();
    let go = Arc::new(Barrier::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let (g2, s2) = (go.clone(), stop.clone());
    let producer = std::thread::spawn(move || {
        g2.wait();
        // Spawns until a spawn reports the runtime gone (cancelled at once), or the
        // watchdog below gives up.
        while !s2.load(Ordering::SeqCst) {
            if h.spawn(async {}).is_finished() {
                return true;
            }
        }
        false
    });
    go.wait();
    std::thread::sleep(Duration::from_millis(20));
    let watchdog = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // Generous: under valgrind, which runs one thread at a time, the spinning
            // producer can hold the dropping thread off for tens of seconds.
            std::thread::sleep(Duration::from_secs(120));
            stop.store(true, Ordering::SeqCst);
        })
    };
    // The drop used to start and cancel every spawn that arrived meanwhile, and go round
    // again for as long as any did: it ended only when the watchdog stopped the producer.
    drop(rt);
    let producer_saw_the_close = producer.join().unwrap();
    assert!(
        producer_saw_the_close,
        "the drop only ended when the watchdog stopped the producer"
    );
    drop(watchdog);
}

thread_local! {
    static RT: RefCell<Option<overlap::Runtime>> = const { RefCell::new(None) };
}

static DROPPING: AtomicBool = AtomicBool::new(false);
static WOKEN_WHILE_DROPPING: AtomicUsize = AtomicUsize::new(0);

/// A waker whose destructor drops the runtime kept in a thread-local.
struct DropsRuntime;

impl Wake for DropsRuntime {
    fn wake(self: Arc<Self>) {
        if DROPPING.load(Ordering::SeqCst) {
            WOKEN_WHILE_DROPPING.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for DropsRuntime {
    fn drop(&mut self) {
        DROPPING.store(true, Ordering::SeqCst);
        drop(RT.with(|r| r.borrow_mut().take()));
    }
}

struct Noop;

impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_join_waker_whose_drop_drops_the_runtime_is_not_woken_mid_drop() {
    let rt = overlap::Runtime::new().unwrap();
    let mut handle = rt.spawn(std::future::pending::<()>());
    RT.with(|r| *r.borrow_mut() = Some(rt));
    // The handle is polled by hand, outside `block_on`, with a waker it stores...
    let first = Waker::from(Arc::new(DropsRuntime));
    assert!(Pin::new(&mut handle)
        .poll(&mut Context::from_waker(&first))
        .is_pending());
    drop(first); // the stored clone is now the last one
                 // ...then with another: replacing the stored waker drops it, which drops the runtime,
                 // whose shutdown cancels the task and wakes the stored waker. That used to be the one
                 // being dropped (a double free for a waker owning memory).
    let second = Waker::from(Arc::new(Noop));
    let _ = Pin::new(&mut handle).poll(&mut Context::from_waker(&second));
    assert_eq!(WOKEN_WHILE_DROPPING.load(Ordering::SeqCst), 0);
    assert!(RT.with(|r| r.borrow().is_none()), "the runtime was dropped");
    let err = overlap::block_on(handle).unwrap_err();
    assert!(err.is_cancelled());
}

static PAYLOADS_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A panic payload that counts its drops.
struct CountedPayload;

impl Drop for CountedPayload {
    fn drop(&mut self) {
        PAYLOADS_DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Panics with a [`CountedPayload`] when dropped.
struct PanicsWhenDropped;

impl Drop for PanicsWhenDropped {
    fn drop(&mut self) {
        std::panic::panic_any(CountedPayload);
    }
}

/// A future whose destructor panics, dropped by an abort or by the runtime's drop: the
/// panic is caught and its payload freed (with the abort's `JoinError`), not leaked.
#[test]
fn the_payload_of_a_panicking_destructor_is_freed() {
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async {
        let aborted = overlap::spawn(async {
            let _p = PanicsWhenDropped;
            std::future::pending::<()>().await
        });
        overlap::yield_now().await;
        aborted.abort();
        // The abort reports the destructor's panic; dropping the error frees its payload.
        assert!(aborted.await.unwrap_err().is_panic());
        let detached = overlap::spawn(async {
            let _p = PanicsWhenDropped;
            std::future::pending::<()>().await
        });
        overlap::yield_now().await;
        drop(detached);
    });
    drop(rt);
    assert_eq!(
        PAYLOADS_DROPPED.load(Ordering::SeqCst),
        2,
        "payloads leaked"
    );
}
