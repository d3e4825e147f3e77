//! Behaviours checked by async-io's tests (`block_on.rs`, `timer.rs`,
//! `driver_not_spawned.rs`) and mio's `waker.rs`, ported to overlap: `block_on` on threads
//! that have no runtime, futures that wake themselves, and the one loop that waits for
//! timers and I/O at once (async-io parks on its reactor in `block_on`; overlap's loop
//! sleeps in `epoll_pwait2`, or on a futex with no fd registered). Each test names the test
//! it follows.
//!
//! Left out, covered elsewhere: many timers at one instant (`port_tokio_rt_timers.rs`),
//! `Sleep::reset` and a sleep moved between tasks (`time_sleep.rs`), wakes from other
//! threads while `block_on` sleeps (`runtime_wake.rs`, `runtime_handle_block_on.rs`).

mod support;

use std::future::{poll_fn, Future};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::time::{sleep, timeout, Instant};
use support::{panic_message, poll_once, tcp_pair, within, Rng};

const HANG: Duration = Duration::from_secs(10);

/// Pending `0` times, waking itself each time before it says so.
struct WakesItself {
    left: u32,
    by_ref: bool,
}

impl Future for WakesItself {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.left == 0 {
            return Poll::Ready(7);
        }
        self.left -= 1;
        if self.by_ref {
            cx.waker().wake_by_ref();
        } else {
            // The by-value wake is its own vtable entry, which consumes the clone.
            #[allow(clippy::waker_clone_wake)]
            cx.waker().clone().wake();
        }
        Poll::Pending
    }
}

// async-io: block_on.rs yielding
#[test]
fn a_future_that_wakes_itself_completes_under_every_block_on() {
    let rt = overlap::Runtime::new().unwrap();
    for left in 0..100 {
        for by_ref in [true, false] {
            assert_eq!(overlap::block_on(WakesItself { left, by_ref }), 7);
            assert_eq!(rt.block_on(WakesItself { left, by_ref }), 7);
            // Inside a task too: a self-wake requeues the task.
            let in_task = rt.block_on(async { overlap::spawn(WakesItself { left, by_ref }).await });
            assert_eq!(in_task.unwrap(), 7);
        }
    }
}

