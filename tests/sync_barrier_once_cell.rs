//! `sync::Barrier` (rounds, one leader each, a cancelled wait takes its arrival back) and
//! `sync::OnceCell` (one initializer at a time, waiters take over when it is cancelled or
//! fails).

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::{Barrier, OnceCell, SetError};
use support::{settle, within};

const HANG: Duration = Duration::from_secs(30);

#[overlap::test]
async fn a_barrier_releases_each_round_together_with_one_leader() {
    const TASKS: usize = 4;
    const ROUNDS: usize = 5;
    let barrier = Rc::new(Barrier::new(TASKS));
    // arrived[r]: tasks that reached round r; every task checks, once released, that all
    // of them had.
    let arrived: Rc<Vec<Cell<usize>>> = Rc::new((0..ROUNDS).map(|_| Cell::new(0)).collect());
    let leaders: Rc<Vec<Cell<usize>>> = Rc::new((0..ROUNDS).map(|_| Cell::new(0)).collect());
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (barrier, arrived, leaders) = (barrier.clone(), arrived.clone(), leaders.clone());
            overlap::spawn(async move {
                for r in 0..ROUNDS {
                    // Uneven arrival times.
                    for _ in 0..(i * r) % 3 {
                        overlap::yield_now().await;
                    }
                    arrived[r].set(arrived[r].get() + 1);
                    let res = barrier.wait().await;
                    assert_eq!(arrived[r].get(), TASKS, "released before all arrived");
                    leaders[r].set(leaders[r].get() + res.is_leader() as usize);
                }
            })
        })
        .collect();
    for t in tasks {
        within(HANG, t, "a barrier round never completed")
            .await
            .unwrap();
    }
    let per_round: Vec<usize> = leaders.iter().map(Cell::get).collect();
    assert_eq!(per_round, vec![1; ROUNDS]);
}

#[overlap::test]
async fn a_cancelled_barrier_wait_takes_its_arrival_back() {
    let barrier = Rc::new(Barrier::new(2));
    // One task arrives and gives up (its wait is dropped before the round completes).
    assert!(barrier.wait().now_or_never().is_none());
    let released = Rc::new(Cell::new(false));
    let b = barrier.clone();
    let r = released.clone();
    let second = overlap::spawn(async move {
        let res = b.wait().await;
        r.set(true);
        res.is_leader()
    });
    settle().await;
    assert!(
        !released.get(),
        "the dropped wait still counted: one live task passed a barrier of two"
    );
    let third = barrier.wait().await;
    assert!(third.is_leader());
    assert!(!within(HANG, second, "the waiting task was never released")
        .await
        .unwrap());
    // A barrier of zero (like one) lets every wait through at once, as leader.
    assert!(Barrier::new(0).wait().await.is_leader());
    assert!(Barrier::new(1).wait().await.is_leader());
}

#[overlap::test]
async fn once_cell_runs_one_initializer_for_many_tasks() {
    let cell = Rc::new(OnceCell::new());
    let runs = Rc::new(Cell::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cell, runs) = (cell.clone(), runs.clone());
            overlap::spawn(async move {
                *cell
                    .get_or_init(|| async {
                        runs.set(runs.get() + 1);
                        settle().await;
                        7u32
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(
            within(HANG, t, "a reader never got the value")
                .await
                .unwrap(),
            7
        );
    }
    assert_eq!(runs.get(), 1, "initializers run");
    assert_eq!(cell.get(), Some(&7));
    assert!(cell.initialized());
    assert_eq!(cell.set(8), Err(SetError::AlreadyInitializedError(8)));
}

#[overlap::test]
async fn a_waiter_takes_over_when_the_initializer_is_cancelled_or_fails() {
    let cell = Rc::new(OnceCell::<String>::new());
    // The first initializer never finishes; its task is aborted.
    let c = cell.clone();
    let stuck = overlap::spawn(async move {
        c.get_or_init(std::future::pending::<String>).await;
    });
    settle().await;
    assert_eq!(
        cell.set("x".into()),
        Err(SetError::InitializingError("x".to_string()))
    );
    let c = cell.clone();
    let waiter = overlap::spawn(async move {
        c.get_or_init(|| async { "second".to_string() })
            .await
            .clone()
    });
    settle().await;
    assert!(
        !waiter.is_finished(),
        "it waits for the running initializer"
    );
    stuck.abort();
    assert_eq!(
        within(HANG, waiter, "the waiter never took over")
            .await
            .unwrap(),
        "second"
    );

    // A failing initializer leaves the cell empty for the next one.
    let cell = OnceCell::<u32>::new();
    let err: Result<&u32, &str> = cell.get_or_try_init(|| async { Err("no") }).await;
    assert_eq!(err, Err("no"));
    assert!(!cell.initialized());
    let ok: Result<&u32, &str> = cell.get_or_try_init(|| async { Ok(5) }).await;
    assert_eq!(ok, Ok(&5));
    assert_eq!(cell.into_inner(), Some(5));

    let mut cell = OnceCell::new_with(Some(Rc::new(1)));
    let value = cell.take().unwrap();
    assert_eq!(Rc::strong_count(&value), 1, "take hands the value over");
    assert!(cell.get().is_none());
}
