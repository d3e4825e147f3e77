//! `Sleep` is terminated (`FusedFuture`) only once it has returned `Ready`: a poll that saw
//! the deadline pass but found the task's budget spent returns `Pending` and leaves it
//! pollable, so `select!` still takes its branch. A `Timeout` looks at its deadline without
//! the budget.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use overlap::future::FusedFuture;
use overlap::time::{sleep, timeout};

/// Spends the current task's whole budget (as a busy socket/channel loop would).
fn spend_budget(cx: &mut std::task::Context<'_>) {
    while overlap::coop_poll_proceed(cx).is_ready() {}
}

#[test]
fn a_sleep_pending_for_lack_of_budget_is_not_terminated() {
    overlap::block_on(async {
        overlap::spawn(async {
            let mut s = sleep(Duration::ZERO);
            let polled = poll_fn(|cx| {
                spend_budget(cx);
                Poll::Ready(Pin::new(&mut s).poll(cx))
            })
            .await;
            assert!(polled.is_pending(), "the budget was spent, so Pending");
            assert!(
                !s.is_terminated(),
                "a Sleep that never returned Ready claims to be terminated"
            );
        })
        .await
        .unwrap();
    });
}

#[test]
fn select_does_not_skip_a_sleep_that_was_cut_short_by_the_budget() {
    overlap::block_on(async {
        overlap::spawn(async {
            let mut s = sleep(Duration::ZERO);
            poll_fn(|cx| {
                spend_budget(cx);
                let _ = Pin::new(&mut s).poll(cx);
                Poll::Ready(())
            })
            .await;
            let which = overlap::select! {
                () = s => "timer",
                complete => "complete: the timer branch was skipped",
            };
            assert_eq!(which, "timer");
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_timeout_fires_even_with_the_budget_spent_and_is_then_terminated() {
    overlap::block_on(async {
        overlap::spawn(async {
            let mut t = Box::pin(timeout(
                Duration::ZERO,
                overlap::future::pending::<()>().fuse_(),
            ));
            // Polled on a spent budget, a timeout first yields once (its future may have
            // returned `Pending` without looking); polled so again, it looks at its deadline
            // without the budget: a task that spends it all before every poll still times out.
            let mut polls = Vec::new();
            for _ in 0..2 {
                let polled = poll_fn(|cx| {
                    spend_budget(cx);
                    Poll::Ready(t.as_mut().poll(cx))
                })
                .await;
                polls.push(polled);
                assert!(!t.is_terminated() || polls.last().unwrap().is_ready());
            }
            assert!(polls[0].is_pending(), "{polls:?}");
            assert!(matches!(polls[1], Poll::Ready(Err(_))), "{polls:?}");
            assert!(t.is_terminated(), "a Timeout that returned is terminated");
        })
        .await
        .unwrap();
    });
}

trait FuseExt: Future + Sized {
    fn fuse_(self) -> overlap::future::Fuse<Self> {
        overlap::future::FutureExt::fuse(self)
    }
}
impl<F: Future> FuseExt for F {}
