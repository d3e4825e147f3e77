//! An adversarial review of `RuntimeMetrics`: each counter against an exact value in a
//! scripted scenario, where `port_tokio_rt_metrics.rs` checks the common paths. Aborts at
//! every stage of a task, panics, a dropped `JoinSet`, blocking jobs that never run, are
//! aborted while they run or come through a `Handle`, polls
//! per wake, remote against local wakes, fds and timers back to where they started, an
//! idle paused runtime, two runtimes side by side and a runtime reused after its
//! `block_on` panicked.

mod support;

use std::cell::{Cell, RefCell};
use std::future::{pending, poll_fn};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Barrier};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use overlap::signal::{signal, SignalKind};
use overlap::time::{sleep, timeout, Instant};
use overlap::{AsyncFd, JoinSet, Runtime, RuntimeMetrics};
use support::{eventfd, settle, within};

const HANG: Duration = Duration::from_secs(10);

fn now() -> RuntimeMetrics {
    overlap::metrics()
}

/// `(tasks_spawned, tasks_alive, task_polls)`.
fn tasks() -> (u64, u64, u64) {
    let m = now();
    (m.tasks_spawned, m.tasks_alive, m.task_polls)
}

/// A future pending until its waker slot is woken `wakes` times; each poll counted.
fn wait_for_wakes(
    wakes: usize,
    slot: Rc<RefCell<Option<Waker>>>,
    polls: Rc<Cell<usize>>,
) -> impl std::future::Future<Output = ()> {
    let mut seen = 0;
    poll_fn(move |cx| {
        polls.set(polls.get() + 1);
        if seen == wakes {
            return Poll::Ready(());
        }
        seen += 1;
        *slot.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
}

#[test]
fn a_task_aborted_at_each_stage_or_panicking_counts_once() {
    overlap::block_on(async {
        let ran = Rc::new(Cell::new(false));
        let flag = ran.clone();
        let early = overlap::spawn(async move { flag.set(true) });
        early.abort();
        assert!(early.await.unwrap_err().is_cancelled());
        assert!(!ran.get());
        // Spawned, gone, never polled.
        assert_eq!(tasks(), (1, 0, 0));

        let waiting = overlap::spawn(pending::<()>());
        settle().await;
        assert_eq!(tasks(), (2, 1, 1));
        // Twice: the second abort must not end the task a second time.
        waiting.abort();
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        assert_eq!(tasks(), (2, 0, 1));

        let done = overlap::spawn(async { 7 });
        let late = done.abort_handle();
        assert_eq!(done.await.unwrap(), 7);
        late.abort();
        late.abort();
        settle().await;
        assert_eq!(tasks(), (3, 0, 2));

        let boom = overlap::spawn(async {
            overlap::yield_now().await;
            panic!("metrics_review: a task that panics on its second poll");
        });
        assert!(boom.await.unwrap_err().is_panic());
        assert_eq!(tasks(), (4, 0, 4));
    });
}

#[test]
fn a_dropped_join_set_ends_its_tasks_polled_or_not() {
    overlap::block_on(async {
        let mut set = JoinSet::new();
        set.spawn(pending::<()>());
        set.spawn(pending::<()>());
        settle().await;
        assert_eq!(tasks(), (2, 2, 2));
        // Dropped before the loop ever polls it.
        set.spawn(pending::<()>());
        assert_eq!(tasks(), (3, 3, 2));
        drop(set);
        settle().await;
        assert_eq!(tasks(), (3, 0, 2));
    });
}

#[test]
fn blocking_jobs_count_as_tasks_until_run_or_dropped_unrun() {
    let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
    rt.block_on(async {
        let (busy, gate) = started_job(1);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        // Queued behind `busy` on the only thread, then aborted: it never runs.
        let queued = overlap::spawn_blocking(move || flag.store(true, Ordering::SeqCst));
        let m = now();
        assert_eq!((m.tasks_spawned, m.tasks_alive), (2, 2), "{m:?}");
        assert_eq!((m.blocking_running, m.blocking_queued), (1, 1), "{m:?}");
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        assert_eq!(now().tasks_alive, 1);
        gate.wait();
        assert_eq!(busy.await.unwrap(), 1);
        let m = now();
        assert_eq!((m.tasks_spawned, m.tasks_alive), (2, 0), "{m:?}");
        assert!(!ran.load(Ordering::SeqCst));
        // The aborted job was dropped, not run, once the thread was free.
        let m = within(HANG, drained(), "the pool to drain").await;
        assert_eq!((m.blocking_jobs, m.blocking_queued), (2, 0), "{m:?}");
        assert!(!ran.load(Ordering::SeqCst));
    });
}

/// A `spawn_blocking` job that has started on a pool thread and holds it until the
/// returned barrier is passed, then gives `value`.
fn started_job<T: Send + 'static>(value: T) -> (overlap::JoinHandle<T>, Arc<Barrier>) {
    let gate = Arc::new(Barrier::new(2));
    let (started_tx, started) = std_mpsc::channel();
    let job = overlap::spawn_blocking({
        let gate = gate.clone();
        move || {
            started_tx.send(()).unwrap();
            gate.wait();
            value
        }
    });
    started.recv_timeout(HANG).unwrap();
    (job, gate)
}

/// Waits until the pool has no job queued or running; returns that snapshot.
async fn drained() -> RuntimeMetrics {
    loop {
        let m = now();
        if m.blocking_queued == 0 && m.blocking_running == 0 {
            return m;
        }
        sleep(Duration::from_millis(1)).await;
    }
}

#[test]
fn a_task_woken_n_times_is_polled_n_plus_one_times_and_two_wakes_before_a_poll_are_one() {
    overlap::block_on(async {
        let slot = Rc::new(RefCell::new(None::<Waker>));
        let polls = Rc::new(Cell::new(0));
        let task = overlap::spawn(wait_for_wakes(5, slot.clone(), polls.clone()));
        settle().await;
        for _ in 0..4 {
            slot.borrow_mut().take().unwrap().wake();
            settle().await;
        }
        assert_eq!((polls.get(), now().task_polls), (5, 5));
        // The last wake twice (by reference, then by value) before the task runs again.
        let waker = slot.borrow_mut().take().unwrap();
        waker.wake_by_ref();
        waker.wake();
        task.await.unwrap();
        assert_eq!((polls.get(), now().task_polls), (6, 6));
        // Every wake came from this thread.
        assert_eq!(now().remote_wakes, 0);
    });
}

#[test]
fn remote_wakes_count_wakes_from_other_threads_only() {
    overlap::block_on(async {
        let slot = Rc::new(RefCell::new(None::<Waker>));
        let polls = Rc::new(Cell::new(0));
        let task = overlap::spawn(wait_for_wakes(3, slot.clone(), polls.clone()));
        settle().await;
        for round in 1..=3u64 {
            let waker = slot.borrow_mut().take().unwrap();
            // Joined before the loop goes on: the wake is queued by the time it looks.
            thread::spawn(move || waker.wake()).join().unwrap();
            settle().await;
            assert_eq!(polls.get() as u64, round + 1);
            let m = now();
            assert_eq!(m.remote_wakes, round, "round {round}: {m:?}");
        }
        task.await.unwrap();
        // A wake on the loop's own thread is no remote wake.
        let local = overlap::spawn(async {});
        local.await.unwrap();
        assert_eq!(now().remote_wakes, 3);
    });
}

#[test]
fn registered_fds_go_back_to_the_start_after_every_kind_of_fd() {
    overlap::block_on(async {
        let start = now().registered_fds;
        {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (client, accepted) =
                futures_util::join!(TcpStream::connect(addr), listener.accept());
            let (mut client, mut accepted) = (client.unwrap(), accepted.unwrap().0);
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0; 4];
            accepted.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            assert_eq!(now().registered_fds, start + 3);
        }
        assert_eq!(now().registered_fds, start);

        // A connect refused: its socket goes with the error.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(now().registered_fds, start);

        // An accept left pending, then dropped with its listener.
        let listener = Rc::new(TcpListener::bind("[::1]:0").await.unwrap());
        let waiting = overlap::spawn({
            let listener = listener.clone();
            async move { listener.accept().await.map(|_| ()) }
        });
        settle().await;
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        drop(listener);
        assert_eq!(now().registered_fds, start);

        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"u").await.unwrap();
        let mut one = [0; 1];
        b.read_exact(&mut one).await.unwrap();
        drop((a, b));
        let (mut tx, mut rx) = overlap::pipe::pipe().unwrap();
        tx.write_all(b"p").await.unwrap();
        rx.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"p");
        drop((tx, rx));
        let efd = AsyncFd::new(eventfd()).unwrap();
        assert_eq!(now().registered_fds, start + 1);
        drop(efd);
        assert_eq!(now().registered_fds, start);
    });
}

