//! An I/O operation that has to wait gives back the unit of cooperative budget it spent:
//! polled again and again in one poll of its task (as a `select!` loop polls an idle
//! branch each round), it never uses up the budget the task's other work needs. On real
//! pipes and sockets, idle.

mod support;

use std::fmt::Debug;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::io::BufReader;
use overlap::net::UnixStream;
use support::within;

/// Polls `op`, which must keep returning `Pending`, `times` times in one poll of the task,
/// then says whether the task still has budget left.
async fn budget_left_after_waiting<T: Debug>(
    times: usize,
    mut op: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> bool {
    poll_fn(|cx| {
        for i in 0..times {
            let polled = op(cx);
            assert!(
                polled.is_pending(),
                "poll {i} of an idle operation: {polled:?}"
            );
        }
        Poll::Ready(overlap::coop_poll_proceed(cx).is_ready())
    })
    .await
}

/// Runs a test's body on a runtime, under a hang guard.
fn run(body: impl Future<Output = ()>) {
    overlap::block_on(within(Duration::from_secs(20), body, "the test hung"));
}

/// More waits than the budget (128) has units.
const WAITS: usize = 300;

#[test]
fn an_idle_copy_polled_many_times_spends_no_budget() {
    run(async {
        let (_tx, rx) = overlap::pipe::pipe().unwrap();
        let mut sink = Vec::new();
        let mut copy = pin!(overlap::io::copy(rx, &mut sink));
        let left = budget_left_after_waiting(WAITS, |cx| copy.as_mut().poll(cx)).await;
        assert!(
            left,
            "a copy waiting for its reader used up the task's budget"
        );
    });
}

#[test]
fn an_idle_copy_buf_polled_many_times_spends_no_budget() {
    run(async {
        let (_tx, rx) = overlap::pipe::pipe().unwrap();
        let mut sink = Vec::new();
        let mut copy = pin!(overlap::io::copy_buf(BufReader::new(rx), &mut sink));
        let left = budget_left_after_waiting(WAITS, |cx| copy.as_mut().poll(cx)).await;
        assert!(
            left,
            "a copy_buf waiting for its reader used up the task's budget"
        );
    });
}

#[test]
fn an_idle_copy_bidirectional_polled_many_times_spends_no_budget() {
    run(async {
        let (mut a, _peer_a) = UnixStream::pair().unwrap();
        let (mut b, _peer_b) = UnixStream::pair().unwrap();
        let mut copy = pin!(overlap::io::copy_bidirectional(&mut a, &mut b));
        let left = budget_left_after_waiting(WAITS, |cx| copy.as_mut().poll(cx)).await;
        assert!(left, "an idle copy_bidirectional used up the task's budget");
    });
}
