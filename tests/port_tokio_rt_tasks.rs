//! Behaviours of tokio's task-level runtime tests, ported to overlap's tasks and handles.
//! Each group names the tokio file (tokio/tests/…) it comes from:
//!
//! - `task_local_set.rs`, with `LocalSet` mapped to the plain runtime as README's "Coming
//!   from tokio" table says (`spawn_local` is `spawn`, `run_until(fut)` is `fut`): local tasks
//!   woken by each other and joined with `join_all`; tasks run only while the runtime is
//!   driven and resume at the next `block_on`; a `JoinHandle` awaited from another runtime
//!   on the same thread, or polled by hand with a foreign waker; a task spawned from a
//!   task's drop while it is aborted runs;
//! - `rt_basic.rs`: a `JoinHandle` handed from one task to another after the first polled
//!   it wakes the second; a task that awaits its own handle and is aborted; a task polled
//!   exactly once per wake (`no_extra_poll`); futures dropped at shutdown see their runtime
//!   as current (`drop_tasks_in_context`); a runtime dropped while its `block_on` unwinds,
//!   with tasks whose drops wake each other (`wake_in_drop_after_panic`);
//! - `task_yield_now.rs`: `yield_now` inside a task and in the `block_on` future, with a
//!   task-local in scope;
//! - `task_id.rs`: a task's ID inside its drop while aborted, and stale `AbortHandle`s
//!   that outlive their task never touch the tasks spawned after it;
//! - `rt_common.rs` (`spawn_from_other_thread_*`): tasks spawned from one other thread run
//!   in the order they were spawned, and run while the `block_on` future never stops
//!   yielding.

mod support;

use std::cell::{Cell, RefCell};
use std::future::{pending, poll_fn, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::Poll;
use std::thread;
use std::time::Duration;

use overlap::sync::{mpsc, oneshot};
use overlap::task::{AbortHandle, Id, JoinHandle};
use overlap::Runtime;
use support::{polled, within, DropFlag};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn local_tasks_woken_by_each_other_are_joined_by_join_all() {
    overlap::block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let mut tasks = Vec::new();
        for i in 0..10 {
            let tx = tx.clone();
            tasks.push(overlap::spawn(async move {
                overlap::yield_now().await;
                tx.send(i).unwrap();
            }));
        }
        drop(tx);
        let summer = overlap::spawn(async move {
            let mut sum = 0;
            while let Some(i) = rx.recv().await {
                sum += i;
            }
            sum
        });
        for out in overlap::future::join_all(tasks).await {
            out.unwrap();
        }
        assert_eq!(within(HANG, summer, "join_all").await.unwrap(), 45);
    });
}

#[test]
fn tasks_run_only_while_the_runtime_is_driven_and_resume_at_the_next_block_on() {
    let rt = Runtime::new().unwrap();
    let steps = Rc::new(Cell::new(0));
    let (tx, rx) = oneshot::channel::<()>();
    let task = rt.spawn({
        let steps = steps.clone();
        async move {
            steps.set(1);
            rx.await.unwrap();
            steps.set(2);
        }
    });
    assert_eq!(steps.get(), 0, "ran before any block_on");
    rt.block_on(overlap::yield_now());
    assert_eq!(steps.get(), 1);
    tx.send(()).unwrap();
    assert_eq!(steps.get(), 1, "ran outside block_on");
    rt.block_on(task).unwrap();
    assert_eq!(steps.get(), 2);
}

#[test]
fn a_join_handle_awaited_under_another_runtime_on_the_same_thread_is_woken() {
    let home = Runtime::new().unwrap();
    let away = Runtime::new().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let mut task = home.spawn(async move {
        rx.await.unwrap();
        "from home"
    });
    // `away` registers its waker in the handle, then `home` finishes the task.
    assert!(away.block_on(support::poll_once(&mut task)).is_pending());
    tx.send(()).unwrap();
    home.block_on(overlap::yield_now());
    assert!(task.is_finished());
    let out = away.block_on(async { within(HANG, task, "cross-runtime join").await });
    assert_eq!(out.unwrap(), "from home");
}

#[test]
fn a_join_handle_polled_by_hand_wakes_its_foreign_waker() {
    let rt = Runtime::new().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let mut join = polled(rt.spawn(async move {
        rx.await.unwrap();
        7
    }));
    assert!(join.poll().is_pending());
    rt.block_on(overlap::yield_now());
    assert!(!join.is_woken(), "woken before the task finished");
    tx.send(()).unwrap();
    rt.block_on(overlap::yield_now());
    assert!(join.is_woken(), "the foreign waker was not woken");
    match join.poll() {
        Poll::Ready(out) => assert_eq!(out.unwrap(), 7),
        Poll::Pending => panic!("pending after its waker was woken"),
    }
}

