//! async-executor's `tests/drop.rs` (what dropping smol's `Executor` does to its tasks and
//! their outputs) and `tests/panic_prop.rs`, ported to overlap's `Runtime`: smol's
//! `ex.spawn(..)` is `rt.spawn(..)` (or `overlap::spawn` inside `rt.block_on`), its
//! `ex.tick()` a `rt.block_on` that yields, and its `Task` a `JoinHandle`.
//!
//! Two differences a smol user meets: a `JoinHandle` awaited after its runtime dropped the
//! task gives a cancelled `JoinError` where smol's `Task` panics, and a task's panic comes
//! back as a `JoinError` (`is_panic`, `into_panic` to resume it) where smol's `Task`
//! resumes it when awaited.

mod support;

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Poll, Waker};

use support::{panic_message, ManualTask};

/// Runs `f` when dropped.
struct CallOnDrop<F: Fn()>(F);

impl<F: Fn()> Drop for CallOnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

// async-executor: drop.rs executor_cancels_everything
#[test]
fn dropping_the_runtime_drops_a_pending_task_and_its_waker_stays_harmless() {
    static DROP: AtomicUsize = AtomicUsize::new(0);
    static WAKER: Mutex<Option<Waker>> = Mutex::new(None);

    let rt = overlap::Runtime::new().unwrap();
    let mut task = rt.spawn(async {
        let _guard = CallOnDrop(|| {
            DROP.fetch_add(1, Ordering::SeqCst);
        });
        std::future::poll_fn(|cx| {
            *WAKER.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
        .await;
    });
    rt.block_on(overlap::yield_now()); // the task runs once: `ex.tick()`
    assert!(WAKER.lock().unwrap().is_some());
    assert_eq!(DROP.load(Ordering::SeqCst), 0);

    drop(rt);
    assert_eq!(
        DROP.load(Ordering::SeqCst),
        1,
        "the task's future is dropped"
    );
    // The waker it kept outlives the runtime: waking it does nothing.
    WAKER.lock().unwrap().take().unwrap().wake();
    // smol's `Task` panics here; overlap's handle reports the task cancelled.
    match ManualTask::default().poll(Pin::new(&mut task)) {
        Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "{e:?}"),
        other => panic!(
            "expected a cancelled task, got {:?}",
            other.map(|r| r.is_ok())
        ),
    }
    assert_eq!(DROP.load(Ordering::SeqCst), 1);
}

// async-executor: drop.rs leaked_executor_leaks_everything
#[test]
fn a_forgotten_runtime_keeps_its_pending_task() {
    static DROP: AtomicUsize = AtomicUsize::new(0);

    let rt = overlap::Runtime::new().unwrap();
    let mut task = rt.spawn(async {
        let _guard = CallOnDrop(|| {
            DROP.fetch_add(1, Ordering::SeqCst);
        });
        std::future::pending::<()>().await;
    });
    rt.block_on(overlap::yield_now());
    std::mem::forget(rt);
    assert_eq!(DROP.load(Ordering::SeqCst), 0);
    assert!(ManualTask::default().poll(Pin::new(&mut task)).is_pending());
    assert_eq!(DROP.load(Ordering::SeqCst), 0);
    std::mem::forget(task);
}

// async-executor: drop.rs await_task_after_dropping_executor
#[test]
fn a_finished_tasks_output_can_be_taken_after_its_runtime_is_gone() {
    let s: String = "hello".into();
    let rt = overlap::Runtime::new().unwrap();
    let s2 = s.clone();
    let mut task = rt.spawn(async move { s2 });
    run_until_finished(&rt, &task);
    drop(rt);
    match ManualTask::default().poll(Pin::new(&mut task)) {
        Poll::Ready(Ok(out)) => assert_eq!(out, "hello"),
        other => panic!("expected the output, got {:?}", other.map(|r| r.is_ok())),
    }
}

/// Runs `rt` until `task` has finished (`ex.try_tick()` until it did).
fn run_until_finished<T>(rt: &overlap::Runtime, task: &overlap::JoinHandle<T>) {
    rt.block_on(async {
        while !task.is_finished() {
            overlap::yield_now().await;
        }
    });
}

/// A runtime that has run, to completion, a task whose output counts its drops in `drops`.
fn finished_task(
    drops: &'static AtomicUsize,
) -> (overlap::Runtime, overlap::JoinHandle<CallOnDrop<impl Fn()>>) {
    let rt = overlap::Runtime::new().unwrap();
    let task = rt.spawn(async move {
        CallOnDrop(move || {
            drops.fetch_add(1, Ordering::SeqCst);
        })
    });
    run_until_finished(&rt, &task);
    (rt, task)
}

// async-executor: drop.rs drop_executor_and_then_drop_finished_task,
// drop_finished_task_and_then_drop_executor
#[test]
fn a_finished_tasks_output_is_dropped_with_its_handle_not_its_runtime() {
    static FIRST: AtomicUsize = AtomicUsize::new(0);
    let (rt, task) = finished_task(&FIRST);
    assert_eq!(FIRST.load(Ordering::SeqCst), 0);
    drop(rt);
    assert_eq!(FIRST.load(Ordering::SeqCst), 0, "kept for the handle");
    drop(task);
    assert_eq!(FIRST.load(Ordering::SeqCst), 1);

    static SECOND: AtomicUsize = AtomicUsize::new(0);
    let (rt, task) = finished_task(&SECOND);
    drop(task);
    assert_eq!(
        SECOND.load(Ordering::SeqCst),
        1,
        "nobody can take it any more"
    );
    drop(rt);
    assert_eq!(SECOND.load(Ordering::SeqCst), 1);
}

// async-executor: panic_prop.rs (a task's panic reaches whoever awaits it; the runtime
// and its other tasks go on)
#[test]
fn a_tasks_panic_reaches_its_handle_and_the_runtime_goes_on() {
    let rt = overlap::Runtime::new().unwrap();
    let err = rt
        .block_on(rt.spawn(async { panic!("task panicked") }))
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(panic_message(err.into_panic()), "task panicked");
    assert_eq!(rt.block_on(rt.spawn(async { 7 })).unwrap(), 7);
}
