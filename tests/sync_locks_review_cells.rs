//! An adversarial review of `sync::Barrier`, `sync::OnceCell` and `sync::SetOnce` (the
//! locks' review is `sync_locks_review.rs`): seeded models drive hand-polled waits through
//! arrivals, initializers that succeed, fail or are dropped, a value set from another
//! thread, and waits dropped at every stage (woken but not yet polled again included),
//! checking after each step who completes, with what, and that the waits the model says
//! were released were woken (once, for the barrier's and `SetOnce`'s) and no other was: no
//! lost wakeup, no spurious one. A failing seed is printed with its steps.

mod support;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use overlap::sync::{Barrier, BarrierWait, OnceCell, SetError, SetOnce, SetOnceError};
use support::{ManualTask, Rng, WakeCount};

/// The steps so far, to print with the seed when the real type parts from the model.
struct Trace {
    seed: u64,
    steps: Vec<String>,
}

impl Trace {
    fn check(&self, cond: bool, what: impl FnOnce() -> String) {
        if !cond {
            panic!(
                "seed {}: {}\nsteps:\n{}",
                self.seed,
                what(),
                self.steps.join("\n")
            );
        }
    }
}

/// A hand-polled future and the wakes of its waker.
struct Hand<F: ?Sized> {
    wakes: Arc<WakeCount>,
    fut: Pin<Box<F>>,
}

impl<F: Future + ?Sized> Hand<F> {
    fn poll(&mut self) -> Poll<F::Output> {
        let waker = Waker::from(self.wakes.clone());
        self.fut.as_mut().poll(&mut Context::from_waker(&waker))
    }

    fn wakes(&self) -> usize {
        self.wakes.0.load(Ordering::SeqCst)
    }
}

/// Where a barrier wait stands in the model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Arrival {
    Unpolled,
    /// Arrived in this round, waiting.
    Waiting(u64),
    /// Its round completed: its next poll is ready, not as leader.
    Released,
    /// Completed with this result; polled again, it gives the same.
    Done(bool),
}

/// `Barrier::new(n)` for `n` in 0..=4 against its model: arrivals count toward the current
/// round, a wait dropped before its round completes takes its arrival back, one dropped
/// after changes nothing; the arrival that completes a round is its only leader and releases
/// (wakes, once) exactly the waits of that round; a completed wait polled again gives the
/// same result.
#[test]
fn barrier_rounds_have_one_leader_and_release_exactly_their_waits_under_cancellation() {
    support::for_seeds(1..=80, |seed| {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
        let n = rng.below(5);
        let barrier: &'static Barrier = Box::leak(Box::new(Barrier::new(n)));
        let needed = n.max(1);
        let mut t = Trace {
            seed,
            steps: vec![format!("barrier of {n}")],
        };
        let (mut round, mut arrived) = (0u64, 0usize);
        let mut waits: BTreeMap<usize, (Hand<BarrierWait<'static>>, Arrival, usize)> =
            BTreeMap::new();
        for step in 0..400 {
            let ids: Vec<usize> = waits.keys().copied().collect();
            match rng.below(10) {
                0..=2 if ids.len() < 10 => {
                    t.steps.push(format!("{step}: new wait #{step}"));
                    let hand = Hand {
                        wakes: Arc::default(),
                        fut: Box::pin(barrier.wait()),
                    };
                    waits.insert(step, (hand, Arrival::Unpolled, 0));
                }
                3..=7 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len())];
                    let (hand, st, _) = waits.get_mut(&id).unwrap();
                    t.steps.push(format!("{step}: poll #{id} ({st:?})"));
                    let res = hand.poll().map(|r| r.is_leader());
                    let expected = match *st {
                        Arrival::Unpolled if arrived + 1 < needed => {
                            arrived += 1;
                            *st = Arrival::Waiting(round);
                            Poll::Pending
                        }
                        Arrival::Unpolled => {
                            // Completes the round: every wait of it is released.
                            *st = Arrival::Done(true);
                            for (_, other, expected_wakes) in waits.values_mut() {
                                if *other == Arrival::Waiting(round) {
                                    *other = Arrival::Released;
                                    *expected_wakes += 1;
                                }
                            }
                            (round, arrived) = (round + 1, 0);
                            Poll::Ready(true)
                        }
                        Arrival::Waiting(_) => Poll::Pending,
                        Arrival::Released => {
                            *st = Arrival::Done(false);
                            Poll::Ready(false)
                        }
                        Arrival::Done(leader) => Poll::Ready(leader),
                    };
                    t.check(res == expected, || {
                        format!("poll #{id} gave {res:?}, the model {expected:?}")
                    });
                }
                8..=9 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len())];
                    let (_, st, _) = waits.remove(&id).unwrap();
                    t.steps.push(format!("{step}: drop #{id} ({st:?})"));
                    if let Arrival::Waiting(r) = st {
                        t.check(r == round, || "a wait of a past round still waits".into());
                        arrived -= 1;
                    }
                }
                _ => continue,
            }
            for (id, (hand, st, expected_wakes)) in &waits {
                let got = hand.wakes();
                t.check(got == *expected_wakes, || {
                    format!("#{id} ({st:?}) woken {got} times, the model says {expected_wakes}")
                });
            }
            let waiting = waits
                .values()
                .filter(|(_, st, _)| matches!(st, Arrival::Waiting(_)))
                .count();
            t.check(waiting == arrived && arrived < needed, || {
                format!("{waiting} waits in a round of {arrived} arrivals of {needed}")
            });
        }
        if n <= 1 {
            assert_eq!(
                arrived, 0,
                "seed {seed}: a barrier of {n} never keeps a wait"
            );
        }
    });
}

