//! Spawning, joining, `!Send` tasks, panics, aborts and detaching.

mod support;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use overlap::{block_on, spawn, yield_now, Runtime};

#[test]
fn spawn_and_join_100k_tasks() {
    let total = block_on(async {
        let handles: Vec<_> = (0..100_000u64)
            .map(|i| spawn(async move { i * 2 }))
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        total
    });
    assert_eq!(total, 99_999 * 100_000);
}

#[test]
fn not_send_futures_share_rc_refcell() {
    block_on(async {
        let shared = Rc::new(RefCell::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..10 {
            let s = shared.clone();
            handles.push(spawn(async move {
                yield_now().await;
                s.borrow_mut().push(i);
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let mut v = shared.borrow().clone();
        v.sort();
        assert_eq!(v, (0..10).collect::<Vec<_>>());
    });
}

#[test]
fn tasks_run_in_spawn_order() {
    let order = block_on(async {
        let order = Rc::new(RefCell::new(Vec::new()));
        let hs: Vec<_> = (0..5)
            .map(|i| {
                let o = order.clone();
                spawn(async move { o.borrow_mut().push(i) })
            })
            .collect();
        for h in hs {
            h.await.unwrap();
        }
        let v = order.borrow().clone();
        v
    });
    assert_eq!(order, [0, 1, 2, 3, 4]);
}

#[test]
fn panic_is_isolated_to_its_task() {
    block_on(async {
        let bad = spawn(async { panic!("boom in task") });
        let good = spawn(async { 5 });
        let err = bad.await.unwrap_err();
        assert!(err.is_panic());
        assert!(!err.is_cancelled());
        assert_eq!(err.to_string(), "task panicked: boom in task");
        assert_eq!(
            *err.into_panic().downcast::<&str>().unwrap(),
            "boom in task"
        );
        assert_eq!(good.await.unwrap(), 5);
        // Later spawns still work.
        assert_eq!(spawn(async { 6 }).await.unwrap(), 6);
    });
}

#[test]
fn panic_in_block_on_future_propagates_and_runtime_stays_usable() {
    let rt = Runtime::new().unwrap();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { panic!("main future panicked") })
    }));
    let payload = res.unwrap_err();
    assert_eq!(*payload.downcast::<&str>().unwrap(), "main future panicked");
    assert_eq!(rt.block_on(async { spawn(async { 1 }).await.unwrap() }), 1);
}

#[test]
fn abort_pending_task_drops_future_and_reports_cancelled() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    block_on(async {
        let dropped = Rc::new(Cell::new(false));
        let flag = Flag(dropped.clone());
        let h = spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        yield_now().await; // let it start and park
        assert!(!h.is_finished());
        h.abort();
        let err = h.await.unwrap_err();
        assert!(err.is_cancelled());
        assert!(dropped.get(), "aborting must drop the future");
    });
}

#[test]
fn abort_after_completion_keeps_output() {
    block_on(async {
        let h = spawn(async { 9 });
        yield_now().await;
        assert!(h.is_finished());
        h.abort();
        assert_eq!(h.await.unwrap(), 9);
    });
}

#[test]
fn task_can_abort_itself() {
    block_on(async {
        let slot: Rc<RefCell<Option<overlap::JoinHandle<()>>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let reached_end = Rc::new(Cell::new(false));
        let r = reached_end.clone();
        let h = spawn(async move {
            yield_now().await;
            if let Some(me) = s.borrow().as_ref() {
                me.abort();
            }
            yield_now().await;
            r.set(true);
        });
        *slot.borrow_mut() = Some(h);
        while !slot.borrow().as_ref().unwrap().is_finished() {
            yield_now().await;
        }
        let h = slot.borrow_mut().take().unwrap();
        assert!(h.await.unwrap_err().is_cancelled());
        assert!(!reached_end.get());
    });
}

#[test]
fn dropping_join_handle_detaches_task() {
    block_on(async {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        drop(spawn(async move {
            yield_now().await;
            d.set(true);
        }));
        for _ in 0..10 {
            yield_now().await;
        }
        assert!(done.get());
        assert_eq!(overlap::metrics().tasks_alive, 0);
    });
}

#[test]
fn detach_lets_the_task_run_to_completion_as_smol_does() {
    block_on(async {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        // smol's spelling: `smol::spawn(fut).detach()`.
        spawn(async move {
            yield_now().await;
            d.set(true);
        })
        .detach();
        for _ in 0..10 {
            yield_now().await;
        }
        assert!(done.get());
        assert_eq!(overlap::metrics().tasks_alive, 0);
    });
}

#[test]
fn spawn_outside_runtime_panics_with_clear_message() {
    let err = std::panic::catch_unwind(|| spawn(async {})).unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned());
    assert!(msg.unwrap().contains("outside of a runtime"));
}

#[test]
fn nested_block_on_panics_with_clear_message() {
    let err = std::panic::catch_unwind(|| block_on(async { block_on(async {}) })).unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned());
    assert!(msg.unwrap().contains("within a runtime"));
}

#[test]
fn woken_many_times_is_polled_once() {
    block_on(async {
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let h = spawn(poll_fn(move |cx| {
            p.set(p.get() + 1);
            if p.get() == 1 {
                for _ in 0..100 {
                    cx.waker().wake_by_ref();
                }
                let w = cx.waker().clone();
                w.wake();
                return Poll::Pending;
            }
            Poll::Ready(())
        }));
        h.await.unwrap();
        assert_eq!(polls.get(), 2, "101 wakes must queue the task once");
    });
}

