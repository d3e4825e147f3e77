//! Wakes from other threads, after the runtime is gone, and the eventfd coalescing.

mod support;

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;

use overlap::{block_on, spawn, Runtime};
use support::Mailbox;

/// A thread that answers every number sent to it with the next one, through a `Mailbox`.
/// Returns the mailbox, the sender (drop it to stop the thread) and the thread.
fn spawn_echo_thread() -> (Arc<Mailbox<u64>>, mpsc::Sender<u64>, thread::JoinHandle<()>) {
    let to_loop = Arc::new(Mailbox::default());
    let (to_thread, rx) = mpsc::channel::<u64>();
    let mb = to_loop.clone();
    let echo = thread::spawn(move || {
        for v in rx {
            mb.put(v + 1);
        }
    });
    (to_loop, to_thread, echo)
}

#[test]
fn ten_thousand_cross_thread_round_trips() {
    const N: u64 = 10_000;
    let (to_loop, to_thread, echo) = spawn_echo_thread();
    let rt = Runtime::new().unwrap();
    let last = rt.block_on(async {
        let h = spawn(async move {
            let mut v = 0;
            for _ in 0..N {
                to_thread.send(v).unwrap();
                v = to_loop.take().await;
            }
            v
        });
        h.await.unwrap()
    });
    assert_eq!(last, N);
    echo.join().unwrap();
    let m = rt.metrics();
    // A reply that lands before the task parks needs no wake, so not every trip is one.
    assert!(
        m.remote_wakes > 0,
        "replies must come through the remote queue: {m:?}"
    );
    assert!(m.eventfd_writes + m.futex_wakes <= m.remote_wakes + 1);
}

/// Aborts the test process if `what` is still running after a minute: a lost wake shows up
/// as a hang, which is better reported than left to a CI timeout.
fn watchdog(what: &'static str) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    thread::spawn(move || {
        for _ in 0..600 {
            if d.load(Ordering::SeqCst) {
                return;
            }
            thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("{what}: still running after 60 s, a wake was lost");
        std::process::abort();
    });
    done
}

#[test]
fn the_block_on_future_itself_does_ten_thousand_cross_thread_round_trips() {
    // The `block_on` future (no task) waits: a wake applied just before the loop would sleep
    // must stop it from sleeping.
    const N: u64 = 10_000;
    let done = watchdog("block_on cross-thread round trips");
    let (to_loop, to_thread, echo) = spawn_echo_thread();
    let last = block_on(async {
        let mut v = 0;
        for _ in 0..N {
            to_thread.send(v).unwrap();
            v = to_loop.take().await;
        }
        v
    });
    done.store(true, Ordering::SeqCst);
    assert_eq!(last, N);
    drop(to_thread);
    echo.join().unwrap();
}

#[test]
fn with_no_fd_registered_the_loop_sleeps_on_its_futex() {
    // No fd is registered, so the loop never sleeps in epoll: replies that find it asleep
    // signal its futex instead of writing the eventfd, at most once per wake. (Whether it
    // spins for them first is a matter of timing, which the runtime benchmark's unpinned
    // cross-thread row measures.)
    const N: u64 = 2_000;
    let (to_loop, to_thread, echo) = spawn_echo_thread();
    let rt = Runtime::new().unwrap();
    let last = rt.block_on(async {
        let mut v = 0;
        for _ in 0..N {
            to_thread.send(v).unwrap();
            v = to_loop.take().await;
        }
        v
    });
    assert_eq!(last, N);
    drop(to_thread);
    echo.join().unwrap();
    let m = rt.metrics();
    assert_eq!((m.eventfd_writes, m.epoll_waits), (0, 0), "{m:?}");
    assert!(m.futex_sleeps > 0, "the loop never slept: {m:?}");
    assert!(m.futex_wakes <= m.remote_wakes, "{m:?}");
}

