//! `task::AbortOnDropHandle`, tokio-util's: dropping it aborts the task (its future dropped
//! with what it holds), also when the future that made it is dropped half-way by a
//! timeout; awaiting it gives the output; `detach` gives a `JoinHandle` that detaches;
//! a finished task keeps its output.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::oneshot;
use overlap::task::AbortOnDropHandle;
use support::{settle, DropFlag};

#[overlap::test]
async fn dropping_it_aborts_the_task_and_drops_its_future() {
    let (flag, dropped) = DropFlag::new();
    let handle = AbortOnDropHandle::new(overlap::spawn(async move {
        let _flag = flag;
        std::future::pending::<()>().await;
    }));
    settle().await;
    let abort = handle.abort_handle();
    assert!(!dropped.get() && !handle.is_finished());
    drop(handle);
    settle().await;
    assert!(dropped.get(), "the task's future dropped");
    assert!(abort.is_finished());
}

/// A helper that spawns a task and then waits: given up by a timeout, its task goes too.
async fn connect_like(started: Rc<Cell<u32>>, ran: Rc<Cell<u32>>) {
    started.set(started.get() + 1);
    let _reader = AbortOnDropHandle::new(overlap::spawn(async move {
        loop {
            overlap::time::sleep(Duration::from_millis(1)).await;
            ran.set(ran.get() + 1);
        }
    }));
    std::future::pending::<()>().await;
}

#[overlap::test(start_paused = true)]
async fn a_future_dropped_by_a_timeout_takes_its_task_along() {
    let tasks = overlap::metrics().tasks_alive;
    let (started, ran) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let cut = overlap::time::timeout(
        Duration::from_millis(10),
        connect_like(started.clone(), ran.clone()),
    )
    .await;
    assert!(cut.is_err());
    settle().await;
    assert_eq!(overlap::metrics().tasks_alive, tasks, "the reader gone");
    let after = ran.get();
    overlap::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(ran.get(), after, "and it runs no more");
    assert_eq!(started.get(), 1);
}

#[overlap::test]
async fn awaiting_gives_the_output_and_a_finished_task_keeps_it() {
    let handle = AbortOnDropHandle::new(overlap::spawn(async { 41 + 1 }));
    assert_eq!(handle.await.unwrap(), 42);
    let handle = AbortOnDropHandle::new(overlap::spawn(async { "done" }));
    settle().await;
    assert!(handle.is_finished());
    handle.abort();
    assert_eq!(
        handle.await.unwrap(),
        "done",
        "abort after the end keeps the output"
    );
    let handle = AbortOnDropHandle::new(overlap::spawn(std::future::pending::<()>()));
    handle.abort();
    assert!(handle.await.unwrap_err().is_cancelled());
}

#[overlap::test]
async fn detach_lets_the_task_run_on() {
    let (tx, rx) = oneshot::channel();
    let handle = AbortOnDropHandle::new(overlap::spawn(async move {
        for _ in 0..3 {
            overlap::yield_now().await;
        }
        tx.send(7).unwrap();
    }));
    let id = handle.id();
    let join = handle.detach();
    assert_eq!(join.id(), id);
    drop(join);
    assert_eq!(rx.await.unwrap(), 7);
}

#[overlap::test]
async fn it_works_as_a_select_branch() {
    let mut handle = AbortOnDropHandle::new(overlap::spawn(async { 5 }));
    let out = overlap::select! {
        r = &mut handle => r.unwrap(),
        _ = overlap::time::sleep(Duration::from_secs(60)) => 0,
    };
    assert_eq!(out, 5);
    assert!(futures_util::future::FusedFuture::is_terminated(&handle));
}