#[test]
fn a_signal_listener_keeps_one_fd_and_one_task_for_the_runtime_s_life() {
    overlap::block_on(async {
        let start = now();
        let usr1 = signal(SignalKind::user_defined1()).unwrap();
        let usr2 = signal(SignalKind::user_defined2()).unwrap();
        drop((usr1, usr2));
        settle().await;
        let m = now();
        assert_eq!(m.registered_fds, start.registered_fds + 1, "{m:?}");
        assert_eq!(m.tasks_alive, start.tasks_alive + 1, "{m:?}");
        // A third listener after the first two went: still the one reader.
        drop(signal(SignalKind::user_defined1()).unwrap());
        settle().await;
        let again = now();
        assert_eq!(
            (again.registered_fds, again.tasks_alive),
            (m.registered_fds, m.tasks_alive)
        );
    });
}

#[overlap::test(start_paused = true)]
async fn timers_active_goes_back_to_zero_however_a_timer_ends() {
    let second = Duration::from_secs(1);
    sleep(second).await;
    assert_eq!((now().timers_active, now().timers_fired), (0, 1));

    // Never polled: never registered.
    drop(sleep(second));
    assert_eq!(now().timers_active, 0);
    // Polled once, then dropped.
    {
        let mut s = pin!(sleep(second));
        assert!(futures_util::poll!(s.as_mut()).is_pending());
        assert_eq!(now().timers_active, 1);
    }
    assert_eq!(now().timers_active, 0);
    // Reset twice while registered: still one timer, firing once.
    let mut s = pin!(sleep(second));
    assert!(futures_util::poll!(s.as_mut()).is_pending());
    s.as_mut().reset(Instant::now() + 2 * second);
    s.as_mut().reset(Instant::now() + 3 * second);
    assert_eq!(now().timers_active, 1);
    s.await;
    assert_eq!((now().timers_active, now().timers_fired), (0, 2));

    // A timeout whose future wins, and one that runs out.
    assert_eq!(timeout(second, async { 4 }).await.unwrap(), 4);
    assert_eq!(timeout(second, overlap::yield_now()).await, Ok(()));
    assert_eq!(now().timers_active, 0);
    assert!(timeout(second, pending::<()>()).await.is_err());
    let m = now();
    assert_eq!((m.timers_active, m.timers_fired), (0, 3), "{m:?}");
}

