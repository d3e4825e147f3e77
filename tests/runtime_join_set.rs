//! `JoinSet`: outputs in the order tasks finish, errors, aborting, detaching, and what a
//! dropped set does to its tasks.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::{JoinSet, Runtime};
use support::{tcp_pair, within};

/// Counts the futures dropped.
struct Witness(Rc<Cell<usize>>);

impl Drop for Witness {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[overlap::test]
async fn outputs_come_out_in_the_order_the_tasks_finish() {
    // Each task waits for one byte on its own socket; the test decides who finishes first.
    let mut set = JoinSet::new();
    let mut triggers = Vec::new();
    for id in 0..4u8 {
        let (mut a, mut b) = tcp_pair().await;
        set.spawn(async move {
            let mut byte = [0u8; 1];
            b.read_exact(&mut byte).await.unwrap();
            (id, byte[0])
        });
        triggers.push(async move { a.write_all(&[id * 10]).await.unwrap() });
    }
    assert_eq!(set.len(), 4);
    let mut triggers: Vec<_> = triggers.into_iter().map(Some).collect();
    for id in [2usize, 0, 3, 1] {
        triggers[id].take().unwrap().await;
        let out = within(Duration::from_secs(10), set.join_next(), "join_next").await;
        assert_eq!(out.unwrap().unwrap(), (id as u8, id as u8 * 10));
    }
    assert!(set.is_empty());
    assert!(
        set.join_next().await.is_none(),
        "an empty set is done at once"
    );
}

#[overlap::test]
async fn panics_and_aborts_come_out_as_join_errors() {
    let mut set: JoinSet<u32> = JoinSet::new();
    set.spawn(async { panic!("one task fails") });
    set.spawn(async { 5 });
    let mut seen = (0, 0);
    while let Some(out) = set.join_next().await {
        match out {
            Ok(v) => seen.0 += v,
            Err(e) => {
                assert!(e.is_panic());
                seen.1 += 1;
            }
        }
    }
    assert_eq!(seen, (5, 1));

    let dropped = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let w = Witness(dropped.clone());
        set.spawn(async move {
            let _w = w;
            std::future::pending::<u32>().await
        });
    }
    set.abort_all();
    for _ in 0..3 {
        assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled());
    }
    assert_eq!(dropped.get(), 3);
}

#[overlap::test]
async fn a_dropped_set_aborts_its_tasks_and_a_detached_one_does_not() {
    let dropped = Rc::new(Cell::new(0));
    let finished = Rc::new(Cell::new(0));
    {
        let mut set = JoinSet::new();
        for _ in 0..5 {
            let w = Witness(dropped.clone());
            set.spawn(async move {
                let _w = w;
                std::future::pending::<()>().await
            });
        }
        overlap::yield_now().await;
        assert_eq!(dropped.get(), 0, "the tasks started and wait");
    }
    // The aborts land at the runtime's next turn.
    overlap::yield_now().await;
    assert_eq!(dropped.get(), 5);

    let mut set = JoinSet::new();
    let f = finished.clone();
    set.spawn(async move {
        overlap::time::sleep(Duration::from_millis(5)).await;
        f.set(f.get() + 1);
    });
    set.detach_all();
    assert!(set.is_empty());
    drop(set);
    within(
        Duration::from_secs(10),
        async {
            while finished.get() == 0 {
                overlap::time::sleep(Duration::from_millis(1)).await;
            }
        },
        "the detached task never finished",
    )
    .await;
}

#[overlap::test]
async fn shutdown_waits_until_every_task_has_stopped() {
    let dropped = Rc::new(Cell::new(0));
    let mut set = JoinSet::new();
    for _ in 0..100 {
        let w = Witness(dropped.clone());
        set.spawn(async move {
            let _w = w;
            std::future::pending::<()>().await
        });
    }
    set.shutdown().await;
    assert!(set.is_empty());
    assert_eq!(dropped.get(), 100);
}

#[test]
fn ten_thousand_tasks_are_joined_without_polling_the_idle_ones() {
    let rt = Runtime::new().unwrap();
    let (sum, polls) = rt.block_on(async {
        let mut set = JoinSet::new();
        for i in 0..10_000u64 {
            set.spawn(async move {
                overlap::yield_now().await;
                i
            });
        }
        let before = overlap::metrics().task_polls;
        let mut sum = 0;
        while let Some(out) = set.join_next().await {
            sum += out.unwrap();
        }
        (sum, overlap::metrics().task_polls - before)
    });
    assert_eq!(sum, 10_000 * 9_999 / 2);
    // Two polls per task; a set that re-polled every handle on each wake would need
    // about 10,000 times more.
    assert!(polls <= 3 * 10_000, "{polls} task polls");
}
