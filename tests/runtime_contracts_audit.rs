//! Promises of the `Runtime` and `Handle` rustdoc that no other test held to: which runtime
//! is current for the destructors a runtime's drop runs, a destructor that panics in that
//! drop, what an `AbortHandle` keeps alive, and `metrics` where no runtime runs.

mod support;

use std::cell::Cell;
use std::future::pending;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use overlap::{Handle, JoinHandle, Runtime};
use support::{within, DropFlag};

const HANG: Duration = Duration::from_secs(20);

/// `Runtime`'s drop "drops every task's future that has not finished, on the dropping
/// thread": dropped inside another runtime's `block_on`, it is the dropped runtime that is
/// current for those destructors, so a destructor's `spawn` lands there and is cancelled
/// unpolled (as `Handle::spawn` into a runtime "being dropped" is), not in the runtime that
/// runs; and that one is current again afterwards.
#[test]
fn a_runtime_dropped_inside_another_is_current_for_its_tasks_destructors() {
    struct SpawnOnDrop {
        late: Rc<Cell<Option<JoinHandle<()>>>>,
        polled: Rc<Cell<bool>>,
        flag: Option<DropFlag>,
    }
    impl Drop for SpawnOnDrop {
        fn drop(&mut self) {
            let polled = self.polled.clone();
            let flag = self.flag.take();
            self.late.set(Some(overlap::spawn(async move {
                let _owned = flag;
                polled.set(true);
            })));
        }
    }
    overlap::block_on(async {
        let late = Rc::new(Cell::new(None));
        let polled = Rc::new(Cell::new(false));
        let (flag, dropped) = DropFlag::new();
        let inner = Runtime::new().unwrap();
        let guard = SpawnOnDrop {
            late: late.clone(),
            polled: polled.clone(),
            flag: Some(flag),
        };
        inner.spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        drop(inner);
        let late = late.take().expect("the destructor did not run in the drop");
        assert!(
            dropped.get(),
            "the late spawn's future is still held somewhere"
        );
        assert!(late.is_finished());
        let err = within(HANG, late, "late spawn").await.unwrap_err();
        assert!(err.is_cancelled());
        support::settle().await;
        assert!(
            !polled.get(),
            "the destructor's spawn ran in the outer runtime"
        );
        assert_eq!(overlap::spawn(async { 5 }).await.unwrap(), 5);
    });
}

/// A task's future whose destructor panics while the runtime is dropped: the panic stays in
/// the task, as with an abort ("a panic one if the future's destructor panicked"): the drop
/// does not unwind, every other future is still dropped, and the handles, which outlive the
/// runtime, read a panic error with its payload and a cancelled one.
#[test]
fn a_destructor_panicking_in_a_runtimes_drop_stays_in_its_task() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            std::panic::panic_any(17_u32);
        }
    }
    let rt = Runtime::new().unwrap();
    let (before_flag, before) = DropFlag::new();
    let (after_flag, after) = DropFlag::new();
    let first = rt.spawn(async move {
        let _owned = before_flag;
        pending::<()>().await;
    });
    let loud = rt.spawn(async move {
        let _owned = PanicOnDrop;
        pending::<()>().await;
    });
    let last = rt.spawn(async move {
        let _owned = after_flag;
        pending::<()>().await;
    });
    rt.block_on(support::settle());
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(rt)));
    assert!(dropped.is_ok(), "the runtime's drop unwound");
    assert!(before.get() && after.get(), "a future was left undropped");
    overlap::block_on(async {
        let payload = loud.await.unwrap_err().into_panic();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&17));
        assert!(first.await.unwrap_err().is_cancelled());
        assert!(last.await.unwrap_err().is_cancelled());
    });
}

/// `AbortHandle`: "It keeps the task's memory (not its future, nor its output) alive until
/// dropped", and its `id`: "This handle keeps it from being reused". With only an `AbortHandle` left, a finished task's output is dropped (at its
/// end for a detached task, at the `JoinHandle`'s drop for one that was held), and so is
/// the future's own state.
#[test]
fn an_abort_handle_keeps_neither_the_future_nor_the_output_alive() {
    overlap::block_on(async {
        // Detached before it ran: output dropped as it completes.
        let (out_flag, out) = DropFlag::new();
        let (state_flag, state) = DropFlag::new();
        let task = overlap::spawn(async move {
            let _state = state_flag;
            overlap::yield_now().await;
            out_flag
        });
        let stop = task.abort_handle();
        drop(task);
        within(
            HANG,
            async {
                while !stop.is_finished() {
                    overlap::yield_now().await;
                }
            },
            "detached task",
        )
        .await;
        assert!(state.get(), "the future's state outlived its end");
        assert!(out.get(), "the output was kept for an abort handle");

        // Finished while its handle was held: the output goes with the handle.
        let (out_flag, out) = DropFlag::new();
        let task = overlap::spawn(async move { out_flag });
        let stop = task.abort_handle();
        support::settle().await;
        assert!(task.is_finished() && stop.is_finished());
        assert!(
            !out.get(),
            "dropped while its JoinHandle could still take it"
        );
        drop(task);
        assert!(out.get(), "the output was kept for an abort handle");
        stop.abort(); // nothing left to stop
        assert!(stop.is_finished());

        // The memory it keeps is the task's cell, and with it the ID ("This handle keeps it
        // from being reused"): tasks spawned and freed one after another take each other's
        // IDs (a freed cell is the next one allocated), never the one held.
        let held = stop.id();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            // Laid out as the held task, so that its cell, if freed, would fit.
            let (flag, _) = DropFlag::new();
            let next = overlap::spawn(async move { flag });
            assert_ne!(next.id(), held, "a held task's ID was given to a new task");
            seen.insert(next.id());
            drop(next.await.unwrap());
        }
        assert!(
            seen.len() < 200,
            "no ID was reused at all: the check above proves nothing"
        );
        drop(stop);
    });
}

/// `metrics`: "When called outside a runtime, as on a blocking-pool thread or in
/// `Handle::block_on`, which run none (there `Handle::current().spawn(async {
/// overlap::metrics() })` asks the runtime's thread)". The panic there names that call, and
/// the call works.
#[test]
fn metrics_on_a_pool_thread_panics_naming_the_handle_call_that_works() {
    let outside = catch_unwind(overlap::metrics).expect_err("metrics outside a runtime");
    assert!(support::panic_message(outside).contains("outside of a runtime"));
    let spawned = overlap::block_on(async {
        let here = overlap::metrics().tasks_spawned;
        let from_pool = overlap::spawn_blocking(move || {
            let refused = catch_unwind(overlap::metrics).expect_err("metrics on a pool thread");
            let said = support::panic_message(refused);
            let handle = Handle::current();
            let remote = handle.spawn(async { overlap::metrics().tasks_spawned });
            (said, handle.block_on(remote).unwrap())
        });
        let (said, there) = within(HANG, from_pool, "pool job").await.unwrap();
        assert!(said.contains("blocking-pool thread"), "{said}");
        assert!(
            said.contains("Handle::current().spawn(async { overlap::metrics() })"),
            "{said}"
        );
        (here, there)
    });
    // Read on the runtime's thread, by the task the pool thread spawned: it counts itself.
    assert!(spawned.1 > spawned.0, "{spawned:?}");
}
