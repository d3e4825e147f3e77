//! An adversarial review of tasks around their runtime's end and across threads: a
//! `JoinHandle` awaited under another runtime while its own is dropped, destructors that
//! spawn into a `JoinSet` while the runtime shuts down, task-locals read by destructors
//! then, `sync_scope` nested and re-entered, loops of `yield_now` beside I/O and timers,
//! `Handle::spawn` racing the runtime's drop (counted with an `Arc`'s strong count),
//! `RemoteJoinHandle`s dropped unread with values that panic when dropped, and a
//! `TaskTracker` whose tasks spawn, reopen and panic while it is waited on.

mod support;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::sync::oneshot;
use overlap::task::{AccessError, TaskTracker};
use overlap::{JoinHandle, JoinSet, Runtime};
use support::{quiet_panics, settle, within, DropFlag, Loud, ManualTask};

const HANG: Duration = Duration::from_secs(30);

overlap::task_local! {
    static LEVEL: u32;
    static NAME: &'static str;
}

/// Panics with a `Loud` payload; typed as any output.
fn panic_loudly<T>(drops: Arc<AtomicUsize>) -> T {
    std::panic::panic_any(Loud(drops))
}

#[test]
fn a_join_handle_awaited_under_another_runtime_is_woken_cancelled_when_its_own_goes() {
    let own = Runtime::new().unwrap();
    let (flag, dropped) = DropFlag::new();
    let (done, pending) = own.block_on(async {
        let done = overlap::spawn(async { 5 });
        let pending = overlap::spawn(async move {
            let _flag = flag;
            std::future::pending::<u32>().await
        });
        settle().await;
        (done, pending)
    });
    let other = Runtime::new().unwrap();
    other.block_on(within(
        HANG,
        async move {
            // Finished before its runtime's `block_on` returned: the output is there.
            assert_eq!(done.await.unwrap(), 5);
            let waiter = ManualTask::default();
            let mut pending = pending;
            assert!(waiter.poll(Pin::new(&mut pending)).is_pending());
            settle().await;
            assert!(!waiter.is_woken(), "nothing drives its runtime");
            assert!(!dropped.get());
            // The runtime's drop cancels the task, on this thread, and wakes the waiter.
            drop(own);
            assert!(dropped.get());
            assert!(waiter.is_woken());
            let end = waiter.poll(Pin::new(&mut pending));
            assert!(
                matches!(end, Poll::Ready(Err(ref e)) if e.is_cancelled()),
                "{end:?}"
            );
        },
        "a handle awaited under another runtime",
    ));
}

/// Owned by a task's future; when dropped (at the runtime's end), spawns two more like it,
/// one deeper: into a shared `JoinSet`, and detached with `try_spawn`.
struct SpawnsWhenDropped {
    depth: u32,
    set: Rc<RefCell<JoinSet<u32>>>,
    detached: Rc<RefCell<Vec<JoinHandle<u32>>>>,
    made: Rc<Cell<u32>>,
    dropped: Rc<Cell<u32>>,
}

impl SpawnsWhenDropped {
    fn child(&self) -> SpawnsWhenDropped {
        self.made.set(self.made.get() + 1);
        SpawnsWhenDropped {
            depth: self.depth - 1,
            set: self.set.clone(),
            detached: self.detached.clone(),
            made: self.made.clone(),
            dropped: self.dropped.clone(),
        }
    }
}

/// Holds `guard` until dropped.
async fn hold(guard: SpawnsWhenDropped) -> u32 {
    let _guard = guard;
    std::future::pending().await
}

impl Drop for SpawnsWhenDropped {
    fn drop(&mut self) {
        self.dropped.set(self.dropped.get() + 1);
        if self.depth == 0 {
            return;
        }
        let into_set = hold(self.child());
        self.set.borrow_mut().spawn(into_set);
        let detached = overlap::try_spawn(hold(self.child()))
            .unwrap_or_else(|_| panic!("review: no runtime in a destructor at shutdown"));
        self.detached.borrow_mut().push(detached);
    }
}

