//! `JoinSet`: outputs in the order tasks finish, errors, aborting, detaching, and what a
//! dropped set does to its tasks.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::{JoinSet, Runtime};
use support::{settle, tcp_pair, within, DropFlag};

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

#[overlap::test]
async fn an_abort_handle_stops_one_task_of_the_set_and_outlives_it() {
    let mut set = JoinSet::new();
    let (flag, dropped) = DropFlag::new();
    let stop = set.spawn(async move {
        let _flag = flag;
        std::future::pending::<u32>().await
    });
    set.spawn(async { 7 });
    let copy = stop.clone();
    assert!(!copy.is_finished());
    copy.abort();
    let mut outs = Vec::new();
    while let Some(res) = set.join_next().await {
        outs.push(res.map_err(|e| e.is_cancelled()));
    }
    outs.sort();
    assert_eq!(outs, [Ok(7), Err(true)]);
    assert!(dropped.get(), "the aborted task's future was dropped");
    // The handles outlive the task and the set.
    drop(set);
    assert!(stop.is_finished() && copy.is_finished());
}

#[test]
fn an_abort_handle_dropped_after_its_runtime_is_harmless() {
    let rt = overlap::Runtime::new().unwrap();
    let (stop, handle) = rt.block_on(async {
        let task = overlap::spawn(std::future::pending::<()>());
        (task.abort_handle(), task)
    });
    drop(rt);
    assert!(stop.is_finished(), "shutdown cancelled the task");
    stop.abort();
    let clone = stop.clone();
    drop(handle);
    drop(stop);
    drop(clone);
}

#[overlap::test]
async fn try_join_next_takes_only_finished_tasks_and_join_all_collects_them() {
    let mut set = JoinSet::new();
    assert!(set.try_join_next().is_none(), "empty");
    set.spawn(async { 1 });
    set.spawn(async {
        overlap::time::sleep(std::time::Duration::from_millis(20)).await;
        2
    });
    assert!(set.try_join_next().is_none(), "nothing has run yet");
    overlap::yield_now().await;
    assert_eq!(set.try_join_next().unwrap().unwrap(), 1);
    assert!(set.try_join_next().is_none(), "the sleeper is still asleep");
    // A waiter after try_join_next is still woken (no lost wake).
    let two = set.join_next().await.unwrap().unwrap();
    assert_eq!(two, 2);

    let mut set = JoinSet::new();
    for i in 0..5u32 {
        set.spawn(async move { i * 10 });
    }
    let mut all = set.join_all().await;
    all.sort();
    assert_eq!(all, [0, 10, 20, 30, 40]);
}

#[overlap::test]
#[should_panic(expected = "boom")]
async fn join_all_resumes_a_tasks_panic() {
    let mut set = JoinSet::new();
    set.spawn(async { panic!("boom") });
    set.spawn(async {});
    let _ = set.join_all().await;
}

/// Tasks that finish before the set is first asked still come out in finishing order: task
/// 0 can only finish after task 1 (it waits for 1's message), and task 2 after 0.
#[overlap::test]
async fn tasks_finished_before_the_first_join_come_out_in_finishing_order() {
    let mut set = JoinSet::new();
    let (tx1, rx1) = overlap::sync::oneshot::channel::<()>();
    let (tx0, rx0) = overlap::sync::oneshot::channel::<()>();
    set.spawn(async move {
        rx1.await.unwrap();
        tx0.send(()).unwrap();
        0
    });
    set.spawn(async move {
        tx1.send(()).unwrap();
        1
    });
    set.spawn(async move {
        rx0.await.unwrap();
        2
    });
    support::settle().await;
    assert_eq!(set.try_join_next().unwrap().unwrap(), 1);
    assert_eq!(set.join_next().await.unwrap().unwrap(), 0);
    assert_eq!(set.join_all().await, [2]);
}

#[overlap::test]
async fn join_all_returns_outputs_in_finishing_order() {
    let mut set = JoinSet::new();
    for i in 0..5u64 {
        // Later spawns finish first: each yields fewer times.
        set.spawn(async move {
            for _ in 0..(5 - i) * 3 {
                overlap::yield_now().await;
            }
            i
        });
    }
    support::settle().await;
    support::settle().await;
    assert_eq!(set.join_all().await, [4, 3, 2, 1, 0]);
}

#[overlap::test]
async fn a_set_collected_from_futures_joins_every_output() {
    let set: JoinSet<u32> = (0..5).map(|i| async move { i * 2 }).collect();
    assert_eq!(set.len(), 5);
    let mut outputs = set.join_all().await;
    outputs.sort();
    assert_eq!(outputs, [0, 2, 4, 6, 8]);
}

