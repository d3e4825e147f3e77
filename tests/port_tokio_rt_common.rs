//! Behaviours of tokio's runtime tests, ported to overlap's (always current-thread)
//! runtime. Each group names the tokio file (tokio/tests/…) it comes from:
//!
//! - `rt_common.rs`: a chain of tasks each spawning and awaiting the next; I/O and timers
//!   reaching the `block_on` future while tasks keep the loop busy; ping-pong between many
//!   task pairs while another task must still run; wakers kept in thread-locals and woken
//!   while the thread exits (with the runtime alive, or already gone); a runtime kept in a
//!   thread-local and dropped at thread exit with tasks, timers and sockets in it;
//! - `rt_basic.rs`: tasks woken by other tasks' drops while the runtime shuts down are never
//!   polled again; a task panicking with a guard whose drop sends on a channel; a task that
//!   wakes itself in its own poll is polled again, once per poll, without starving others;
//!   a `JoinHandle` that waited on a task aborted after it finished still gives the output.
//!
//! Also from `rt_common.rs`: every ready socket served when each wait fetches one event
//! (`io_driver_called_when_under_load` taken to the limit); a socket whose runtime is gone
//! fails its waits and still closes; a task's drop during shutdown running a runtime of its
//! own. The timer cases are in `port_tokio_rt_timers.rs`.

mod support;

use std::cell::{Cell, RefCell};
use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{mpsc, oneshot};
use overlap::time;
use overlap::Runtime;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// Spawns the next link of a chain of `depth` tasks and awaits it.
fn chain(depth: u32) -> Pin<Box<dyn Future<Output = u32>>> {
    Box::pin(async move {
        if depth == 0 {
            return 0;
        }
        overlap::spawn(chain(depth - 1)).await.unwrap() + 1
    })
}

#[test]
fn a_long_chain_of_tasks_each_awaiting_the_next_completes() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.block_on(chain(5_000)), 5_000);
    let m = rt.metrics();
    assert_eq!(m.tasks_spawned, 5_000);
    assert_eq!(m.tasks_alive, 0);
}

#[test]
fn a_tree_of_spawns_runs_every_node_once() {
    fn node(depth: u32, count: Rc<Cell<u32>>) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(async move {
            count.set(count.get() + 1);
            if depth > 0 {
                let left = overlap::spawn(node(depth - 1, count.clone()));
                let right = overlap::spawn(node(depth - 1, count.clone()));
                left.await.unwrap();
                right.await.unwrap();
            }
        })
    }
    let count = Rc::new(Cell::new(0));
    overlap::block_on(node(12, count.clone()));
    assert_eq!(count.get(), (1 << 13) - 1);
}

/// A task that never waits: it yields forever, keeping the run queue non-empty.
async fn busy(stop: Rc<Cell<bool>>) {
    while !stop.get() {
        overlap::yield_now().await;
    }
}

#[test]
fn io_and_timers_reach_the_block_on_future_while_tasks_keep_the_loop_busy() {
    overlap::block_on(async {
        let stop = Rc::new(Cell::new(false));
        let spinners: Vec<_> = (0..4).map(|_| overlap::spawn(busy(stop.clone()))).collect();
        within(
            HANG,
            async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let mut client = TcpStream::connect(listener.local_addr().unwrap())
                    .await
                    .unwrap();
                let (mut server, _) = listener.accept().await.unwrap();
                for round in 0u8..50 {
                    client.write_all(&[round]).await.unwrap();
                    let mut byte = [0];
                    server.read_exact(&mut byte).await.unwrap();
                    assert_eq!(byte, [round]);
                }
                time::sleep(Duration::from_millis(2)).await;
            },
            "I/O or a timer starved by yielding tasks",
        )
        .await;
        stop.set(true);
        for spinner in spinners {
            spinner.await.unwrap();
        }
    });
}

