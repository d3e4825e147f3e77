//! A user's `make -j`/ninja-like parallel build runner, sketched as one would for tokio with
//! `tokio::process::Command`, then written for overlap by changing `tokio::` to
//! `overlap::`: the build file and its graph checks (`port_user17_build_runner/buildfile.rs`),
//! the incremental state, mtimes and `.build_log` (`state.rs`), one job's run with its
//! pipes, logs, timeout and process group (`job.rs`), the scheduler with `-j`, keep-going,
//! cancellation and Ctrl-C (`runner.rs`), and the tests' rig (`rig.rs`); the tests of
//! failures, cancellation, signals and leaks are in `tests_faults.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use tokio::process::Command;
//! use tokio::sync::{mpsc, watch};
//! use tokio::task::JoinSet;
//! use tokio_util::sync::CancellationToken;
//!
//! // The scheduler: jobs in topological order, at most `-j` in a JoinSet.
//! let order = topo_order(&jobs)?;                // "dependency cycle: a -> c -> b -> a"
//! let mut running = JoinSet::new();
//! loop {
//!     while running.len() < opts.jobs && !stopping {
//!         let Some(j) = next_ready(&order, &outcomes) else { break };
//!         if up_to_date(dir, &jobs[j], &build_log).await? { continue } // mtimes + cmd hash
//!         running.spawn(run_job(dir.clone(), jobs[j].clone(), console_tx.clone(), token.clone()));
//!     }
//!     if running.is_empty() { break }
//!     let (j, outcome) = tokio::select! {
//!         Some(r) = running.join_next() => r?,
//!         _ = ctrl_c.cancelled(), if !stopping => { stopping = true; continue }
//!     };
//!     if !outcome.ok() && !opts.keep_going { stopping = true; token.cancel() } // kill the rest
//! }
//! build_log.save(dir).await?;                     // interrupted or not
//!
//! // One job: `sh -c` leading a group of its own, both pipes pumped line by line.
//! let mut child = Command::new("sh").args(["-c", &job.cmd])
//!     .stdout(Stdio::piped()).stderr(Stdio::piped())
//!     .process_group(0).kill_on_drop(true).spawn()?;
//! let pid = child.id().unwrap() as i32;
//! let pumps = join(pump(child.stdout.take(), "NAME.stdout"), pump(child.stderr.take(), ..));
//! let stop = tokio::select! {
//!     s = child.wait() => Stop::Exited(s),
//!     _ = sleep(job.timeout) => Stop::TimedOut,
//!     _ = token.cancelled() => Stop::Cancelled,
//! };
//! // tokio has no call for the group: the user's own, safe only while unreaped.
//! unsafe { libc::kill(-pid, libc::SIGTERM) };
//! if timeout(grace, join(child.wait(), drained.wait_for(|d| *d))).await.is_err() {
//!     unsafe { libc::kill(-pid, libc::SIGKILL) };
//! }
//! ```
//!
//! The tests check, with real `sh` jobs in a temp dir: the build file's syntax errors by
//! line, a duplicate, a cycle named along its path and a missing dependency, the last two
//! (and a missing `BUILD`) stopping the build before anything runs; ten jobs with a
//! diamond under `-j3`, every start after its dependencies' ends (in the runner's events
//! and in a file the jobs append to), the runner's peak exactly 3 and what the jobs saw
//! running at once (marker files) never above it; two jobs writing 300 lines each in three
//! pieces per line to stdout and stderr at once, the logs exact and every console line
//! whole and in its job's order; a 1 MiB line, an unterminated last line and binary
//! output byte for byte; 4 MiB on stdout and 1 MiB on stderr at once; a timeout killing
//! the whole group (a backgrounded `sleep` from a pid file gone, a grandchild's SIGTERM
//! trap given its grace period), its dependants not run and the job not in the build log;
//! a group ignoring SIGTERM killed after the grace; an incremental rebuild (mtimes set with
//! overlap's `File::set_modified`) rerunning exactly the jobs downstream of a touched
//! input, of a changed command line and of a deleted output; the first failure cancelling
//! the running jobs (their groups killed, nothing scheduled after); keep-going running
//! what does not depend on the failure (a job killed by its own `kill -9` is `Failed(137)`);
//! a missing input an error naming it; a cancellation, and a real SIGINT at the process
//! (in a child process), killing every group and still writing `.build_log`; a successful
//! job's leftover `sleep` killed; the build future dropped half-way killing its groups;
//! and, in a child process, no fd, child or task left. Every job's leader is reaped.
//!
//! What the port changed, against tokio: `libc::kill(-pid, ..)` is
//! `child.send_signal_to_group(..)`; `select!` branches given a local future by name need
//! `{ fut }` (see below); `Runtime::metrics().num_alive_tasks()` is the field `tasks_alive`.
//!
//! What porting it found missing (or different, or awkward):
//!
//! - Nothing tokio has was missing: `Command` with `process_group`, `kill_on_drop`,
//!   `JoinSet`, `CancellationToken` (with `child_token`), `watch::Receiver::wait_for`,
//!   `signal::signal(SignalKind::interrupt())`, `fs::metadata`, `File::set_modified`,
//!   `fs::{read_to_string, write, rename, create_dir_all}` all behaved as tokio's.
//! - `Child::send_signal_to_group` (overlap's own; tokio has nothing) made the sketch's
//!   two `unsafe` calls safe, and through the pidfd it can kill what a job left in the
//!   background after its leader was reaped, which `kill(-pid)` never may. Awkward: on a
//!   kernel before 6.9 (no group flag for `pidfd_send_signal`) that after-the-reap call is
//!   `Unsupported`, and there is no way to wait for a child's exit without reaping it
//!   (tokio has none either; `waitid(WNOWAIT)` or the pidfd's readability would do), so a
//!   runner cannot kill a successful job's leftovers safely there: a leftover holding the
//!   job's stdout keeps the pump (and the build) waiting until it exits on its own (checked
//!   by hand with `pidfd_send_signal` denied by seccomp; this kernel, 6.18, has the flag).
//! - `kill_on_drop` kills the leader only, as tokio's: a build dropped half-way (a
//!   `timeout` around it) would leave every backgrounded grandchild running. The runner
//!   wraps its `Child` in a guard whose `Drop` calls `send_signal_to_group(SIGKILL)`;
//!   neither tokio nor overlap has a `kill_group_on_drop`.
//! - `send_signal_to_group` takes `&mut self`, so it cannot be called while the `wait()`
//!   of the same `select!` is pending: the timeout branch ends the `select!` (dropping the
//!   `wait`, cancel-safe) and signals after it, as with tokio's `start_kill`.
//! - `select!` borrows a future given by bare name and wants it `Unpin` (documented, with a
//!   clear error): `() = deadline =>` for a local `async` block and `_ = build =>` were both
//!   refused (E0277) until written `{ deadline }`/`{ build }`, which tokio's moves in.
//! - The runtime's live-task count is the field `RuntimeMetrics::tasks_alive`, where tokio
//!   has the method `num_alive_tasks()` (and counts `spawn_blocking` jobs differently; the
//!   field's docs say so).
//!
//! The tests were run against the runner broken on purpose: SIGTERM sent to the leader
//! only (the timeout test fails, the grandchild's cleanup never ran), and the group guard's
//! `Drop` doing nothing (the dropped-build test fails, its `sleep` left running).

