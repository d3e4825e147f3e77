//! The scheduler's tests: flap damping, the concurrency limit, missed ticks and jitter on a
//! paused clock; removing and adding checks at runtime on a real one; a lagging
//! subscriber.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::broadcast::error::{RecvError, TryRecvError};
use overlap::sync::watch;
use overlap::time::{Instant, MissedTickBehavior};

use super::checker::{log_events, CheckDef, Checker, Config, Event};
use super::checks::{Kind, Status};
use super::client::{Script, Web};
use super::state::{Damping, View};
use super::support::{gone, until, within, TempDir};
use super::{argv, pid_in, HANG};

/// A hang guard for the paused clock, which passes at once when nothing can happen.
const PAUSED_HANG: Duration = Duration::from_secs(86_400);

const EVERY: Duration = Duration::from_secs(10);

/// Waits for the view to show `runs` runs.
async fn runs(view: &mut watch::Receiver<View>, runs: u64) -> View {
    let seen = view.wait_for(|v| v.runs >= runs).await.unwrap().clone();
    assert_eq!(seen.runs, runs, "one run a tick");
    seen
}

/// The instants at which `name` started its runs, from `t0`, in seconds.
fn starts(checker: &Checker, name: &str, t0: Instant) -> Vec<u64> {
    let all = checker.stats().starts.borrow();
    let of = all.iter().filter(|(n, _)| n == name);
    of.map(|(_, at)| (*at - t0).as_secs()).collect()
}

