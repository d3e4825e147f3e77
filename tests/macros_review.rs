//! An adversarial review of `select!`: one branch and 64, `biased;` and the random start,
//! `else` reached only once every branch is disabled (by its pattern or its precondition),
//! what is dropped when and in which order, a branch future that panics, the order in
//! which preconditions and future expressions are evaluated (with `?` in them), labelled
//! `break`/`continue` out of handlers, and patterns that are a bare `true`/`false` or a
//! binding named `biased`. `join!`, `try_join!`, the attributes and hygiene are in
//! `macros_review_attrs.rs`.

mod support;

use std::cell::{Cell, RefCell};
use std::future::{pending, ready, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use overlap::sync::oneshot;
use overlap::{block_on, select, spawn};
use support::{panic_message, settle, DropFlag};

/// What the futures and handlers of one test did, in order.
type Log = Rc<RefCell<Vec<String>>>;

fn new_log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.borrow_mut())
}

/// A future that counts its polls and logs `"{name} ready"` when it finishes and
/// `"{name} dropped"` when it goes.
struct Watched<F: Future> {
    name: &'static str,
    inner: Pin<Box<F>>,
    polls: Rc<Cell<u32>>,
    log: Log,
}

fn watched<F: Future>(name: &'static str, log: &Log, inner: F) -> (Watched<F>, Rc<Cell<u32>>) {
    let polls = Rc::new(Cell::new(0));
    let fut = Watched {
        name,
        inner: Box::pin(inner),
        polls: polls.clone(),
        log: log.clone(),
    };
    (fut, polls)
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        let out = self.inner.as_mut().poll(cx);
        if out.is_ready() {
            self.log.borrow_mut().push(format!("{} ready", self.name));
        }
        out
    }
}

impl<F: Future> Drop for Watched<F> {
    fn drop(&mut self) {
        self.log.borrow_mut().push(format!("{} dropped", self.name));
    }
}

/// Ready at once with `Some(i)` if `i == ready`, with `None` if `none_for_others`, or
/// never.
async fn only(i: usize, ready_one: usize, none_for_others: bool) -> Option<usize> {
    if i == ready_one {
        Some(i)
    } else if none_for_others {
        None
    } else {
        pending().await
    }
}

/// A `select!` of 64 branches `Some(n) = $make(i), if $enabled(i) => n`, `else` giving
/// `usize::MAX`; `biased;` first if asked.
macro_rules! select_64 {
    (biased; $make:ident, $enabled:ident) => {
        select_64!(@ [biased;] $make, $enabled)
    };
    ($make:ident, $enabled:ident) => {
        select_64!(@ [] $make, $enabled)
    };
    (@ [$($biased:tt)*] $make:ident, $enabled:ident) => {
        select_64!(@@ [$($biased)*] $make, $enabled;
            0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
            32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59
            60 61 62 63)
    };
    (@@ [$($biased:tt)*] $make:ident, $enabled:ident; $($i:literal)*) => {
        select! {
            $($biased)*
            $( Some(n) = $make($i), if $enabled($i) => n, )*
            else => usize::MAX,
        }
    };
}

#[test]
fn a_select_of_one_branch_waits_for_it_and_goes_to_else_when_it_fails_its_pattern() {
    block_on(async {
        assert_eq!(select! { n = ready(5) => n * 2 }, 10);
        // Pending twice, then ready: the one branch is polled until it is.
        let log = new_log();
        let (late, polls) = watched("late", &log, async {
            overlap::task::yield_now().await;
            overlap::task::yield_now().await;
            "late"
        });
        assert_eq!(select! { s = { late } => s }, "late");
        assert_eq!(polls.get(), 3);
        assert_eq!(take(&log), ["late ready", "late dropped"]);
        // Its output fails its pattern: `else`, with no other branch to wait for.
        let got = select! { Some(n) = ready(None::<u32>) => n, else => 0 };
        assert_eq!(got, 0);
        // Disabled by its precondition: never polled, though made (and dropped).
        let (never, polls) = watched("never", &log, ready(1u32));
        let got = select! { n = { never }, if polls.get() > 0 => n, else => 2 };
        assert_eq!((got, polls.get()), (2, 0));
        assert_eq!(take(&log), ["never dropped"]);
    });
}