#[test]
fn a_task_spawned_from_a_drop_while_its_task_is_aborted_runs() {
    overlap::block_on(async {
        let (tx, rx) = oneshot::channel();
        struct SpawnOnDrop(Option<oneshot::Sender<&'static str>>);
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let tx = self.0.take().unwrap();
                overlap::spawn(async move {
                    overlap::yield_now().await;
                    tx.send("spawned from a drop").unwrap();
                })
                .detach();
            }
        }
        let guard = SpawnOnDrop(Some(tx));
        let task = overlap::spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        overlap::yield_now().await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(
            within(HANG, rx, "the spawned task").await.unwrap(),
            "spawned from a drop"
        );
    });
}

#[test]
fn a_join_handle_moved_to_another_task_after_a_poll_wakes_the_new_one() {
    overlap::block_on(async {
        let (finish, finished) = oneshot::channel::<()>();
        let (hand_over, handed) = oneshot::channel::<JoinHandle<u32>>();
        let target = overlap::spawn(async move {
            finished.await.unwrap();
            42
        });
        // The first waiter polls the handle once, then passes it on and stays parked.
        let first = overlap::spawn(async move {
            let mut target = target;
            assert!(support::poll_once(&mut target).await.is_pending());
            hand_over.send(target).ok().unwrap();
            pending::<()>().await;
        });
        let second = overlap::spawn(async move { handed.await.unwrap().await.unwrap() });
        support::settle().await;
        finish.send(()).unwrap();
        assert_eq!(within(HANG, second, "the new waiter").await.unwrap(), 42);
        first.abort();
    });
}

#[test]
fn a_task_awaiting_its_own_handle_is_aborted_cleanly() {
    for through_runtime_drop in [false, true] {
        let rt = Runtime::new().unwrap();
        let (flag, dropped) = DropFlag::new();
        let (tx, rx) = oneshot::channel::<JoinHandle<()>>();
        let task = rt.spawn(async move {
            let _flag = flag;
            let own = rx.await.unwrap();
            // Never ready: the task waits for itself.
            own.await.unwrap();
        });
        let abort = task.abort_handle();
        tx.send(task).ok().unwrap();
        rt.block_on(support::settle());
        assert!(!dropped.get());
        if through_runtime_drop {
            drop(rt);
        } else {
            abort.abort();
            rt.block_on(support::settle());
            assert_eq!(rt.metrics().tasks_alive, 0);
        }
        assert!(dropped.get());
        assert!(abort.is_finished());
    }
}

overlap::task_local! {
    static NAME: &'static str;
}

#[test]
fn yield_now_keeps_task_locals_and_lets_others_run_in_tasks_and_block_on() {
    overlap::block_on(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let task = overlap::spawn({
            let log = log.clone();
            NAME.scope("task", async move {
                for _ in 0..3 {
                    log.borrow_mut().push(NAME.get());
                    overlap::yield_now().await;
                }
            })
        });
        NAME.scope("main", async {
            for _ in 0..3 {
                log.borrow_mut().push(NAME.get());
                overlap::yield_now().await;
            }
        })
        .await;
        task.await.unwrap();
        let log = log.borrow();
        assert_eq!(log.len(), 6);
        // Each yield of the block_on future let the task in: the names interleave.
        assert!(log.windows(2).all(|w| w[0] != w[1]), "{log:?}");
    });
}

#[test]
fn yield_now_in_a_task_returns_after_one_turn_and_is_polled_twice() {
    overlap::block_on(async {
        let polls = Rc::new(Cell::new(0));
        let task = overlap::spawn({
            let polls = polls.clone();
            let mut yielded = Box::pin(overlap::yield_now());
            poll_fn(move |cx| {
                polls.set(polls.get() + 1);
                yielded.as_mut().poll(cx)
            })
        });
        within(HANG, task, "yield_now").await.unwrap();
        assert_eq!(polls.get(), 2);
    });
}

#[test]
fn an_aborted_task_sees_its_own_id_while_dropped() {
    overlap::block_on(async {
        struct SeeId(Rc<Cell<Option<Id>>>);
        impl Drop for SeeId {
            fn drop(&mut self) {
                self.0.set(overlap::task::try_id());
            }
        }
        let seen = Rc::new(Cell::new(None));
        let guard = SeeId(seen.clone());
        let task = overlap::spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        let id = task.id();
        overlap::yield_now().await;
        task.abort();
        let err = task.await.unwrap_err();
        assert_eq!(seen.get(), Some(id));
        assert_eq!(err.id(), id);
    });
}