/// What an initializer gives when its gate opens: the value, or an error naming the step.
type Gate = Rc<Cell<Option<Result<u64, u64>>>>;

/// Where a `get_or_try_init` stands in the model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Init {
    Unpolled,
    /// Parked behind another's initializer; `owed`: that initializer has ended (or the cell
    /// was set) since, so it must have been woken. `wakes`: its wakes at its last poll.
    Waiting {
        owed: bool,
        wakes: usize,
    },
    /// Running its own initializer, which waits for its gate.
    Initializing,
}

/// `OnceCell::get_or_try_init` against its model: one initializer runs at a time, only
/// while the cell is empty; the others park behind it; an initializer that fails or is
/// dropped leaves the cell empty and every parked request is woken, the first polled then
/// running its own; one that succeeds sets the value every request then returns; `set`
/// fails while an initializer runs or once full. A parked request is woken when (and only
/// when) the initializer it waits behind ends.
#[test]
fn once_cell_runs_one_initializer_at_a_time_and_wakes_the_parked_when_it_ends() {
    support::for_seeds(1..=80, |seed| {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut t = Trace {
            seed,
            steps: Vec::new(),
        };
        // Episodes of a fresh cell each: a full cell has little left to get wrong.
        for episode in 0..8u64 {
            t.steps.push("a new cell".to_string());
            let cell: &'static OnceCell<u64> = Box::leak(Box::new(OnceCell::new()));
            let (running, started) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
            type Request = Hand<dyn Future<Output = Result<&'static u64, u64>>>;
            let mut reqs: BTreeMap<usize, (Request, Init, Gate)> = BTreeMap::new();
            let (mut value, mut initializer, mut starts) = (None::<u64>, None::<usize>, 0usize);
            // What the running initializer's gate was opened with, if it was.
            let mut opened: Option<Result<u64, u64>> = None;
            let owe_all = |reqs: &mut BTreeMap<usize, (Request, Init, Gate)>| {
                for (_, st, _) in reqs.values_mut() {
                    if let Init::Waiting { owed, .. } = st {
                        *owed = true;
                    }
                }
            };
            for step in episode * 1000..episode * 1000 + 60 {
                let ids: Vec<usize> = reqs.keys().copied().collect();
                match rng.below(20) {
                    0..=3 if ids.len() < 8 => {
                        t.steps.push(format!("{step}: new #{step}"));
                        let gate: Gate = Rc::default();
                        let fut = get_or_try_init(cell, gate.clone(), &running, &started);
                        let hand = Hand {
                            wakes: Arc::default(),
                            fut: Box::pin(fut) as Pin<Box<dyn Future<Output = _>>>,
                        };
                        reqs.insert(step as usize, (hand, Init::Unpolled, gate));
                    }
                    4..=10 if !ids.is_empty() => {
                        let id = ids[rng.below(ids.len())];
                        let (hand, st, _) = reqs.get_mut(&id).unwrap();
                        t.steps.push(format!("{step}: poll #{id} ({st:?})"));
                        let res = hand.poll().map(|r| r.copied());
                        let wakes = hand.wakes();
                        let expected = match *st {
                            Init::Initializing => match opened {
                                None => Poll::Pending,
                                Some(out) => {
                                    (initializer, opened) = (None, None);
                                    if let Ok(v) = out {
                                        value = Some(v);
                                    }
                                    Poll::Ready(out)
                                }
                            },
                            Init::Waiting { owed: false, .. } => Poll::Pending,
                            _ => match (value, initializer) {
                                (Some(v), _) => Poll::Ready(Ok(v)),
                                (None, Some(_)) => {
                                    *st = Init::Waiting { owed: false, wakes };
                                    Poll::Pending
                                }
                                (None, None) => {
                                    *st = Init::Initializing;
                                    initializer = Some(id);
                                    starts += 1;
                                    Poll::Pending
                                }
                            },
                        };
                        t.check(res == expected, || {
                            format!("poll #{id} gave {res:?}, the model {expected:?}")
                        });
                        if res.is_ready() {
                            reqs.remove(&id);
                            if initializer.is_none() || value.is_some() {
                                owe_all(&mut reqs);
                            }
                        }
                    }
                    11..=13 if !ids.is_empty() => {
                        let id = ids[rng.below(ids.len())];
                        let (_, st, _) = reqs.remove(&id).unwrap();
                        t.steps.push(format!("{step}: drop #{id} ({st:?})"));
                        if st == Init::Initializing {
                            (initializer, opened) = (None, None);
                            owe_all(&mut reqs);
                        }
                    }
                    14..=16 => {
                        let Some(id) = initializer else { continue };
                        let out = if rng.below(2) == 0 {
                            Ok(1000 + step)
                        } else {
                            Err(step)
                        };
                        t.steps
                            .push(format!("{step}: #{id}'s initializer gives {out:?}"));
                        opened = Some(out);
                        reqs[&id].2.set(Some(out));
                    }
                    17 if rng.below(3) == 0 => {
                        t.steps.push(format!("{step}: set({step})"));
                        let res = cell.set(step);
                        match (value, initializer) {
                        (Some(_), _) => t.check(
                            matches!(res, Err(SetError::AlreadyInitializedError(v)) if v == step),
                            || format!("set on a full cell: {res:?}"),
                        ),
                        (None, Some(_)) => t.check(
                            matches!(res, Err(SetError::InitializingError(v)) if v == step),
                            || format!("set while initializing: {res:?}"),
                        ),
                        (None, None) => {
                            t.check(res.is_ok(), || format!("set on an idle cell: {res:?}"));
                            value = Some(step);
                            owe_all(&mut reqs);
                        }
                    }
                    }
                    _ => continue,
                }
                t.check(cell.get().copied() == value, || {
                    format!("the cell holds {:?}, the model {value:?}", cell.get())
                });
                t.check(running.get() == initializer.is_some() as usize, || {
                    format!(
                        "{} initializers run, the model {initializer:?}",
                        running.get()
                    )
                });
                t.check(started.get() == starts, || {
                    format!("{} initializers started, the model {starts}", started.get())
                });
                for (id, (hand, st, _)) in &reqs {
                    if let Init::Waiting { owed, wakes } = *st {
                        let woken = hand.wakes() > wakes;
                        t.check(woken == owed, || {
                            format!("#{id} parked: woken {woken}, the model says {owed}")
                        });
                    }
                }
            }
            drop(reqs);
            t.check(running.get() == 0, || {
                "an initializer outlived its request".into()
            });
        }
    });
}

