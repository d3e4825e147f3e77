//! `Handle`: spawning onto a runtime from other threads, and what its `RemoteJoinHandle`
//! reports.

mod support;

use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread::{self, ThreadId};
use std::time::Duration;

use overlap::{AsyncFd, Handle, Runtime};
use support::{panic_message as message, within, Mailbox};

/// Records the thread that dropped it.
struct DropWitness(Arc<Mailbox<ThreadId>>);

impl Drop for DropWitness {
    fn drop(&mut self) {
        self.0.put(thread::current().id());
    }
}

#[test]
fn a_thread_spawns_onto_a_runtime_asleep_in_epoll_and_awaits_the_output_elsewhere() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let done = Arc::new(Mailbox::<ThreadId>::default());
    let d = done.clone();
    let spawner = thread::spawn(move || {
        // Give the runtime time to fall asleep first.
        thread::sleep(Duration::from_millis(50));
        let task = handle.spawn(async move {
            let id = thread::current().id();
            d.put(id);
            id
        });
        // Awaited on this thread, in a runtime of its own.
        overlap::block_on(task).unwrap()
    });
    // An fd on the reactor makes the loop sleep in epoll_wait (not on its futex).
    let (r, _w) = support::pipe();
    let ran_on = rt.block_on(async {
        let _registered = AsyncFd::new(r).unwrap();
        within(
            Duration::from_secs(10),
            done.take(),
            "the remote task never ran",
        )
        .await
    });
    let here = thread::current().id();
    assert_eq!(ran_on, here, "the task ran on the runtime's thread");
    assert_eq!(spawner.join().unwrap(), here);
    let m = rt.metrics();
    assert!(m.eventfd_writes >= 1, "the sleeping loop was woken: {m:?}");
    assert!(m.tasks_spawned >= 1);
}

