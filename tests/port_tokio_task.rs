//! Behaviours of tokio's task tests, ported to overlap's tasks. Each group names the tokio
//! file (tokio/tests/…) it comes from:
//!
//! - `task_join_set.rs`: `len` through spawns, joins and `detach_all`; tasks aborted one by
//!   one or all at once; a set whose runtime went away; `join_all` resuming a panic;
//!   `join_next` spending the cooperative budget, `try_join_next` not;
//! - `task_abort.rs`: aborting a sleeping task, from another thread, with its handle dropped,
//!   or one whose drop panics; what a `JoinError` says;
//! - `task_local.rs`: the value is there while a completed scoped future is dropped.
//!
//! `LocalSet`, `spawn_local_on` and the multi-thread flavour have no counterpart: every
//! overlap task is local to its runtime's thread.

mod support;

use std::cell::Cell;
use std::future::pending;
use std::rc::{Rc, Weak};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::{oneshot, watch, Semaphore};
use overlap::task::JoinSet;
use overlap::time::sleep;
use overlap::Runtime;
use support::{panic_message, settle, DropFlag};

// ---- task_join_set.rs ----

#[overlap::test(start_paused = true)]
async fn detach_all_empties_the_set_which_then_takes_new_tasks() {
    let mut set = JoinSet::new();
    for i in 0..10 {
        set.spawn(async move { i });
        assert_eq!(set.len(), 1 + i);
    }
    set.detach_all();
    assert_eq!(set.len(), 0);
    assert!(set.join_next().await.is_none());

    for _round in 0..2 {
        for i in 0..10 {
            set.spawn(async move {
                sleep(Duration::from_secs(i as u64)).await;
                i
            });
            assert_eq!(set.len(), 1 + i);
        }
        let mut seen = [false; 10];
        while let Some(i) = set.join_next().await.transpose().unwrap() {
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert!(set.join_next().await.is_none());
    }
}

#[overlap::test]
async fn len_follows_spawns_and_joins_alternating() {
    let mut set = JoinSet::new();
    set.spawn(async {});
    set.spawn(async {});
    assert_eq!(set.len(), 2);
    for _ in 0..16 {
        set.join_next().await.unwrap().unwrap();
        assert_eq!(set.len(), 1);
        set.spawn(async {});
        assert_eq!(set.len(), 2);
    }
}

#[overlap::test(start_paused = true)]
async fn tasks_aborted_through_their_handles_come_out_cancelled() {
    let mut set = JoinSet::new();
    for i in 0..16u64 {
        let abort = set.spawn(async move {
            sleep(Duration::from_secs(i)).await;
            i
        });
        if i % 2 == 1 {
            abort.abort();
        }
    }
    let (mut cancelled, mut completed) = (0, 0);
    while let Some(res) = set.join_next().await {
        match res {
            Ok(i) => {
                assert_eq!(i % 2, 0);
                completed += 1;
            }
            Err(e) => {
                assert!(e.is_cancelled());
                cancelled += 1;
            }
        }
    }
    assert_eq!((cancelled, completed), (8, 8));
}

#[overlap::test(start_paused = true)]
async fn abort_all_cancels_the_waiting_tasks_and_keeps_the_finished_ones() {
    let mut set: JoinSet<()> = JoinSet::new();
    for _ in 0..5 {
        set.spawn(pending());
    }
    for _ in 0..5 {
        set.spawn(sleep(Duration::from_secs(1)));
    }
    sleep(Duration::from_secs(2)).await;
    set.abort_all();
    assert_eq!(set.len(), 10, "aborting takes nothing out of the set");
    let (mut ok, mut cancelled) = (0, 0);
    while let Some(res) = set.join_next().await {
        match res {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(e.is_cancelled());
                cancelled += 1;
            }
        }
    }
    assert_eq!((ok, cancelled), (5, 5));
    assert!(set.is_empty());
}

#[test]
fn a_set_whose_runtime_is_gone_joins_its_tasks_as_cancelled() {
    let mut set = JoinSet::new();
    {
        let rt = Runtime::new().unwrap();
        let _enter = rt.enter();
        set.spawn(async { 1 });
    }
    let rt = Runtime::new().unwrap();
    let res = rt.block_on(set.join_next()).unwrap();
    assert!(res.unwrap_err().is_cancelled());
    assert!(rt.block_on(set.join_next()).is_none());
}