#[test]
fn many_remote_wakes_while_the_loop_is_away_cost_no_syscall() {
    let rt = Runtime::new().unwrap();
    let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
    let polls = Rc::new(Cell::new(0));
    let mut handles = Vec::new();
    for _ in 0..100 {
        let w = wakers.clone();
        let p = polls.clone();
        handles.push(rt.spawn(poll_fn(move |cx| {
            p.set(p.get() + 1);
            if p.get() > 100 {
                return Poll::Ready(());
            }
            w.lock().unwrap().push(cx.waker().clone());
            Poll::Pending
        })));
    }
    // Run every task once so each parks and leaves its waker.
    rt.block_on(async {
        while wakers.lock().unwrap().len() < 100 {
            overlap::yield_now().await;
        }
    });
    let before = rt.metrics();
    let ws = std::mem::take(&mut *wakers.lock().unwrap());
    thread::spawn(move || ws.into_iter().for_each(Waker::wake))
        .join()
        .unwrap();
    let after = rt.metrics();
    assert_eq!(after.remote_wakes - before.remote_wakes, 100);
    // The loop is not asleep, and it looks at the remote queue before it sleeps: no wake
    // needed a syscall.
    assert_eq!(
        (after.eventfd_writes, after.futex_wakes),
        (before.eventfd_writes, before.futex_wakes),
        "100 wakes while the loop was away"
    );
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
}

#[test]
fn waking_after_runtime_dropped_does_nothing() {
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let s = slot.clone();
    let rt = Runtime::new().unwrap();
    drop(rt.spawn(poll_fn(move |cx| {
        *s.lock().unwrap() = Some(cx.waker().clone());
        Poll::<()>::Pending
    })));
    rt.block_on(overlap::yield_now());
    drop(rt);
    let w = slot.lock().unwrap().take().unwrap();
    // From another thread and from this one: neither may crash or run anything.
    let w2 = w.clone();
    thread::spawn(move || w2.wake()).join().unwrap();
    w.wake_by_ref();
    drop(w);
}

#[test]
fn future_is_never_dropped_on_the_waking_thread() {
    struct OnThread(thread::ThreadId, Arc<AtomicBool>);
    impl Drop for OnThread {
        fn drop(&mut self) {
            self.1
                .store(thread::current().id() == self.0, Ordering::SeqCst);
        }
    }
    let dropped_on_owner = Arc::new(AtomicBool::new(false));
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let rt = Runtime::new().unwrap();
    let guard = OnThread(thread::current().id(), dropped_on_owner.clone());
    let s = slot.clone();
    let h = rt.spawn(async move {
        let _g = guard;
        poll_fn(|cx| {
            *s.lock().unwrap() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
        .await;
    });
    rt.block_on(overlap::yield_now());
    h.abort();
    let w = slot.lock().unwrap().take().unwrap();
    // The other thread holds the last waker while the runtime drops the future.
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        rx.recv().unwrap();
        w.wake();
    });
    assert!(rt.block_on(h).unwrap_err().is_cancelled());
    tx.send(()).unwrap();
    t.join().unwrap();
    assert!(dropped_on_owner.load(Ordering::SeqCst));
}

#[test]
fn wakes_from_many_threads_are_not_lost() {
    const THREADS: usize = 4;
    const PER: usize = 2_000;
    let counter = Arc::new(AtomicUsize::new(0));
    let seen = block_on(async {
        let c = counter.clone();
        let waker_slot: Arc<Mutex<Option<Waker>>> = Arc::default();
        let ws = waker_slot.clone();
        let task = spawn(poll_fn(move |cx| {
            *ws.lock().unwrap() = Some(cx.waker().clone());
            if c.load(Ordering::SeqCst) == THREADS * PER {
                Poll::Ready(c.load(Ordering::SeqCst))
            } else {
                Poll::Pending
            }
        }));
        overlap::yield_now().await;
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let c = counter.clone();
                let ws = waker_slot.clone();
                thread::spawn(move || {
                    for _ in 0..PER {
                        c.fetch_add(1, Ordering::SeqCst);
                        let w = ws.lock().unwrap().clone();
                        if let Some(w) = w {
                            w.wake();
                        }
                    }
                })
            })
            .collect();
        let seen = task.await.unwrap();
        for t in threads {
            t.join().unwrap();
        }
        seen
    });
    assert_eq!(seen, THREADS * PER);
}

/// Spawns a task that parks once and completes when polled again; runs it until it parks
/// and returns its handle and the waker it left behind (made at home, on the runtime thread).
fn parked_task(rt: &Runtime) -> (overlap::JoinHandle<()>, Waker) {
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let s = slot.clone();
    let mut parked = false;
    let h = rt.spawn(poll_fn(move |cx| {
        if parked {
            return Poll::Ready(());
        }
        parked = true;
        *s.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }));
    rt.block_on(overlap::yield_now());
    assert!(!h.is_finished());
    let w = slot.lock().unwrap().take().unwrap();
    (h, w)
}

