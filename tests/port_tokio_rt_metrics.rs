//! Behaviours of tokio's runtime metrics, thread-safety and buffered-I/O tests, ported to
//! overlap. Each group names the tokio file (tokio/tests/…) it comes from:
//!
//! - `rt_metrics.rs`, mapped to overlap's `RuntimeMetrics` snapshot where a counter exists:
//!   `num_blocking_threads` is `blocking_threads`, `blocking_queue_depth` is
//!   `blocking_queued`, `num_alive_tasks` is `tasks_alive`, `spawned_tasks_count` is
//!   `tasks_spawned`, `worker_poll_count` is `task_polls`, `worker_park_count` is
//!   `epoll_waits` plus `futex_sleeps`, `io_driver_fd_registered_count` minus the
//!   deregistered one is `registered_fds`, `io_driver_ready_count` is `events_delivered`.
//!   tokio's `remote_schedule_count` counts spawns from other threads; overlap's
//!   `remote_wakes` counts wakes from other threads, not remote spawns. Histograms, steal,
//!   overflow and per-worker queue depths have no counterpart.
//! - `async_send_sync.rs`: compile-time checks of what README and the rustdoc claim is
//!   `Send`/`Sync` (wakers, `AbortHandle`, `Handle`, `RemoteJoinHandle`, `JoinError`), and
//!   that `spawn` takes futures that are not `Send`.
//! - `buffered.rs`: bytes copied through a relay between two sockets arrive whole.

mod support;

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::{mpsc as std_mpsc, Arc, Barrier};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::runtime::Handle;
use overlap::task::{AbortHandle, JoinError, JoinHandle};
use overlap::{RemoteJoinHandle, Runtime};
use support::within;

const HANG: Duration = Duration::from_secs(10);

#[test]
fn blocking_threads_and_queue_follow_the_pool() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    assert_eq!(rt.metrics().blocking_threads, 0);
    assert_eq!(rt.metrics().blocking_queued, 0);
    let gate = Arc::new(Barrier::new(2));
    let (started_tx, started) = std_mpsc::channel();
    let first = rt.spawn_blocking({
        let gate = gate.clone();
        move || {
            started_tx.send(()).unwrap();
            gate.wait();
        }
    });
    started.recv_timeout(HANG).unwrap();
    let second = rt.spawn_blocking(|| ());
    let third = rt.spawn_blocking(|| ());
    let m = rt.metrics();
    assert_eq!((m.blocking_threads, m.blocking_queued), (1, 2), "{m:?}");
    gate.wait();
    rt.block_on(async {
        first.await.unwrap();
        second.await.unwrap();
        third.await.unwrap();
    });
    let m = rt.metrics();
    assert_eq!((m.blocking_threads, m.blocking_queued), (1, 0), "{m:?}");
}

#[test]
fn alive_and_spawned_tasks_count_spawns_and_ends() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.metrics().tasks_alive, 0);
    let (tx, rx) = overlap::sync::oneshot::channel::<()>();
    let waiting = rt.spawn(async move { rx.await.unwrap() });
    let aborted = rt.spawn(std::future::pending::<()>());
    let m = rt.metrics();
    assert_eq!((m.tasks_spawned, m.tasks_alive), (2, 2), "{m:?}");
    rt.block_on(async {
        let seen = overlap::spawn(async { overlap::metrics().tasks_alive });
        assert_eq!(seen.await.unwrap(), 3);
        aborted.abort();
        assert!(aborted.await.unwrap_err().is_cancelled());
        assert_eq!(overlap::metrics().tasks_alive, 1);
        tx.send(()).unwrap();
        waiting.await.unwrap();
    });
    let m = rt.metrics();
    assert_eq!((m.tasks_spawned, m.tasks_alive), (3, 0), "{m:?}");
    // A spawn from another thread counts once it reaches the loop.
    let handle = rt.handle();
    let remote = thread::spawn(move || handle.spawn(async {}))
        .join()
        .unwrap();
    rt.block_on(remote).unwrap();
    assert_eq!(rt.metrics().tasks_spawned, 4);
}