#[overlap::test(start_paused = true)]
async fn join_all_resumes_a_panic_and_aborts_the_rest() {
    let mut set: JoinSet<()> = JoinSet::new();
    let (tx, mut rx) = oneshot::channel();
    set.spawn(async move {
        sleep(Duration::from_secs(2)).await;
        tx.send(()).unwrap();
    });
    set.spawn(async {
        sleep(Duration::from_secs(1)).await;
        panic!("second task");
    });
    assert_eq!(set.len(), 2);
    let err = overlap::spawn(set.join_all()).await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(panic_message(err.into_panic()), "second task");
    assert_eq!(
        rx.try_recv(),
        Err(oneshot::TryRecvError::Closed),
        "aborted with the set"
    );
}

#[overlap::test]
async fn join_next_spends_the_budget_on_finished_tasks() {
    const TASKS: usize = 1000;
    let done = Rc::new(Semaphore::new(0));
    let mut set = JoinSet::new();
    for _ in 0..TASKS {
        let done = done.clone();
        set.spawn(async move { done.add_permits(1) });
    }
    done.acquire_many(TASKS as u32).await.unwrap().forget();
    let (mut joined, mut yields) = (0, 0);
    loop {
        match set.join_next().now_or_never() {
            Some(Some(res)) => {
                res.unwrap();
                joined += 1;
            }
            Some(None) => break,
            None => {
                yields += 1;
                overlap::yield_now().await;
            }
        }
    }
    assert_eq!(joined, TASKS);
    assert!(
        yields >= 1,
        "a thousand ready joins never made the task yield"
    );
}

/// Awaits `handles` (tasks that returned their index, all finished) in order, checking each
/// output, while a task spawned just before waits for its turn: whether it got one.
async fn joining_finished_lets_another_task_run<H, E>(handles: Vec<H>) -> bool
where
    H: std::future::Future<Output = Result<usize, E>>,
    E: std::fmt::Debug,
{
    let other_ran = Rc::new(Cell::new(false));
    let flag = other_ran.clone();
    overlap::spawn(async move { flag.set(true) });
    let mut ran = false;
    for (n, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), n);
        ran |= other_ran.get();
    }
    ran
}

#[overlap::test]
async fn awaiting_finished_handles_spends_the_budget() {
    let handles: Vec<_> = (0..1000)
        .map(|i| overlap::spawn(async move { i }))
        .collect();
    settle().await;
    assert!(
        joining_finished_lets_another_task_run(handles).await,
        "joining 1000 finished tasks never let another task run"
    );
}

#[overlap::test]
async fn awaiting_finished_remote_handles_spends_the_budget() {
    let handle = overlap::runtime::Handle::current();
    let handles: Vec<_> = (0..1000).map(|i| handle.spawn(async move { i })).collect();
    settle().await;
    assert!(
        joining_finished_lets_another_task_run(handles).await,
        "joining 1000 finished tasks never let another task run"
    );
}

#[overlap::test]
async fn try_join_next_takes_every_finished_task_regardless_of_the_budget() {
    const TASKS: usize = 1000;
    let (tx, rx) = watch::channel(());
    let mut set = JoinSet::new();
    for _ in 0..TASKS {
        let mut rx = rx.clone();
        set.spawn(async move { rx.changed().await.unwrap() });
    }
    drop(rx);
    assert!(set.try_join_next().is_none());
    tx.send_replace(());
    tx.closed().await;
    let mut joined = 0;
    while let Some(res) = set.try_join_next() {
        res.unwrap();
        joined += 1;
    }
    assert_eq!(joined, TASKS);
    assert!(set.is_empty());
}

#[overlap::test]
async fn shutdown_and_drop_drop_the_pending_futures() {
    let mut set = JoinSet::new();
    let mut receivers = Vec::new();
    for _ in 0..8 {
        let (tx, rx) = oneshot::channel::<()>();
        receivers.push(rx);
        set.spawn(async move {
            pending::<()>().await;
            drop(tx);
        });
    }
    assert!(set.try_join_next().is_none());
    set.shutdown().await;
    assert!(set.is_empty());
    for rx in receivers.drain(..) {
        assert!(rx.await.is_err());
    }
    // The set is usable again after a shutdown, and dropping it aborts the new tasks too.
    for _ in 0..8 {
        let (tx, rx) = oneshot::channel::<()>();
        receivers.push(rx);
        set.spawn(async move {
            pending::<()>().await;
            drop(tx);
        });
    }
    drop(set);
    for rx in receivers {
        assert!(rx.await.is_err());
    }
}

// ---- task_abort.rs ----

