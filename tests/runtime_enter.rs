//! `Runtime::enter`: what is made under the guard belongs to that runtime and runs at its
//! next `block_on`; guards nest and may drop in any order (the last one entered among those
//! left is current, never a runtime that is gone); no `block_on` runs inside another.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::Runtime;
use support::panic_message;

#[test]
fn sockets_timers_and_tasks_made_under_the_guard_run_at_block_on() {
    let rt = Runtime::new().unwrap();
    let (listener, server, nap) = {
        let _guard = rt.enter();
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = overlap::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
            buf
        });
        (addr, server, overlap::time::sleep(Duration::from_millis(5)))
    };
    assert!(!server.is_finished(), "nothing runs before block_on");
    let echoed = rt.block_on(async move {
        nap.await;
        let mut c = TcpStream::connect(listener).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&server.await.unwrap(), b"hello");
        back
    });
    assert_eq!(&echoed, b"hello");
}

#[test]
fn block_on_runs_under_its_own_guard_and_guards_nest() {
    let a = Runtime::new().unwrap();
    let b = Runtime::new().unwrap();
    let _outer = a.enter();
    // block_on while the runtime is only entered.
    assert_eq!(
        a.block_on(async { overlap::spawn(async { 1 }).await.unwrap() }),
        1
    );
    // Inside a's loop, entering b sends spawns to b; leaving it gives a back.
    let mut for_b = None;
    a.block_on(async {
        for_b = Some({
            let _inner = b.enter();
            overlap::spawn(async { "ran on b" })
        });
        let on_a = overlap::spawn(async { "ran on a" }).await.unwrap();
        assert_eq!(on_a, "ran on a");
    });
    let for_b = for_b.unwrap();
    assert!(!for_b.is_finished(), "b has not run yet");
    assert_eq!(b.block_on(for_b).unwrap(), "ran on b");
    // Still a block_on inside a block_on is refused.
    let nested = catch_unwind(AssertUnwindSafe(|| {
        a.block_on(async { b.block_on(async {}) })
    }));
    let msg = panic_message(nested.unwrap_err());
    assert!(msg.contains("within a runtime"), "{msg}");
}

#[test]
fn guards_dropped_in_any_order_leave_the_last_one_entered_current() {
    let a = Runtime::new().unwrap();
    let b = Runtime::new().unwrap();
    let first = a.enter();
    let second = b.enter();
    drop(first); // out of order: b stays current
    let on_b = overlap::spawn(async { "b" });
    drop(second);
    let spawned = catch_unwind(|| overlap::spawn(async {}));
    let msg = panic_message(spawned.unwrap_err());
    assert!(msg.contains("outside"), "a runtime is still current: {msg}");
    assert_eq!(b.block_on(on_b).unwrap(), "b");

    // A guard that outlives the block_on it was made in (and the runtime that ran it):
    // its own runtime is current afterwards, never the one that is gone.
    let x = Runtime::new().unwrap();
    let mut guard = None;
    {
        let gone = Runtime::new().unwrap();
        gone.block_on(async { guard = Some(x.enter()) });
    }
    let on_x = overlap::spawn(async { overlap::metrics().tasks_spawned });
    // A guard moved into its own runtime's block_on and dropped there: still current.
    let spawned = x.block_on(async move {
        drop(guard);
        overlap::spawn(async { 5 }).await.unwrap()
    });
    assert_eq!(spawned, 5);
    assert!(x.block_on(on_x).unwrap() >= 1);
}

#[test]
fn no_block_on_inside_a_block_on_even_with_another_runtime_entered() {
    let a = Runtime::new().unwrap();
    let x = Runtime::new().unwrap();
    let nested = catch_unwind(AssertUnwindSafe(|| {
        a.block_on(async {
            let _x = x.enter();
            a.block_on(async {})
        })
    }));
    let msg = panic_message(nested.unwrap_err());
    assert!(msg.contains("within a runtime"), "{msg}");
    let nested = catch_unwind(AssertUnwindSafe(|| {
        a.block_on(async {
            let _x = x.enter();
            x.block_on(async {})
        })
    }));
    let msg = panic_message(nested.unwrap_err());
    assert!(msg.contains("within a runtime"), "{msg}");
    // Both runtimes still work.
    assert_eq!(a.block_on(async { 1 }), 1);
    assert_eq!(x.block_on(async { 2 }), 2);
}

