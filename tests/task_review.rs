//! A seeded model of a `JoinSet`: random spawns, tasks finished by oneshot triggers fired in
//! random order (returning or panicking), aborts through `AbortHandle`s (of members, of
//! tasks already joined, of detached ones), `abort_all`, `detach_all`, `try_join_next` and
//! `join_next`, some futures panicking when dropped unfinished. Each task logs how it ended,
//! at the moment it ends; the set must hand out exactly its members' ends in that order,
//! with the right outputs, panic messages and task IDs, `len()` must follow every step,
//! an abort must cancel a task that had not finished (even one already woken) and leave
//! one that had its output. A failing case prints its seed.
//!
//! Beside it, members that abort themselves: the abort lands at the next wait, and an
//! output returned in the same poll is kept; and a set shut down or dropped with outputs
//! and panic payloads whose destructors panic.

mod support;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::sync::oneshot;
use overlap::task::{AbortHandle, Id};
use overlap::{JoinError, JoinSet, Runtime};
use support::{panic_message, poll_once, quiet_panics, within, Loud, Rng};

const HANG: Duration = Duration::from_secs(30);
const SEEDS: u64 = 40;
const STEPS: usize = 300;
/// Members the model keeps at most, so that joins and aborts meet full sets often.
const MAX_MEMBERS: usize = 12;

/// How a model task ends once its trigger fires.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Plan {
    Return,
    Panic,
}

/// How a task ended, as it logged it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ended {
    Returned,
    Panicked,
    /// Its future was dropped before it ended (aborted, or dropped with its runtime).
    DroppedUnfinished,
}

type Log = Rc<RefCell<Vec<(usize, Ended)>>>;

/// Owned by a model task's future from its spawn: logs the task's end if the future is
/// dropped unfinished, and then, if `bomb`, panics (a destructor that panics while its task
/// is aborted, which must turn the cancellation into a panic error).
struct Witness {
    index: usize,
    bomb: bool,
    done: bool,
    log: Log,
}

impl Drop for Witness {
    fn drop(&mut self) {
        if !self.done {
            let index = self.index;
            self.log
                .borrow_mut()
                .push((index, Ended::DroppedUnfinished));
            if self.bomb {
                panic!("model task {index} bomb");
            }
        }
    }
}

/// The task: waits for its trigger, logs its end, then returns `10 * index` or panics. (An
/// `async fn` owns its arguments from the call: a task aborted before its first poll drops
/// the witness too.)
async fn model_task(mut witness: Witness, plan: Plan, trigger: oneshot::Receiver<()>) -> u64 {
    let _ = trigger.await;
    witness.done = true;
    let i = witness.index;
    let ended = match plan {
        Plan::Return => Ended::Returned,
        Plan::Panic => Ended::Panicked,
    };
    witness.log.borrow_mut().push((i, ended));
    if plan == Plan::Panic {
        panic!("model task {i} panics");
    }
    i as u64 * 10
}

/// The set under test and what the model knows of every task ever spawned into it.
struct Model {
    seed: u64,
    rng: Rng,
    set: JoinSet<u64>,
    log: Log,
    handles: Vec<AbortHandle>,
    triggers: Vec<Option<oneshot::Sender<()>>>,
    bombs: Vec<bool>,
    /// Aborted while its future was still there: it must end dropped unfinished.
    aborted: Vec<bool>,
    /// In the set and not joined yet.
    members: BTreeSet<usize>,
    by_id: HashMap<Id, usize>,
}

impl Model {
    fn new(seed: u64) -> Model {
        Model {
            seed,
            rng: Rng(seed),
            set: JoinSet::new(),
            log: Rc::default(),
            handles: Vec::new(),
            triggers: Vec::new(),
            bombs: Vec::new(),
            aborted: Vec::new(),
            members: BTreeSet::new(),
            by_id: HashMap::new(),
        }
    }

    fn logged(&self, i: usize) -> bool {
        self.log.borrow().iter().any(|&(j, _)| j == i)
    }

    /// The end the set must hand out next: its members' ends in the order they happened.
    fn expected_next(&self) -> Option<(usize, Ended)> {
        let log = self.log.borrow();
        log.iter().copied().find(|(i, _)| self.members.contains(i))
    }

