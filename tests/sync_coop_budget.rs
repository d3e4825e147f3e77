//! The runtime's own channels and locks spend the cooperative budget (`coop.rs`) as I/O
//! does: a task whose receive or acquire is always ready (a backlog in an mpsc or broadcast
//! channel, a semaphore with free permits) still yields every 128 operations, so other tasks,
//! the reactor and the timers (including a `timeout` wrapped around that very loop) go on.
//!
//! Each test runs an always-ready loop in a task and checks that another ready task got to
//! run long before the loop's 100,000 operations (~800 budgets) were done.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::mpsc::cross_thread;
use overlap::sync::{broadcast, mpsc, watch, Semaphore};
use support::steps_before_another_task_runs;

const BACKLOG: u64 = 100_000;

#[test]
fn an_mpsc_receive_loop_on_a_backlog_lets_other_tasks_run() {
    overlap::block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        for i in 0..BACKLOG {
            tx.send(i).unwrap();
        }
        let rx = Rc::new(RefCell::new(Some(rx)));
        let n = steps_before_another_task_runs(BACKLOG, move || {
            // Taken out for the await and put back: no borrow held across it.
            let rx = rx.clone();
            async move {
                let mut r = rx.borrow_mut().take().unwrap();
                let got = r.recv().await.is_some();
                *rx.borrow_mut() = Some(r);
                got
            }
        })
        .await;
        assert!(n < BACKLOG, "drained all {BACKLOG} values without yielding");
    });
}

#[test]
fn a_broadcast_receive_loop_on_a_backlog_lets_other_tasks_run() {
    overlap::block_on(async {
        let (tx, rx) = broadcast::channel(BACKLOG as usize);
        for i in 0..BACKLOG {
            tx.send(i).unwrap();
        }
        let rx = Rc::new(RefCell::new(Some(rx)));
        let n = steps_before_another_task_runs(BACKLOG, move || {
            let rx = rx.clone();
            async move {
                let mut r = rx.borrow_mut().take().unwrap();
                let ok = r.recv().await.is_ok();
                *rx.borrow_mut() = Some(r);
                ok
            }
        })
        .await;
        drop(tx);
        assert!(n < BACKLOG, "drained all {BACKLOG} values without yielding");
    });
}

#[test]
fn a_semaphore_acquire_loop_lets_other_tasks_run() {
    overlap::block_on(async {
        let sem = Rc::new(Semaphore::new(1));
        let n = steps_before_another_task_runs(BACKLOG, move || {
            let sem = sem.clone();
            async move { sem.acquire().await.is_ok() }
        })
        .await;
        assert!(
            n < BACKLOG,
            "{BACKLOG} uncontended acquires without yielding"
        );
    });
}

/// tokio's `sender_closed_is_cooperative` and `receiver_changed_is_cooperative`: awaiting a
/// watch channel's end that has come, again and again, yields as a receive loop does.
#[test]
fn watch_loops_on_a_closed_channel_let_other_tasks_run() {
    overlap::block_on(async {
        let (tx, rx) = watch::channel(());
        drop(rx);
        let tx = Rc::new(tx);
        let n = steps_before_another_task_runs(BACKLOG, move || {
            let tx = tx.clone();
            async move {
                tx.closed().await;
                true
            }
        })
        .await;
        assert!(n < BACKLOG, "{BACKLOG} ready closed() without yielding");

        let (tx, rx) = watch::channel(());
        drop(tx);
        let n = steps_before_another_task_runs(BACKLOG, move || {
            // A clone has seen what `rx` has: its `changed` fails at once too.
            let mut rx = rx.clone();
            async move { rx.changed().await.is_err() }
        })
        .await;
        assert!(n < BACKLOG, "{BACKLOG} failed changed() without yielding");
    });
}

/// Awaits `closed` (of a sender whose receiver is gone) in a loop; how many rounds ran
/// before another task did.
async fn closed_rounds<S: 'static, F: std::future::Future<Output = ()>>(
    tx: S,
    closed: impl Fn(Rc<S>) -> F + 'static,
) -> u64 {
    let tx = Rc::new(tx);
    steps_before_another_task_runs(BACKLOG, move || {
        let fut = closed(tx.clone());
        async move {
            fut.await;
            true
        }
    })
    .await
}

/// An mpsc sender's `closed`, once the receiver is gone, is ready for good: awaited again
/// and again, it yields as a receive loop does (as the watch, broadcast and oneshot ones).
#[test]
fn mpsc_loops_on_a_closed_channel_let_other_tasks_run() {
    overlap::block_on(async {
        let (tx, rx) = mpsc::channel::<u8>(1);
        drop(rx);
        let n = closed_rounds(tx, |tx| async move { tx.closed().await }).await;
        assert!(
            n < BACKLOG,
            "{BACKLOG} ready mpsc closed() without yielding"
        );

        let (tx, rx) = mpsc::unbounded_channel::<u8>();
        drop(rx);
        let n = closed_rounds(tx, |tx| async move { tx.closed().await }).await;
        assert!(
            n < BACKLOG,
            "{BACKLOG} ready unbounded closed() without yielding"
        );

        let (tx, rx) = cross_thread::channel::<u8>(1);
        drop(rx);
        let n = closed_rounds(tx, |tx| async move { tx.closed().await }).await;
        assert!(
            n < BACKLOG,
            "{BACKLOG} ready cross_thread closed() without yielding"
        );

        let (tx, mut rx) = cross_thread::unbounded_channel::<u8>();
        rx.close();
        let n = closed_rounds(tx, |tx| async move { tx.closed().await }).await;
        assert!(
            n < BACKLOG,
            "{BACKLOG} ready cross_thread unbounded closed() without yielding"
        );
    });
}

#[test]
fn a_timeout_around_an_always_ready_receive_loop_fires() {
    overlap::block_on(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Refills itself: an endless but always-ready stream.
        tx.send(0u64).unwrap();
        let r = overlap::time::timeout(Duration::from_millis(5), async move {
            let mut n = 0u64;
            while let Some(v) = rx.recv().await {
                n += 1;
                tx.send(v + 1).unwrap();
                if n == 1_000_000 {
                    break;
                }
            }
            n
        })
        .await;
        assert!(
            r.is_err(),
            "the 5 ms timeout never fired: {r:?} receives ran"
        );
    });
}