#[test]
fn task_polls_count_one_poll_per_task_that_finishes_at_once() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..5 {
            overlap::spawn(async {}).await.unwrap();
        }
        // The block_on future's own polls are not counted.
        for _ in 0..10 {
            overlap::yield_now().await;
        }
    });
    assert_eq!(rt.metrics().task_polls, 5);
}

#[test]
fn parks_are_counted_when_the_loop_waits_for_a_timer() {
    let rt = Runtime::new().unwrap();
    // Made where it is first polled, and long enough not to be over by then on a loaded
    // machine (it would then complete without a timer, or a park).
    rt.block_on(async { overlap::time::sleep(Duration::from_millis(20)).await });
    let m = rt.metrics();
    assert!(m.epoll_waits + m.futex_sleeps >= 1, "{m:?}");
    assert_eq!(m.timers_active, 0);
    assert_eq!(m.timers_fired, 1);
}

#[test]
fn a_wake_from_another_thread_counts_as_a_remote_wake() {
    let rt = Runtime::new().unwrap();
    let before = rt.metrics().remote_wakes;
    rt.block_on(async {
        let mut sent = false;
        poll_fn(|cx| {
            if sent {
                return Poll::Ready(());
            }
            sent = true;
            let waker = cx.waker().clone();
            thread::spawn(move || waker.wake());
            Poll::Pending
        })
        .await;
        // A task's waker too.
        let task = overlap::spawn({
            let mut sent = false;
            poll_fn(move |cx| {
                if sent {
                    return Poll::Ready(());
                }
                sent = true;
                let waker = cx.waker().clone();
                thread::spawn(move || waker.wake());
                Poll::Pending
            })
        });
        within(HANG, task, "a remote wake").await.unwrap();
    });
    // One for the block_on future, one for the task.
    assert_eq!(rt.metrics().remote_wakes - before, 2);
}

#[test]
fn registered_fds_and_events_follow_the_sockets() {
    overlap::block_on(async {
        let base = overlap::metrics();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert_eq!(overlap::metrics().registered_fds - base.registered_fds, 3);
        let reader = overlap::spawn(async move {
            let mut buf = [0; 3];
            server.read_exact(&mut buf).await.unwrap();
            buf
        });
        overlap::yield_now().await;
        client.write_all(b"abc").await.unwrap();
        assert_eq!(&within(HANG, reader, "read").await.unwrap(), b"abc");
        let m = overlap::metrics();
        assert!(m.events_delivered > base.events_delivered, "{m:?}");
        drop((client, listener));
        assert_eq!(overlap::metrics().registered_fds, base.registered_fds);
    });
}

#[test]
fn budget_exhaustion_is_counted_for_a_task_but_not_when_unconstrained() {
    async fn spend(n: usize) {
        for _ in 0..n {
            overlap::task::consume_budget().await;
        }
    }
    overlap::block_on(async {
        let before = overlap::metrics().budget_exhausted;
        overlap::spawn(spend(1_000)).await.unwrap();
        let spent = overlap::metrics().budget_exhausted - before;
        assert!(spent >= 7, "{spent} forced yields for 1000 operations");
        let before = overlap::metrics().budget_exhausted;
        overlap::spawn(overlap::task::unconstrained(spend(1_000)))
            .await
            .unwrap();
        assert_eq!(overlap::metrics().budget_exhausted, before);
    });
}

// What the README and rustdoc claim, checked at compile time.
fn is_send<T: Send>() {}
fn is_sync<T: Sync>() {}
fn is_unpin<T: Unpin>() {}

#[test]
fn the_documented_types_are_send_and_sync() {
    is_send::<Waker>();
    is_sync::<Waker>();
    is_send::<AbortHandle>();
    is_sync::<AbortHandle>();
    is_send::<Handle>();
    is_sync::<Handle>();
    is_send::<RemoteJoinHandle<u8>>();
    is_unpin::<RemoteJoinHandle<Rc<u8>>>();
    is_unpin::<JoinHandle<Rc<u8>>>();
    is_send::<JoinError>();
    is_sync::<JoinError>();
    is_send::<overlap::task::Id>();
    is_sync::<overlap::task::Id>();
    // `spawn` takes a future that is not `Send`, and its output need not be either.
    overlap::block_on(async {
        let shared = Rc::new(Cell::new(1));
        let task: JoinHandle<Rc<Cell<i32>>> = overlap::spawn({
            let shared = shared.clone();
            async move {
                overlap::yield_now().await;
                shared.set(2);
                shared
            }
        });
        assert_eq!(task.await.unwrap().get(), 2);
    });
}

