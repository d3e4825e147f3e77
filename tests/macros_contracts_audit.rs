//! The macros' rustdoc promises that no other test held to: a precondition disables its
//! branch for that call only; a fused future that has ended is disabled without a poll;
//! `else` (not `default`) once every branch is disabled, and a panic without `else` even
//! with `default`; a `select!` that waits gives its unit of budget back, one that finds a
//! branch ready spends one; `{ value }` moves in an `IntoFuture` and a `&mut` future bound
//! without `mut`; `pin!` of several names and several `let`s; a panic in a handler comes
//! after the futures are dropped; `#[overlap::main]` runs on the calling thread and gives
//! back `main`'s `Result`; `#[overlap::test]` gives back the body's `Result`.

mod support;

use std::cell::{Cell, RefCell};
use std::future::{pending, ready, Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::Duration;

use overlap::future::{FusedFuture, FutureExt};
use overlap::sync::oneshot;
use overlap::task::coop;
use overlap::time::{self, Instant, Sleep};
use overlap::{select, spawn};
use support::{panic_message, DropFlag};

/// What the futures and handlers of one test did, in order.
type Log = Rc<RefCell<Vec<String>>>;

/// A future that counts its polls and is ready with `out` on its `ready_on`-th poll (never
/// if 0), or says it has already ended (`FusedFuture::is_terminated`) if `ended`.
struct Counted {
    polls: Rc<Cell<u32>>,
    ready_on: u32,
    out: u32,
    ended: bool,
}

impl Counted {
    fn new(ready_on: u32, out: u32, ended: bool) -> (Counted, Rc<Cell<u32>>) {
        let polls = Rc::new(Cell::new(0));
        let fut = Counted {
            polls: polls.clone(),
            ready_on,
            out,
            ended,
        };
        (fut, polls)
    }
}

impl Future for Counted {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls.set(self.polls.get() + 1);
        if self.polls.get() == self.ready_on {
            return Poll::Ready(self.out);
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl FusedFuture for Counted {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

/// "a `false` one disables its branch for this call": the next call evaluates it again,
/// and the future kept by `&mut` across the calls was neither polled nor lost meanwhile.
#[overlap::test]
async fn a_false_precondition_disables_its_branch_for_that_call_only() {
    let (tx, mut rx) = oneshot::channel::<&str>();
    tx.send("kept").unwrap();
    let mut got = Vec::new();
    for enabled in [false, false, true] {
        got.push(select! {
            v = &mut rx, if enabled => v.unwrap(),
            else => "else",
        });
    }
    assert_eq!(got, ["else", "else", "kept"]);
}

/// "a fused future that has already ended (`FusedFuture::is_terminated`) is disabled
/// without being polled": with every other branch disabled too, `else` runs.
#[overlap::test]
async fn a_fused_future_that_has_ended_is_disabled_without_a_poll() {
    let (mut ended, ended_polls) = Counted::new(1, 1, true);
    let (mut live, live_polls) = Counted::new(2, 2, false);
    let got = select! {
        n = ended => n,
        n = live => n,
    };
    assert_eq!(got, 2);
    assert_eq!((ended_polls.get(), live_polls.get()), (0, 2));
    let got = select! {
        biased;
        n = ended => n,
        else => 0,
    };
    assert_eq!((got, ended_polls.get()), (0, 0));
}

/// "If every branch is disabled, the `else` handler runs": with a `default` branch too,
/// `else` is what runs (as futures-util's `complete` does), and `default` only when a
/// branch is enabled but none ready.
#[overlap::test]
async fn with_default_and_every_branch_disabled_else_runs_not_default() {
    let (mut waits, polls) = Counted::new(0, 0, false);
    let got = select! {
        _ = waits, if false => "branch",
        Some(_) = ready(None::<u32>) => "branch",
        default => "default",
        else => "else",
    };
    assert_eq!((got, polls.get()), ("else", 0));
    let got = select! {
        _ = waits => "branch",
        Some(_) = ready(None::<u32>) => "branch",
        default => "default",
        else => "else",
    };
    assert_eq!((got, polls.get()), ("default", 1));
}

/// "If every branch is disabled, the `else` handler runs; without one, `select!` panics":
/// a `default` branch does not stand in for `else` (futures-util's panics as well).
#[overlap::test]
#[should_panic(expected = "all branches are disabled and there is no `else` branch")]
async fn with_default_but_no_else_every_branch_disabled_panics() {
    let off = std::hint::black_box(false);
    select! {
        n = ready(1u32), if off => n,
        default => 0,
    };
}

/// "A `select!` that finds a branch ready spends a unit of the task's budget (one that
/// waits gives it back) ... every 128 rounds": 200 waiting `select!`s cost nothing, then
/// exactly 128 ready ones spend one poll's budget.
#[overlap::test]
async fn a_select_that_waits_gives_its_unit_back_and_a_ready_one_spends_one() {
    // A fresh poll of the task, with its whole budget.
    overlap::task::yield_now().await;
    for _ in 0..200 {
        let mut waiting = Box::pin(async {
            select! {
                _ = pending::<()>() => "never",
                _ = pending::<()>() => "never",
            }
        });
        let polled = std::future::poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx))).await;
        assert!(polled.is_pending());
    }
    assert!(coop::has_budget_remaining(), "waiting selects spent it");
    let mut ready_rounds = 0;
    // (Bounded, so that a select that never spends fails rather than hangs.)
    while coop::has_budget_remaining() && ready_rounds < 1000 {
        select! {
            n = ready(1) => ready_rounds += n,
            _ = pending::<()>() => unreachable!(),
        }
    }
    assert_eq!(ready_rounds, 128);
}

/// An `IntoFuture` that is not a future: by name it cannot be borrowed, `{ value }` moves it
/// in and `into_future` is called on it.
struct Doubled(u32);

impl IntoFuture for Doubled {
    type Output = u32;
    type IntoFuture = std::future::Ready<u32>;
    fn into_future(self) -> Self::IntoFuture {
        ready(self.0 * 2)
    }
}

/// "`{ value }` moves it in" for an `IntoFuture` given by name, and "`{ d }` moves it in"
/// for the `&mut` future a `match &mut deadline` binds without `mut`: the reference moves
/// in, so the deadline itself is kept and polled again by the next round.
#[overlap::test(start_paused = true)]
async fn braces_move_in_an_into_future_and_a_reference_bound_without_mut() {
    let later = Doubled(21);
    assert_eq!(select! { n = { later } => n }, 42);

    let start = Instant::now();
    let mut deadline: Option<Pin<Box<Sleep>>> =
        Some(Box::pin(time::sleep(Duration::from_secs(10))));
    let (tx, mut rx) = overlap::sync::mpsc::channel::<u32>(4);
    spawn(async move {
        for n in [1, 2] {
            time::sleep(Duration::from_secs(3)).await;
            tx.send(n).await.unwrap();
        }
        pending::<()>().await
    });
    let mut seen = Vec::new();
    loop {
        match &mut deadline {
            Some(d) => select! {
                Some(n) = rx.recv() => seen.push(n),
                () = { d } => break,
            },
            None => unreachable!("the deadline was taken"),
        }
    }
    // One deadline for the whole loop, not one made again each round.
    assert_eq!(seen, [1, 2]);
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    assert!(deadline.is_some_and(|d| d.is_terminated()));
}

/// `pin!`: "each named variable becomes a `Pin<&mut T>` of the same name, so that it can be
/// polled by `&mut` across the turns of a loop", for several names at once and several
/// `let` statements at once; each future made once and taken up where it stopped.
#[overlap::test]
async fn pin_of_several_names_and_lets_keeps_each_future_across_loop_turns() {
    let log: Log = Rc::default();
    let work = |name: &'static str, turns: usize| {
        log.borrow_mut().push(format!("made {name}"));
        let log = log.clone();
        async move {
            for _ in 0..turns {
                overlap::task::yield_now().await;
            }
            log.borrow_mut().push(format!("{name} done"));
            name
        }
    };
    let a = work("a", 1);
    let b = work("b", 3);
    overlap::pin!(a, b);
    overlap::pin! {
        let c = work("c", 2);
        let d = work("d", 4);
    }
    let mut finished = Vec::new();
    while finished.len() < 4 {
        let has = |name| finished.contains(&name);
        let name = select! {
            biased;
            n = &mut a, if !has("a") => n,
            n = &mut b, if !has("b") => n,
            n = &mut c, if !has("c") => n,
            n = &mut d, if !has("d") => n,
        };
        finished.push(name);
    }
    assert_eq!(finished, ["a", "c", "b", "d"]);
    assert_eq!(
        *log.borrow(),
        ["made a", "made b", "made c", "made d", "a done", "c done", "b done", "d done"]
    );
}

