//! overlap's own futures and streams in `select!` without `.fuse()`: they are `FusedFuture`
//! / `FusedStream`, terminated once they have returned (a `Sleep` until it is reset).

mod support;

use std::time::Duration;

use overlap::future::FusedFuture;
use overlap::stream::FusedStream;
use overlap::stream::StreamExt;
use overlap::sync::{mpsc, oneshot};
use overlap::time::{sleep, Instant};
use overlap::{block_on, select, spawn};
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[test]
fn an_idle_timer_reset_by_each_message_fires_only_after_the_last() {
    block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        let idle = Duration::from_millis(50);
        let producer = spawn(async move {
            for i in 0..5 {
                tx.send(i).await.unwrap();
                sleep(Duration::from_millis(5)).await;
            }
            // Keep the channel open past the idle limit: the timer must end the loop.
            sleep(Duration::from_secs(3600)).await;
        });
        let timer = sleep(idle);
        overlap::pin_mut!(timer);
        let mut got = Vec::new();
        let mut last_message = Instant::now();
        let run = async {
            loop {
                select! {
                    v = rx.next() => {
                        got.push(v.expect("the producer keeps the channel open"));
                        last_message = Instant::now();
                        timer.as_mut().reset(last_message + idle);
                        assert!(!timer.is_terminated(), "a reset arms the sleep again");
                    }
                    () = timer => break,
                }
            }
        };
        within(HANG, run, "the idle timer never fired").await;
        assert_eq!(got, [0, 1, 2, 3, 4]);
        assert!(
            last_message.elapsed() >= idle,
            "fired before the idle limit"
        );
        assert!(timer.is_terminated());
        producer.abort();
    });
}

#[test]
fn a_closed_channel_and_a_joined_task_are_terminated_and_select_reaches_complete() {
    block_on(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let (otx, mut orx) = oneshot::channel::<&str>();
        let mut task = spawn(async move {
            tx.send(7).await.unwrap();
            otx.send("done").unwrap();
            40 + 2
        });
        let mut seen = Vec::new();
        let run = async {
            loop {
                select! {
                    v = rx.next() => seen.push(format!("{v:?}")),
                    r = orx => seen.push(r.unwrap().to_string()),
                    out = task => seen.push(out.unwrap().to_string()),
                    complete => break,
                }
            }
        };
        within(HANG, run, "select! never completed").await;
        seen.sort();
        assert_eq!(seen, ["42", "None", "Some(7)", "done"]);
        assert!(rx.is_terminated() && orx.is_terminated() && task.is_terminated());
    });
}

#[test]
fn a_oneshot_emptied_by_try_recv_is_terminated_and_select_skips_it() {
    block_on(async {
        let (otx, mut orx) = oneshot::channel::<u32>();
        otx.send(1).unwrap();
        assert_eq!(orx.try_recv(), Ok(1));
        assert!(FusedFuture::is_terminated(&orx));
        let mut got = Vec::new();
        loop {
            select! {
                r = orx => got.push(r),
                complete => break,
            }
        }
        assert!(got.is_empty(), "polled again after try_recv: {got:?}");
    });
}

#[test]
fn an_unfinished_join_handle_and_an_open_receiver_are_not_terminated() {
    block_on(async {
        let (_tx, rx) = mpsc::channel::<u32>(1);
        let (_otx, orx) = oneshot::channel::<u32>();
        let task = spawn(std::future::pending::<()>());
        assert!(!rx.is_terminated());
        assert!(!orx.is_terminated());
        assert!(!task.is_terminated());
        task.abort();
        // Finished, but its result not yet taken: still to be polled once.
        assert!(task.await.unwrap_err().is_cancelled());
    });
}

#[test]
fn an_interval_is_a_stream_of_increasing_instants() {
    block_on(async {
        let ticks = overlap::time::interval(Duration::from_millis(2));
        assert!(!ticks.is_terminated());
        let got: Vec<overlap::time::Instant> =
            within(HANG, ticks.take(4).collect(), "the interval stalled").await;
        assert_eq!(got.len(), 4);
        assert!(got
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(2)));
    });
}

#[test]
fn a_futures_unordered_frontier_refilled_in_the_loop_ends_at_complete() {
    // tokio's `Some(r) = frontier.next() => .., else => break`: `select_next_some` skips the
    // set once it is empty, and a `push` makes it live again.
    block_on(async {
        let mut frontier = overlap::stream::FuturesUnordered::new();
        let mut queue: std::collections::VecDeque<u64> = (1..=6).collect();
        let mut done = Vec::new();
        let run = async {
            loop {
                while frontier.len() < 2 {
                    let Some(n) = queue.pop_front() else { break };
                    frontier.push(async move {
                        sleep(Duration::from_millis(n % 3)).await;
                        n
                    });
                }
                select! {
                    n = frontier.select_next_some() => {
                        done.push(n);
                        if n == 6 {
                            queue.push_back(7);
                        }
                    }
                    complete => break,
                }
            }
        };
        within(HANG, run, "the frontier never emptied").await;
        done.sort();
        assert_eq!(done, [1, 2, 3, 4, 5, 6, 7]);
        assert!(frontier.is_terminated());
    });
}