#[test]
fn pending_tasks_resume_in_next_block_on() {
    let rt = Runtime::new().unwrap();
    let flag = Rc::new(Cell::new(0));
    let f = flag.clone();
    let h = rt.spawn(async move {
        f.set(1);
        yield_now().await;
        f.set(2);
        7
    });
    assert_eq!(flag.get(), 0, "nothing runs outside block_on");
    assert_eq!(rt.block_on(h).unwrap(), 7);
    assert_eq!(flag.get(), 2);
}

/// Reads, when dropped, the value it borrows and reports it.
struct ReadOnDrop<'a> {
    borrowed: &'a [Cell<u64>; 8],
    report: Rc<Cell<u64>>,
}

impl Drop for ReadOnDrop<'_> {
    fn drop(&mut self) {
        let sum = self.borrowed.iter().map(Cell::get).sum();
        self.report.set(sum);
    }
}

/// A task suspended while one of its locals borrows another, and whose destructor reads
/// the borrowed one: what `mpsc::Send` does with its sender, or any intrusive waiter.
async fn self_borrowing(report: Rc<Cell<u64>>) {
    let local = [(); 8].map(|_| Cell::new(0x0101_0101));
    let _reader = ReadOnDrop {
        borrowed: &local,
        report,
    };
    std::future::pending::<()>().await;
}

#[test]
fn a_pinned_future_is_dropped_in_place_when_aborted_or_dropped_with_the_runtime() {
    // Dropping the future anywhere but where it was polled would make the reader see the
    // cell's new contents (the cancelled result) instead of its own local.
    let expected = 8 * 0x0101_0101;
    let rt = Runtime::new().unwrap();
    let (aborted, shut) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let a = rt.spawn(self_borrowing(aborted.clone()));
    drop(rt.spawn(self_borrowing(shut.clone())));
    rt.block_on(async {
        yield_now().await; // both run and suspend
        a.abort();
        assert!(a.await.unwrap_err().is_cancelled());
    });
    assert_eq!(aborted.get(), expected);
    drop(rt);
    assert_eq!(shut.get(), expected);
}

/// Runs a task whose handle a hand-written combinator polls once with `waker`, which the
/// task's completion then calls; returns the handle's output, or `None` if a panic unwound
/// out of `block_on`. The task must leave the registry and the loop go on either way.
fn join_with_waker(waker: std::task::Waker) -> Option<u32> {
    use std::future::Future;
    use std::task::Context;

    let rt = Runtime::new().unwrap();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let mut handle = Box::pin(spawn(async {
                yield_now().await;
                5u32
            }));
            let first = handle.as_mut().poll(&mut Context::from_waker(&waker));
            assert!(first.is_pending());
            for _ in 0..4 {
                yield_now().await;
            }
            handle.await.unwrap()
        })
    }));
    assert_eq!(rt.metrics().tasks_alive, 0, "the task left the registry");
    // The loop still runs tasks.
    assert_eq!(rt.block_on(async { spawn(async { 6 }).await.unwrap() }), 6);
    out.ok()
}

#[test]
fn a_panicking_join_waker_does_not_take_the_loop_down() {
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    struct PanicOnWake;
    impl Wake for PanicOnWake {
        fn wake(self: Arc<Self>) {
            panic!("a user's waker panics");
        }
    }
    let out = join_with_waker(Waker::from(Arc::new(PanicOnWake)));
    assert_eq!(out, Some(5), "the task completed and its output was kept");
}

#[test]
fn a_join_waker_panicking_with_a_payload_that_panics_when_dropped_does_not_take_the_loop_down() {
    let out = join_with_waker(support::waker_panicking_twice());
    assert_eq!(out, Some(5), "the payload's panic unwound out of the loop");
}

/// As tokio's: `JoinError` is `Send + Sync`, so `?` turns it into a
/// `Box<dyn Error + Send + Sync>` (or an `anyhow::Error`).
#[test]
fn join_error_converts_into_a_send_sync_boxed_error() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<overlap::JoinError>();
    fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        block_on(async { spawn(async { panic!("boom") }).await })?;
        Ok(())
    }
    let err = run().unwrap_err();
    assert!(err.to_string().contains("panic"), "{err}");
}

/// `task_polls` counts polls of a future: a task aborted before it first ran is dropped,
/// not polled. `budget_exhausted` counts polls that ran out of budget, once each, however
/// many operations they tried after that.
#[test]
fn poll_and_budget_metrics_count_what_their_docs_say() {
    block_on(async {
        let before = overlap::metrics().task_polls;
        let task = spawn(async {});
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(overlap::metrics().task_polls - before, 0);

        async fn spend(n: usize) {
            for _ in 0..n {
                poll_fn(overlap::coop_poll_proceed).await;
            }
        }
        let before = overlap::metrics();
        spawn(futures_util::future::join(spend(1000), spend(1000)))
            .await
            .unwrap();
        let after = overlap::metrics();
        let polls = after.task_polls - before.task_polls;
        let exhausted = after.budget_exhausted - before.budget_exhausted;
        // 2,000 operations at 128 per poll: about 16 polls, all but the last exhausted.
        assert!(exhausted > 0 && exhausted < polls, "{exhausted} of {polls}");
    });
}
