//! `task::consume_budget` and `task::unconstrained`, tokio's two handles on the cooperative
//! budget: the first lets a loop that never waits yield once the budget is spent, the second
//! exempts a future from the budget. Counted in polls and rounds, not in time.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use overlap::sync::mpsc;
use overlap::task::{consume_budget, unconstrained};

/// Polls `future` to the end (yielding to the runtime on each `Pending`) and returns its
/// output with how many polls it took.
async fn count_polls<F: Future>(future: F) -> (F::Output, u32) {
    let polls = Cell::new(0);
    let mut future = pin!(future);
    let out = poll_fn(|cx| {
        polls.set(polls.get() + 1);
        future.as_mut().poll(cx)
    })
    .await;
    (out, polls.get())
}

/// 1000 channel receives that are all ready at once.
async fn drain(rx: &mut mpsc::UnboundedReceiver<u32>) -> u32 {
    let mut sum = 0;
    for _ in 0..1000 {
        sum += rx.recv().await.unwrap();
    }
    sum
}

fn filled() -> mpsc::UnboundedReceiver<u32> {
    let (tx, rx) = mpsc::unbounded_channel();
    for i in 0..1000 {
        tx.send(i).unwrap();
    }
    rx
}

#[overlap::test]
async fn consume_budget_lets_another_task_in_once_the_budget_is_spent() {
    let before = overlap::metrics().budget_exhausted;
    let other_ran = Rc::new(Cell::new(false));
    let flag = other_ran.clone();
    let spinner = overlap::spawn(async move {
        let mut rounds = 0u32;
        while !flag.get() {
            rounds += 1;
            assert!(rounds < 100_000, "consume_budget never yielded");
            consume_budget().await;
        }
        rounds
    });
    // Starts after the spinner, which holds the thread until its budget runs out.
    let other = overlap::spawn(async move { other_ran.set(true) });
    let rounds = spinner.await.unwrap();
    other.await.unwrap();
    assert!((2..=129).contains(&rounds), "{rounds} rounds");
    assert!(overlap::metrics().budget_exhausted > before);
}

#[overlap::test]
async fn a_budgeted_loop_yields_but_an_unconstrained_one_does_not() {
    let mut rx = filled();
    let (sum, polls) = count_polls(drain(&mut rx)).await;
    assert_eq!(sum, 499_500);
    assert!(polls >= 1000 / 128, "the budget forced {polls} polls");

    let mut rx = filled();
    let (sum, polls) = count_polls(unconstrained(drain(&mut rx))).await;
    assert_eq!(sum, 499_500);
    assert_eq!(polls, 1, "an unconstrained future is never forced to yield");
}

#[overlap::test]
async fn the_task_keeps_its_own_budget_around_an_unconstrained_part() {
    let mut rx = filled();
    let (ready, polls) = count_polls(async {
        // Spends nothing of the task's budget...
        unconstrained(drain(&mut rx)).await;
        // ...so exactly a whole budget is left for what follows, then it yields.
        let mut ready = 0;
        poll_fn(|cx| {
            while overlap::coop_poll_proceed(cx).is_ready() {
                ready += 1;
            }
            Poll::Ready(())
        })
        .await;
        ready
    })
    .await;
    assert_eq!((ready, polls), (128, 1));
}

#[test]
fn outside_a_runtime_both_are_plain_futures() {
    let mut rx = filled();
    let sum = poll_to_end(unconstrained(drain(&mut rx)));
    assert_eq!(sum, 499_500);
    poll_to_end(consume_budget());
}

/// Polls `future` with a no-op waker until it is ready: no runtime, so no budget.
fn poll_to_end<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}