    fn spawn(&mut self) {
        let plan = if self.rng.below(4) == 0 {
            Plan::Panic
        } else {
            Plan::Return
        };
        let bomb = self.rng.below(5) == 0;
        self.spawn_planned(plan, bomb);
    }

    fn spawn_planned(&mut self, plan: Plan, bomb: bool) {
        let i = self.handles.len();
        let (tx, rx) = oneshot::channel();
        let witness = Witness {
            index: i,
            bomb,
            done: false,
            log: self.log.clone(),
        };
        let handle = self.set.spawn(model_task(witness, plan, rx));
        let seed = self.seed;
        // Every handle is kept, so no cell is freed and no ID may come back.
        assert!(
            self.by_id.insert(handle.id(), i).is_none(),
            "seed {seed:#x}: task {i} got the ID of a task whose handle lives"
        );
        assert!(!handle.is_finished(), "seed {seed:#x}: finished at spawn");
        self.handles.push(handle);
        self.triggers.push(Some(tx));
        self.bombs.push(bomb);
        self.aborted.push(false);
        self.members.insert(i);
    }

    /// Fires the trigger of a random task that has one left (member, joined or detached).
    fn fire(&mut self) {
        let left: Vec<usize> = (0..self.triggers.len())
            .filter(|&i| self.triggers[i].is_some())
            .collect();
        if left.is_empty() {
            return;
        }
        let i = left[self.rng.below(left.len())];
        // Refused only if the task's future is gone (aborted): nothing waits then.
        let _ = self.triggers[i].take().unwrap().send(());
    }

    fn abort(&mut self, i: usize) {
        if !self.logged(i) {
            self.aborted[i] = true;
        }
        self.handles[i].abort();
    }

    /// Takes what `try_join_next_with_id` or `join_next_with_id` gave and checks it against
    /// the next expected end.
    fn check_joined(&mut self, got: Option<Result<(Id, u64), JoinError>>, what: &str) {
        let seed = self.seed;
        let expected = self.expected_next();
        let (got, (i, ended)) = match (got, expected) {
            (None, None) => return,
            (Some(got), Some(expected)) => (got, expected),
            (got, expected) => {
                panic!("seed {seed:#x}: {what} gave {got:?}, the model expected {expected:?}")
            }
        };
        let id = self.handles[i].id();
        let got_id = match &got {
            Ok((got_id, _)) => *got_id,
            Err(e) => e.id(),
        };
        assert_eq!(
            self.by_id.get(&got_id),
            Some(&i),
            "seed {seed:#x}: {what} gave task {:?}'s end where task {i}'s ({ended:?}) came \
             first",
            self.by_id.get(&got_id)
        );
        assert_eq!(got_id, id);
        match (ended, got) {
            (Ended::Returned, Ok((_, out))) => assert_eq!(out, i as u64 * 10, "seed {seed:#x}"),
            (Ended::Panicked, Err(e)) if e.is_panic() => {
                assert_eq!(
                    panic_message(e.into_panic()),
                    format!("model task {i} panics")
                )
            }
            (Ended::DroppedUnfinished, Err(e)) if self.bombs[i] => {
                assert!(
                    e.is_panic(),
                    "seed {seed:#x}: task {i}'s drop panicked: {e:?}"
                );
                assert_eq!(
                    panic_message(e.into_panic()),
                    format!("model task {i} bomb")
                );
            }
            (Ended::DroppedUnfinished, Err(e)) => {
                assert!(e.is_cancelled(), "seed {seed:#x}: task {i}: {e:?}")
            }
            (ended, got) => panic!("seed {seed:#x}: task {i} {ended:?}, but {what} gave {got:?}"),
        }
        self.members.remove(&i);
    }

    /// What holds between any two steps.
    fn check_invariants(&self, step: usize) {
        let seed = self.seed;
        assert_eq!(
            self.set.len(),
            self.members.len(),
            "seed {seed:#x}, step {step}: len"
        );
        assert_eq!(self.set.is_empty(), self.members.is_empty());
        for (i, handle) in self.handles.iter().enumerate() {
            assert_eq!(
                handle.is_finished(),
                self.logged(i),
                "seed {seed:#x}, step {step}: task {i}'s is_finished"
            );
        }
        for &(i, ended) in self.log.borrow().iter() {
            // Nothing but an abort drops a task's future while its runtime runs; an abort of
            // a task not yet finished always wins, even over a trigger fired before it.
            assert_eq!(
                self.aborted[i],
                ended == Ended::DroppedUnfinished,
                "seed {seed:#x}, step {step}: task {i} ended {ended:?}"
            );
        }
    }