mod support;

#[path = "port_user17_build_runner/buildfile.rs"]
mod buildfile;
#[path = "port_user17_build_runner/job.rs"]
mod job;
#[path = "port_user17_build_runner/rig.rs"]
mod rig;
#[path = "port_user17_build_runner/runner.rs"]
mod runner;
#[path = "port_user17_build_runner/state.rs"]
mod state;
#[path = "port_user17_build_runner/tests_faults.rs"]
mod tests_faults;

use std::time::Duration;

use buildfile::{parse, topo_order, BuildFileError};
use job::Outcome;
use rig::{build, ended, file, opts, reaped, wait_pid, Rig};
use runner::{BuildError, Event, Options};
use support::{pattern, until};

#[test]
fn the_build_file_parses_and_its_errors_name_the_line_or_the_jobs() {
    let jobs = parse(
        "# top\njob a\n  out = a.txt\n  cmd = echo a > a.txt\n\njob b\n  deps = a\n  in = a.txt\n  \
         out = b.txt\n  timeout_ms = 250\n  cmd = cat a.txt > b.txt\n",
    )
    .unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[1].deps, ["a"]);
    assert_eq!(jobs[1].inputs, ["a.txt"]);
    assert_eq!(jobs[1].timeout, Some(Duration::from_millis(250)));
    assert_eq!(jobs[1].cmd, "cat a.txt > b.txt");
    assert_eq!(topo_order(&jobs).unwrap(), [0, 1]);

    let err = |text: &str| parse(text).unwrap_err().to_string();
    assert_eq!(
        err("job a\n  cmd = x\n  colour = red\n"),
        "line 3: unknown key \"colour\""
    );
    assert_eq!(err("  cmd = x\n"), "line 1: a key before any `job`");
    assert_eq!(
        err("job a\ncmd = x\n"),
        "line 2: expected `job NAME` or an indented key, got \"cmd = x\""
    );
    assert_eq!(
        err("job a\n  timeout_ms = soon\n  cmd = x\n"),
        "line 2: timeout_ms \"soon\" is not a number"
    );
    assert_eq!(err("job a b\n  cmd = x\n"), "line 1: bad job name \"a b\"");
    assert_eq!(
        err("job a\n  cmd = x\njob a\n  cmd = y\n"),
        "job `a` defined twice"
    );
    assert_eq!(err("job a\n  deps = b\n"), "line 0: job `a` has no cmd");

    let graph = |text: &str| topo_order(&parse(text).unwrap()).unwrap_err();
    let cycle = graph(
        "job a\n  deps = c\n  cmd = x\njob b\n  deps = a\n  cmd = x\njob c\n  deps = b\n  cmd = x\n\
         job d\n  cmd = x\n",
    );
    assert_eq!(cycle.to_string(), "dependency cycle: a -> c -> b -> a");
    let own = graph("job a\n  deps = a\n  cmd = x\n");
    assert_eq!(
        own,
        BuildFileError::Cycle {
            path: vec!["a".into(), "a".into()]
        }
    );
    let missing = graph("job a\n  deps = zlib\n  cmd = x\n");
    assert_eq!(
        missing.to_string(),
        "job `a` depends on `zlib`, which is not defined"
    );
}

