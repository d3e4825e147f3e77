//! `task::TaskTracker`, tokio-util's tracker of a graceful shutdown's tasks: `wait` ready
//! only once closed and empty, every way a task stops counting (finished, aborted, dropped
//! with its runtime, a blocking job returning on its thread, a token dropped on another
//! thread), reopening, and waits woken once each, dropped ones keeping no waker.

mod support;

use std::pin::pin;
use std::sync::mpsc as std_mpsc;
use std::task::Poll;
use std::time::Duration;

use overlap::sync::oneshot;
use overlap::task::TaskTracker;
use support::{abandon, polled, within, DropFlag, ManualTask};

const HANG: Duration = Duration::from_secs(30);

#[test]
fn wait_is_ready_only_once_closed_and_every_task_is_gone() {
    overlap::block_on(within(
        HANG,
        async {
            let tracker = TaskTracker::new();
            let mut finishers = Vec::new();
            for i in 0..3u32 {
                let (tx, rx) = oneshot::channel::<()>();
                finishers.push(tx);
                tracker.spawn(async move {
                    let _ = rx.await;
                    i
                });
            }
            assert_eq!(tracker.len(), 3);
            let task = ManualTask::default();
            let mut wait = pin!(tracker.wait());
            assert!(task.poll(wait.as_mut()).is_pending());
            assert!(tracker.close());
            assert!(!tracker.close(), "closed already");
            assert!(!task.is_woken(), "closed with tasks left");
            let last = finishers.pop().unwrap();
            for tx in finishers {
                tx.send(()).unwrap();
            }
            while tracker.len() > 1 {
                overlap::task::yield_now().await;
            }
            assert!(!task.is_woken(), "one task left");
            last.send(()).unwrap();
            while !tracker.is_empty() {
                overlap::task::yield_now().await;
            }
            assert!(task.is_woken());
            assert_eq!(task.poll(wait.as_mut()), Poll::Ready(()));
            assert_eq!(task.poll(wait.as_mut()), Poll::Ready(()), "and again");
        },
        "the tracker's wait",
    ));
}

#[test]
fn an_empty_tracker_is_done_when_closed_and_not_when_reopened() {
    let tracker = TaskTracker::new();
    let mut wait = polled(async {
        let t = tracker.clone();
        t.wait().await
    });
    assert!(wait.poll().is_pending(), "open and empty is not done");
    tracker.close();
    assert!(wait.is_woken());
    assert_eq!(wait.poll(), Poll::Ready(()));
    assert!(tracker.reopen() && !tracker.reopen());
    assert!(!tracker.is_closed());
    let mut again = polled(async {
        let t = tracker.clone();
        t.wait().await
    });
    assert!(again.poll().is_pending());
    tracker.close();
    assert_eq!(again.poll(), Poll::Ready(()));
    assert_eq!(
        format!("{tracker:?}"),
        "TaskTracker { len: 0, is_closed: true }"
    );
}

#[test]
fn aborted_tasks_futures_dropped_unfinished_and_a_dropped_runtime_stop_counting() {
    let tracker = TaskTracker::new();
    overlap::block_on(within(
        HANG,
        async {
            let handle = tracker.spawn(std::future::pending::<()>());
            assert_eq!(tracker.len(), 1);
            handle.abort();
            assert!(handle.await.unwrap_err().is_cancelled());
            assert_eq!(tracker.len(), 0);

            let (flag, dropped) = DropFlag::new();
            let tracked = tracker.track_future(async move {
                let _owned = flag;
                std::future::pending::<()>().await
            });
            assert_eq!(tracker.len(), 1);
            drop(tracked);
            assert!(dropped.get());
            assert_eq!(tracker.len(), 0);
        },
        "aborted and dropped tracked work",
    ));
    // Tasks still pending when their runtime goes are dropped with it.
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..5 {
            tracker.spawn(std::future::pending::<()>());
        }
    });
    assert_eq!(tracker.len(), 5);
    drop(rt);
    assert_eq!(tracker.len(), 0);
    tracker.close();
    overlap::block_on(within(HANG, tracker.wait(), "the dropped runtime's tasks"));
}

#[test]
fn a_blocking_job_and_a_token_on_another_thread_count_until_they_end() {
    overlap::block_on(within(
        HANG,
        async {
            let tracker = TaskTracker::new();
            let (go, gate) = std_mpsc::channel::<()>();
            let job = tracker.spawn_blocking(move || {
                gate.recv().unwrap();
                7
            });
            let token = tracker.token();
            assert_eq!(token.task_tracker().len(), 2);
            let (release, hold) = std_mpsc::channel::<()>();
            let holder = std::thread::spawn(move || {
                hold.recv().unwrap();
                drop(token);
            });
            tracker.close();
            let mut wait = pin!(tracker.wait());
            assert!(support::poll_once(wait.as_mut()).await.is_pending());
            go.send(()).unwrap();
            assert_eq!(job.await.unwrap(), 7);
            assert_eq!(tracker.len(), 1, "the token still counts");
            release.send(()).unwrap();
            wait.await;
            holder.join().unwrap();
        },
        "the blocking job and the other thread's token",
    ));
}