/// "Handlers run in the caller's body": a handler that panics unwinds out of the
/// `select!` after every future was dropped, into what polls the caller (here a
/// `catch_unwind`), and the next `select!` runs as usual.
#[overlap::test]
async fn a_panic_in_a_handler_comes_after_every_future_is_dropped() {
    let (flag, loser_dropped) = DropFlag::new();
    let seen_at_panic = Rc::new(Cell::new(None));
    let seen = seen_at_panic.clone();
    let caught = std::panic::AssertUnwindSafe(async move {
        select! {
            _ = async move { let _flag = flag; pending::<()>().await } => "loser",
            _ = ready(()) => {
                seen.set(Some(loser_dropped.get()));
                panic!("a handler's panic")
            }
        }
    })
    .catch_unwind()
    .await;
    let payload = caught.expect_err("the handler's panic unwound");
    assert_eq!(panic_message(payload), "a handler's panic");
    assert_eq!(
        seen_at_panic.get(),
        Some(true),
        "the loser outlived the handler's start"
    );
    assert_eq!(select! { n = ready(5) => n }, 5);
}

/// `#[overlap::main]` "runs an `async fn main` on a runtime built for the current thread",
/// and is "the same as wrapping the body in `overlap::block_on`": the body and its tasks
/// run on the calling thread, and `main`'s `Result` (an `Err` from `?` too) comes back.
#[test]
fn main_runs_on_the_calling_thread_and_gives_back_its_result() {
    let caller = thread::current().id();
    let ok = {
        #[overlap::main]
        async fn main() -> Result<(ThreadId, ThreadId), String> {
            let task = spawn(async { thread::current().id() })
                .await
                .map_err(|e| e.to_string())?;
            Ok((thread::current().id(), task))
        }
        main()
    };
    assert_eq!(ok, Ok((caller, caller)));
    let err = {
        #[overlap::main]
        async fn main() -> Result<u32, std::num::ParseIntError> {
            let n: u32 = spawn(async { "4x" }).await.unwrap().parse()?;
            Ok(n)
        }
        main()
    };
    assert_eq!(
        err.unwrap_err().to_string(),
        "invalid digit found in string"
    );
}

