//! `sync::CancellationToken`, tokio-util's shutdown signal: clones and children cancelled
//! together, a child on its own, waits woken across tasks, threads and runtimes, dropped
//! waits leaving no waker behind, `run_until_cancelled`, `drop_guard` and `select!`.

mod support;

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::task::Poll;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::sync::CancellationToken;
use support::{abandon, polled, within, DropFlag, ManualTask};

const HANG: Duration = Duration::from_secs(30);

#[test]
fn cancel_wakes_every_wait_of_every_clone_child_and_grandchild() {
    overlap::block_on(within(
        HANG,
        async {
            let root = CancellationToken::new();
            let child = root.child_token();
            let grandchild = child.child_token();
            let tokens = [
                root.clone(),
                root.clone(),
                child.clone(),
                grandchild.clone(),
            ];
            let waits: Vec<_> = tokens
                .into_iter()
                .map(|t| overlap::spawn(async move { t.cancelled().await }))
                .collect();
            overlap::task::yield_now().await;
            assert!(!grandchild.is_cancelled());
            root.cancel();
            for w in waits {
                w.await.unwrap();
            }
            assert!(child.is_cancelled() && grandchild.is_cancelled());
            // Ready at once from now on, for new waits and new children alike.
            assert_eq!(
                support::poll_once(Box::pin(root.cancelled())).await,
                Poll::Ready(())
            );
            assert!(root.child_token().is_cancelled());
            root.cancel();
        },
        "the waits of a cancelled tree",
    ));
}

#[test]
fn a_cancelled_child_leaves_its_parent_and_siblings_alone() {
    let parent = CancellationToken::new();
    let (a, b) = (parent.child_token(), parent.child_token());
    let a_child = a.child_token();
    let mut parent_wait = polled(parent.clone().cancelled_owned());
    let mut b_wait = polled(b.clone().cancelled_owned());
    assert!(parent_wait.poll().is_pending() && b_wait.poll().is_pending());
    a.cancel();
    assert!(a.is_cancelled() && a_child.is_cancelled());
    assert!(!parent.is_cancelled() && !b.is_cancelled());
    assert!(!parent_wait.is_woken() && !b_wait.is_woken());
    parent.cancel();
    assert!(parent_wait.is_woken() && b_wait.is_woken());
    assert_eq!(b_wait.poll(), Poll::Ready(()));
}

#[test]
fn the_latest_waker_is_woken_and_a_dropped_wait_keeps_none() {
    let token = CancellationToken::new();
    let (first, second) = (ManualTask::default(), ManualTask::default());
    let mut wait = Box::pin(token.cancelled());
    assert!(first.poll(wait.as_mut()).is_pending());
    assert!(second.poll(wait.as_mut()).is_pending());
    assert_eq!(
        first.wakers_held(),
        0,
        "the moved wait let go of its old waker"
    );
    // Waits dropped before the cancellation give their slots back (and the next take them).
    for _ in 0..100 {
        abandon(token.cancelled());
    }
    token.cancel();
    assert!(second.is_woken() && !first.is_woken());
    assert_eq!(second.poll(wait.as_mut()), Poll::Ready(()));
    drop(wait);
    assert_eq!(second.wakers_held(), 0);
}

#[test]
fn a_wait_dropped_after_the_cancellation_took_its_slot_is_fine() {
    let token = CancellationToken::new();
    let mut waits: Vec<_> = (0..8)
        .map(|_| polled(token.clone().cancelled_owned()))
        .collect();
    for w in &mut waits {
        assert!(w.poll().is_pending());
    }
    token.cancel();
    // Dropped unpolled after the cancel emptied the slots, and in any order.
    for mut w in waits.into_iter().rev() {
        assert!(w.is_woken());
        w.cancel();
    }
    let late = token.child_token();
    assert!(late.is_cancelled());
}

#[test]
fn a_cancel_from_another_thread_wakes_a_task_waiting_on_the_loop() {
    let token = CancellationToken::new();
    let (waiting, told) = std_mpsc::channel();
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            told.recv().unwrap();
            token.cancel();
        })
    };
    overlap::block_on(within(
        HANG,
        async {
            let mut wait = token.cancelled();
            assert!(support::poll_once(&mut wait).await.is_pending());
            waiting.send(()).unwrap();
            wait.await;
        },
        "a cancel from a plain thread",
    ));
    canceller.join().unwrap();
}

#[test]
fn one_token_shuts_down_two_runtimes_and_a_blocking_job() {
    let shutdown = CancellationToken::new();
    let (started, count) = std_mpsc::channel();
    let shards: Vec<_> = (0..2)
        .map(|_| {
            let token = shutdown.child_token();
            let started = started.clone();
            std::thread::spawn(move || {
                overlap::block_on(async move {
                    let job_token = token.clone();
                    let job = overlap::spawn_blocking(move || {
                        let mut spins = 0u64;
                        while !job_token.is_cancelled() {
                            std::thread::sleep(Duration::from_millis(1));
                            spins += 1;
                        }
                        spins
                    });
                    let served = overlap::spawn({
                        let token = token.clone();
                        async move {
                            let mut ticks = 0u32;
                            let tick = || overlap::time::sleep(Duration::from_millis(1));
                            while token.run_until_cancelled(tick()).await.is_some() {
                                ticks += 1;
                            }
                            ticks
                        }
                    });
                    started.send(()).unwrap();
                    within(HANG, token.cancelled(), "the shard's shutdown").await;
                    within(HANG, served, "the shard's server").await.unwrap();
                    within(HANG, job, "the shard's blocking job").await.unwrap();
                })
            })
        })
        .collect();
    count.recv().unwrap();
    count.recv().unwrap();
    shutdown.cancel();
    for shard in shards {
        shard.join().unwrap();
    }
}