/// A `get_or_try_init` whose initializer waits for `gate` to open and counts itself in
/// `running` while it lives and in `started` once called.
fn get_or_try_init(
    cell: &'static OnceCell<u64>,
    gate: Gate,
    running: &Rc<Cell<usize>>,
    started: &Rc<Cell<usize>>,
) -> impl Future<Output = Result<&'static u64, u64>> {
    let (running, started) = (running.clone(), started.clone());
    cell.get_or_try_init(move || {
        started.set(started.get() + 1);
        running.set(running.get() + 1);
        let alive = Running(running);
        async move {
            let _alive = alive;
            poll_fn(|_| match gate.take() {
                Some(out) => Poll::Ready(out),
                None => Poll::Pending,
            })
            .await
        }
    })
}

/// Counts an initializer out of `running` when it ends, however it ends.
struct Running(Rc<Cell<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// An initializer that panics is given up as a failed one is: the panic reaches its own
/// task only, the cell stays empty and not "initializing" (`set` is refused for neither
/// reason), and the task parked behind it runs its own initializer and gets its value.
#[overlap::test]
async fn an_initializer_that_panics_leaves_the_cell_to_a_parked_task() {
    let cell: Rc<OnceCell<&'static str>> = Rc::default();
    let runs = Rc::new(Cell::new(0));
    let (c, r) = (cell.clone(), runs.clone());
    let panicking = overlap::spawn(async move {
        c.get_or_init(|| async move {
            r.set(r.get() + 1);
            overlap::yield_now().await; // the other task parks behind it
            panic!("the initializer panics");
        })
        .await;
    });
    overlap::yield_now().await;
    let (c, r) = (cell.clone(), runs.clone());
    let parked = overlap::spawn(async move {
        *c.get_or_init(|| async move {
            r.set(r.get() + 1);
            "from the parked task"
        })
        .await
    });
    let err = support::within(
        std::time::Duration::from_secs(30),
        panicking,
        "the panicking task",
    )
    .await
    .unwrap_err();
    assert!(err.is_panic());
    let got = support::within(
        std::time::Duration::from_secs(30),
        parked,
        "the parked task",
    )
    .await
    .unwrap();
    assert_eq!((got, runs.get()), ("from the parked task", 2));
    assert!(matches!(
        cell.set("late"),
        Err(SetError::AlreadyInitializedError("late"))
    ));
}

/// The initializer's wait is woken by the initializer's own events only: a request parked
/// behind it polled again before anything changed stays parked and takes no turn, and
/// `set` while the initializer runs fails without waking anyone; once it ends, every
/// parked request completes with its value, whichever polls first.
#[test]
fn a_parked_request_takes_no_turn_until_the_initializer_ends() {
    let cell = OnceCell::new();
    let gate: Gate = Rc::default();
    let (running, started) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let leaked: &'static OnceCell<u64> = Box::leak(Box::new(cell));
    let mut first = pin!(get_or_try_init(leaked, gate.clone(), &running, &started));
    let parked: Vec<ManualTask> = (0..3).map(|_| ManualTask::default()).collect();
    let mut futs: Vec<_> = (0..3)
        .map(|_| Box::pin(get_or_try_init(leaked, Rc::default(), &running, &started)))
        .collect();
    let task = ManualTask::default();
    assert!(task.poll(first.as_mut()).is_pending());
    for (t, f) in parked.iter().zip(&mut futs) {
        assert!(t.poll(f.as_mut()).is_pending());
        assert!(
            t.poll(f.as_mut()).is_pending(),
            "polled again: still parked"
        );
    }
    assert!(matches!(leaked.set(9), Err(SetError::InitializingError(9))));
    assert!(parked.iter().all(|t| !t.is_woken()));
    assert_eq!((running.get(), started.get()), (1, 1));
    gate.set(Some(Ok(42)));
    assert!(matches!(task.poll(first.as_mut()), Poll::Ready(Ok(&42))));
    assert!(parked.iter().all(ManualTask::is_woken));
    for (t, f) in parked.iter().zip(&mut futs).rev() {
        assert!(matches!(t.poll(f.as_mut()), Poll::Ready(Ok(&42))));
    }
    assert_eq!(
        (running.get(), started.get()),
        (0, 1),
        "one initializer ran, once"
    );
}

/// `SetOnce` against its model, the value set from another thread at a random step: waits
/// made, polled and dropped at random; before the set none completes or is woken; the set
/// wakes each wait then in line exactly once, and a dropped one (unpolled, waiting, or woken
/// and not polled again) keeps no waker; after it every wait completes with the value, and a
/// second set hands its value back.
#[test]
fn set_once_wakes_each_live_wait_once_and_a_dropped_one_keeps_no_waker() {
    support::for_seeds(1..=80, |seed| {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let once: &'static SetOnce<u64> = Box::leak(Box::new(SetOnce::new()));
        let set_at = 5 + rng.below(40);
        let mut t = Trace {
            seed,
            steps: vec![format!("set at step {set_at}")],
        };
        type Wait = Hand<dyn Future<Output = &'static u64>>;
        // Each wait, whether it was polled and is pending, and the wakes the model expects.
        let mut waits: BTreeMap<usize, (Wait, bool, usize)> = BTreeMap::new();
        let mut gone: Vec<Arc<WakeCount>> = Vec::new();
        for step in 0..60 {
            let ids: Vec<usize> = waits.keys().copied().collect();
            if step == set_at {
                t.steps.push(format!("{step}: set(7) from another thread"));
                std::thread::scope(|s| s.spawn(|| once.set(7)).join().unwrap()).unwrap();
                for (_, pending, expected) in waits.values_mut() {
                    *expected += *pending as usize;
                }
                let again = once.set(8);
                t.check(matches!(again, Err(SetOnceError(8))), || {
                    format!("{again:?}")
                });
            }
            match rng.below(3) {
                0 if ids.len() < 8 => {
                    t.steps.push(format!("{step}: new #{step}"));
                    let hand = Hand {
                        wakes: Arc::default(),
                        fut: Box::pin(once.wait()) as Pin<Box<dyn Future<Output = _>>>,
                    };
                    waits.insert(step, (hand, false, 0));
                }
                1 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len())];
                    let (hand, pending, _) = waits.get_mut(&id).unwrap();
                    t.steps.push(format!("{step}: poll #{id}"));
                    let res = hand.poll().map(|v| *v);
                    let expected = if step >= set_at {
                        Poll::Ready(7)
                    } else {
                        Poll::Pending
                    };
                    t.check(res == expected, || {
                        format!("#{id} gave {res:?}, not {expected:?}")
                    });
                    *pending = res.is_pending();
                    if res.is_ready() {
                        waits.remove(&id);
                    }
                }
                2 if !ids.is_empty() => {
                    let id = ids[rng.below(ids.len())];
                    t.steps.push(format!("{step}: drop #{id}"));
                    let (hand, _, _) = waits.remove(&id).unwrap();
                    gone.push(hand.wakes.clone());
                }
                _ => continue,
            }
            for (id, (hand, _, expected)) in &waits {
                let got = hand.wakes();
                t.check(got == *expected, || {
                    format!("#{id} woken {got} times, the model says {expected}")
                });
            }
            for wakes in &gone {
                t.check(Arc::strong_count(wakes) == 1, || {
                    "a dropped wait's waker is still held".into()
                });
            }
        }
    });
}