thread_local! {
    /// The error [`a_test_returning_a_result`] gives, if set (only by the test that calls
    /// it by hand: the harness runs it on a thread of its own, where this is `None`).
    static FAIL_WITH: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Fails with [`FAIL_WITH`]'s error if it is set.
#[overlap::test]
async fn a_test_returning_a_result() -> Result<(), String> {
    overlap::task::yield_now().await;
    if let Some(e) = FAIL_WITH.with(Cell::get) {
        Err::<(), _>(e.to_string())?;
    }
    Ok(())
}

/// `#[overlap::test]` is "`#[test]` plus [`main`]'s rewrite": a plain `fn` that gives back
/// the body's `Result`, its `Err` (from `?`) what fails the test.
#[test]
fn a_test_gives_back_the_result_of_its_body() {
    assert_eq!(a_test_returning_a_result(), Ok(()));
    FAIL_WITH.with(|f| f.set(Some("the body's error")));
    assert_eq!(
        a_test_returning_a_result(),
        Err("the body's error".to_string())
    );
}

/// "A `select!` that does not wait (a branch ready, or its `else` or `default` run) spends a
/// unit of the task's budget ... Once the budget is spent, a `select!` yields before polling
/// its branches, with a `default` branch too": a loop of `default`s, or of `else`s, lets
/// the other tasks run every 128 rounds.
#[overlap::test]
async fn a_select_running_default_or_else_spends_a_unit_and_a_spent_budget_yields_first() {
    overlap::task::yield_now().await;
    let mut defaults = 0;
    // (Bounded, so that a select that never spends fails rather than hangs.)
    while coop::has_budget_remaining() && defaults < 1000 {
        select! {
            _ = pending::<()>() => unreachable!(),
            default => defaults += 1,
        }
    }
    assert_eq!(defaults, 128);
    let other_ran = Rc::new(Cell::new(false));
    let flag = other_ran.clone();
    spawn(async move { flag.set(true) });
    let ran_before_default = select! {
        _ = pending::<()>() => unreachable!(),
        default => other_ran.get(),
    };
    assert!(ran_before_default, "a spent budget did not yield");
    overlap::task::yield_now().await;
    let mut elses = 0;
    while coop::has_budget_remaining() && elses < 1000 {
        select! {
            _ = ready(()), if elses < 0 => unreachable!(),
            else => elses += 1,
        }
    }
    assert_eq!(elses, 128);
}