#[overlap::test]
async fn extend_spawns_each_future_into_the_set() {
    let mut set = JoinSet::new();
    set.spawn(async { 1 });
    set.extend([10, 100].map(|v| async move { v }));
    assert_eq!(set.len(), 3);
    let mut sum = 0;
    while let Some(out) = set.join_next().await {
        sum += out.unwrap();
    }
    assert_eq!(sum, 111);
    assert!(set.is_empty());
}

#[overlap::test]
async fn spawn_blocking_joins_the_closures_result_or_panic() {
    let mut set = JoinSet::new();
    let ok = set.spawn_blocking(|| 5).id();
    let bad = set.spawn_blocking(|| panic!("blocking boom")).id();
    let local = set.spawn_local(async { 6 }).id();
    let mut seen = Vec::new();
    while let Some(res) = set.join_next_with_id().await {
        match res {
            Ok((id, v)) => seen.push((id, Some(v))),
            Err(e) => {
                assert!(e.is_panic());
                seen.push((e.id(), None));
            }
        }
    }
    seen.sort();
    let mut expected = vec![(ok, Some(5)), (bad, None), (local, Some(6))];
    expected.sort();
    assert_eq!(seen, expected);
}

/// tokio's `Some(done) = set.join_next() =>` skips the branch while the set is empty. Here
/// `join_next()` goes into `select!` as it is, a `FusedFuture` that counts as finished while
/// the set is empty: the loop waits on its other branches instead of taking `None` on
/// every turn, and the branch comes back once the set holds a task.
#[overlap::test]
async fn join_next_in_a_select_loop_is_skipped_while_the_set_is_empty() {
    use overlap::future::{FusedFuture, FutureExt};
    let (tx, mut rx) = overlap::sync::mpsc::channel::<u32>(4);
    let server = overlap::spawn(async move {
        let mut set = JoinSet::new();
        assert!(
            set.join_next().is_terminated(),
            "an empty set has nothing to join"
        );
        let (mut turns, mut joined) = (0, Vec::new());
        loop {
            turns += 1;
            overlap::select! {
                job = rx.recv().fuse() => match job {
                    Some(n) => drop(set.spawn(async move { n * 10 })),
                    None => break,
                },
                done = set.join_next() => joined.push(done.expect("a member").unwrap()),
            }
        }
        while let Some(done) = set.join_next().await {
            joined.push(done.unwrap());
        }
        (turns, joined)
    });
    for n in 1..=3 {
        tx.send(n).await.unwrap();
        settle().await; // the task's output is joined before the next job comes
    }
    drop(tx);
    let (turns, joined) = within(Duration::from_secs(10), server, "the loop's end")
        .await
        .unwrap();
    assert_eq!(joined, [10, 20, 30]);
    // Three jobs, three outputs and the channel's end: no turn took an empty set's `None`.
    assert_eq!(turns, 7);
}

/// A loop awaiting `join_next` on an empty set (a `select!` branch wrapped in `fuse()`, or
/// a `while` that waits for members to appear) gets `None` at once every time; each spends
/// a unit of the task's budget, so such a loop yields now and then and the runtime's other
/// tasks, timers and sockets still run, instead of the thread spinning in that task alone.
#[overlap::test]
async fn join_next_on_an_empty_set_spends_budget_so_a_spinning_loop_yields() {
    let mut set: JoinSet<()> = JoinSet::new();
    let ran = Rc::new(Cell::new(false));
    let other = overlap::spawn({
        let ran = ran.clone();
        async move { ran.set(true) }
    });
    let mut spins = 0;
    while !ran.get() && spins < 100_000 {
        assert!(set.join_next().await.is_none());
        spins += 1;
    }
    assert!(ran.get(), "the other task never ran in {spins} empty joins");
    other.await.unwrap();
}

/// A `select!` on an empty set's `join_next` alone goes to its `complete =>` branch, as a
/// `select!` does when every branch is terminated.
#[overlap::test]
async fn a_select_on_an_empty_sets_join_next_alone_completes() {
    let mut set: JoinSet<u8> = JoinSet::new();
    let mut seen = Vec::new();
    let completed = overlap::select! {
        done = set.join_next() => {
            seen.push(done.unwrap().unwrap());
            false
        }
        complete => true,
    };
    assert!(
        completed && seen.is_empty(),
        "the empty set's branch ran: {seen:?}"
    );
    set.spawn(async { 7 });
    loop {
        overlap::select! {
            done = set.join_next() => seen.push(done.unwrap().unwrap()),
            complete => break,
        }
    }
    assert_eq!(seen, [7]);
}