#[test]
fn thousands_of_spawns_from_four_threads_all_run_once() {
    const THREADS: usize = 4;
    const EACH: usize = 1000;
    let rt = Runtime::new().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let spawners: Vec<_> = (0..THREADS)
        .map(|t| {
            let (handle, runs, tx) = (rt.handle(), runs.clone(), tx.clone());
            thread::spawn(move || {
                for i in 0..EACH {
                    let runs = runs.clone();
                    let task = handle.spawn(async move {
                        runs.fetch_add(1, Ordering::Relaxed);
                        t * EACH + i
                    });
                    tx.send(task).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut outputs: Vec<usize> = rt.block_on(async {
        let mut outputs = Vec::new();
        // The handles arrive while their tasks may already run; await each in turn.
        while let Ok(task) = rx.recv() {
            let out = within(Duration::from_secs(10), task, "a remote task").await;
            outputs.push(out.unwrap());
        }
        outputs
    });
    for s in spawners {
        s.join().unwrap();
    }
    outputs.sort_unstable();
    assert_eq!(outputs, (0..THREADS * EACH).collect::<Vec<_>>());
    assert_eq!(runs.load(Ordering::Relaxed), THREADS * EACH);
    assert_eq!(rt.metrics().tasks_alive, 0);
}

#[test]
fn spawn_with_makes_a_non_send_future_on_the_runtime_thread() {
    use std::cell::RefCell;
    use std::rc::Rc;

    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let task = thread::spawn(move || {
        handle.spawn_with(|| {
            // `Rc` and `RefCell` held across an await: this future is not `Send`.
            let log = Rc::new(RefCell::new(Vec::new()));
            async move {
                log.borrow_mut().push(1);
                overlap::yield_now().await;
                log.borrow_mut().push(2);
                (thread::current().id(), log.borrow().clone())
            }
        })
    })
    .join()
    .unwrap();
    let (ran_on, log) = rt.block_on(task).unwrap();
    assert_eq!(ran_on, thread::current().id());
    assert_eq!(log, [1, 2]);
}

#[test]
fn current_spawns_at_once_inside_and_is_refused_outside() {
    assert!(Handle::try_current().is_none());
    let err = std::panic::catch_unwind(Handle::current).unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .copied()
        .or(err.downcast_ref::<String>().map(String::as_str))
        .unwrap();
    assert!(msg.contains("outside of a runtime"), "{msg}");

    overlap::block_on(async {
        let before = overlap::metrics().tasks_spawned;
        let task = Handle::current().spawn(async { 5 });
        // Spawned on the spot, not through the remote queue.
        assert_eq!(overlap::metrics().tasks_spawned, before + 1);
        assert_eq!(task.await.unwrap(), 5);
        assert!(Handle::try_current().is_some());
    });
}

#[test]
fn a_panic_in_a_remote_task_or_its_maker_is_reported_and_the_runtime_goes_on() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let (a, b, c) = thread::spawn(move || {
        let a = handle.spawn(async { panic!("remote boom") });
        let b = handle.spawn_with(|| -> std::future::Ready<()> { panic!("maker boom") });
        let c = handle.spawn(async { "still serving" });
        (a, b, c)
    })
    .join()
    .unwrap();
    rt.block_on(async {
        let err = a.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "remote boom");
        let err = b.await.unwrap_err();
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "maker boom");
        assert_eq!(c.await.unwrap(), "still serving");
    });
}

/// `Handle::spawn`'s handle is named in `overlap::task` too, next to `JoinHandle` (and in
/// `overlap::runtime`, next to `Handle`): tokio's `Handle::spawn` gives a
/// `task::JoinHandle`, and a port that names the type of a field looks for it there.
#[test]
fn the_remote_join_handle_is_named_next_to_join_handle_and_handle() {
    let rt = Runtime::new().unwrap();
    let tasks: Vec<overlap::task::RemoteJoinHandle<u8>> = vec![rt.handle().spawn(async { 1 })];
    let more: Vec<overlap::runtime::RemoteJoinHandle<u8>> = vec![rt.handle().spawn(async { 2 })];
    let sum = rt.block_on(async {
        let mut sum = 0;
        for task in tasks.into_iter().chain(more) {
            sum += task.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 3);
}

/// A thread that runs a runtime and catches a panic of its main future (a shard that
/// survives a bad request) needs the runtime, its handles and its tasks' handles to cross
/// `catch_unwind`, as tokio's do: the runtime stays usable after the panic.
#[test]
fn the_runtime_and_the_handles_cross_catch_unwind_and_serve_on_after_it() {
    use std::panic::{catch_unwind, RefUnwindSafe, UnwindSafe};
    fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}
    unwind_safe::<Runtime>();
    unwind_safe::<Handle>();
    unwind_safe::<overlap::RemoteJoinHandle<Vec<u8>>>();
    unwind_safe::<overlap::JoinHandle<Vec<u8>>>();
    unwind_safe::<overlap::task::AbortHandle>();

    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let remote = handle.spawn(async { 1 });
    let caught = catch_unwind(|| rt.block_on(async { panic!("bad request") }));
    assert_eq!(message(caught.unwrap_err()), "bad request");
    let local = rt.spawn(async { 2 });
    let again = catch_unwind(|| handle.spawn(async { 3 })).unwrap();
    assert_eq!(rt.block_on(remote).unwrap(), 1);
    assert_eq!(rt.block_on(local).unwrap(), 2);
    assert_eq!(rt.block_on(again).unwrap(), 3);
}

#[test]
fn abort_from_another_thread_drops_the_future_on_the_runtime_thread_while_it_waits_on_io() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let dropped = Arc::new(Mailbox::<ThreadId>::default());
    let started = Arc::new(Mailbox::<()>::default());
    let (d, s) = (dropped.clone(), started.clone());
    let task = handle.spawn_with(move || async move {
        let _witness = DropWitness(d);
        let (r, _w) = support::pipe();
        let r = AsyncFd::new(r).unwrap();
        s.put(());
        // Never readable: nothing is written.
        let _ = r.readable().await;
    });
    let (task, dropped_on) = rt.block_on(async {
        within(
            Duration::from_secs(10),
            started.take(),
            "the task never started",
        )
        .await;
        let task = thread::spawn(move || {
            task.abort();
            task
        })
        .join()
        .unwrap();
        let on = within(
            Duration::from_secs(10),
            dropped.take(),
            "abort never landed",
        )
        .await;
        (task, on)
    });
    assert_eq!(dropped_on, thread::current().id());
    assert!(task.is_finished());
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
}

#[test]
fn dropping_the_runtime_cancels_remote_tasks_queued_or_pending() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(Mailbox::<()>::default());
    let (count, s) = (dropped.clone(), started.clone());
    // Pending: started, then parked forever.
    let pending = handle.spawn_with(move || async move {
        let _witness = Counted(count);
        s.put(());
        std::future::pending::<()>().await
    });
    rt.block_on(within(
        Duration::from_secs(10),
        started.take(),
        "never started",
    ));
    // Queued: spawned from a thread, never run.
    let count = dropped.clone();
    let h = handle.clone();
    let queued = thread::spawn(move || h.spawn(async move { drop(Counted(count)) }))
        .join()
        .unwrap();
    drop(rt);
    assert!(pending.is_finished() && queued.is_finished());
    overlap::block_on(async {
        assert!(pending.await.unwrap_err().is_cancelled());
        assert!(queued.await.unwrap_err().is_cancelled());
    });
    // The pending task's future was dropped; the queued one's was never made.
    assert_eq!(dropped.load(Ordering::Relaxed), 1);

    // After the runtime is gone, a spawn drops its maker at once and reports cancelled.
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    let late = handle.spawn_with(move || {
        m.fetch_add(1, Ordering::Relaxed);
        async {}
    });
    assert!(late.is_finished());
    assert!(overlap::block_on(late).unwrap_err().is_cancelled());
    assert_eq!(made.load(Ordering::Relaxed), 0);
}

struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_detached_remote_task_still_runs_at_the_next_block_on() {
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    thread::spawn(move || {
        drop(handle.spawn(async move {
            r.fetch_add(1, Ordering::Relaxed);
        }))
    })
    .join()
    .unwrap();
    // No block_on ran meanwhile: the spawn waits in the remote queue.
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    rt.block_on(async {
        within(
            Duration::from_secs(10),
            poll_fn(|cx| {
                if ran.load(Ordering::Relaxed) == 1 {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            }),
            "the detached task never ran",
        )
        .await
    });
}

#[test]
fn a_task_aborted_before_it_starts_never_makes_its_future() {
    let rt = Runtime::new().unwrap();
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    let task = rt.handle().spawn_with(move || {
        m.fetch_add(1, Ordering::Relaxed);
        async {}
    });
    task.abort();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    assert_eq!(made.load(Ordering::Relaxed), 0);
    // The runtime goes on, and the handle's abort of a finished task changes nothing.
    let done = rt.handle().spawn(async { 3 });
    let out = rt.block_on(async {
        while !done.is_finished() {
            overlap::yield_now().await;
        }
        done.abort();
        done.await
    });
    assert_eq!(out.unwrap(), 3);
}

#[test]
fn spawns_racing_a_runtime_drop_all_resolve_and_nothing_leaks() {
    // Four threads spawn as fast as they can; once a hundred of their tasks have run, the
    // runtime is dropped under them. Every handle must resolve, to an output (ran) or to cancelled
    // (queued too late, or still pending at the drop), and every maker and future must be
    // dropped exactly once (valgrind checks the memory in CI).
    for _ in 0..3 {
        let rt = Runtime::new().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (made, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spawners: Vec<_> = (0..4)
            .map(|_| {
                let (handle, stop, ran) = (rt.handle(), stop.clone(), ran.clone());
                let (made, dropped) = (made.clone(), dropped.clone());
                thread::spawn(move || {
                    let mut handles = Vec::new();
                    while !stop.load(Ordering::Relaxed) && handles.len() < 5_000 {
                        let guard = Counted(dropped.clone());
                        made.fetch_add(1, Ordering::Relaxed);
                        let ran = ran.clone();
                        handles.push(handle.spawn_with(move || async move {
                            let _guard = guard;
                            ran.fetch_add(1, Ordering::Relaxed);
                            overlap::yield_now().await;
                            7u8
                        }));
                    }
                    handles
                })
            })
            .collect();
        let running = poll_fn(|cx| {
            if ran.load(Ordering::Relaxed) >= 100 {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        rt.block_on(within(
            Duration::from_secs(20),
            running,
            "no remote task ran",
        ));
        drop(rt);
        stop.store(true, Ordering::Relaxed);
        let handles: Vec<_> = spawners
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect();
        let mut outcomes = (0, 0);
        overlap::block_on(async {
            for h in handles {
                assert!(
                    h.is_finished(),
                    "a handle still pending after its runtime was dropped"
                );
                match h.await {
                    Ok(7) => outcomes.0 += 1,
                    Err(e) if e.is_cancelled() => outcomes.1 += 1,
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
        });
        let made = made.load(Ordering::Relaxed);
        assert_eq!(outcomes.0 + outcomes.1, made);
        assert_eq!(
            dropped.load(Ordering::Relaxed),
            made,
            "every guard dropped exactly once"
        );
    }
}

/// Polling a join handle again after it gave its result is a bug in the caller: both kinds
/// of handle say so, instead of hanging (`JoinHandle`) or making up a cancellation
/// (`RemoteJoinHandle`).
#[test]
fn join_handles_polled_after_their_result_panic_with_a_clear_message() {
    use std::future::Future;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::pin::Pin;
    use std::task::{Context, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let rt = overlap::Runtime::new().unwrap();
    let mut local = {
        let _entered = rt.enter();
        overlap::spawn(async { 1 })
    };
    assert_eq!(rt.block_on(&mut local).unwrap(), 1);
    let again = rt.block_on(async {
        catch_unwind(AssertUnwindSafe(|| Pin::new(&mut local).poll(&mut cx))).map(|_| ())
    });
    assert!(message(again.unwrap_err()).contains("JoinHandle polled after"));
    let mut remote = rt.handle().spawn(async { 5 });
    assert_eq!(rt.block_on(&mut remote).unwrap(), 5);
    let again = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut remote).poll(&mut cx)));
    assert!(message(again.unwrap_err()).contains("RemoteJoinHandle polled after"));
}
