//! The build runner's faults: a failure cancelling what runs (or not, with keep-going),
//! a cancellation from inside the program and a real SIGINT, bad inputs, and nothing left
//! behind (no process, zombie, fd or task).

use overlap::sync::CancellationToken;

use super::job::Outcome;
use super::rig::{build, ended, opts, reaped, wait_pid, Rig};
use super::runner::{self, Options};
use super::support::{children, open_fds, run_in_child, until};

/// Two jobs that leave a backgrounded `sleep` and wait, and one job failing once both are
/// running (and one that would run after each).
const FAILING: &str = "job slow1\n  cmd = sleep 100 & echo $! > s1.pid; wait\n\
    job slow2\n  cmd = sleep 100 & echo $! > s2.pid; wait\n\
    job fail\n  cmd = while [ ! -s s1.pid ] || [ ! -s s2.pid ]; do sleep 0.01; done; echo boom >&2; exit 3\n\
    job after1\n  deps = slow1\n  cmd = touch after1\n\
    job ok\n  cmd = touch ok_ran\n";

#[overlap::test]
async fn the_first_failure_cancels_running_jobs_and_leaves_no_process() {
    let rig = Rig::new("first-failure");
    rig.build_file(FAILING);
    let report = build(&rig, &opts(3)).await.unwrap();
    assert_eq!(*report.outcome("fail"), Outcome::Failed(3));
    assert_eq!(*report.outcome("slow1"), Outcome::Cancelled);
    assert_eq!(*report.outcome("slow2"), Outcome::Cancelled);
    assert_eq!(*report.outcome("after1"), Outcome::NotRun);
    assert_eq!(
        *report.outcome("ok"),
        Outcome::NotRun,
        "nothing scheduled after the failure"
    );
    assert!(!rig.path("after1").exists() && !rig.path("ok_ran").exists());
    assert_eq!(report.started(), ["slow1", "slow2", "fail"]);
    for pidfile in ["s1.pid", "s2.pid"] {
        let grandchild = wait_pid(&rig, pidfile).await;
        until(|| ended(grandchild), "a cancelled job's sleep killed").await;
    }
    for pid in report.pids.values() {
        assert!(reaped(*pid), "{pid}");
    }
    assert_eq!(rig.read_string("logs/fail.stderr"), "boom\n");
    assert!(rig.read_string("console.log").contains("[fail!] boom\n"));
    assert_eq!(rig.read_string(".build_log"), "", "nothing succeeded");
}

#[overlap::test]
async fn keep_going_runs_what_does_not_depend_on_the_failure() {
    let rig = Rig::new("keep-going");
    rig.build_file(
        "job fail\n  cmd = exit 1\njob killed\n  cmd = kill -9 $$\n\
         job dependant\n  deps = fail\n  cmd = touch dependant_ran\n\
         job fine\n  cmd = echo fine > fine.txt\njob later\n  deps = fine\n  cmd = touch later_ran\n",
    );
    let opts = Options {
        keep_going: true,
        ..opts(1)
    };
    let report = build(&rig, &opts).await.unwrap();
    assert_eq!(*report.outcome("fail"), Outcome::Failed(1));
    assert_eq!(*report.outcome("killed"), Outcome::Failed(128 + 9));
    assert_eq!(*report.outcome("dependant"), Outcome::NotRun);
    assert_eq!(*report.outcome("fine"), Outcome::Succeeded);
    assert_eq!(*report.outcome("later"), Outcome::Succeeded);
    assert!(!rig.path("dependant_ran").exists() && rig.path("later_ran").exists());
    assert_eq!(report.started(), ["fail", "killed", "fine", "later"]);
    let log = rig.read_string(".build_log");
    let names: Vec<_> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(names, ["fine", "later"]);
}

#[overlap::test]
async fn a_missing_input_is_an_error_naming_it_and_nothing_after_runs() {
    let rig = Rig::new("missing-input");
    rig.build_file(
        "job a\n  out = a.txt\n  cmd = touch a.txt\n\
         job b\n  deps = a\n  in = a.txt nowhere.c\n  out = b.txt\n  cmd = touch b.txt\n\
         job c\n  deps = b\n  cmd = touch c_ran\n",
    );
    // `b` is judged by its inputs only once `a` is in the build log.
    let report = build(&rig, &opts(2)).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcomes);
    std::fs::remove_file(rig.path("c_ran")).unwrap();
    let report = build(&rig, &opts(2)).await.unwrap();
    assert_eq!(
        *report.outcome("b"),
        Outcome::Error("job `b`: input `nowhere.c` does not exist".into())
    );
    assert_eq!(*report.outcome("c"), Outcome::NotRun);
    assert!(!rig.path("c_ran").exists());
}