/// Waits woken by a close are polled again only after the tracker was reopened, a task
/// tracked and a new wait made: the old waits' slots are gone, and must not take the new
/// wait's place, or it would never be woken.
#[test]
fn waits_woken_before_a_reopen_wait_on_beside_new_ones() {
    let tracker = TaskTracker::new();
    let (old_a, old_b, new) = (
        ManualTask::default(),
        ManualTask::default(),
        ManualTask::default(),
    );
    let mut wait_a = Box::pin(tracker.wait());
    let mut wait_b = Box::pin(tracker.wait());
    assert!(old_a.poll(wait_a.as_mut()).is_pending());
    assert!(old_b.poll(wait_b.as_mut()).is_pending());
    tracker.close();
    assert!(old_a.is_woken() && old_b.is_woken());
    tracker.reopen();
    let token = tracker.token();
    let mut wait_new = Box::pin(tracker.wait());
    assert!(new.poll(wait_new.as_mut()).is_pending());
    assert!(old_b.poll(wait_b.as_mut()).is_pending());
    assert!(old_a.poll(wait_a.as_mut()).is_pending());
    // Dropped waits give their slots back and keep no waker.
    for _ in 0..50 {
        abandon(tracker.wait());
    }
    tracker.close();
    assert!(!new.is_woken(), "a token still counts");
    drop(token);
    assert!(new.is_woken() && old_a.is_woken() && old_b.is_woken());
    assert_eq!(new.poll(wait_new.as_mut()), Poll::Ready(()));
    drop((wait_a, wait_b, wait_new));
    assert_eq!(
        new.wakers_held() + old_a.wakers_held() + old_b.wakers_held(),
        0
    );
}

#[test]
fn trackers_tokens_and_tracked_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let tracker = TaskTracker::new();
    send_sync(&tracker);
    send_sync(&tracker.token());
    send_sync(&tracker.wait());
    send_sync(&tracker.track_future(async { 1 }));
    assert!(tracker.is_empty());
}

/// tokio-util's other spawns, which a port of a `LocalSet` program (`spawn_local`) or of a
/// thread-per-core one (`spawn_on`, `spawn_blocking_on` with another runtime's handle)
/// calls: each counts from the call, before the other runtime has run anything, so a
/// `close` and `wait` right after cannot miss it.
#[test]
fn spawn_local_spawn_on_and_spawn_blocking_on_count_from_the_call() {
    let worker = overlap::Runtime::new().unwrap();
    let to_worker = worker.handle();
    let tracker = TaskTracker::new();
    assert!(tracker.ptr_eq(&tracker.clone()));
    assert!(!tracker.ptr_eq(&TaskTracker::new()));
    let (remote, blocking, local) = overlap::block_on(within(
        HANG,
        async {
            let local = tracker.spawn_local(async { std::rc::Rc::new(1) });
            let remote = tracker.spawn_on(async { 2 }, &to_worker);
            let (go, gate) = std_mpsc::channel::<()>();
            let blocking = tracker.spawn_blocking_on(
                move || {
                    gate.recv().unwrap();
                    3
                },
                &to_worker,
            );
            assert_eq!(tracker.len(), 3, "each counts from its call");
            tracker.close();
            let mut wait = pin!(tracker.wait());
            assert!(support::poll_once(wait.as_mut()).await.is_pending());
            go.send(()).unwrap();
            (remote, blocking, *local.await.unwrap())
        },
        "the local task",
    ));
    assert_eq!(local, 1);
    assert_eq!(worker.block_on(remote).unwrap(), 2);
    assert_eq!(worker.block_on(blocking).unwrap(), 3);
    worker.block_on(within(HANG, tracker.wait(), "every spawn's count"));
}

/// A tracked future is fused when the future it wraps is (as `Timeout` is), so a tracked
/// `oneshot::Receiver` goes into `select!` as the bare receiver does, without `.fuse()`.
#[test]
fn a_tracked_fused_future_goes_into_select_unfused() {
    overlap::block_on(within(
        HANG,
        async {
            let tracker = TaskTracker::new();
            let (tx, rx) = oneshot::channel::<u32>();
            let mut reply = tracker.track_future(rx);
            let mut idle = overlap::time::sleep(HANG);
            overlap::spawn(async move { tx.send(1).unwrap() });
            let got = overlap::select! {
                r = reply => r.unwrap(),
                _ = idle => unreachable!("the reply comes first"),
            };
            assert_eq!(got, 1);
            assert!(overlap::future::FusedFuture::is_terminated(&reply));
            assert_eq!(tracker.len(), 1, "it counts until dropped");
            drop(reply);
            tracker.close();
            tracker.wait().await;
        },
        "the tracked reply",
    ));
}