#[test]
fn ping_pong_between_many_task_pairs_does_not_starve_another_task() {
    overlap::block_on(async {
        let done = Rc::new(Cell::new(0));
        let mut pairs = Vec::new();
        for _ in 0..16 {
            let (ping_tx, mut ping_rx) = mpsc::channel::<u32>(1);
            let (pong_tx, mut pong_rx) = mpsc::channel::<u32>(1);
            pairs.push(overlap::spawn(async move {
                while let Some(n) = ping_rx.recv().await {
                    pong_tx.send(n + 1).await.unwrap();
                }
            }));
            let done = done.clone();
            pairs.push(overlap::spawn(async move {
                let mut n = 0;
                for _ in 0..2_000 {
                    ping_tx.send(n).await.unwrap();
                    n = pong_rx.recv().await.unwrap();
                }
                assert_eq!(n, 2_000);
                done.set(done.get() + 1);
            }));
        }
        // Runs while the pairs are still busy: it must not wait for all of them.
        let saw = overlap::spawn({
            let done = done.clone();
            async move { done.get() }
        });
        let early = within(HANG, saw, "a plain task starved by ping-pong").await;
        assert!(
            early.unwrap() < 16,
            "the plain task ran only after every pair"
        );
        for pair in pairs {
            pair.await.unwrap();
        }
        assert_eq!(done.get(), 16);
    });
}

/// What a thread-local holding a waker does with it when the thread exits.
#[derive(Clone, Copy, Debug)]
enum AtExit {
    Wake,
    WakeByRef,
    /// Only drops it: releases the task's reference from thread-local destruction.
    Drop,
}

/// Holds a waker, and wakes or drops it when dropped, as a thread-local does at thread
/// exit.
struct WakerAtExit {
    waker: RefCell<Option<Waker>>,
    what: Cell<AtExit>,
}

impl WakerAtExit {
    fn keep(&self, waker: Waker, what: AtExit) {
        self.what.set(what);
        *self.waker.borrow_mut() = Some(waker);
    }
}

impl Drop for WakerAtExit {
    fn drop(&mut self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            match self.what.get() {
                AtExit::Wake => waker.wake(),
                AtExit::WakeByRef => waker.wake_by_ref(),
                AtExit::Drop => drop(waker),
            }
        }
    }
}

thread_local! {
    static PARKED: WakerAtExit = const {
        WakerAtExit { waker: RefCell::new(None), what: Cell::new(AtExit::Wake) }
    };
    static PARKED_MAIN: WakerAtExit = const {
        WakerAtExit { waker: RefCell::new(None), what: Cell::new(AtExit::Wake) }
    };
}

/// Parks the current task until a thread it starts exits: that thread keeps the waker in a
/// thread-local, whose destructor wakes it.
async fn woken_by_an_exiting_thread(what: AtExit) {
    let mut sent = false;
    poll_fn(|cx| {
        if sent {
            return Poll::Ready(());
        }
        sent = true;
        let waker = cx.waker().clone();
        thread::spawn(move || PARKED.with(|p| p.keep(waker, what)));
        Poll::Pending
    })
    .await
}

#[test]
fn wakers_kept_in_a_thread_local_wake_their_task_as_the_thread_exits() {
    for what in [AtExit::Wake, AtExit::WakeByRef] {
        overlap::block_on(async {
            let task = overlap::spawn(woken_by_an_exiting_thread(what));
            within(HANG, task, "a wake from a thread-local's drop lost")
                .await
                .unwrap();
            // The block_on future's own waker, too.
            within(
                HANG,
                woken_by_an_exiting_thread(what),
                "block_on's wake lost",
            )
            .await;
        });
    }
}