#[overlap::test(start_paused = true)]
async fn an_idle_paused_runtime_waits_a_bounded_number_of_times_per_sleep() {
    // No fd registered: the loop never calls epoll_wait at all.
    for _ in 0..50 {
        sleep(Duration::from_secs(3600)).await;
    }
    let m = now();
    assert_eq!(m.epoll_waits, 0, "{m:?}");
    assert_eq!(m.timers_fired, 50);
    // With an fd registered, a near sleep costs one look at epoll (without blocking) before
    // the clock jumps; an hour-long one up to one per level of the timer wheel (six), since
    // the clock jumps to each slot that must be cascaded first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let before = now();
    for _ in 0..50 {
        sleep(Duration::from_millis(1)).await;
    }
    let near = now();
    for _ in 0..50 {
        sleep(Duration::from_secs(3600)).await;
    }
    let far = now();
    // (One more where a sleep's deadline lies past a slot of the wheel's next level.)
    let waits = near.epoll_waits - before.epoll_waits;
    assert!((50..=52).contains(&waits), "{waits} epoll waits: {near:?}");
    let waits = far.epoll_waits - near.epoll_waits;
    assert!(
        waits <= 50 * 6,
        "{waits} epoll waits for 50 sleeps: {far:?}"
    );
    assert_eq!(far.events_delivered, before.events_delivered);
    assert_eq!(
        (far.futex_sleeps, far.timers_fired),
        (before.futex_sleeps, 150)
    );
    drop(listener);
}

