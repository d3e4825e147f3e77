//! `task::coop` (tokio's): `cooperative` lets an always-ready loop share the thread with
//! real TCP traffic, `poll_proceed`'s unit comes back unless progress was made,
//! `has_budget_remaining` reads the budget without spending it.

mod support;

use std::cell::Cell;
use std::future::{pending, poll_fn, ready, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::task::coop;
use overlap::{block_on, spawn};
use support::tcp_pair;

/// A task that loops on an always-ready future wrapped in `cooperative` never waits, yet
/// an echo over loopback TCP on the same thread makes its 50 round trips meanwhile.
#[test]
fn a_cooperative_busy_loop_lets_tcp_round_trips_through() {
    block_on(async {
        let (mut client, mut server) = tcp_pair().await;
        let done = Rc::new(Cell::new(false));
        let stop = done.clone();
        let busy = spawn(async move {
            let mut rounds = 0u64;
            while !stop.get() {
                coop::cooperative(ready(())).await;
                rounds += 1;
                assert!(rounds < 50_000_000, "the echo never got the thread");
            }
            rounds
        });
        spawn(async move {
            let mut buf = [0u8; 8];
            while server.read_exact(&mut buf).await.is_ok() {
                server.write_all(&buf).await.unwrap();
            }
        });
        for i in 0u64..50 {
            client.write_all(&i.to_le_bytes()).await.unwrap();
            let mut back = [0u8; 8];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(u64::from_le_bytes(back), i);
        }
        done.set(true);
        let rounds = busy.await.unwrap();
        assert!(rounds >= 128, "the busy loop ran too ({rounds} rounds)");
    });
}

/// Units taken with `poll_proceed` and dropped without `made_progress` come back: ten
/// thousand in one poll never run the budget out. With `made_progress`, the 129th finds
/// none left and returns `Pending`.
#[test]
fn a_unit_comes_back_unless_progress_was_made() {
    block_on(async {
        let outcome = poll_fn(|cx| {
            for _ in 0..10_000 {
                match coop::poll_proceed(cx) {
                    Poll::Ready(unit) => drop(unit),
                    Poll::Pending => return Poll::Ready(Err("ran out without progress")),
                }
            }
            assert!(coop::has_budget_remaining());
            let mut spent = 0;
            while let Poll::Ready(unit) = coop::poll_proceed(cx) {
                unit.made_progress();
                spent += 1;
                if spent > 1000 {
                    return Poll::Ready(Err("never ran out"));
                }
            }
            assert!(!coop::has_budget_remaining());
            Poll::Ready(Ok(spent))
        })
        .await;
        assert_eq!(outcome, Ok(128));
        // The next poll (this task was rescheduled) has a full budget again.
        overlap::yield_now().await;
        assert!(coop::has_budget_remaining());
    });
}

/// A `cooperative` future that is not ready spends nothing, however often it is polled.
#[test]
fn a_pending_cooperative_future_spends_nothing() {
    block_on(async {
        let mut never = pin!(coop::cooperative(pending::<()>()));
        poll_fn(|cx| {
            for _ in 0..1000 {
                assert!(never.as_mut().poll(cx).is_pending());
            }
            assert!(
                coop::has_budget_remaining(),
                "pending polls spent the budget"
            );
            Poll::Ready(())
        })
        .await;
    });
}

/// Outside a runtime there is no budget; inside `unconstrained` neither.
#[test]
fn no_budget_outside_a_task_or_inside_unconstrained() {
    assert!(coop::has_budget_remaining());
    block_on(coop::unconstrained(async {
        for _ in 0..1000 {
            coop::consume_budget().await;
        }
        assert!(coop::has_budget_remaining());
    }));
}