#[test]
fn destructors_spawning_into_a_join_set_at_shutdown_end_and_the_set_joins_them_cancelled() {
    let set = Rc::new(RefCell::new(JoinSet::new()));
    let detached = Rc::new(RefCell::new(Vec::new()));
    let (made, dropped) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        for _ in 0..3 {
            made.set(made.get() + 1);
            overlap::spawn(hold(SpawnsWhenDropped {
                depth: 4,
                set: set.clone(),
                detached: detached.clone(),
                made: made.clone(),
                dropped: dropped.clone(),
            }));
        }
        settle().await;
    });
    assert_eq!(set.borrow().len(), 0);
    drop(rt);
    // Three trees of depth 4, each node but the leaves spawning two.
    assert_eq!(made.get(), 3 * 31);
    assert_eq!(dropped.get(), made.get(), "every future dropped once");
    let in_set = 3 * 15;
    assert_eq!(set.borrow().len(), in_set);
    let mut ids = Vec::new();
    while let Some(end) = set.borrow_mut().try_join_next_with_id() {
        let err = end.unwrap_err();
        assert!(err.is_cancelled(), "{err:?}");
        ids.push(err.id());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), in_set, "one end per member, each its own");
    assert!(set.borrow().is_empty());
    let mut cx = Context::from_waker(Waker::noop());
    for handle in detached.borrow_mut().drain(..) {
        assert!(handle.is_finished());
        let end = pin!(handle).poll(&mut cx);
        assert!(matches!(end, Poll::Ready(Err(ref e)) if e.is_cancelled()));
    }
}

/// Records, when dropped, what the two task-locals read there.
struct Peek {
    name: &'static str,
    seen: Rc<RefCell<Vec<Seen>>>,
}

type Seen = (
    &'static str,
    Result<u32, AccessError>,
    Result<&'static str, AccessError>,
);

impl Drop for Peek {
    fn drop(&mut self) {
        let seen = (self.name, LEVEL.try_get(), NAME.try_get());
        self.seen.borrow_mut().push(seen);
    }
}

#[test]
fn destructors_run_at_shutdown_read_their_scopes_values_and_outside_one_get_an_error() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let peek = |name| Peek {
        name,
        seen: seen.clone(),
    };
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let (one, two, none) = (peek("one"), peek("two in b"), peek("none"));
        overlap::spawn(LEVEL.scope(1, async move {
            let _peek = one;
            std::future::pending::<()>().await
        }));
        overlap::spawn(NAME.scope(
            "b",
            LEVEL.scope(2, async move {
                let _peek = two;
                std::future::pending::<()>().await
            }),
        ));
        overlap::spawn(async move {
            let _peek = none;
            std::future::pending::<()>().await
        });
        settle().await;
        // Never polled before the runtime goes: its scope's drop still sets the value.
        let unpolled = peek("four, never polled");
        overlap::spawn(LEVEL.scope(4, async move {
            let _peek = unpolled;
        }));
    });
    assert!(seen.borrow().is_empty());
    drop(rt);
    let mut seen = seen.take();
    seen.sort_unstable_by_key(|s| s.0);
    let unset = Err::<u32, _>(LEVEL.try_get().unwrap_err());
    let no_name = Err::<&str, _>(NAME.try_get().unwrap_err());
    assert_eq!(
        seen,
        [
            ("four, never polled", Ok(4), no_name),
            ("none", unset, no_name),
            ("one", Ok(1), no_name),
            ("two in b", Ok(2), Ok("b")),
        ]
    );
    assert!(LEVEL.try_get().is_err(), "no value left behind");
}

/// `sync_scope` inside itself, `depth` levels down, each level seeing its own value before
/// and after the one below; the level `panics_at` panics after looking, and the level
/// above catches it. Pushes what each level saw.
fn nest(level: u32, depth: u32, panics_at: u32, seen: &mut Vec<u32>) {
    LEVEL.sync_scope(level, || {
        seen.push(LEVEL.get());
        if level == panics_at {
            panic!("review: level {level} panics");
        }
        if level < depth {
            let below = catch_unwind(AssertUnwindSafe(|| nest(level + 1, depth, panics_at, seen)));
            assert_eq!(below.is_err(), level + 1 == panics_at);
        }
        seen.push(LEVEL.get());
    })
}

#[test]
fn sync_scope_nested_re_entered_and_mixed_with_scoped_futures_restores_every_level() {
    quiet_panics("review:");
    let mut seen = Vec::new();
    nest(1, 6, 4, &mut seen);
    assert_eq!(seen, [1, 2, 3, 4, 3, 2, 1]);
    assert!(LEVEL.try_get().is_err());

    let mut cx = Context::from_waker(Waker::noop());
    let seen = Rc::new(RefCell::new(Vec::new()));
    let dropped = Rc::new(RefCell::new(Vec::new()));
    LEVEL.sync_scope(10, || {
        // A scoped future polled inside: its own value while polled, then ours again; and
        // a `sync_scope` inside its poll sees its own and gives the scope's back.
        let (s, d) = (seen.clone(), dropped.clone());
        let mut scoped = Box::pin(LEVEL.scope(20, async move {
            s.borrow_mut().push(LEVEL.get());
            s.borrow_mut().push(LEVEL.sync_scope(30, || LEVEL.get()));
            s.borrow_mut().push(LEVEL.get());
            let _peek = Peek {
                name: "scoped, dropped unfinished",
                seen: d,
            };
            std::future::pending::<()>().await
        }));
        assert!(scoped.as_mut().poll(&mut cx).is_pending());
        assert_eq!(LEVEL.get(), 10);
        // Dropped unfinished inside another key's `with`: its body's destructors see its
        // value, and ours comes back after.
        NAME.sync_scope("outer", || NAME.with(|_| drop(scoped)));
        assert_eq!(LEVEL.get(), 10);
        seen.borrow_mut().push(LEVEL.get());
    });
    assert_eq!(*seen.borrow(), [20, 30, 20, 10]);
    assert_eq!(
        *dropped.borrow(),
        [("scoped, dropped unfinished", Ok(20), Ok("outer"))]
    );
    assert!(LEVEL.try_get().is_err() && NAME.try_get().is_err());
}