#[test]
fn two_runtimes_on_two_threads_keep_their_own_counters() {
    let both = Arc::new(Barrier::new(2));
    let run = |tasks: u64, fds: usize, both: Arc<Barrier>| {
        thread::spawn(move || {
            let rt = Runtime::builder().start_paused(true).build().unwrap();
            rt.block_on(async {
                let mut held = Vec::new();
                for _ in 0..fds {
                    held.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
                }
                let waiting: Vec<_> = (0..tasks)
                    .map(|_| overlap::spawn(pending::<()>()))
                    .collect();
                settle().await;
                let mut s = pin!(sleep(Duration::from_secs(tasks)));
                assert!(futures_util::poll!(s.as_mut()).is_pending());
                // Both runtimes hold their tasks, fds and timer at this point.
                both.wait();
                let m = now();
                drop(waiting);
                both.wait();
                m
            })
        })
    };
    let a = run(3, 1, both.clone());
    let b = run(5, 2, both);
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let pick = |m: RuntimeMetrics| {
        (
            m.tasks_spawned,
            m.tasks_alive,
            m.task_polls,
            m.registered_fds,
            m.timers_active,
            m.remote_wakes,
        )
    };
    assert_eq!(pick(a), (3, 3, 3, 1, 1, 0), "{a:?}");
    assert_eq!(pick(b), (5, 5, 5, 2, 1, 0), "{b:?}");
}

#[test]
fn counters_carry_on_after_a_block_on_that_panicked() {
    let rt = Runtime::new().unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let _kept = overlap::spawn(pending::<()>());
            overlap::spawn(async {}).await.unwrap();
            let _listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut s = pin!(sleep(Duration::from_secs(3600)));
            assert!(futures_util::poll!(s.as_mut()).is_pending());
            assert_eq!(now().timers_active, 1);
            panic!("metrics_review: the block_on future panics");
        })
    }));
    assert!(panicked.is_err());
    let m = rt.metrics();
    // The listener and the sleep went with the unwound future; the pending task stays.
    assert_eq!(
        (
            m.tasks_spawned,
            m.tasks_alive,
            m.registered_fds,
            m.timers_active
        ),
        (2, 1, 0, 0),
        "{m:?}"
    );
    let polls = m.task_polls;
    rt.block_on(async {
        overlap::spawn(async {}).await.unwrap();
    });
    let m = rt.metrics();
    assert_eq!(
        (m.tasks_spawned, m.tasks_alive, m.task_polls),
        (3, 1, polls + 1),
        "{m:?}"
    );
}

/// Two kinds of blocking job with no task left on the loop while the job still runs or
/// waits: one whose `spawn_blocking` handle was aborted once it had started (its relay task
/// ends at once; `blocking_running` still counts it), and one queued through a `Handle`,
/// which never had a task (`blocking_jobs` counts it).
#[test]
fn a_job_aborted_while_it_runs_or_queued_through_a_handle_is_no_task() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (busy, gate) = started_job(());
        busy.abort();
        assert!(busy.await.unwrap_err().is_cancelled());
        let m = now();
        assert_eq!((m.tasks_spawned, m.tasks_alive), (1, 0), "{m:?}");
        assert_eq!((m.blocking_running, m.blocking_jobs), (1, 1), "{m:?}");
        gate.wait();
        let m = within(HANG, drained(), "the aborted job to end").await;
        assert_eq!((m.blocking_running, m.blocking_queued), (0, 0), "{m:?}");
    });
    let handle = rt.handle();
    let job = thread::spawn(move || handle.spawn_blocking(|| 5))
        .join()
        .unwrap();
    assert_eq!(rt.block_on(job).unwrap(), 5);
    let m = rt.metrics();
    assert_eq!(
        (m.tasks_spawned, m.tasks_alive, m.blocking_jobs),
        (1, 0, 2),
        "{m:?}"
    );
}