#[test]
fn a_select_of_64_branches_takes_the_one_ready_and_skips_the_disabled() {
    block_on(async {
        let all = |_: usize| true;
        let wait = |i: usize| only(i, usize::MAX, false);
        for k in [0, 1, 31, 32, 62, 63] {
            // Only branch `k` is ever ready; the other 63 never are.
            let one_ready = |i: usize| only(i, k, false);
            assert_eq!(select_64!(one_ready, all), k);
            assert_eq!(select_64!(biased; one_ready, all), k);
            // Every other branch is ready with `None`, which fails its pattern and
            // disables it, without its output being taken.
            let others_none = |i: usize| only(i, k, true);
            assert_eq!(select_64!(others_none, all), k);
            assert_eq!(select_64!(biased; others_none, all), k);
            // Every branch ready with `None`, and branch `k` disabled by its
            // precondition besides: `else`.
            let none_at_all = |i: usize| only(i, usize::MAX, true);
            let all_but_k = |i: usize| i != k;
            assert_eq!(select_64!(none_at_all, all_but_k), usize::MAX);
            // The last branch's bit (1 << 63) works as the first's.
            let only_k = |i: usize| i == k;
            let every_one = |i: usize| only(i, i, false);
            assert_eq!(select_64!(every_one, only_k), k);
        }
        // Every precondition false: `else`, nothing polled.
        let none = |_: usize| false;
        assert_eq!(select_64!(wait, none), usize::MAX);
        // `biased;` takes the first enabled branch of 64 ready ones, every time.
        let every_one = |i: usize| only(i, i, false);
        let from_41 = |i: usize| i >= 41;
        for _ in 0..20 {
            assert_eq!(select_64!(biased; every_one, all), 0);
            assert_eq!(select_64!(biased; every_one, from_41), 41);
        }
    });
}

#[test]
fn without_biased_each_of_64_always_ready_branches_wins_some_of_10000_selects() {
    block_on(async {
        let all = |_: usize| true;
        let every_one = |i: usize| only(i, i, false);
        let mut wins = [0u32; 64];
        for _ in 0..10_000 {
            wins[select_64!(every_one, all)] += 1;
        }
        // A fair start gives each about 156; one that never wins means the start skips it
        // (the chance of a fair draw missing a branch is below 1e-60).
        let never = (0..64).filter(|&i| wins[i] == 0).collect::<Vec<_>>();
        assert!(
            never.is_empty(),
            "branches that never won: {never:?} ({wins:?})"
        );
        assert_eq!(wins.iter().sum::<u32>(), 10_000);
        // And with three branches, the first (the one a biased select takes) wins only
        // its share, not all of them.
        let mut firsts = 0;
        for _ in 0..10_000 {
            firsts += select! { a = ready(1) => a, _ = ready(2) => 0, _ = ready(3) => 0 };
        }
        assert!(
            firsts > 0 && firsts < 10_000,
            "the first branch won {firsts} of 10,000"
        );
    });
}

#[test]
fn else_runs_only_once_every_branch_is_disabled_and_a_failed_output_is_dropped_at_once() {
    block_on(async {
        let log = new_log();
        let (a_tx, a_rx) = oneshot::channel::<(Option<u32>, DropFlag)>();
        let (c_tx, c_rx) = oneshot::channel::<u32>();
        let (a, a_polls) = watched("a", &log, async move { a_rx.await.unwrap() });
        let (b, b_polls) = watched("b", &log, ready(Some(1u32)));
        let (c, c_polls) = watched("c", &log, c_rx);
        let (out_flag, out_dropped) = DropFlag::new();
        // What the driver saw once `a` had failed its pattern and `c` was still waiting.
        let seen = Rc::new(RefCell::new(Vec::new()));
        let driver = {
            let (log, seen) = (log.clone(), seen.clone());
            spawn(async move {
                a_tx.send((None, out_flag)).ok().unwrap();
                settle().await;
                seen.borrow_mut()
                    .push(format!("output dropped: {}", out_dropped.get()));
                seen.borrow_mut().extend(take(&log));
                drop(c_tx); // `c` gives `Err`: its pattern fails too
            })
        };
        let got = select! {
            (Some(n), _) = { a } => n,
            Some(n) = { b }, if false => n,
            Ok(n) = { c } => n,
            else => 0,
        };
        driver.await.unwrap();
        assert_eq!(got, 0);
        // `a` finished and failed its pattern: its output went at once, its future was
        // never polled again but stayed (as tokio's) until the select ended.
        assert_eq!(*seen.borrow(), ["output dropped: true", "a ready"]);
        assert_eq!((a_polls.get(), b_polls.get(), c_polls.get()), (2, 0, 3));
        assert_eq!(
            take(&log),
            ["c ready", "c dropped", "b dropped", "a dropped"]
        );
    });
}

