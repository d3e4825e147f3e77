//! `Handle::block_on`: synchronous code on another thread waits for async work, and a
//! runtime's own loop is never blocked by it.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use overlap::{Handle, Runtime};
use support::{panic_message as message, Mailbox};

#[test]
fn a_plain_thread_waits_for_a_timer_task_that_runs_on_the_runtime_thread() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let runtime_thread = thread::current().id();
    let waiter = thread::spawn(move || {
        let task = handle.spawn_with(|| async {
            overlap::time::sleep(Duration::from_millis(2)).await;
            (thread::current().id(), 7)
        });
        handle.block_on(task).unwrap()
    });
    // The runtime runs until the waiting thread has its answer.
    let done = rt.block_on(async { overlap::spawn_blocking(move || waiter.join().unwrap()).await });
    let (ran_on, value) = done.unwrap();
    assert_eq!(value, 7);
    assert_eq!(ran_on, runtime_thread);
}

#[test]
fn the_handle_is_current_inside_and_the_previous_one_comes_back_after() {
    let rt = Runtime::new().unwrap();
    let other = Runtime::new().unwrap();
    let (handle, other_handle) = (rt.handle(), other.handle());
    let seen = thread::spawn(move || {
        assert!(Handle::try_current().is_none());
        let inside = handle.block_on(async { format!("{:?}", Handle::current()) });
        let after = Handle::try_current().map(|h| format!("{h:?}"));
        let nested = other_handle.block_on(async {
            // Nested: the inner call's handle is current until it returns.
            handle.block_on(async { format!("{:?}", Handle::current()) })
        });
        (inside, after, nested, format!("{handle:?}"))
    })
    .join()
    .unwrap();
    assert_eq!(seen.0, seen.3);
    assert_eq!(seen.1, None);
    assert_eq!(seen.2, seen.3);
    drop(other);
}

#[test]
fn a_wake_from_another_thread_is_never_lost() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    // Each round races the wake against the park.
    for round in 0..500u32 {
        let mailbox = Arc::new(Mailbox::<u32>::default());
        let filler = mailbox.clone();
        let t = thread::spawn(move || filler.put(round));
        assert_eq!(handle.block_on(mailbox.take()), round);
        t.join().unwrap();
    }
}

#[test]
fn a_panic_in_the_future_reaches_the_caller() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        handle.block_on(async { panic!("inside the blocked-on future") })
    }));
    assert_eq!(message(caught.unwrap_err()), "inside the blocked-on future");
    // Afterwards the handle is no longer current.
    assert!(Handle::try_current().is_none());
}

#[test]
fn inside_a_task_it_panics_instead_of_stopping_the_loop() {
    let rt = Runtime::new().unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let msg = rt.block_on(async move {
        let task = overlap::spawn(async move {
            catch_unwind(AssertUnwindSafe(|| {
                Handle::current().block_on(async { r.store(true, Ordering::SeqCst) })
            }))
        });
        message(task.await.unwrap().unwrap_err())
    });
    assert!(msg.contains("Handle::block_on"), "{msg}");
    assert!(!ran.load(Ordering::SeqCst), "the future must not run");
}

#[test]
fn inside_a_task_with_another_runtime_entered_it_still_panics() {
    let rt = Runtime::new().unwrap();
    let other = Runtime::new().unwrap();
    let other_handle = other.handle();
    let caught = rt.block_on(async {
        let _guard = other.enter();
        catch_unwind(AssertUnwindSafe(|| other_handle.block_on(async {})))
    });
    assert!(message(caught.unwrap_err()).contains("Handle::block_on"));
}

#[test]
fn on_the_runtime_thread_outside_block_on_it_runs_futures_that_need_no_loop() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let mailbox = Arc::new(Mailbox::<&str>::default());
    let filler = mailbox.clone();
    let t = thread::spawn(move || filler.put("from a thread"));
    let _guard = rt.enter();
    assert_eq!(handle.block_on(mailbox.take()), "from a thread");
    t.join().unwrap();
}

#[test]
fn a_wake_of_the_outer_future_during_a_nested_call_is_not_lost() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let (done_tx, done) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (tx, rx) = overlap::sync::oneshot::channel::<u8>();
        let inner = handle.clone();
        let nested = async move {
            let mut tx = Some(tx);
            // Wakes the outer future (pending on `rx`), then itself: one unpark between the
            // two, which the nested call's park takes.
            inner.block_on(std::future::poll_fn(move |cx| match tx.take() {
                Some(tx) => {
                    tx.send(1).unwrap();
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
                None => std::task::Poll::Ready(()),
            }))
        };
        let (got, ()) = handle.block_on(futures_util::future::join(rx, nested));
        done_tx.send(got.unwrap()).unwrap();
    });
    // A hang guard, not a timing check: the calls return at once.
    let got = done.recv_timeout(Duration::from_secs(60));
    assert_eq!(got, Ok(1), "the outer Handle::block_on missed its wake");
}

#[test]
fn the_handle_is_current_inside_even_under_another_runtime_enter_guard() {
    let (entered, rt, inner) = (
        Runtime::new().unwrap(),
        Runtime::new().unwrap(),
        Runtime::new().unwrap(),
    );
    let handle = rt.handle();
    let _guard = entered.enter();
    let (seen, innermost) = handle.block_on(async {
        let seen = format!("{:?}", Handle::current());
        // A runtime entered inside the call is the current one there.
        let _inner = inner.enter();
        (seen, format!("{:?}", Handle::current()))
    });
    assert_eq!(seen, format!("{handle:?}"));
    assert_eq!(innermost, format!("{:?}", inner.handle()));
    assert_eq!(
        format!("{:?}", Handle::current()),
        format!("{:?}", entered.handle())
    );
}

/// A control thread holding a runtime's handle calls the runtime's free functions in
/// `Handle::block_on`, where `Handle::current()` works but no runtime runs: each panic says
/// so and names the call through the handle that works, where `spawn` and `metrics` said
/// "outside of a runtime" (`spawn` even told it to call from a future run by `block_on`,
/// which it was) and `spawn_blocking` said "on a blocking-pool thread".
#[test]
fn the_free_functions_in_it_say_no_runtime_runs_there_and_name_the_handle_call() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let said = thread::spawn(move || {
        let calls: [fn(); 4] = [
            || drop(overlap::spawn(async {})),
            || drop(overlap::spawn_blocking(|| ())),
            || {
                let _ = overlap::metrics();
            },
            overlap::time::pause,
        ];
        calls.map(|call| message(catch_unwind(|| handle.block_on(async { call() })).unwrap_err()))
    })
    .join()
    .unwrap();
    let instead = [
        "Handle::current().spawn(",
        "Handle::current().spawn_blocking(",
        "Handle::current().spawn(async { overlap::metrics() })",
        "Handle::current().spawn(async { overlap::time::pause() })",
    ];
    for (said, instead) in said.iter().zip(instead) {
        assert!(said.contains("in `Handle::block_on`"), "{said}");
        assert!(said.contains("which runs no runtime"), "{said}");
        assert!(said.contains(instead), "{said}");
    }
    drop(rt);
}