#[test]
fn run_until_cancelled_gives_the_output_or_none_and_drops_the_future() {
    overlap::block_on(within(
        HANG,
        async {
            let token = CancellationToken::new();
            assert_eq!(token.run_until_cancelled(async { 7 }).await, Some(7));

            let (flag, dropped) = DropFlag::new();
            let canceller = {
                let token = token.clone();
                overlap::spawn(async move { token.cancel() })
            };
            let never = async move {
                let _owned = flag;
                std::future::pending::<()>().await
            };
            assert_eq!(token.run_until_cancelled(never).await, None);
            assert!(dropped.get(), "the unfinished future was dropped");
            canceller.await.unwrap();

            // Cancelled already: the future is never polled, even a ready one.
            let mut polled_at_all = false;
            let ready = std::future::poll_fn(|_| {
                polled_at_all = true;
                Poll::Ready(1)
            });
            assert_eq!(token.run_until_cancelled(ready).await, None);
            assert!(!polled_at_all);
        },
        "run_until_cancelled",
    ));
}

#[test]
fn a_drop_guard_cancels_when_dropped_and_not_when_disarmed() {
    let token = CancellationToken::new();
    let kept = token.clone().drop_guard().disarm();
    assert!(!token.is_cancelled() && !kept.is_cancelled());
    let guard = token.clone().drop_guard();
    drop(token.clone());
    assert!(!token.is_cancelled(), "dropping a token cancels nothing");
    drop(guard);
    assert!(token.is_cancelled() && kept.is_cancelled());
}

#[test]
fn select_takes_the_wait_unfused_in_a_loop() {
    overlap::block_on(within(
        HANG,
        async {
            let token = CancellationToken::new();
            let (tx, mut rx) = overlap::sync::mpsc::unbounded_channel::<u32>();
            let stopper = token.clone();
            overlap::spawn(async move {
                for i in 0..5 {
                    tx.send(i).unwrap();
                    overlap::task::yield_now().await;
                }
                stopper.cancel();
                // The sender stays open: only the token ends the loop.
                std::future::pending::<()>().await;
            });
            let mut seen = Vec::new();
            loop {
                overlap::select! {
                    _ = token.cancelled() => break,
                    got = rx.recv().fuse() => seen.push(got.unwrap()),
                }
            }
            assert_eq!(seen, [0, 1, 2, 3, 4]);
        },
        "a select! loop ended by the token",
    ));
}

#[test]
fn tokens_and_waits_are_send_and_sync_and_say_their_state() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let token = CancellationToken::new();
    send_sync(&token);
    send(&token.cancelled());
    send(&token.clone().cancelled_owned());
    let guard = token.clone().drop_guard();
    send(&guard);
    guard.disarm();
    assert_eq!(
        format!("{token:?}"),
        "CancellationToken { is_cancelled: false }"
    );
    token.cancel();
    assert_eq!(
        format!("{:?}", token.cancelled()),
        "WaitForCancellationFuture { is_cancelled: true }"
    );
    let _: &dyn Future<Output = ()> = &token.cancelled();
}

/// tokio-util's `run_until_cancelled_owned`: the same as `run_until_cancelled`, owning its
/// token, so the future is `'static` and goes straight into a spawn.
#[test]
fn run_until_cancelled_owned_is_static_and_gives_the_output_or_none() {
    overlap::block_on(within(
        HANG,
        async {
            let token = CancellationToken::new();
            let done = overlap::spawn(token.clone().run_until_cancelled_owned(async { 5 }));
            assert_eq!(done.await.unwrap(), Some(5));
            let (flag, dropped) = DropFlag::new();
            let never = overlap::spawn(token.clone().run_until_cancelled_owned(async move {
                let _owned = flag;
                std::future::pending::<()>().await
            }));
            overlap::yield_now().await;
            token.cancel();
            assert_eq!(never.await.unwrap(), None);
            assert!(dropped.get(), "the unfinished future was dropped");
        },
        "run_until_cancelled_owned",
    ));
}

/// tokio-util's borrowed guard: `drop_guard_ref` cancels the token it borrows when dropped,
/// `disarm` gives the borrow back uncancelled; both guards show their token with `token`.
#[test]
fn a_borrowed_drop_guard_cancels_when_dropped_and_not_when_disarmed() {
    let conn = CancellationToken::new();
    {
        let guard = conn.drop_guard_ref();
        assert!(!guard.token().is_cancelled());
        let back: &CancellationToken = guard.disarm();
        assert!(!back.is_cancelled());
    }
    assert!(!conn.is_cancelled());
    {
        let _guard = conn.drop_guard_ref();
        assert!(!conn.is_cancelled());
    }
    assert!(conn.is_cancelled());
    let owned = CancellationToken::new().drop_guard();
    assert!(!owned.token().is_cancelled());
}

/// The guard and wait types are named at `overlap::sync`, as tokio-util names them at
/// `tokio_util::sync`, for a struct that stores one.
#[test]
fn the_guard_and_wait_types_are_named_at_the_sync_root() {
    struct Conn {
        _ends_with_it: overlap::sync::DropGuard,
        _shutdown: overlap::sync::WaitForCancellationFutureOwned,
    }
    let token = CancellationToken::new();
    let conn = Conn {
        _ends_with_it: token.child_token().drop_guard(),
        _shutdown: token.clone().cancelled_owned(),
    };
    let _: Option<overlap::sync::DropGuardRef<'_>> = None;
    let _: Option<overlap::sync::WaitForCancellationFuture<'_>> = None;
    drop(conn);
    assert!(
        !token.is_cancelled(),
        "the child's guard cancels only the child"
    );
}