    async fn step(&mut self, step: usize) {
        match self.rng.below(100) {
            0..=21 if self.members.len() < MAX_MEMBERS => self.spawn(),
            0..=45 => self.fire(),
            46..=55 if !self.handles.is_empty() => {
                let i = self.rng.below(self.handles.len());
                self.abort(i);
            }
            56..=57 => {
                for i in self.members.clone() {
                    if !self.logged(i) {
                        self.aborted[i] = true;
                    }
                }
                self.set.abort_all();
            }
            58 => {
                self.set.detach_all();
                self.members.clear();
            }
            59..=72 => {
                for _ in 0..=self.rng.below(3) {
                    overlap::yield_now().await;
                }
            }
            73..=85 => {
                let got = self.set.try_join_next_with_id();
                self.check_joined(got, "try_join_next_with_id");
            }
            _ => {
                if self.expected_next().is_some() || self.members.is_empty() {
                    let got = within(HANG, self.set.join_next_with_id(), "join_next").await;
                    self.check_joined(got, "join_next_with_id");
                } else {
                    // Nothing finished: one poll waits, and dropping it loses nothing.
                    let polled = poll_once(Box::pin(self.set.join_next_with_id())).await;
                    assert!(
                        polled.is_pending(),
                        "seed {:#x}, step {step}: join_next gave {polled:?} with nothing \
                         finished",
                        self.seed
                    );
                }
            }
        }
        self.check_invariants(step);
    }

    /// Shuts the set down, then checks that every task ended exactly once and that the
    /// members that had not ended were cancelled.
    async fn finish(&mut self) {
        let unfinished: Vec<usize> = self
            .members
            .iter()
            .copied()
            .filter(|&i| !self.logged(i))
            .collect();
        for &i in &unfinished {
            self.aborted[i] = true;
        }
        within(HANG, self.set.shutdown(), "shutdown").await;
        self.members.clear();
        self.check_invariants(STEPS);
        let log = self.log.borrow();
        for i in unfinished {
            assert!(log.contains(&(i, Ended::DroppedUnfinished)));
        }
    }
}

fn run_seed(seed: u64) {
    let rt = Runtime::new().unwrap();
    let log = rt.block_on(async {
        let mut model = Model::new(seed);
        for step in 0..STEPS {
            model.step(step).await;
        }
        model.finish().await;
        let Model { handles, log, .. } = model;
        (handles, log)
    });
    let (handles, log) = log;
    // The detached tasks still pending go with the runtime.
    drop(rt);
    let mut ends: Vec<usize> = log.borrow().iter().map(|&(i, _)| i).collect();
    ends.sort_unstable();
    assert_eq!(
        ends,
        (0..handles.len()).collect::<Vec<_>>(),
        "seed {seed:#x}: every task ended exactly once"
    );
    assert!(handles.iter().all(AbortHandle::is_finished));
}

#[test]
fn a_join_set_hands_out_exactly_its_members_ends_in_the_order_they_happened() {
    quiet_panics("model task");
    for k in 1..=SEEDS {
        let seed = 0x5EED_0000_0000 ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run_seed(seed))) {
            eprintln!("the JoinSet model failed with seed {seed:#x}");
            resume_unwind(panic);
        }
    }
}