/// Ping-pongs `rounds` bytes over a Unix socket pair between two tasks, while two tasks
/// loop on `yield_now` and one sleeps twenty times: each yield lets the loop look at I/O,
/// so the ping-pong costs a bounded number of yields per round, and neither side starves.
#[test]
fn tasks_looping_on_yield_now_leave_io_and_timers_their_turns() {
    const ROUNDS: usize = 200;
    overlap::block_on(within(
        HANG,
        async {
            let stop = Rc::new(Cell::new(false));
            let yields = Rc::new(Cell::new(0usize));
            let spinners: Vec<_> = (0..2)
                .map(|_| {
                    let (stop, yields) = (stop.clone(), yields.clone());
                    overlap::spawn(async move {
                        while !stop.get() {
                            yields.set(yields.get() + 1);
                            overlap::yield_now().await;
                        }
                    })
                })
                .collect();
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let echo = overlap::spawn(async move {
                let mut byte = [0u8];
                for _ in 0..ROUNDS {
                    b.read_exact(&mut byte).await.unwrap();
                    b.write_all(&[byte[0] + 1]).await.unwrap();
                }
            });
            let sleeper = overlap::spawn(async {
                for _ in 0..20 {
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
            });
            let before = yields.get();
            for round in 0..ROUNDS {
                let sent = round as u8;
                a.write_all(&[sent]).await.unwrap();
                let mut back = [0u8];
                a.read_exact(&mut back).await.unwrap();
                assert_eq!(back[0], sent.wrapping_add(1));
            }
            let spent = yields.get() - before;
            echo.await.unwrap();
            sleeper.await.unwrap();
            stop.set(true);
            for spinner in spinners {
                spinner.await.unwrap();
            }
            // Two spinners, each yielding once per turn of the loop; a round trip takes a
            // few turns, never an unbounded number.
            assert!(
                spent <= 2 * 6 * ROUNDS,
                "{spent} yields for {ROUNDS} round trips"
            );
            assert!(
                spent >= ROUNDS,
                "the spinners ran between the rounds: {spent}"
            );
        },
        "ping-pong beside spinning tasks",
    ));
}

/// Threads spawn through a `Handle` while the runtime is dropped under them. Each future
/// holds a clone of one `Arc` and returns it as its output; some handles are dropped at
/// once, the rest awaited or dropped unread after the runtime is gone. Every future and
/// output must be dropped exactly once: the strong count comes back to one.
#[test]
fn handle_spawns_racing_the_runtimes_drop_leave_no_future_or_output_behind() {
    let token = Arc::new(());
    for _ in 0..3 {
        let rt = Runtime::new().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let spawners: Vec<_> = (0..3)
            .map(|_| {
                let (handle, started, stop) = (rt.handle(), started.clone(), stop.clone());
                let token = token.clone();
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for n in 0..2_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let (token, started) = (token.clone(), started.clone());
                        let remote = handle.spawn(async move {
                            started.fetch_add(1, Ordering::Relaxed);
                            overlap::yield_now().await;
                            token
                        });
                        if n % 2 == 0 {
                            kept.push(remote);
                        }
                    }
                    kept
                })
            })
            .collect();
        rt.block_on(within(
            HANG,
            support::until(|| started.load(Ordering::Relaxed) >= 50, "remote tasks"),
            "remote tasks to start",
        ));
        drop(rt);
        stop.store(true, Ordering::Relaxed);
        let kept: Vec<_> = spawners
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect();
        let (mut ran, mut cancelled) = (0, 0);
        overlap::block_on(async {
            for (n, remote) in kept.into_iter().enumerate() {
                assert!(remote.is_finished(), "pending after its runtime's drop");
                if n % 2 == 0 {
                    drop(remote);
                    continue;
                }
                match remote.await {
                    Ok(out) => {
                        assert!(Arc::ptr_eq(&out, &token));
                        ran += 1;
                    }
                    Err(e) => {
                        assert!(e.is_cancelled(), "{e:?}");
                        cancelled += 1;
                    }
                }
            }
        });
        assert!(ran + cancelled > 0);
        assert_eq!(Arc::strong_count(&token), 1, "a future or output leaked");
    }
}