#[test]
fn wakers_in_thread_locals_of_the_runtime_thread_outlive_the_runtime() {
    for what in [AtExit::Wake, AtExit::WakeByRef, AtExit::Drop] {
        // The runtime's thread keeps a task's waker and the block_on future's in
        // thread-locals, drops the runtime, then exits: they are woken or dropped during
        // thread-local destruction, with no runtime left.
        let (flag_tx, flag_rx) = std_mpsc::channel();
        thread::spawn(move || {
            let rt = Runtime::new().unwrap();
            struct Dropped(std_mpsc::Sender<()>);
            impl Drop for Dropped {
                fn drop(&mut self) {
                    let _ = self.0.send(());
                }
            }
            let dropped = Dropped(flag_tx);
            let task = rt.spawn(poll_fn(move |cx| {
                let _owned = &dropped;
                PARKED.with(|p| p.keep(cx.waker().clone(), what));
                Poll::<()>::Pending
            }));
            rt.block_on(async {
                overlap::yield_now().await;
                overlap::yield_now().await;
            });
            rt.block_on(poll_fn(|cx| {
                PARKED_MAIN.with(|p| p.keep(cx.waker().clone(), what));
                Poll::Ready(())
            }));
            drop(rt);
            drop(task);
        })
        .join()
        .unwrap_or_else(|_| panic!("the runtime's thread failed at exit ({what:?})"));
        // The task's future went with its runtime, whatever its waker did after.
        flag_rx.recv_timeout(HANG).unwrap();
    }
}

thread_local! {
    static KEPT: RefCell<Option<Runtime>> = const { RefCell::new(None) };
}

#[test]
fn a_runtime_in_a_thread_local_is_dropped_at_thread_exit_with_its_tasks() {
    let (tx, rx) = std_mpsc::channel();
    let dropped = Arc::new(AtomicUsize::new(0));
    thread::spawn({
        let dropped = dropped.clone();
        move || {
            struct Count(Arc<AtomicUsize>);
            impl Drop for Count {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let rt = Runtime::new().unwrap();
            let addr = rt.block_on(async {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let count = Count(dropped.clone());
                overlap::spawn(async move {
                    let _count = count;
                    let _accepted = listener.accept().await;
                });
                let count = Count(dropped.clone());
                overlap::spawn(async move {
                    let _count = count;
                    time::sleep(Duration::from_secs(3600)).await;
                });
                let count = Count(dropped.clone());
                overlap::spawn_blocking(move || drop(count)).detach();
                overlap::yield_now().await;
                addr
            });
            KEPT.with(|k| *k.borrow_mut() = Some(rt));
            tx.send(addr).unwrap();
        }
    })
    .join()
    .expect("dropping the runtime at thread exit failed");
    let _addr = rx.recv().unwrap();
    // The blocking job may still be finishing on its pool thread.
    let deadline = std::time::Instant::now() + HANG;
    while dropped.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "a task was never dropped"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn tasks_woken_by_other_tasks_drops_during_shutdown_are_not_polled() {
    let rt = Runtime::new().unwrap();
    let polled_after = Rc::new(Cell::new(false));
    let (tx1, rx1) = oneshot::channel::<()>();
    let (tx2, rx2) = oneshot::channel::<()>();
    let flag = polled_after.clone();
    rt.spawn(async move {
        let _ = rx2.await;
        flag.set(true);
    })
    .detach();
    let flag = polled_after.clone();
    rt.spawn(async move {
        let _ = rx1.await;
        flag.set(true);
        let _ = tx2.send(());
    })
    .detach();
    // Never finishes: dropping it drops `tx1`, which wakes the task above.
    rt.spawn(async move {
        pending::<()>().await;
        let _ = tx1.send(());
    })
    .detach();
    rt.block_on(overlap::yield_now());
    drop(rt);
    assert!(!polled_after.get(), "a task was polled during shutdown");
}

#[test]
fn a_guard_dropped_while_a_task_panics_still_reaches_its_receiver() {
    struct SendOnDrop(Option<oneshot::Sender<&'static str>>);
    impl Drop for SendOnDrop {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send("from the unwinding task");
        }
    }
    overlap::block_on(async {
        let (tx, rx) = oneshot::channel();
        let failing = overlap::spawn(async move {
            let _guard = SendOnDrop(Some(tx));
            overlap::yield_now().await;
            panic!("boom");
        });
        assert_eq!(rx.await.unwrap(), "from the unwinding task");
        assert!(failing.await.unwrap_err().is_panic());
    });
}

#[test]
fn a_task_waking_itself_in_its_poll_is_polled_again_without_starving_others() {
    overlap::block_on(async {
        let other_ran = Rc::new(Cell::new(false));
        let polls = Rc::new(Cell::new(0u32));
        let spinner = overlap::spawn({
            let (other_ran, polls) = (other_ran.clone(), polls.clone());
            poll_fn(move |cx| {
                polls.set(polls.get() + 1);
                if other_ran.get() {
                    return Poll::Ready(());
                }
                // Woken twice in one poll: still one more poll, not two.
                cx.waker().wake_by_ref();
                let owned = cx.waker().clone();
                owned.wake();
                Poll::Pending
            })
        });
        let other = overlap::spawn({
            let other_ran = other_ran.clone();
            async move { other_ran.set(true) }
        });
        within(HANG, spinner, "a self-waking task never saw the other run")
            .await
            .unwrap();
        other.await.unwrap();
        assert_eq!(polls.get(), 2, "the self-waking task was polled too often");
    });
}

#[test]
fn a_handle_that_waited_on_a_task_aborted_after_it_finished_gives_the_output() {
    overlap::block_on(async {
        let (tx, rx) = oneshot::channel::<()>();
        let mut task = overlap::spawn(async move {
            rx.await.unwrap();
            "done"
        });
        let abort = task.abort_handle();
        // The handle registers its waker, then the task finishes and is aborted before the
        // handle looks again.
        assert!(support::poll_once(&mut task).await.is_pending());
        tx.send(()).unwrap();
        overlap::yield_now().await;
        assert!(abort.is_finished());
        thread::spawn(move || abort.abort()).join().unwrap();
        task.abort();
        assert_eq!(
            within(HANG, task, "join after abort").await.unwrap(),
            "done"
        );
    });
}

#[test]
fn a_socket_outliving_its_runtime_fails_reads_elsewhere_and_closes_when_dropped() {
    use std::io::Read;
    let peer_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer_listener.local_addr().unwrap();
    let first = Runtime::new().unwrap();
    let mut orphan = first.block_on(async { TcpStream::connect(peer_addr).await.unwrap() });
    let (mut peer, _) = peer_listener.accept().unwrap();
    drop(first);
    let second = Runtime::new().unwrap();
    second.block_on(async {
        // Nothing to read: the wait must fail rather than hang (its runtime is gone).
        let mut byte = [0];
        let read = within(HANG, orphan.read(&mut byte), "a read on an orphaned socket").await;
        assert_eq!(read.unwrap_err().kind(), std::io::ErrorKind::Other);
    });
    drop(orphan);
    drop(second);
    // The fd was closed: the peer sees the end of the stream.
    peer.set_read_timeout(Some(HANG)).unwrap();
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).unwrap(), 0);
}

