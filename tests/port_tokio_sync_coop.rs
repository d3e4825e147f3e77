//! The cooperative-budget checks of tokio's `sync_watch.rs` (`receiver_changed_is_cooperative`,
//! `…_ok`, `receiver_wait_for_is_cooperative`, `…_ok`, `sender_closed_is_cooperative`),
//! ported: a loop whose every `changed`, `wait_for` or `closed` is ready at once must still
//! let the other tasks run now and then, whether the call succeeds or fails. tokio checks it
//! with a `select!` against `yield_now`; here a second task sets a flag, and the loop counts
//! its rounds until the flag is seen (bounded, so a loop that never yields fails instead of
//! hanging). tokio's oneshot receiver and `Sender::closed` spend the budget as well (its
//! `sync_oneshot.rs` has no such test): the same check for them.

mod support;

use std::rc::Rc;

use overlap::sync::watch;
use support::steps_before_another_task_runs;

/// More rounds than a task's budget (128) allows between two yields.
const ROUNDS: u64 = 10_000;

#[overlap::test]
async fn a_loop_of_successful_changed_lets_other_tasks_run() {
    let (tx, rx) = watch::channel(0u64);
    let (tx, rx) = (Rc::new(tx), Rc::new(std::cell::RefCell::new(rx)));
    let n = steps_before_another_task_runs(ROUNDS, move || {
        let (tx, rx) = (tx.clone(), rx.clone());
        async move {
            tx.send_modify(|v| *v += 1);
            let mut rx = rx.borrow_mut().clone();
            let ok = rx.changed().await.is_ok();
            ok
        }
    })
    .await;
    assert!(n < ROUNDS, "{ROUNDS} ready changed() without yielding");
}

#[overlap::test]
async fn a_loop_of_failing_changed_lets_other_tasks_run() {
    let (tx, rx) = watch::channel(());
    drop(tx);
    let n = steps_before_another_task_runs(ROUNDS, move || {
        let mut rx = rx.clone();
        async move { rx.changed().await.is_err() }
    })
    .await;
    assert!(n < ROUNDS, "{ROUNDS} failed changed() without yielding");
}

#[overlap::test]
async fn a_loop_of_wait_for_already_satisfied_lets_other_tasks_run() {
    let (tx, rx) = watch::channel(0u32);
    let tx = Rc::new(tx);
    let n = steps_before_another_task_runs(ROUNDS, move || {
        let tx = tx.clone();
        let mut rx = rx.clone();
        async move {
            tx.send(1).unwrap();
            let ok = rx.wait_for(|v| *v == 1).await.is_ok();
            ok
        }
    })
    .await;
    assert!(n < ROUNDS, "{ROUNDS} satisfied wait_for() without yielding");
}

#[overlap::test]
async fn a_loop_of_wait_for_on_a_closed_channel_lets_other_tasks_run() {
    let (tx, rx) = watch::channel(0u32);
    drop(tx);
    let n = steps_before_another_task_runs(ROUNDS, move || {
        let mut rx = rx.clone();
        async move { rx.wait_for(|v| *v == 1).await.is_err() }
    })
    .await;
    assert!(n < ROUNDS, "{ROUNDS} failed wait_for() without yielding");
}

#[overlap::test]
async fn wait_for_on_a_closed_channel_still_checks_the_last_value() {
    let (tx, mut rx) = watch::channel("A");
    tx.send("B").unwrap();
    drop(tx);
    assert_eq!(*rx.wait_for(|_| true).await.unwrap(), "B");
    assert!(rx.wait_for(|v| *v == "C").await.is_err());
    let (tx, mut rx) = watch::channel("A");
    tx.send("B").unwrap();
    drop(tx);
    assert!(rx.changed().await.is_ok(), "the unseen value first");
    assert!(rx.changed().await.is_err());
}

#[overlap::test]
async fn a_loop_over_ready_oneshot_receivers_lets_other_tasks_run() {
    let n = steps_before_another_task_runs(ROUNDS, move || async move {
        let (tx, rx) = overlap::sync::oneshot::channel();
        tx.send(1u8).unwrap();
        rx.await == Ok(1)
    })
    .await;
    assert!(
        n < ROUNDS,
        "{ROUNDS} ready oneshot receives without yielding"
    );

    let n = steps_before_another_task_runs(ROUNDS, move || async move {
        let (mut tx, rx) = overlap::sync::oneshot::channel::<u8>();
        drop(rx);
        tx.closed().await;
        true
    })
    .await;
    assert!(
        n < ROUNDS,
        "{ROUNDS} ready oneshot closed() without yielding"
    );
}