/// A `RemoteJoinHandle` dropped without being read drops what it holds as a `JoinHandle`
/// does: a panic payload, or an output, whose destructor panics takes nothing down, on
/// the runtime's thread or any other, with the runtime alive or gone; each is dropped
/// once.
#[test]
fn remote_join_handles_dropped_unread_take_in_values_that_panic_when_dropped() {
    quiet_panics("review:");
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = Runtime::new().unwrap();
    let handle = rt.handle();
    let d = drops.clone();
    let output = handle.spawn(async move { Loud(d) });
    let d = drops.clone();
    let payload = handle.spawn(async move { panic_loudly::<u8>(d) });
    let d = drops.clone();
    let maker = handle.spawn_with(move || -> std::future::Ready<u8> { panic_loudly(d) });
    let d = drops.clone();
    let job = handle.spawn_blocking(move || -> u8 { panic_loudly(d) });
    rt.block_on(within(
        HANG,
        support::until(
            || output.is_finished() && payload.is_finished() && maker.is_finished(),
            "the remote tasks",
        ),
        "remote tasks",
    ));
    rt.block_on(within(
        HANG,
        support::until(|| job.is_finished(), "the blocking job"),
        "the job",
    ));
    let here = catch_unwind(AssertUnwindSafe(|| drop(output)));
    assert!(
        here.is_ok(),
        "an unread output's drop unwound into the handle's"
    );
    let elsewhere = std::thread::spawn(move || drop(payload)).join();
    assert!(
        elsewhere.is_ok(),
        "an unread payload's drop unwound on another thread"
    );
    drop(rt);
    let after = catch_unwind(AssertUnwindSafe(move || {
        drop(maker);
        drop(job);
    }));
    assert!(
        after.is_ok(),
        "an unread payload's drop unwound after the runtime"
    );
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

/// A tracker closed while tasks run: one that spawns another tracked task before it ends
/// keeps the wait going; a reopen holds it past the last task until the next close; and
/// tracked tasks, a token held by a task and a tracked blocking job that all panic stop
/// counting as they unwind.
#[test]
fn a_tracker_waits_for_tasks_spawned_while_waited_on_through_reopen_and_panics() {
    quiet_panics("review:");
    overlap::block_on(within(
        HANG,
        async {
            let tracker = TaskTracker::new();
            tracker.close();
            let waiter = ManualTask::default();
            let mut wait = pin!(tracker.wait());
            let (go, first_waits) = oneshot::channel::<()>();
            let inner = tracker.clone();
            let first = tracker.spawn(async move {
                first_waits.await.unwrap();
                let (go_second, second_waits) = oneshot::channel::<()>();
                let second = inner.spawn(async move {
                    second_waits.await.unwrap();
                    2
                });
                (second, go_second)
            });
            assert!(waiter.poll(wait.as_mut()).is_pending());
            go.send(()).unwrap();
            let (second, go_second) = first.await.unwrap();
            assert_eq!(tracker.len(), 1, "the second counts from its spawn");
            assert!(!waiter.is_woken());
            assert!(tracker.reopen());
            go_second.send(()).unwrap();
            assert_eq!(second.await.unwrap(), 2);
            assert!(tracker.is_empty());
            assert!(!waiter.is_woken(), "reopened: not done while empty");
            assert!(waiter.poll(wait.as_mut()).is_pending());
            assert!(tracker.close());
            assert!(waiter.is_woken());
            assert_eq!(waiter.poll(wait.as_mut()), Poll::Ready(()));

            assert!(tracker.reopen());
            let token = tracker.token();
            let holds_token = overlap::spawn(async move {
                let _token = token;
                overlap::yield_now().await;
                panic!("review: a task holding a token panics")
            });
            let tracked: JoinHandle<()> = tracker.spawn(async {
                overlap::yield_now().await;
                panic!("review: a tracked task panics")
            });
            let (open, gate) = std::sync::mpsc::channel::<()>();
            let job: JoinHandle<()> = tracker.spawn_blocking(move || {
                gate.recv().unwrap();
                panic!("review: a tracked job panics")
            });
            assert_eq!(tracker.len(), 3);
            open.send(()).unwrap();
            tracker.close();
            let mut wait = pin!(tracker.wait());
            assert!(waiter.poll(wait.as_mut()).is_pending());
            for end in [holds_token.await, tracked.await, job.await] {
                assert!(end.unwrap_err().is_panic());
            }
            assert!(tracker.is_empty());
            assert!(waiter.is_woken());
            assert_eq!(waiter.poll(wait.as_mut()), Poll::Ready(()));
        },
        "the tracker",
    ));
}