#[test]
fn stale_abort_handles_never_touch_tasks_spawned_after_theirs_finished() {
    overlap::block_on(async {
        let mut stale: Vec<AbortHandle> = Vec::new();
        for _ in 0..64 {
            let task = overlap::spawn(async {});
            stale.push(task.abort_handle());
            task.await.unwrap();
        }
        // New tasks, some perhaps at the freed addresses of tasks whose handles are gone.
        let fresh: Vec<_> = (0..256)
            .map(|i| {
                overlap::spawn(async move {
                    overlap::yield_now().await;
                    i
                })
            })
            .collect();
        let ids: Vec<Id> = fresh.iter().map(JoinHandle::id).collect();
        for handle in &stale {
            assert!(handle.is_finished());
            assert!(
                !ids.contains(&handle.id()),
                "a live task shares a stale handle's ID"
            );
            handle.abort();
        }
        let from_thread = stale.split_off(32);
        thread::spawn(move || from_thread.iter().for_each(AbortHandle::abort))
            .join()
            .unwrap();
        for (i, task) in fresh.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i);
        }
    });
}

#[test]
fn tasks_spawned_from_one_other_thread_run_in_the_order_they_were_spawned() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let (tx, rx) = std_mpsc::channel();
    let tasks = thread::spawn(move || {
        (0..200)
            .map(|i| {
                let tx = tx.clone();
                handle.spawn(async move { tx.send(i).unwrap() })
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    rt.block_on(async {
        for task in tasks {
            within(HANG, task, "a remote spawn").await.unwrap();
        }
    });
    let order: Vec<i32> = rx.try_iter().collect();
    assert_eq!(order, (0..200).collect::<Vec<_>>());
}

#[test]
fn a_remote_spawn_runs_while_the_block_on_future_never_stops_yielding() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let flag = Arc::new(AtomicBool::new(false));
    rt.block_on(async {
        let spawner = {
            let flag = flag.clone();
            thread::spawn(move || {
                // Dropping the handle detaches the task.
                drop(handle.spawn(async move {
                    flag.store(true, Ordering::SeqCst);
                }));
            })
        };
        let start = std::time::Instant::now();
        while !flag.load(Ordering::SeqCst) {
            assert!(start.elapsed() < HANG, "the remote spawn never ran");
            overlap::yield_now().await;
        }
        spawner.join().unwrap();
    });
}

#[test]
fn a_task_is_polled_once_per_wake_and_never_more() {
    let rt = Runtime::new().unwrap();
    let polls = Rc::new(Cell::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let task = rt.spawn({
        let polls = polls.clone();
        let mut body = Box::pin(async move {
            let mut got = 0;
            while rx.recv().await.is_some() {
                got += 1;
            }
            got
        });
        poll_fn(move |cx| {
            polls.set(polls.get() + 1);
            body.as_mut().poll(cx)
        })
    });
    rt.block_on(overlap::yield_now());
    assert_eq!(polls.get(), 1, "the first poll only");
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    rt.block_on(overlap::yield_now());
    assert_eq!(polls.get(), 2, "one poll for both messages");
    rt.block_on(overlap::yield_now());
    assert_eq!(polls.get(), 2, "polled with nothing new");
    drop(tx);
    assert_eq!(rt.block_on(task).unwrap(), 2);
    assert_eq!(polls.get(), 3);
}

#[test]
fn futures_dropped_at_shutdown_see_their_runtime_as_current() {
    let rt = Runtime::new().unwrap();
    let saw = Rc::new(Cell::new(false));
    struct LookOnDrop(Rc<Cell<bool>>);
    impl Drop for LookOnDrop {
        fn drop(&mut self) {
            self.0
                .set(overlap::runtime::Handle::try_current().is_some());
        }
    }
    let look = LookOnDrop(saw.clone());
    rt.spawn(async move {
        let _look = look;
        pending::<()>().await;
    })
    .detach();
    drop(rt);
    assert!(saw.get());
}

#[test]
fn a_runtime_dropped_while_its_block_on_unwinds_still_drops_tasks_that_wake_each_other() {
    struct SendOnDrop(Option<oneshot::Sender<()>>);
    impl Drop for SendOnDrop {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(());
        }
    }
    let polled_after = Rc::new(Cell::new(false));
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let rt = Runtime::new().unwrap();
        let (tx1, rx1) = oneshot::channel::<()>();
        let (tx2, rx2) = oneshot::channel::<()>();
        // Whichever goes first wakes the other while the panic unwinds.
        for (tx, rx) in [(tx2, rx1), (tx1, rx2)] {
            let polled_after = polled_after.clone();
            rt.spawn(async move {
                let _wake = SendOnDrop(Some(tx));
                let _ = rx.await;
                polled_after.set(true);
            })
            .detach();
        }
        rt.block_on(async {
            overlap::yield_now().await;
            panic!("boom");
        });
    }));
    let message = support::panic_message(unwound.unwrap_err());
    assert_eq!(message, "boom");
    assert!(
        !polled_after.get(),
        "a task was polled while the runtime went away"
    );
}