// mio: waker.rs waker_multiple_wakeups_different_thread (several wakes from another thread
// while the loop sleeps all end in one poll that sees them, none lost)
#[test]
fn wakes_from_another_thread_while_the_loop_sleeps_are_never_lost() {
    overlap::block_on(async {
        for round in 0..50u32 {
            let (tx, rx) = mpsc::channel::<std::task::Waker>();
            let done = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let waker_thread = std::thread::spawn({
                let done = done.clone();
                move || {
                    let waker = rx.recv().unwrap();
                    for _ in 0..=round % 4 {
                        waker.wake_by_ref();
                    }
                    done.store(1, std::sync::atomic::Ordering::SeqCst);
                    waker.wake();
                }
            });
            let mut tx = Some(tx);
            let wait = poll_fn(|cx| {
                if let Some(tx) = tx.take() {
                    tx.send(cx.waker().clone()).unwrap();
                }
                if done.load(std::sync::atomic::Ordering::SeqCst) == 1 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            within(HANG, wait, "a wake from another thread was lost").await;
            waker_thread.join().unwrap();
        }
    });
}

/// A TCP pair on 127.0.0.1 exchanging `rounds` random messages, a random sleep of under a
/// millisecond before each write and each read; the bytes that went through.
async fn chatter(seed: u64, rounds: usize) -> usize {
    let mut rng = Rng(seed + 1);
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let a = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (b, _) = listener.accept().await.unwrap();
    let mut moved = 0;
    for _ in 0..rounds {
        let mut msg = [0u8; 64];
        msg.iter_mut().for_each(|x| *x = rng.next() as u8);
        sleep(Duration::from_micros(rng.next() % 1000)).await;
        (&a).write_all(&msg).await.unwrap();
        sleep(Duration::from_micros(rng.next() % 1000)).await;
        let mut got = [0u8; 64];
        (&b).read_exact(&mut got).await.unwrap();
        assert_eq!(got, msg);
        moved += msg.len();
    }
    moved
}

// async-io: driver_not_spawned.rs test_one_block_on (thousands of timers and hundreds of
// sockets served by one block_on, with no helper thread)
#[test]
fn one_block_on_serves_thousands_of_timers_and_many_sockets_on_its_own_thread() {
    overlap::block_on(async {
        let start = Instant::now();
        let timers: Vec<_> = (0..10_000u64)
            .map(|i| overlap::time::sleep_until(start + Duration::from_micros(i * 5)))
            .collect();
        let pairs: Vec<_> = (0..100).map(|i| overlap::spawn(chatter(i, 20))).collect();
        within(
            HANG,
            async {
                for (i, timer) in timers.into_iter().enumerate() {
                    timer.await;
                    assert!(
                        Instant::now() >= start + Duration::from_micros(i as u64 * 5),
                        "timer {i} fired early"
                    );
                }
            },
            "the timers stalled among the sockets",
        )
        .await;
        let mut moved = 0;
        for pair in pairs {
            moved += within(HANG, pair, "a socket pair stalled among the timers")
                .await
                .unwrap();
        }
        assert_eq!(moved, 100 * 20 * 64);
        let m = overlap::metrics();
        assert_eq!(m.blocking_threads, 0, "the loop needed a helper thread");
        assert_eq!(m.timers_active, 0, "{m:?}");
    });
}

// async-io: the `spawn` helper of async.rs and timer.rs (each thread its own block_on)
#[test]
fn block_on_in_plain_threads_runs_independent_runtimes_side_by_side() {
    assert!(overlap::runtime::Handle::try_current().is_none());
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || {
                assert!(overlap::runtime::Handle::try_current().is_none());
                overlap::block_on(async move {
                    assert!(overlap::runtime::Handle::try_current().is_some());
                    let moved = chatter(100 + i, 10).await;
                    sleep(Duration::from_millis(1)).await;
                    moved
                })
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 10 * 64);
    }
    assert!(
        overlap::runtime::Handle::try_current().is_none(),
        "left behind"
    );
}

// async-io: block_on nests (it is a plain parker); overlap refuses, as tokio does: a nested
// loop would starve the outer runtime's tasks.
#[test]
fn block_on_inside_a_runtime_panics_and_leaves_the_outer_one_working() {
    overlap::block_on(async {
        let nested = std::panic::catch_unwind(|| overlap::block_on(async { 1 }));
        let msg = panic_message(nested.unwrap_err());
        assert!(msg.contains("within a runtime"), "{msg}");
        // The outer runtime still runs tasks, timers and sockets.
        let task = overlap::spawn(async {
            sleep(Duration::from_millis(1)).await;
            1
        });
        assert_eq!(task.await.unwrap(), 1);
        let (a, b) = tcp_pair().await;
        (&a).write_all(b"ok").await.unwrap();
        let mut buf = [0u8; 2];
        (&b).read_exact(&mut buf).await.unwrap();
    });
}

// async-io: timer.rs together with async.rs (a timeout around a read of a silent socket,
// the case every read with a deadline hits)
#[overlap::test]
async fn a_timeout_on_a_silent_socket_fires_and_the_socket_keeps_its_next_edge() {
    let (a, b) = tcp_pair().await;
    let mut buf = [0u8; 8];
    let err = timeout(Duration::from_millis(5), (&a).read(&mut buf)).await;
    assert!(err.is_err(), "read something from a silent socket");
    // The cancelled read left no waiter behind that would swallow the next edge.
    (&b).write_all(b"late").await.unwrap();
    let n = within(
        HANG,
        (&a).read(&mut buf),
        "the edge after a timeout was lost",
    )
    .await
    .unwrap();
    assert_eq!(&buf[..n], b"late");
    // The same again from a fresh task, whose waker differs from the cancelled read's.
    let a = Rc::new(a);
    let reader = overlap::spawn({
        let a = a.clone();
        async move {
            let mut buf = [0u8; 8];
            (&*a).read(&mut buf).await.map(|n| buf[..n].to_vec())
        }
    });
    let mut a_ref = &*a;
    let mut early = pin!(timeout(Duration::from_millis(2), a_ref.read(&mut buf)));
    assert!(poll_once(early.as_mut()).await.is_pending());
    assert!(early.await.is_err());
    (&b).write_all(b"again").await.unwrap();
    let got = within(HANG, reader, "the waiting task missed the edge").await;
    assert_eq!(got.unwrap().unwrap(), b"again");
}

// async-io: timer.rs smoke, with I/O pending (the loop sleeps in epoll, not on a futex)
#[overlap::test]
async fn a_timer_wakes_a_loop_that_waits_on_sockets_and_io_wakes_one_that_waits_on_a_far_timer() {
    let (a, b) = tcp_pair().await;
    let a = Rc::new(a);
    // A read that never ends keeps the socket's waiter registered the whole time.
    let silent = overlap::spawn({
        let a = a.clone();
        async move {
            let mut buf = [0u8; 1];
            (&*a).read(&mut buf).await
        }
    });
    let before = Instant::now();
    sleep(Duration::from_millis(3)).await;
    assert!(before.elapsed() >= Duration::from_millis(3), "woke early");
    // Now a far timer is the loop's only deadline; data from another thread must end the
    // wait without it.
    let far = overlap::spawn(sleep(Duration::from_secs(3600)));
    let b = b.into_std().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        std::io::Write::write_all(&mut &b, b"x").unwrap();
        b
    });
    let n = within(HANG, silent, "data did not wake a loop asleep for an hour")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    far.abort();
    assert!(far.await.unwrap_err().is_cancelled());
    drop(writer.join().unwrap());
}