thread_local! {
    static KEPT: Runtime = Runtime::new().unwrap();
}

#[test]
fn a_runtime_kept_in_a_thread_local_shuts_down_at_thread_exit() {
    // Its drop enters it while the thread's thread-locals are being destroyed.
    let worker = std::thread::spawn(|| KEPT.with(|rt| rt.block_on(async { 2 })));
    assert_eq!(worker.join().unwrap(), 2);
}

#[test]
fn a_guard_held_across_await_in_another_runtime_does_not_starve_the_task() {
    let a = Runtime::new().unwrap();
    let b = Runtime::new().unwrap();
    let got = a.block_on(async {
        let (tx, mut rx) = overlap::sync::mpsc::unbounded_channel();
        for i in 0..300u32 {
            tx.send(i).unwrap();
        }
        drop(tx);
        // The budget that ready receives spend is refilled by the loop polling this task
        // (a's), whichever runtime is current.
        let _b = b.enter();
        let mut n = 0;
        while rx.recv().await.is_some() {
            n += 1;
        }
        n
    });
    assert_eq!(got, 300);
}

/// Polls `fut` with a no-op waker until it is ready, at most `polls` times: another
/// executor, which knows nothing of overlap's budget.
fn poll_elsewhere<F: std::future::Future>(fut: F, polls: usize) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    (0..polls).find_map(|_| match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    })
}

#[test]
fn another_executor_under_a_guard_is_not_limited_by_the_budget() {
    let rt = Runtime::new().unwrap();
    // A block_on that spends its budget to the last unit leaves nothing behind.
    rt.block_on(async {
        let (tx, mut rx) = overlap::sync::mpsc::unbounded_channel();
        for i in 0..1000u32 {
            tx.send(i).unwrap();
        }
        drop(tx);
        while rx.recv().await.is_some() {}
    });
    let fresh = Runtime::new().unwrap();
    let _guard = fresh.enter();
    let (tx, mut rx) = overlap::sync::mpsc::unbounded_channel();
    for i in 0..300u32 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let got = poll_elsewhere(
        async {
            let mut n = 0;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        },
        10,
    );
    assert_eq!(
        got,
        Some(300),
        "the ready receives were held back by a budget"
    );
}

overlap::task_local! {
    static SCOPED: String;
}

thread_local! {
    static KEPT_WITH_SCOPE: Runtime = Runtime::new().unwrap();
}

/// Asks for the task-local and the current handle when dropped.
struct Peek;

impl Drop for Peek {
    fn drop(&mut self) {
        let _ = SCOPED.try_with(|v| v.len());
        let _ = overlap::Handle::try_current();
    }
}

thread_local! {
    static PEEK_AT_EXIT: Peek = const { Peek };
}

#[test]
fn task_locals_and_handles_at_thread_exit_neither_panic_nor_abort() {
    let worker = std::thread::spawn(|| {
        // Registered first, destroyed last: after the task-local's and the handle's own
        // thread-locals are gone.
        PEEK_AT_EXIT.with(|_| ());
        let _ = overlap::Handle::try_current();
        KEPT_WITH_SCOPE.with(|rt| {
            rt.block_on(async {
                // Left pending in the runtime: dropped when the thread's thread-locals go.
                drop(overlap::spawn(SCOPED.scope("scoped".into(), async {
                    let _peek = Peek;
                    std::future::pending::<()>().await;
                })));
                overlap::yield_now().await;
            })
        })
    });
    worker.join().unwrap();
}