#[overlap::test]
async fn a_cycle_or_a_missing_dependency_stops_the_build_before_anything_runs() {
    let rig = Rig::new("cycle");
    rig.build_file(
        "job a\n  deps = b\n  cmd = touch ran_a\njob b\n  deps = a\n  cmd = touch ran_b\n",
    );
    match build(&rig, &opts(2)).await {
        Err(BuildError::File(BuildFileError::Cycle { path })) => assert_eq!(path, ["a", "b", "a"]),
        other => panic!("{other:?}"),
    }
    rig.build_file("job a\n  cmd = touch ran_a\njob b\n  deps = a lib\n  cmd = touch ran_b\n");
    match build(&rig, &opts(2)).await {
        Err(BuildError::File(e)) => {
            assert_eq!(
                e.to_string(),
                "job `b` depends on `lib`, which is not defined"
            )
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(rig.path("BUILD")).unwrap();
    match build(&rig, &opts(2)).await {
        Err(BuildError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
    // Nothing started: no job's file, no logs, no console, no build log.
    for name in ["ran_a", "ran_b", "logs", "console.log", ".build_log"] {
        assert!(!rig.path(name).exists(), "{name}");
    }
}

#[overlap::test]
async fn jobs_run_after_their_dependencies_with_at_most_n_at_once() {
    let rig = Rig::new("order");
    // Each job records itself in `running/` while it runs and appends how many it saw
    // there to `seen` (never more than ran at once, whatever the runner believes).
    let body = |name: &str, extra: &str| {
        format!(
            "job {name}\n  cmd = touch running/{name}; ls running | wc -l >> seen; {extra} \
             sleep 0.1; rm running/{name}; echo {name} >> finished\n"
        )
    };
    let mut text = String::new();
    for n in ["p1", "p2", "p3", "p4", "p5", "p6"] {
        text += &body(n, "");
    }
    text += &body("base", "echo base > base.txt;");
    text += "  out = base.txt\n";
    text += &body("left", "cat base.txt > left.txt; echo L >> left.txt;");
    text += "  deps = base\n";
    text += &body("right", "cat base.txt > right.txt; echo R >> right.txt;");
    text += "  deps = base\n";
    text += &body("top", "cat left.txt right.txt > top.txt;");
    text += "  deps = left right\n";
    rig.build_file(&text);
    std::fs::create_dir(rig.path("running")).unwrap();
    let report = build(&rig, &opts(3)).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcomes);
    assert_eq!(report.peak, 3, "the runner filled its three slots");
    let seen = rig.read_string("seen");
    let counts: Vec<usize> = seen.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(counts.len(), 10);
    assert!(counts.iter().all(|&c| (1..=3).contains(&c)), "{counts:?}");
    assert_eq!(rig.read_string("top.txt"), "base\nL\nbase\nR\n");
    // Every start after each of its dependencies' ends, in the runner's own log.
    let at = |e: Event| report.events.iter().position(|x| *x == e).unwrap();
    for (job, deps) in [
        ("left", &["base"][..]),
        ("right", &["base"]),
        ("top", &["left", "right"]),
    ] {
        for dep in deps {
            assert!(
                at(Event::End(dep.to_string())) < at(Event::Start(job.into())),
                "{job} {dep}"
            );
        }
    }
    // And in the file the jobs appended to when done.
    let finished = rig.read_string("finished");
    let pos = |n: &str| finished.lines().position(|l| l == n).unwrap();
    assert!(pos("base") < pos("left") && pos("base") < pos("right"));
    assert!(pos("left") < pos("top") && pos("right") < pos("top"));
    assert_eq!(finished.lines().count(), 10);
    // Independent jobs start in file order; every job was reaped.
    assert_eq!(&report.started()[..3], ["p1", "p2", "p3"]);
    for pid in report.pids.values() {
        assert!(reaped(*pid), "{pid}");
    }
}

#[overlap::test]
async fn output_is_captured_exactly_and_console_lines_never_interleave() {
    let rig = Rig::new("capture");
    // Each line written in three pieces, two jobs at once: the console must still show
    // whole lines, each job's in its own order.
    let writer = |name: &str| {
        format!(
            "job {name}\n  cmd = i=0; while [ $i -lt 300 ]; do printf '{name}-'; printf '%s' $i; \
             printf ' end\\n'; printf 'err-%s\\n' $i >&2; i=$((i+1)); done\n"
        )
    };
    rig.build_file(&(writer("alpha") + &writer("beta")));
    let report = build(&rig, &opts(2)).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcomes);
    assert_eq!(report.peak, 2);
    for name in ["alpha", "beta"] {
        let want: String = (0..300).map(|i| format!("{name}-{i} end\n")).collect();
        assert_eq!(rig.read_string(&format!("logs/{name}.stdout")), want);
        let want_err: String = (0..300).map(|i| format!("err-{i}\n")).collect();
        assert_eq!(rig.read_string(&format!("logs/{name}.stderr")), want_err);
    }
    let console = rig.read_string("console.log");
    assert_eq!(console.lines().count(), 1200);
    let mut next = std::collections::HashMap::new();
    for line in console.lines() {
        let (prefix, rest) = line.split_once("] ").unwrap();
        let n = next.entry(prefix.to_owned()).or_insert(0);
        let want = match prefix {
            "[alpha" | "[beta" => format!("{}-{n} end", &prefix[1..]),
            "[alpha!" | "[beta!" => format!("err-{n}"),
            _ => panic!("{line:?}"),
        };
        assert_eq!(rest, want);
        *n += 1;
    }
    assert!(next.values().all(|&n| n == 300), "{next:?}");
}

#[overlap::test]
async fn long_lines_and_binary_output_are_kept_byte_for_byte() {
    let rig = Rig::new("binary");
    let blob = pattern(300_000);
    file(&rig.path("blob.bin"), &blob);
    // A 1 MiB line, then raw binary (NULs, 0xff, stray newlines), ending mid-line.
    rig.build_file(
        "job long\n  cmd = head -c 1048576 /dev/zero | tr '\\000' x; echo; printf 'tail'\n\
         job bin\n  cmd = cat blob.bin; cat blob.bin >&2\n",
    );
    let report = build(&rig, &opts(2)).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcomes);
    let mut long = vec![b'x'; 1 << 20];
    long.extend_from_slice(b"\ntail");
    assert_eq!(rig.read("logs/long.stdout"), long);
    assert_eq!(rig.read("logs/bin.stdout"), blob);
    assert_eq!(rig.read("logs/bin.stderr"), blob);
    // On the console the unterminated last line gets its newline and its prefix.
    let console = rig.read("console.log");
    // (`bin`'s lines may come between the two: only whole lines are kept together.)
    let count = |p: &[u8]| console.windows(p.len()).filter(|w| *w == p).count();
    let mut want_long = b"\n[long] ".to_vec();
    want_long.extend_from_slice(&long[..(1 << 20) + 1]);
    let starts_console = console.starts_with(&want_long[1..]);
    assert!(
        starts_console || count(&want_long) == 1,
        "the long line whole on the console"
    );
    assert_eq!(count(b"\n[long] tail\n"), 1);
    let bin_lines = blob.split_inclusive(|&b| b == b'\n').count();
    assert!(count(b"[bin] ") >= bin_lines && count(b"[bin!] ") >= bin_lines);
}

#[overlap::test]
async fn four_mebibytes_on_stdout_and_stderr_at_once_do_not_deadlock() {
    let rig = Rig::new("big");
    rig.build_file(
        "job big\n  cmd = head -c 4194304 /dev/urandom > want.out; head -c 1048576 /dev/urandom \
         > want.err; cat want.err >&2 & cat want.out; wait\n",
    );
    let report = support::within(Duration::from_secs(60), build(&rig, &opts(1)), "the build")
        .await
        .unwrap();
    assert_eq!(*report.outcome("big"), Outcome::Succeeded);
    assert_eq!(rig.read("logs/big.stdout").len(), 4 << 20);
    assert_eq!(rig.read("logs/big.stdout"), rig.read("want.out"));
    assert_eq!(rig.read("logs/big.stderr"), rig.read("want.err"));
}

#[overlap::test]
async fn a_timeout_kills_the_whole_group_and_reports_it() {
    let rig = Rig::new("timeout");
    // A backgrounded `sleep`, and a shell that cleans up on SIGTERM (the job waits until
    // its trap is set; the timeout is long only so that a loaded machine gets there first).
    rig.build_file(
        "job slow\n  timeout_ms = 1500\n  cmd = sleep 100 & echo $! > grandchild.pid; echo started; \
         sh -c 'trap \"echo cleaned > cleaned_up; exit 0\" TERM; echo $$ > cleaner.pid; while :; do \
         sleep 0.05; done' & while [ ! -s cleaner.pid ]; do sleep 0.01; done; wait\njob after\n  deps = slow\n  cmd = touch after_ran\njob other\n  cmd = true\n",
    );
    let report = build(&rig, &opts(1)).await.unwrap();
    assert_eq!(*report.outcome("slow"), Outcome::TimedOut);
    assert_eq!(*report.outcome("after"), Outcome::NotRun);
    assert!(!rig.path("after_ran").exists());
    let grandchild = wait_pid(&rig, "grandchild.pid").await;
    until(|| ended(grandchild), "the backgrounded sleep killed").await;
    assert!(reaped(report.pids["slow"]));
    assert_eq!(rig.read_string("logs/slow.stdout"), "started\n");
    // SIGTERM went to the whole group first, and its cleanup got the grace period.
    let cleaner = wait_pid(&rig, "cleaner.pid").await;
    until(|| ended(cleaner), "the cleaner gone").await;
    assert_eq!(rig.read_string("cleaned_up"), "cleaned\n");
    // The timed-out job is not in the build log: it runs again next time.
    assert!(!rig.read_string(".build_log").contains("slow"));
}

#[overlap::test]
async fn a_group_ignoring_sigterm_is_killed_after_the_grace_period() {
    let rig = Rig::new("stubborn");
    rig.build_file(
        "job stubborn\n  timeout_ms = 200\n  cmd = trap '' TERM; sleep 100 & echo $! > \
         grandchild.pid; while :; do sleep 0.05; done\n",
    );
    let opts = Options {
        grace: Duration::from_millis(200),
        ..opts(1)
    };
    let report = build(&rig, &opts).await.unwrap();
    assert_eq!(*report.outcome("stubborn"), Outcome::TimedOut);
    let grandchild = wait_pid(&rig, "grandchild.pid").await;
    until(
        || ended(grandchild),
        "the sleep that ignored SIGTERM killed",
    )
    .await;
    assert!(reaped(report.pids["stubborn"]));
}

#[overlap::test]
async fn incremental_rebuild_reruns_exactly_the_affected_jobs() {
    let rig = Rig::new("incremental");
    let text = |doc_cmd: &str| {
        format!(
            "job gen\n  in = src.txt\n  out = gen.txt\n  cmd = echo gen >> runs; tr a-z A-Z < \
             src.txt > gen.txt\n\
             job compile\n  deps = gen\n  in = gen.txt\n  out = obj.txt\n  cmd = echo compile >> \
             runs; rev < gen.txt > obj.txt\n\
             job link\n  deps = compile\n  in = obj.txt\n  out = app.txt\n  cmd = echo link >> \
             runs; cat obj.txt obj.txt > app.txt\n\
             job doc\n  in = doc.src\n  out = doc.txt\n  cmd = echo doc >> runs; {doc_cmd}\n\
             job check\n  deps = link\n  cmd = echo check >> runs\n"
        )
    };
    rig.build_file(&text("cp doc.src doc.txt"));
    file(&rig.path("src.txt"), b"hello\n");
    file(&rig.path("doc.src"), b"docs\n");
    let runs = |rig: &Rig| {
        let s = rig.read_string("runs");
        std::fs::remove_file(rig.path("runs")).unwrap();
        s
    };
    let report = build(&rig, &opts(2)).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.outcomes);
    let first = runs(&rig);
    assert_eq!(first.lines().count(), 5, "{first}");
    assert_eq!(rig.read_string("app.txt"), "OLLEH\nOLLEH\n");
    settle_times(&rig).await;

    // Nothing changed: only `check` (no outputs) runs.
    let report = build(&rig, &opts(2)).await.unwrap();
    assert_eq!(runs(&rig), "check\n");
    for job in ["gen", "compile", "link", "doc"] {
        assert_eq!(*report.outcome(job), Outcome::UpToDate, "{job}");
    }

    // The source touched: its chain reruns, `doc` does not.
    rig.set_mtimes(&[("src.txt", 100)]).await;
    let report = build(&rig, &opts(2)).await.unwrap();
    assert_eq!(runs(&rig), "gen\ncompile\nlink\ncheck\n");
    assert_eq!(*report.outcome("doc"), Outcome::UpToDate);
    settle_times(&rig).await;

    // Only `doc`'s command changed: only it (and `check`) rerun, the log says why.
    rig.build_file(&text("cp doc.src doc.txt; echo v2 >> doc.txt"));
    let report = build(&rig, &opts(2)).await.unwrap();
    assert!(report.succeeded());
    let mut got: Vec<_> = runs(&rig).lines().map(str::to_owned).collect();
    got.sort();
    assert_eq!(got, ["check", "doc"]);
    assert_eq!(rig.read_string("doc.txt"), "docs\nv2\n");
    let log = rig.read_string(".build_log");
    let hash = format!(
        "doc {:016x}",
        state::command_hash("echo doc >> runs; cp doc.src doc.txt; echo v2 >> doc.txt")
    );
    assert!(log.lines().any(|l| l == hash), "{log}");
    assert_eq!(log.lines().count(), 5);

    // An output deleted: its job reruns, and what depends on it.
    settle_times(&rig).await;
    std::fs::remove_file(rig.path("obj.txt")).unwrap();
    build(&rig, &opts(2)).await.unwrap();
    assert_eq!(runs(&rig), "compile\nlink\ncheck\n");
}

/// Inputs at `T0`, each output 10 s after the one before: everything up to date. (A fresh
/// output's mtime can equal its input's at the file system's granularity, and equal counts
/// as stale, so the tests set them by hand.)
async fn settle_times(rig: &Rig) {
    rig.set_mtimes(&[
        ("src.txt", 0),
        ("doc.src", 0),
        ("gen.txt", 10),
        ("obj.txt", 20),
        ("app.txt", 30),
        ("doc.txt", 40),
    ])
    .await;
}