#[test]
fn every_future_is_dropped_once_before_the_handler_and_none_polled_after_the_winner() {
    block_on(async {
        let log = new_log();
        for round in 0..20 {
            let (f0, p0) = watched("f0", &log, pending::<u32>());
            let (f1, p1) = watched("f1", &log, ready(1u32));
            let (f2, p2) = watched("f2", &log, pending::<u32>());
            let biased = round % 2 == 0;
            let handler_log = log.clone();
            let got = if biased {
                select! {
                    biased;
                    n = { f0 } => n,
                    n = { f1 } => { handler_log.borrow_mut().push("handler".into()); n }
                    n = { f2 } => n,
                }
            } else {
                select! {
                    n = { f0 } => n,
                    n = { f1 } => { handler_log.borrow_mut().push("handler".into()); n }
                    n = { f2 } => n,
                }
            };
            assert_eq!(got, 1);
            // The winner's output taken, then the futures dropped in the reverse of the
            // order written (as locals are; tokio's tuple drops them in the order
            // written), all before the handler.
            assert_eq!(
                take(&log),
                [
                    "f1 ready",
                    "f2 dropped",
                    "f1 dropped",
                    "f0 dropped",
                    "handler"
                ],
                "round {round}"
            );
            assert_eq!(p1.get(), 1);
            if biased {
                assert_eq!((p0.get(), p2.get()), (1, 0), "round {round}");
            } else {
                assert!(p0.get() <= 1 && p2.get() <= 1, "round {round}");
            }
        }
    });
}

fn boom() -> u8 {
    panic!("a branch future panicked on its second poll")
}

#[test]
fn a_branch_future_that_panics_fails_the_task_and_drops_the_other_futures() {
    block_on(async {
        let (flag, dropped) = DropFlag::new();
        let task = spawn(async move {
            select! {
                _ = async move {
                    let _flag = flag;
                    pending::<()>().await
                } => "pending",
                _ = async {
                    overlap::task::yield_now().await;
                    boom()
                } => "panicked",
            }
        });
        let err = task.await.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(
            panic_message(err.into_panic()),
            "a branch future panicked on its second poll"
        );
        assert!(dropped.get(), "the other branch's future was not dropped");
        // The runtime and its next select go on.
        assert_eq!(select! { n = spawn(async { 3 }) => n.unwrap() }, 3);
    });
}

/// A precondition that logs itself, or fails with `Err` when asked.
fn cond(log: &Log, name: &str, fail: bool) -> Result<bool, String> {
    log.borrow_mut().push(format!("cond {name}"));
    if fail {
        return Err(format!("cond {name} failed"));
    }
    Ok(true)
}

/// A future expression that logs its evaluation, or fails with `Err` when asked.
fn made(
    log: &Log,
    name: &'static str,
    fail: bool,
) -> Result<Watched<impl Future<Output = u32>>, String> {
    log.borrow_mut().push(format!("made {name}"));
    if fail {
        return Err(format!("making {name} failed"));
    }
    Ok(watched(name, log, pending::<u32>()).0)
}