#[overlap::test]
async fn a_cancellation_kills_every_group_and_still_writes_the_build_log() {
    let rig = Rig::new("cancel");
    rig.build_file(
        "job quick\n  cmd = echo quick\n\
         job hang1\n  deps = quick\n  cmd = sleep 100 & echo $! > h1.pid; wait\n\
         job hang2\n  deps = quick\n  cmd = sleep 100 & echo $! > h2.pid; wait\n\
         job never\n  deps = hang1\n  cmd = touch never_ran\n",
    );
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    let (rig_ref, opts) = (&rig, opts(4));
    let (report, ()) = overlap::join!(runner::build(rig.dir(), &opts, cancel), async move {
        wait_pid(rig_ref, "h1.pid").await;
        wait_pid(rig_ref, "h2.pid").await;
        ctrl_c.cancel();
    });
    let report = report.unwrap();
    assert!(report.interrupted);
    assert_eq!(*report.outcome("quick"), Outcome::Succeeded);
    assert_eq!(*report.outcome("hang1"), Outcome::Cancelled);
    assert_eq!(*report.outcome("hang2"), Outcome::Cancelled);
    assert_eq!(*report.outcome("never"), Outcome::NotRun);
    for pidfile in ["h1.pid", "h2.pid"] {
        let grandchild = wait_pid(&rig, pidfile).await;
        until(|| ended(grandchild), "the sleep killed with its group").await;
    }
    let log = rig.read_string(".build_log");
    assert_eq!(log.lines().count(), 1);
    assert!(log.starts_with("quick "), "{log}");
    assert_eq!(rig.read_string("logs/quick.stdout"), "quick\n");
}

#[overlap::test]
async fn a_successful_job_leaving_a_process_behind_has_it_killed() {
    let rig = Rig::new("leftover");
    // The `sleep` keeps the job's stdout open: left running, its pump would never end.
    rig.build_file("job leaves\n  cmd = sleep 100 & echo $! > left.pid; echo done\n");
    let report = build(&rig, &opts(1)).await.unwrap();
    assert_eq!(*report.outcome("leaves"), Outcome::Succeeded);
    assert_eq!(rig.read_string("logs/leaves.stdout"), "done\n");
    let left = wait_pid(&rig, "left.pid").await;
    until(|| ended(left), "the leftover sleep killed").await;
}

#[overlap::test]
async fn a_build_dropped_half_way_kills_its_groups_too() {
    let rig = Rig::new("dropped");
    rig.build_file("job hang\n  cmd = sleep 100 & echo $! > hang.pid; wait\n");
    let opts = opts(1);
    let build = build(&rig, &opts);
    let hang = async {
        let _ = wait_pid(&rig, "hang.pid").await;
    };
    // The build loses the race and is dropped, its job's task with it.
    overlap::select! {
        biased;
        () = { hang } => {}
        _ = { build } => panic!("the build ended"),
    }
    let grandchild = wait_pid(&rig, "hang.pid").await;
    until(
        || ended(grandchild),
        "the sleep killed when the build was dropped",
    )
    .await;
}

/// A real SIGINT at the process (in a child process of its own, where the signal's new
/// disposition touches no other test): every group killed, the build log written.
#[test]
fn a_real_sigint_stops_the_build_like_ctrl_c() {
    let name = "tests_faults::a_real_sigint_stops_the_build_like_ctrl_c";
    run_in_child(name, || {
        overlap::block_on(async {
            let rig = Rig::new("sigint");
            rig.build_file(
                "job quick\n  out = q.txt\n  cmd = echo q > q.txt\n\
                 job hang\n  deps = quick\n  cmd = sleep 100 & echo $! > hang.pid; wait\n",
            );
            let opts = opts(2);
            let build = runner::build_until_ctrl_c(rig.dir(), &opts);
            let (report, grandchild) = overlap::join!(build, async {
                let pid = wait_pid(&rig, "hang.pid").await;
                // SAFETY: kill takes integers only; this is our own pid.
                assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGINT) }, 0);
                pid
            });
            let report = report.unwrap();
            assert!(report.interrupted);
            assert_eq!(*report.outcome("hang"), Outcome::Cancelled);
            until(|| ended(grandchild), "the sleep killed by Ctrl-C").await;
            assert!(rig.read_string(".build_log").starts_with("quick "));
        });
    });
}

/// In a child process of its own (so no other test's fds or children count): builds that
/// succeed, fail, time out and are cancelled leave no fd, no child and no task.
#[test]
fn nothing_is_left_behind_no_fd_no_child_no_task() {
    let name = "tests_faults::nothing_is_left_behind_no_fd_no_child_no_task";
    run_in_child(name, || {
        let rt = overlap::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let rig = Rig::new("leaks");
            // Warm up what the runtime opens once (its pools, the pidfd support check).
            rig.build_file("job warm\n  cmd = echo warm\n");
            build(&rig, &opts(1)).await.unwrap();
            let before = open_fds();
            rig.build_file(FAILING);
            build(&rig, &opts(3)).await.unwrap();
            rig.build_file(
                "job t\n  timeout_ms = 100\n  cmd = sleep 100 & wait\njob ok\n  cmd = echo ok\n",
            );
            let report = build(
                &rig,
                &Options {
                    keep_going: true,
                    ..opts(2)
                },
            )
            .await
            .unwrap();
            assert_eq!(*report.outcome("t"), Outcome::TimedOut);
            until(|| children().is_empty(), "every child reaped").await;
            assert_eq!(open_fds(), before, "fds left open");
        });
        let alive = rt.metrics().tasks_alive;
        assert_eq!(alive, 0, "tasks left");
        drop(rt);
    });
}