#[overlap::test(start_paused = true)]
async fn flap_damping_thresholds_are_exact() {
    within(
        PAUSED_HANG,
        async {
            let checker = Checker::start(Config::default()).await.unwrap();
            let mut events = checker.subscribe();
            let script = Script::new(Status::Passing);
            let mut def = CheckDef::new("api", script.kind(), EVERY);
            def.damping = Damping {
                failures: 3,
                successes: 2,
            };
            let mut view = checker.add(def);
            use Status::{Critical as C, Passing as P, Warning as W};
            // (this run's outcome, the damped status after it)
            let steps = [
                (P, P), // the first run decides at once
                (C, P),
                (C, P),
                (C, C), // the third critical in a row
                (P, C),
                (C, C), // the good streak broken...
                (P, C),
                (W, W), // ...and built again: warning is good, and what the run said
                (P, P), // passing and warning swap at once
                (W, W),
                (C, W),
                (C, W),
                (P, P), // a critical streak broken before three
                (C, P),
                (C, P),
                (C, C),
            ];
            for (i, (outcome, damped)) in steps.into_iter().enumerate() {
                script.set(outcome);
                if i > 0 {
                    overlap::time::advance(EVERY).await;
                }
                let seen = runs(&mut view, i as u64 + 1).await;
                assert_eq!(seen.status, Some(damped), "after run {}", i + 1);
                assert_eq!(seen.output, format!("scripted {outcome}"));
            }
            let mut changes = Vec::new();
            while let Ok(e) = events.try_recv() {
                changes.push((e.from, e.to));
            }
            assert_eq!(
                changes,
                [
                    (None, P),
                    (Some(P), C),
                    (Some(C), W),
                    (Some(W), P),
                    (Some(P), W),
                    (Some(W), P),
                    (Some(P), C),
                ]
            );
            assert!(checker.shutdown().await);
        },
        "flap damping",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_concurrency_limit_is_never_exceeded() {
    within(
        PAUSED_HANG,
        async {
            let checker = Checker::start(Config {
                max_in_flight: 2,
                ..Config::default()
            })
            .await
            .unwrap();
            let t0 = Instant::now();
            let mut views = Vec::new();
            for i in 0..6 {
                let script = Script::new(Status::Passing);
                script.takes.set(Duration::from_secs(5));
                let def = CheckDef::new(&format!("c{i}"), script.kind(), Duration::from_secs(600));
                views.push(checker.add(def));
            }
            for view in &mut views {
                runs(view, 1).await;
            }
            let stats = checker.stats();
            assert_eq!(stats.max_in_flight.get(), 2, "two at a time, and two");
            assert_eq!(stats.in_flight.get(), 0);
            let mut all: Vec<u64> = (0..6)
                .flat_map(|i| starts(&checker, &format!("c{i}"), t0))
                .collect();
            all.sort();
            assert_eq!(all, [0, 0, 5, 5, 10, 10]);
            assert!(checker.shutdown().await);
        },
        "the concurrency limit",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn missed_ticks_skip_or_delay_and_jitter_spreads_first_runs() {
    within(
        PAUSED_HANG,
        async {
            let checker = Checker::start(Config::default()).await.unwrap();
            let t0 = Instant::now();
            let mut views = Vec::new();
            for (name, missed) in [
                ("skip", MissedTickBehavior::Skip),
                ("delay", MissedTickBehavior::Delay),
            ] {
                let script = Script::new(Status::Passing);
                // The first run takes 25 s (the ticks of 10 and 20 s missed), the others none.
                script.takes.set(Duration::from_secs(25));
                let mut def = CheckDef::new(name, script.kind(), EVERY);
                def.missed = missed;
                views.push((checker.add(def), script));
            }
            for (_, script) in &views {
                until(|| script.runs.get() == 1, "the first runs").await;
                script.takes.set(Duration::ZERO);
            }
            for _ in 0..50 {
                overlap::time::advance(Duration::from_secs(1)).await;
            }
            // Skip keeps the phase (30, 40, 50); Delay restarts it from the late tick.
            assert_eq!(starts(&checker, "skip", t0), [0, 25, 30, 40, 50]);
            assert_eq!(starts(&checker, "delay", t0), [0, 25, 35, 45]);

            // Jitter: first runs spread over [0, 10 s).
            assert!(checker.remove("skip") && checker.remove("delay"));
            let mut firsts = Vec::new();
            for i in 0..5 {
                let script = Script::new(Status::Passing);
                let hour = Duration::from_secs(3600);
                let mut def = CheckDef::new(&format!("j{i}"), script.kind(), hour);
                def.jitter = EVERY;
                let added = Instant::now();
                let mut view = checker.add(def);
                runs(&mut view, 1).await;
                firsts.push(Instant::now() - added);
            }
            assert!(firsts.iter().all(|&d| d < EVERY), "{firsts:?}");
            let mut distinct = firsts.clone();
            distinct.sort();
            distinct.dedup();
            assert!(distinct.len() >= 4, "spread: {firsts:?}");
            assert!(checker.shutdown().await);
        },
        "missed ticks and jitter",
    )
    .await;
}

#[overlap::test]
async fn removing_a_check_aborts_its_run_in_flight() {
    within(
        HANG,
        async {
            let web = Web::start("127.0.0.1:0").await;
            let checker = Checker::start(Config::default()).await.unwrap();
            let hour = Duration::from_secs(3600);
            let hang = Kind::Http {
                addr: web.addr,
                path: "/hang".into(),
                status: 200,
                body_contains: None,
                timeout: hour,
            };
            checker.add(CheckDef::new("hang", hang, hour));
            until(|| web.hits("/hang") == 1, "the request in flight").await;
            assert_eq!(checker.stats().in_flight.get(), 1);
            assert!(checker.remove("hang"));
            until(|| web.seen.hang_closed.get() == 1, "the connection dropped").await;
            assert_eq!(checker.stats().in_flight.get(), 0);
            assert_eq!(checker.view("hang"), None);
            assert!(!checker.remove("hang"));

            // An exec check's child: killed (kill_on_drop) and reaped in the background.
            let dir = TempDir::new("hc-remove");
            let file = dir.join("pid");
            let script = format!("echo $$ > {}; exec sleep 600", file.display());
            let exec = Kind::Exec {
                argv: argv(&script),
                timeout: hour,
                max_output: 64,
            };
            checker.add(CheckDef::new("slow", exec, hour));
            let pid = pid_in(&file).await;
            assert!(checker.remove("slow"));
            gone(pid, "the removed check's child").await;

            // Replacing a check by name aborts the old one's run; adding one at runtime runs.
            let hang = Kind::Http {
                addr: web.addr,
                path: "/hang".into(),
                status: 200,
                body_contains: None,
                timeout: hour,
            };
            checker.add(CheckDef::new("web", hang, hour));
            until(|| web.hits("/hang") == 2, "the second request").await;
            let ok = Kind::Http {
                addr: web.addr,
                path: "/ok".into(),
                status: 200,
                body_contains: Some("db=up".into()),
                timeout: hour,
            };
            let mut view = checker.add(CheckDef::new("web", ok, hour));
            until(
                || web.seen.hang_closed.get() == 2,
                "the replaced run dropped",
            )
            .await;
            let seen = view.wait_for(|v| v.runs == 1).await.unwrap().clone();
            assert_eq!(seen.status, Some(Status::Passing));
            assert!(checker.shutdown().await);
        },
        "removing a check",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_lagging_subscriber_never_stops_the_checker() {
    within(
        PAUSED_HANG,
        async {
            let checker = Checker::start(Config {
                events: 4,
                ..Config::default()
            })
            .await
            .unwrap();
            let mut idle = checker.subscribe();
            let log = Rc::new(RefCell::new(Vec::<Event>::new()));
            let lagged = Rc::new(Cell::new(0));
            let logger = overlap::spawn(log_events(
                checker.subscribe(),
                Duration::from_secs(100),
                log.clone(),
                lagged.clone(),
            ));
            let script = Script::new(Status::Passing);
            let mut view = checker.add(CheckDef::new("flappy", script.kind(), EVERY));
            // Ten changes: passing, then critical and passing by turns.
            runs(&mut view, 1).await;
            for run in 2..=10 {
                let next = if run % 2 == 0 {
                    Status::Critical
                } else {
                    Status::Passing
                };
                script.set(next);
                overlap::time::advance(EVERY).await;
                assert_eq!(runs(&mut view, run).await.status, Some(next));
            }
            // The idle subscriber lost the six oldest, then reads the last four in order.
            assert_eq!(idle.try_recv(), Err(TryRecvError::Lagged(6)));
            let mut rest = Vec::new();
            while let Ok(e) = idle.try_recv() {
                rest.push(e.to);
            }
            use Status::{Critical as C, Passing as P};
            assert_eq!(rest, [P, C, P, C]);
            // The logger, 100 s on each event (slower than the ten changes in 90 s): its
            // first, a lag of five, the last four.
            for _ in 0..5 {
                overlap::time::advance(Duration::from_secs(100)).await;
            }
            until(|| log.borrow().len() == 5, "the logger").await;
            assert_eq!(lagged.get(), 5);
            let seen: Vec<_> = log.borrow().iter().map(|e| (e.from, e.to)).collect();
            assert_eq!(
                seen,
                [
                    (None, P),
                    (Some(C), P),
                    (Some(P), C),
                    (Some(C), P),
                    (Some(P), C)
                ]
            );
            assert!(checker.shutdown().await);
            drop(checker);
            // Its sender gone, the logger ends.
            assert_eq!(idle.recv().await, Err(RecvError::Closed));
            logger.await.unwrap();
        },
        "the lagging subscriber",
    )
    .await;
}