#[test]
fn a_drop_during_shutdown_runs_a_runtime_of_its_own() {
    struct NestedOnDrop(Rc<Cell<u32>>);
    impl Drop for NestedOnDrop {
        fn drop(&mut self) {
            let out = overlap::block_on(async {
                time::sleep(Duration::from_millis(1)).await;
                overlap::spawn(async { 7 }).await.unwrap()
            });
            self.0.set(out);
        }
    }
    let seen = Rc::new(Cell::new(0));
    let rt = Runtime::new().unwrap();
    let guard = NestedOnDrop(seen.clone());
    rt.spawn(async move {
        let _guard = guard;
        pending::<()>().await;
    })
    .detach();
    rt.block_on(overlap::yield_now());
    drop(rt);
    assert_eq!(seen.get(), 7);
}

#[test]
fn with_one_event_per_wait_every_ready_socket_is_still_served() {
    let rt = Runtime::builder()
        .max_events(1)
        .event_interval(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for i in 0..40u8 {
            let client = TcpStream::connect(addr).await.unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            readers.push(overlap::spawn(async move {
                let mut byte = [0];
                server.read_exact(&mut byte).await.unwrap();
                byte[0]
            }));
            writers.push((i, client));
        }
        overlap::yield_now().await;
        // Every socket becomes readable at once; each wait reports one of them.
        for (i, client) in &mut writers {
            client.write_all(&[*i]).await.unwrap();
        }
        let got = within(
            HANG,
            overlap::future::join_all(readers),
            "a ready socket lost",
        )
        .await;
        let got: Vec<u8> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, (0..40).collect::<Vec<u8>>());
    });
}