/// One fixed case the model reaches only by chance: a trigger fired and an abort made
/// before the task runs again is a cancellation, and an abort after it ended is nothing.
#[test]
fn an_abort_after_a_wake_cancels_and_one_after_the_end_keeps_the_output() {
    quiet_panics("model task");
    overlap::block_on(within(
        HANG,
        async {
            let mut model = Model::new(1);
            model.spawn_planned(Plan::Return, false);
            model.spawn_planned(Plan::Return, true);
            for i in 0..2 {
                let _ = model.triggers[i].take().unwrap().send(());
            }
            model.abort(1);
            overlap::yield_now().await;
            model.abort(0);
            model.check_invariants(0);
            assert_eq!(
                *model.log.borrow(),
                [(0, Ended::Returned), (1, Ended::DroppedUnfinished)]
            );
            let first = model.set.join_next_with_id().await;
            assert!(matches!(first, Some(Ok((_, 0)))), "{first:?}");
            model.check_joined(first, "join_next_with_id");
            let second = model.set.try_join_next_with_id();
            model.check_joined(second, "try_join_next_with_id");
            assert!(model.set.is_empty());
            let empty = poll_once(Box::pin(model.set.join_next())).await;
            assert!(matches!(empty, Poll::Ready(None)), "{empty:?}");
        },
        "two tasks",
    ));
}

/// `shutdown` drops what its members left (an output, a panic payload, an aborted future)
/// as dropping their `JoinHandle`s would: a destructor that panics ends neither the loop
/// nor the caller, and the set ends empty and usable. Dropping the set is the same.
#[test]
fn shutdown_and_drop_take_in_outputs_and_payloads_that_panic_when_dropped() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    quiet_panics("model task");
    let drops = Arc::new(AtomicUsize::new(0));
    let members = |set: &mut JoinSet<Option<Loud>>| {
        let (out, payload, guard) = (drops.clone(), drops.clone(), drops.clone());
        set.spawn(async move { Some(Loud(out)) });
        set.spawn(async move { std::panic::panic_any(Loud(payload)) });
        set.spawn(async move {
            let _guard = Loud(guard);
            std::future::pending().await
        });
        set.spawn(std::future::pending());
    };
    overlap::block_on(within(
        HANG,
        async {
            let mut set = JoinSet::new();
            members(&mut set);
            support::settle().await;
            assert_eq!(set.len(), 4);
            let shut = futures_util::FutureExt::catch_unwind(AssertUnwindSafe(set.shutdown()));
            assert!(shut.await.is_ok(), "shutdown unwound from a member's drop");
            assert_eq!(set.len(), 0, "every member joined");
            assert_eq!(drops.load(Ordering::SeqCst), 3, "each value dropped once");
            set.spawn(async { None });
            assert!(set.join_next().await.unwrap().unwrap().is_none());

            members(&mut set);
            support::settle().await;
            drop(set);
            support::settle().await;
            assert_eq!(drops.load(Ordering::SeqCst), 6);
        },
        "the set's shutdown",
    ));
}

/// A member that aborts itself: the abort lands at its next wait, so code after the
/// `abort` call runs until then, and a member that returns in the very poll that aborted
/// it keeps its output (it finished first), as with tokio.
#[test]
fn a_member_aborting_itself_stops_at_its_next_wait_or_keeps_what_it_returns_at_once() {
    overlap::block_on(within(
        HANG,
        async {
            let mut set = JoinSet::new();
            let reached = Rc::new(RefCell::new(Vec::new()));
            let (mine, theirs) = (Rc::new(RefCell::new(None)), Rc::new(RefCell::new(None)));
            let (r, me) = (reached.clone(), mine.clone());
            let waits = set.spawn(async move {
                overlap::yield_now().await;
                me.borrow().as_ref().map(AbortHandle::abort);
                r.borrow_mut().push("after the abort");
                overlap::yield_now().await;
                r.borrow_mut().push("after the next wait");
                1
            });
            let (r, me) = (reached.clone(), theirs.clone());
            let returns = set.spawn(async move {
                overlap::yield_now().await;
                me.borrow().as_ref().map(AbortHandle::abort);
                r.borrow_mut().push("returns");
                2
            });
            *mine.borrow_mut() = Some(waits.clone());
            *theirs.borrow_mut() = Some(returns.clone());
            let mut ends = Vec::new();
            while let Some(end) = set.join_next_with_id().await {
                ends.push(end.map_err(|e| (e.id(), e.is_cancelled())));
            }
            ends.sort_by_key(|end| end.is_err());
            assert_eq!(ends, [Ok((returns.id(), 2)), Err((waits.id(), true))]);
            let mut reached = reached.borrow().clone();
            reached.sort_unstable();
            assert_eq!(reached, ["after the abort", "returns"]);
        },
        "two members aborting themselves",
    ));
}