// async-io: timer.rs poll_across_tasks, from another runtime thread: a timer made by a task
// spawned from elsewhere while the loop sleeps toward a later deadline
#[test]
fn a_timer_made_by_a_remote_spawn_cuts_short_the_loops_sleep() {
    let rt = overlap::Runtime::new().unwrap();
    let handle = rt.handle();
    rt.block_on(async move {
        // The handle, once the other thread has made it, and the waker to tell.
        type Slot = (Option<overlap::RemoteJoinHandle<i32>>, Option<Waker>);
        let slot: Arc<Mutex<Slot>> = Arc::default();
        let spawner = std::thread::spawn({
            let slot = slot.clone();
            move || {
                std::thread::sleep(Duration::from_millis(5));
                let remote = handle.spawn_with(|| async {
                    sleep(Duration::from_millis(2)).await;
                    42
                });
                let mut slot = slot.lock().unwrap();
                slot.0 = Some(remote);
                if let Some(waker) = slot.1.take() {
                    waker.wake();
                }
            }
        });
        // Asleep until the guard's deadline, ten seconds out, when the spawn arrives.
        let arrived = poll_fn(|cx| {
            let mut slot = slot.lock().unwrap();
            match slot.0.take() {
                Some(remote) => Poll::Ready(remote),
                None => {
                    slot.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        });
        let remote = within(HANG, arrived, "the remote spawn never arrived").await;
        let got = within(HANG, remote, "the remote task's timer never fired").await;
        assert_eq!(got.unwrap(), 42);
        spawner.join().unwrap();
    });
}

// mio: tcp_stream.rs (an fd closed while its runtime waits on it); async-io: async.rs
// (dropping an `Async` wakes nobody wrongly): a task aborted while waiting on a stream
// drops it, the peer sees EOF, and a new stream on the same fd number works.
#[overlap::test]
async fn aborting_a_task_that_waits_on_a_stream_closes_it_and_frees_its_fd() {
    use std::os::fd::AsRawFd;
    let (a, mut b) = tcp_pair().await;
    let fd = a.as_raw_fd();
    let waiter = overlap::spawn(async move {
        let mut buf = [0u8; 1];
        (&a).read(&mut buf).await
    });
    support::settle().await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    let mut rest = Vec::new();
    within(
        HANG,
        b.read_to_end(&mut rest),
        "the aborted task's stream stayed open",
    )
    .await
    .unwrap();
    assert!(rest.is_empty());
    // The freed fd number is reused by the next socket, whose wait is its own.
    let (c, d) = tcp_pair().await;
    let reused = [c.as_raw_fd(), d.as_raw_fd()].contains(&fd);
    (&d).write_all(b"new").await.unwrap();
    let mut buf = [0u8; 3];
    within(HANG, (&c).read_exact(&mut buf), "the new stream is deaf")
        .await
        .unwrap();
    assert_eq!(&buf, b"new", "fd reused: {reused}");
    let err = b.write_all(&[0u8; 1 << 20]).await;
    if let Err(e) = err {
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "{e:?}"
        );
    }
}