#[overlap::test]
async fn a_sleeping_task_aborted_is_joined_as_cancelled() {
    let handle = overlap::spawn(sleep(Duration::from_secs(100)));
    sleep(Duration::from_millis(10)).await;
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
}

#[overlap::test]
async fn an_abort_from_another_thread_drops_the_future_on_this_one() {
    let (flag, dropped) = DropFlag::new();
    let owner = std::thread::current().id();
    let dropped_on = Rc::new(Cell::new(None));
    struct Where(Rc<Cell<Option<std::thread::ThreadId>>>);
    impl Drop for Where {
        fn drop(&mut self) {
            self.0.set(Some(std::thread::current().id()));
        }
    }
    let at = Where(dropped_on.clone());
    let handle = overlap::spawn(async move {
        let _keep = (flag, at);
        pending::<()>().await;
    });
    let abort = handle.abort_handle();
    std::thread::spawn(move || {
        abort.abort();
    })
    .join()
    .unwrap();
    let res = handle.await;
    assert!(dropped.get());
    assert_eq!(dropped_on.get(), Some(owner));
    assert!(res.unwrap_err().is_cancelled());
    // Tasks keep running afterwards.
    overlap::spawn(overlap::yield_now()).await.unwrap();
}

#[overlap::test]
async fn an_aborted_task_whose_handle_was_dropped_is_still_dropped() {
    let alive = Rc::new(());
    let weak: Weak<()> = Rc::downgrade(&alive);
    let handle = overlap::spawn(async move {
        let _alive = alive;
        sleep(Duration::from_secs(100)).await
    });
    sleep(Duration::from_millis(10)).await;
    handle.abort();
    drop(handle);
    settle().await;
    assert!(weak.upgrade().is_none());
}

struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("dropped at abort");
    }
}

#[overlap::test]
async fn a_panic_while_dropping_an_aborted_task_stays_in_the_task() {
    let handle = overlap::spawn(async {
        let _p = PanicOnDrop;
        sleep(Duration::from_secs(100)).await
    });
    sleep(Duration::from_millis(10)).await;
    handle.abort();
    drop(handle);
    sleep(Duration::from_millis(10)).await;

    let handle = overlap::spawn(async {
        let _p = PanicOnDrop;
        sleep(Duration::from_secs(100)).await
    });
    sleep(Duration::from_millis(10)).await;
    handle.abort();
    let err = handle.await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(panic_message(err.into_panic()), "dropped at abort");
}

#[overlap::test]
async fn a_join_error_names_the_panic_message_when_there_is_one() {
    let err = overlap::spawn(async {
        let value = 1234;
        panic!("Format-args payload: {value}")
    })
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("Format-args payload: 1234"),
        "{err}"
    );
    assert!(
        format!("{err:?}").contains("Format-args payload: 1234"),
        "{err:?}"
    );

    let err = overlap::spawn(async { panic!("Const payload") })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Const payload"), "{err}");

    let err = overlap::spawn(async { std::panic::panic_any(1234i32) })
        .await
        .unwrap_err();
    assert!(err.is_panic());
    assert!(!err.to_string().contains("1234"), "{err}");
    assert!(err.to_string().contains("panicked"), "{err}");
}

// ---- task_local.rs ----

overlap::task_local! {
    static KEY: u32;
}

#[overlap::test]
async fn a_completed_scoped_future_is_dropped_with_the_value_set() {
    struct SendOnDrop(Option<oneshot::Sender<Option<u32>>>);
    impl std::future::Future for SendOnDrop {
        type Output = ();
        fn poll(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            std::task::Poll::Ready(())
        }
    }
    impl Drop for SendOnDrop {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(KEY.try_get().ok());
        }
    }
    let (tx, rx) = oneshot::channel();
    let handle = overlap::spawn(KEY.scope(42, SendOnDrop(Some(tx))));
    assert_eq!(rx.await.unwrap(), Some(42));
    handle.await.unwrap();
    assert!(KEY.try_get().is_err(), "and gone again outside");
}

#[overlap::test]
async fn try_with_sees_the_innermost_scope_and_fails_outside() {
    assert!(KEY.try_with(|v| *v).is_err());
    let seen = KEY
        .scope(1, async {
            let outer = KEY.get();
            let inner = KEY.scope(2, async { KEY.try_with(|v| *v) }).await;
            let sync = KEY.sync_scope(3, || KEY.get());
            (outer, inner, sync, KEY.get())
        })
        .await;
    assert_eq!(seen, (1, Ok(2), 3, 1));
    assert!(KEY.try_with(|v| *v).is_err());
}