/// A select whose preconditions and future expressions use `?`, failing at `fail`.
async fn conditions_then_futures(log: &Log, fail: &str) -> Result<u32, String> {
    let got = select! {
        n = made(log, "a", fail == "made a")?, if cond(log, "a", fail == "cond a")? => n,
        n = made(log, "b", fail == "made b")?, if cond(log, "b", fail == "cond b")? => n,
        n = async { 7 } => n,
    };
    Ok(got)
}

#[test]
fn preconditions_then_futures_are_evaluated_in_order_and_a_question_mark_leaves_there() {
    block_on(async {
        let log = new_log();
        assert_eq!(conditions_then_futures(&log, "").await, Ok(7));
        assert_eq!(
            take(&log),
            [
                "cond a",
                "cond b",
                "made a",
                "made b",
                "b dropped",
                "a dropped"
            ]
        );
        // `?` in the second precondition: no future expression is evaluated.
        let got = conditions_then_futures(&log, "cond b").await;
        assert_eq!(got, Err("cond b failed".to_string()));
        assert_eq!(take(&log), ["cond a", "cond b"]);
        // `?` in the second future expression: the first future, already made, is dropped.
        let got = conditions_then_futures(&log, "made b").await;
        assert_eq!(got, Err("making b failed".to_string()));
        assert_eq!(
            take(&log),
            ["cond a", "cond b", "made a", "made b", "a dropped"]
        );
    });
}

#[test]
fn handlers_break_and_continue_labelled_loops_and_reborrow_what_the_futures_borrowed() {
    block_on(async {
        let lines = ["1", "#x", "2", "stop", "3"];
        let mut numbers: Vec<u32> = Vec::new();
        let mut notes = String::new();
        let mut rounds = 0;
        let mut stopped_at = None;
        'lines: for (at, line) in lines.iter().enumerate() {
            loop {
                rounds += 1;
                select! {
                    biased;
                    // The future borrows `notes` mutably; the handler uses it again.
                    len = async { notes.push_str(line); notes.len() }, if line.starts_with('#') => {
                        notes.push_str(&format!("@{len};"));
                        continue 'lines;
                    }
                    // The future borrows `numbers`; the handler pushes to it.
                    last = async { numbers.last().copied() }, if *line == "stop" => {
                        numbers.push(last.unwrap_or(0) * 10);
                        stopped_at = Some(at);
                        break 'lines;
                    }
                    n = async { line.parse::<u32>() } => match n {
                        // Twice through the inner loop for each number: `continue` then
                        // `continue 'lines`.
                        Ok(n) if numbers.last() != Some(&n) => { numbers.push(n); continue; }
                        Ok(_) => continue 'lines,
                        Err(e) => panic!("{line}: {e}"),
                    },
                }
            }
        }
        assert_eq!(stopped_at, Some(3));
        assert_eq!(numbers, [1, 2, 20]);
        assert_eq!(notes, "#x@2;");
        // "1" twice, "#x" once, "2" twice, "stop" once.
        assert_eq!(rounds, 6);
    });
}

#[test]
fn a_bare_true_or_false_pattern_disables_its_branch_when_the_output_differs() {
    block_on(async {
        // As tokio's: the output `false` fails the pattern `true`, so the branch is
        // disabled and `else` runs (or another branch wins).
        let got = select! { true = ready(false) => "true", else => "else" };
        assert_eq!(got, "else");
        let got = select! { false = ready(true) => "false", else => "else" };
        assert_eq!(got, "else");
        let got = select! {
            biased;
            true = ready(false) => 0,
            n = ready(2) => n,
        };
        assert_eq!(got, 2);
        // And taken when it matches.
        let got = select! { true = ready(true) => "true", else => "else" };
        assert_eq!(got, "true");
    });
}

#[test]
fn a_binding_named_biased_is_a_pattern_not_the_keyword() {
    block_on(async {
        // tokio's takes `biased` as the keyword only before a `;`.
        let got = select! { biased = ready(3) => biased * 2 };
        assert_eq!(got, 6);
        let got = select! {
            biased;
            biased = ready(4) => biased,
            _ = ready(5) => 0,
        };
        assert_eq!(got, 4);
        let got = select! { biased @ Some(_) = ready(Some(7)) => biased, else => None };
        assert_eq!(got, Some(7));
    });
}