#[test]
fn a_waker_made_at_home_works_from_another_thread() {
    let rt = Runtime::new().unwrap();
    let (h, w) = parked_task(&rt);
    // Clone there, drop the original there, wake with the clone there.
    thread::spawn(move || {
        let w2 = w.clone();
        drop(w);
        w2.wake();
    })
    .join()
    .unwrap();
    rt.block_on(h).unwrap();
    assert_eq!(rt.metrics().tasks_alive, 0);
}

#[test]
fn a_home_waker_dropped_elsewhere_after_the_task_finished_is_released() {
    // Run under valgrind in CI: a leaked or doubly freed task cell fails there.
    let rt = Runtime::new().unwrap();
    let (h, w) = parked_task(&rt);
    w.wake_by_ref();
    rt.block_on(h).unwrap();
    // The task is complete; its last reference goes away on another thread while the
    // runtime lives, then the runtime applies it.
    thread::spawn(move || drop(w)).join().unwrap();
    rt.block_on(overlap::yield_now());
    assert_eq!(rt.metrics().tasks_alive, 0);
}

#[test]
fn home_wakers_dropped_elsewhere_after_the_runtime_is_gone_are_released() {
    let rt = Runtime::new().unwrap();
    let (h, w) = parked_task(&rt);
    let w_here = w.clone();
    drop(rt);
    // The handle outlives the runtime on its own thread; the wakers die elsewhere.
    assert!(h.is_finished());
    thread::spawn(move || {
        w.wake_by_ref();
        drop(w);
    })
    .join()
    .unwrap();
    drop(h);
    thread::spawn(move || w_here.wake()).join().unwrap();
}

#[test]
fn tasks_waking_each_other_do_not_starve_queued_tasks() {
    const TURNS: u32 = 10_000;
    let seen_at = block_on(async {
        let turn = Rc::new(Cell::new(0u32));
        let wakers: Rc<[Cell<Option<Waker>>; 2]> = Rc::new(Default::default());
        let player = |me: u32| {
            let (turn, wakers) = (turn.clone(), wakers.clone());
            spawn(poll_fn(move |cx| loop {
                if turn.get() >= TURNS {
                    if let Some(w) = wakers[1 - me as usize].take() {
                        w.wake();
                    }
                    return Poll::Ready(());
                }
                if turn.get() % 2 != me {
                    wakers[me as usize].set(Some(cx.waker().clone()));
                    return Poll::Pending;
                }
                turn.set(turn.get() + 1);
                // Hand the turn over and wait for it to come back.
                if let Some(w) = wakers[1 - me as usize].take() {
                    w.wake();
                }
            }))
        };
        let (a, b) = (player(0), player(1));
        let t = turn.clone();
        let bystander = spawn(async move { t.get() });
        let seen_at = bystander.await.unwrap();
        a.await.unwrap();
        b.await.unwrap();
        assert_eq!(turn.get(), TURNS);
        seen_at
    });
    assert!(
        seen_at < 100,
        "a task queued behind two tasks that keep waking each other ran only at turn {seen_at}"
    );
}

#[test]
fn the_block_on_future_is_woken_from_another_thread_and_its_waker_may_outlive_it() {
    let rt = Runtime::new().unwrap();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let s = slot.clone();
    let mut parked = false;
    // The waker is handed to a thread that wakes it later; block_on must sleep until then.
    let (kept, t) = rt.block_on(poll_fn(move |cx| {
        if parked {
            let kept = s.lock().unwrap().take().unwrap();
            let t = thread::spawn(move || drop(kept));
            return Poll::Ready((cx.waker().clone(), t));
        }
        parked = true;
        *s.lock().unwrap() = Some(cx.waker().clone());
        let w = cx.waker().clone();
        thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(20));
            w.wake();
        });
        Poll::Pending
    }));
    t.join().unwrap();
    // A main waker kept past block_on: waking it does nothing, here or elsewhere.
    kept.wake_by_ref();
    rt.block_on(overlap::yield_now());
    drop(rt);
    thread::spawn(move || kept.wake()).join().unwrap();
}