#[test]
fn bytes_relayed_between_two_sockets_arrive_whole_and_in_order() {
    const N: usize = 1024;
    overlap::block_on(async {
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front_addr = front.local_addr().unwrap();
        let back = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let back_addr = back.local_addr().unwrap();
        let relay = overlap::spawn(async move {
            let (inbound, _) = front.accept().await.unwrap();
            let outbound = TcpStream::connect(back_addr).await.unwrap();
            let (mut from, _keep) = inbound.into_split();
            let (_keep_read, mut to) = outbound.into_split();
            let copied = overlap::io::copy(&mut from, &mut to).await.unwrap();
            to.close().await.unwrap();
            copied
        });
        let sink = overlap::spawn(async move {
            let (mut conn, _) = back.accept().await.unwrap();
            let mut all = Vec::new();
            conn.read_to_end(&mut all).await.unwrap();
            all
        });
        let mut client = TcpStream::connect(front_addr).await.unwrap();
        let expected: Vec<u8> = (0..N).flat_map(|i| (i as u32).to_be_bytes()).collect();
        for chunk in expected.chunks(100) {
            client.write_all(chunk).await.unwrap();
        }
        client.close().await.unwrap();
        let copied = within(HANG, relay, "the relay").await.unwrap();
        assert_eq!(copied, expected.len() as u64);
        assert_eq!(within(HANG, sink, "the sink").await.unwrap(), expected);
    });
}

/// tokio's monitor thread reads `handle.metrics()`; overlap's `Handle` has no counters to
/// read (they are the runtime thread's plain cells): the README's way, a snapshot taken by
/// a task spawned through the handle, works from another thread while the loop runs.
#[test]
fn another_thread_reads_a_snapshot_through_a_spawned_task() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let (back, snapshot) = overlap::sync::mpsc::cross_thread::channel(1);
    let monitor = thread::spawn(move || {
        let snapshot = handle.spawn(async { overlap::metrics() });
        back.blocking_send(handle.block_on(snapshot).unwrap())
            .unwrap();
    });
    let (tx, rx) = overlap::sync::oneshot::channel::<()>();
    let mut snapshot = snapshot;
    let seen = rt.block_on(async move {
        let _idle = overlap::spawn(async move { rx.await.unwrap() });
        let seen = snapshot.recv().await.unwrap();
        tx.send(()).unwrap();
        seen
    });
    monitor.join().unwrap();
    // The idle task and the monitor's own.
    assert_eq!((seen.tasks_alive, seen.tasks_spawned), (2, 2), "{seen:?}");
}

/// A `spawn_blocking` job counts as a task, spawned and alive, until it has run, where
/// tokio's `num_alive_tasks` leaves blocking jobs out; `RuntimeMetrics` says so.
#[test]
fn a_blocking_job_counts_as_a_live_task_until_it_has_run() {
    let rt = Runtime::new().unwrap();
    let (go, wait) = std_mpsc::channel::<()>();
    rt.block_on(async {
        let job = overlap::spawn_blocking(move || wait.recv().unwrap());
        let m = overlap::metrics();
        assert_eq!((m.tasks_spawned, m.tasks_alive), (1, 1), "{m:?}");
        go.send(()).unwrap();
        job.await.unwrap();
        let m = overlap::metrics();
        assert_eq!((m.tasks_spawned, m.tasks_alive), (1, 0), "{m:?}");
        // Not awaited: it stops counting once it has run all the same.
        let (go, wait) = std_mpsc::channel::<()>();
        let _job = overlap::spawn_blocking(move || wait.recv().unwrap());
        assert_eq!(overlap::metrics().tasks_alive, 1);
        go.send(()).unwrap();
        while overlap::metrics().tasks_alive != 0 {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    });
}
