//! A user's tini/dumb-init-like init for containers, sketched first for tokio and then
//! written for overlap by changing `tokio::` to `overlap::`: the command line
//! (`port_user18_container_init/cli.rs`), the init's main loop (`init.rs`), the shutdown of
//! what the main command leaves (`shutdown.rs`), the reaping of adopted orphans
//! (`adopted.rs`), its few system calls (`sys.rs`), and the tests' rig (`rig.rs`).
//!
//! The init becomes a child subreaper, spawns the main command leading a process group of
//! its own, forwards `SIGTERM`, `SIGINT`, `SIGHUP` and `SIGUSR1` to that whole group, and
//! reaps every orphan reparented to it. When the main command exits it waits for it
//! *without reaping it* (`Child::exited`), so the group id stays its own, sends `SIGTERM`
//! to what is left of the group (and to an adopted orphan that left the group), waits up
//! to a grace period for all of it to end, `SIGKILL`s the rest, reaps the main command and
//! exits with its exit code (128 + the signal's number if a signal ended it). `--timeout`
//! drops the supervising future at a deadline, and `kill_group_on_drop` kills the group
//! (exit 124). It cannot run a program: 127 if it is not found, 126 if it cannot execute.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::process::Command;
//! use tokio::signal::unix::{signal, SignalKind};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     let cfg = cli::parse(std::env::args_os().skip(1)).unwrap_or_else(|e| usage_exit(e));
//!     unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
//!     let mut term = signal(SignalKind::terminate()).unwrap(); // and int, hup, usr1
//!     let mut chld = signal(SignalKind::child()).unwrap();
//!     let mut child = Command::new(&cfg.program).args(&cfg.args)
//!         .process_group(0)
//!         .kill_on_drop(true) // the leader only: the group outlives a dropped Child
//!         .spawn()
//!         .unwrap_or_else(|e| exit(if e.kind() == NotFound { 127 } else { 126 }));
//!     let pgid = child.id().unwrap() as i32;
//!     let status = loop {
//!         tokio::select! {
//!             // Reaps: from here on `pgid` may name another process's group.
//!             status = child.wait() => break status.unwrap(),
//!             _ = term.recv() => unsafe { libc::kill(-pgid, libc::SIGTERM); },
//!             // ... int, hup, usr1 alike
//!             // The classic init loop: also reaps `child` when it exits, so its
//!             // `wait` fails with ECHILD and the exit code is lost.
//!             _ = chld.recv() => while unsafe { libc::waitpid(-1, null_mut(), WNOHANG) } > 0 {},
//!         }
//!     };
//!     unsafe { libc::kill(-pgid, libc::SIGTERM) };
//!     tokio::time::sleep(cfg.grace).await; // the whole grace, even with nothing left
//!     unsafe { libc::kill(-pgid, libc::SIGKILL) };
//!     std::process::exit(status.code().unwrap_or_else(|| 128 + status.signal().unwrap()));
//! }
//! ```
//!
//! On overlap, `child.exited()` replaces that `wait` (the main command stays a zombie, so
//! its group id stays its own until the group is shut down), `send_signal_to_group`
//! replaces `kill(-pgid)` (through the pidfd on Linux 6.9+, which cannot reach a reused
//! group id), `kill_group_on_drop` makes a dropped supervisor kill the whole group, and
//! the orphans are reaped with `overlap::process::reap_orphans`, never with `waitpid(-1)`
//! (see `adopted.rs`'s docs).
//!
//! The tests start this test binary again as the init (the `init_entry` "test", selected by
//! an environment variable), because a subreaper flag and signal handlers are the whole
//! process's. They check, against the real kernel: exit codes passed through (0, 3; 137 and
//! 140 for a main command killed by `SIGKILL` or `SIGUSR2`); a `SIGTERM` to the init
//! reaching every member of the group, each trapping it; `SIGHUP`, `SIGUSR1` and `SIGINT`
//! forwarded one by one, the main command deciding; a double-forked orphan reparented to
//! the init and reaped once killed, the main command still running and no zombie left; 200
//! orphans at once, all reparented and all reaped; a member ignoring `SIGTERM` killed once
//! a grace period of an hour has passed on the paused clock; members holding stdout (one of
//! them a `setsid` daemon, outside the group) ended with `SIGTERM` so the init, and its
//! stdout, end; `--timeout` on the paused clock killing the group; usage errors (exit 2),
//! a command not found (127) and one not executable (126), each said in words; the main
//! command getting no fd of the init's but those it inherited itself. In the test's own
//! child processes (`tests_reaping.rs`): `reap_orphans` leaving overlap's zombie and its
//! status alone, and a naive `waitpid(-1)` stealing it (`ECHILD`).
//!
//! # What porting it found missing
//! Nothing blocked the port: `Child::exited`, `send_signal_to_group`, `kill_group_on_drop`,
//! `process_group(0)`, the signal listeners (`SIGCHLD` included) and `time::timeout` did
//! what the init needed, with tokio's names where tokio has the call. Two things the
//! program had to do itself, with libc, as a tokio user would:
//!
//! - Becoming a child subreaper: one `prctl`. overlap could offer it
//!   (`overlap::process::set_child_subreaper()`), but it is a one-liner about the whole
//!   process, not about the reactor; left as it is.
//! - Reaping adopted orphans without stealing overlap's statuses. *Closed since:* the port
//!   first had no call for it and no way to ask which pids were overlap's own unreaped
//!   children; `waitpid(-1)` races overlap's reaping (shown by a test), and
//!   `waitid(P_ALL, WNOWAIT)` peeks at one child only, which may be the main command's
//!   zombie, kept on purpose. So it listed its children in `/proc/self/task/*/children`
//!   and reaped by pid those that were not its own `Child`ren, which worked only because
//!   the init knows every pid overlap spawned for it (one). overlap now has
//!   `overlap::process::reap_orphans()`: a process-wide registry of overlap's unreaped
//!   children (every spawn path registers the pid under a lock held across the fork, and
//!   every reap of overlap's, the background reaping of dropped children included, takes
//!   it out only after the reap) lets it reap every other exited child, looking past
//!   overlap's zombies through `/proc` when `waitid(P_ALL, WNOWAIT)` names one. The init
//!   calls it on every `SIGCHLD` (`adopted.rs`); it still lists its children, skipping the
//!   main command's pid, but only to signal the orphans at shutdown and to count those
//!   left.
//!
//! What the port changed, against tokio: the paths (`overlap::process`,
//! `overlap::signal::unix`, `overlap::select!`); tokio's `lines.next_line()` is
//! `lines.next()` with `overlap::stream::StreamExt` (futures' `Lines` is a stream, as
//! overlap's `io` docs say); the init's test build runs inside libtest, so it is this test
//! binary run again with `--exact init_entry`, and it exits with `std::process::exit`.
//!
//! The tests were run against the init broken on purpose, one fault at a time, and each
//! fault made some fail: no subreaper (the double fork, the burst, the grace period and the
//! stdout tests: the orphans go to another reaper); orphans reaped with `waitpid(-1)` (the
//! in-process test at once, the main command's status taken for an orphan's; and, when the
//! init looks at a `SIGCHLD` before the main command's exit, its exit code lost); signals
//! forwarded to the main command alone (its members never end: the `SIGTERM` test's hang
//! guard); no `SIGKILL` after the grace period (the member outlives the init); and
//! `kill_group_on_drop(false)` (the timeout leaves the group running: that test's hang
//! guard). A shell's own race showed up on the way: a signal sent to the group while the
//! shell forks a `sleep 1000 &` can reach the new process while it still has the shell's
//! trap handler, and is lost there (twice in a row, the forwarded `SIGTERM` and the init's
//! own, a few milliseconds apart); the init then did what it should (`SIGKILL` after the
//! grace period), and the scripts now sleep in short foreground steps.

mod support;

#[path = "port_user18_container_init/adopted.rs"]
mod adopted;
#[path = "port_user18_container_init/cli.rs"]
mod cli;
#[path = "port_user18_container_init/init.rs"]
mod init;
#[path = "port_user18_container_init/rig.rs"]
mod rig;
#[path = "port_user18_container_init/shutdown.rs"]
mod shutdown;
#[path = "port_user18_container_init/sys.rs"]
mod sys;
#[path = "port_user18_container_init/tests_reaping.rs"]
mod tests_reaping;

use std::collections::BTreeSet;
use std::time::Duration;

use rig::{children_of, lines_with, parent_of, run, start, start_paused};
use support::{gone, live_group_members, process_state, until, TempDir};

/// The init's entry point, not a test: does nothing unless [`rig::ARGS_ENV`] is set, as in
/// the copy of this binary that [`rig::start`] runs. There it runs the init and exits with
/// its exit code.
#[test]
fn init_entry() {
    let Some(args) = rig::args_from_env() else {
        return;
    };
    let cfg = match cli::parse(args) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(cli::EXIT_USAGE);
        }
    };
    let code = if std::env::var_os(rig::PAUSED_ENV).is_some() {
        overlap::block_on_start_paused(init::run(&cfg))
    } else {
        overlap::block_on(init::run(&cfg))
    };
    std::process::exit(code);
}

#[overlap::test]
async fn the_main_commands_exit_code_is_the_inits() {
    let ended = run(&["sh", "-c", "exit 0"]).await;
    assert_eq!(ended.code, Some(0), "{ended:?}");
    let ended = run(&["sh", "-c", "echo hi; exit 3"]).await;
    assert_eq!((ended.code, ended.lines), (Some(3), vec!["hi".to_string()]));
}

#[overlap::test]
async fn a_main_command_killed_by_a_signal_gives_128_plus_its_number() {
    let ended = run(&["sh", "-c", "kill -KILL $$"]).await;
    assert_eq!(ended.code, Some(128 + libc::SIGKILL), "{ended:?}");
    let ended = run(&["sh", "-c", "kill -USR2 $$"]).await;
    assert_eq!(ended.code, Some(128 + libc::SIGUSR2), "{ended:?}");
}

#[overlap::test]
async fn sigterm_to_the_init_reaches_every_member_of_the_group() {
    // Each shell sleeps in short foreground steps: a `sleep 1000 &` forked just before the
    // signal can still have the shell's handler when it arrives, and lose it (as any
    // shell's child would); the init then needs its grace period and `SIGKILL`.
    let script = "trap 'echo main bye; wait; exit 7' TERM
        (trap 'echo m1 bye; exit 0' TERM; echo m1 ready; while :; do sleep 0.1; done) &
        (trap 'echo m2 bye; exit 0' TERM; echo m2 ready; while :; do sleep 0.1; done) &
        echo main ready
        while :; do sleep 0.1; done";
    let mut init = start(&["-v", "sh", "-c", script]);
    let main = init.main_pid().await;
    let mut ready = BTreeSet::new();
    for _ in 0..3 {
        ready.insert(init.line().await);
    }
    assert_eq!(
        ready,
        BTreeSet::from(["m1 ready", "m2 ready", "main ready"].map(String::from))
    );
    init.send(libc::SIGTERM);
    let ended = init.finish().await;
    let byes: BTreeSet<_> = ended.lines.iter().map(String::as_str).collect();
    assert_eq!(
        byes,
        BTreeSet::from(["m1 bye", "m2 bye", "main bye"]),
        "{ended:?}"
    );
    assert_eq!(ended.code, Some(7), "{ended:?}");
    assert_eq!(
        lines_with(&ended.stderr, "forwarding"),
        [format!(
            "container_init: forwarding signal 15 to group {main}"
        )],
    );
    assert_eq!(
        lines_with(&ended.stderr, "grace period"),
        Vec::<&str>::new()
    );
    assert_eq!(live_group_members(main), Vec::<u32>::new());
}

#[overlap::test]
async fn hup_usr1_and_int_are_forwarded_one_by_one_and_the_main_command_decides() {
    // A shell runs a trap once its foreground command ends: the group's signal ends the
    // short `sleep` too. (With `sleep 1000 & wait`, a signal arriving between the fork and
    // the `wait` would leave the shell waiting for a `sleep` that ignores `SIGINT`.)
    let script = "trap 'echo got HUP' HUP; trap 'echo got USR1' USR1
        trap 'echo got INT' INT; trap 'echo got TERM; exit 0' TERM
        echo ready
        while :; do sleep 0.1; done";
    let mut init = start(&["-v", "sh", "-c", script]);
    let main = init.main_pid().await;
    assert_eq!(init.line().await, "ready");
    // One at a time: two signals of a kind sent together may arrive as one.
    for (sig, name) in [
        (libc::SIGHUP, "HUP"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGINT, "INT"),
    ] {
        init.send(sig);
        assert_eq!(init.line().await, format!("got {name}"));
    }
    init.send(libc::SIGTERM);
    let ended = init.finish().await;
    assert_eq!(
        (ended.code, &ended.lines[..]),
        (Some(0), &["got TERM".to_string()][..])
    );
    let forwarded: Vec<_> = lines_with(&ended.stderr, "forwarding")
        .iter()
        .map(|l| l.replace(&format!(" to group {main}"), ""))
        .collect();
    assert_eq!(
        forwarded,
        [1, 10, 2, 15].map(|n| format!("container_init: forwarding signal {n}"))
    );
    assert_eq!(live_group_members(main), Vec::<u32>::new());
}

#[overlap::test]
async fn a_double_forked_orphan_is_adopted_and_reaped_while_the_main_command_runs() {
    let script = "(sleep 1000 & echo orphan $!); echo main ready; read x; exit 4";
    let mut init = start(&["-v", "sh", "-c", script]);
    let main = init.main_pid().await;
    let orphan = init.pid_line("orphan ").await;
    assert_eq!(init.line().await, "main ready");
    // Its parent, the subshell, has exited: it is the init's now, not pid 1's.
    until(
        || parent_of(orphan) == Some(init.pid),
        "the orphan reparented to the init",
    )
    .await;
    assert_eq!(children_of(init.pid), [main, orphan]);
    sys::kill(orphan, libc::SIGKILL).unwrap();
    gone(orphan, "the orphan reaped").await;
    assert_eq!(children_of(init.pid), [main], "no zombie left");
    assert_eq!(process_state(main), Some('S'), "the main command runs on");
    let ended = init.finish().await; // its stdin closed: `read` ends
    assert_eq!(ended.code, Some(4), "{ended:?}");
    assert_eq!(
        lines_with(&ended.stderr, "reaped orphan"),
        [format!(
            "container_init: reaped orphan {orphan} (signal: 9 (SIGKILL))"
        )],
    );
}

#[overlap::test]
async fn a_burst_of_200_orphans_is_all_reparented_and_all_reaped() {
    // Each `cat` outlives the subshell that started it, reading the init's stdin (fd 3:
    // a background job's own stdin is /dev/null) until the test closes it.
    let script = "exec 3<&0
        i=0; while [ $i -lt 200 ]; do (cat <&3 >/dev/null &); i=$((i+1)); done
        echo spawned
        exec sleep 1000";
    let mut init = start(&["-v", "sh", "-c", script]);
    let main = init.main_pid().await;
    assert_eq!(init.line().await, "spawned");
    until(|| children_of(init.pid).len() == 201, "200 orphans adopted").await;
    drop(init.stdin.take()); // every `cat` reads its end
    until(|| children_of(init.pid) == [main], "every orphan reaped").await;
    init.send(libc::SIGTERM);
    let ended = init.finish().await;
    assert_eq!(ended.code, Some(128 + libc::SIGTERM), "{ended:?}");
    let reaped = lines_with(&ended.stderr, "reaped orphan");
    assert_eq!(reaped.len(), 200);
    assert!(
        reaped.iter().all(|l| l.ends_with("(exit status: 0)")),
        "{reaped:?}"
    );
}

#[overlap::test]
async fn a_member_ignoring_sigterm_is_killed_once_the_grace_period_has_passed() {
    // An hour's grace, on the init's paused clock: it passes as soon as the init has
    // nothing else to wait for.
    let script = "trap '' TERM; sleep 1000 & echo member $!; exit 4";
    let mut init = start_paused(&["-v", "--grace", "3600", "sh", "-c", script]);
    let main = init.main_pid().await;
    let ended = init.finish().await;
    assert_eq!(ended.code, Some(4), "{ended:?}");
    let member: u32 = ended.lines[0]
        .strip_prefix("member ")
        .unwrap()
        .parse()
        .unwrap();
    init.watch(member);
    let steps: Vec<_> = lines_with(&ended.stderr, "container_init: ")
        .iter()
        .map(|l| l.replace(&main.to_string(), "MAIN"))
        .collect();
    assert_eq!(
        steps,
        [
            "container_init: started pid MAIN".to_string(),
            "container_init: main command MAIN exited (exit status: 4), not reaped yet".into(),
            "container_init: grace period of 3600s over: killing what is left".into(),
            format!("container_init: reaped orphan {member} (signal: 9 (SIGKILL))"),
            "container_init: main command ended: exit status: 4".into(),
        ]
    );
    assert_eq!(process_state(member), None);
}

#[overlap::test]
async fn members_holding_stdout_are_ended_so_the_init_and_its_stdout_end_too() {
    // Both keep the init's stdout open; the daemon left the group (`setsid`), so only the
    // init's own `SIGTERM` to each adopted orphan outside the group reaches it.
    let script = "sleep 1000 & echo member $!; setsid sleep 1000 & echo daemon $!
        echo ready; read x; exit 5";
    let mut init = start(&["-v", "sh", "-c", script]);
    let main = init.main_pid().await;
    let member = init.pid_line("member ").await;
    let daemon = init.pid_line("daemon ").await;
    assert_eq!(init.line().await, "ready");
    until(
        || rig::group_of(daemon) == Some(daemon),
        "the daemon in a group of its own",
    )
    .await;
    assert_eq!(rig::group_of(member), Some(main));
    let ended = init.finish().await; // stdin closed: the main command exits 5
    assert_eq!((ended.code, ended.lines.len()), (Some(5), 0), "{ended:?}");
    let mut reaped = lines_with(&ended.stderr, "reaped orphan");
    reaped.sort();
    let mut want = [member, daemon]
        .map(|p| format!("container_init: reaped orphan {p} (signal: 15 (SIGTERM))"));
    want.sort();
    assert_eq!(reaped, want);
    assert_eq!((process_state(member), process_state(daemon)), (None, None));
}

#[overlap::test]
async fn the_timeout_drops_the_supervisor_and_its_child_kills_the_whole_group() {
    // On the init's paused clock the hour passes once it idles, maybe before `sh` has
    // started its `sleep`: whatever had started of the group by then is killed.
    let script = "trap '' TERM INT HUP; sleep 1000 & echo member $!; exec sleep 1000";
    let mut init = start_paused(&["-v", "--timeout", "3600", "sh", "-c", script]);
    let main = init.main_pid().await;
    let ended = init.finish().await;
    assert_eq!(ended.code, Some(init::EXIT_TIMED_OUT), "{ended:?}");
    assert_eq!(
        lines_with(&ended.stderr, "timed out"),
        ["container_init: sh timed out after 3600s: killed its process group"]
    );
    assert_eq!(live_group_members(main), Vec::<u32>::new());
    for line in &ended.lines {
        let member: u32 = line.strip_prefix("member ").unwrap().parse().unwrap();
        init.watch(member);
        assert_eq!(process_state(member), None);
    }
}

#[overlap::test]
async fn usage_errors_exit_2_and_say_what_was_wrong() {
    for (args, why) in [
        (&[][..], "no command given"),
        (&["-v", "--"][..], "no command given"),
        (
            &["--grace", "soon", "true"][..],
            "--grace: \"soon\" is not a number of seconds",
        ),
        (&["--timeout"][..], "--timeout needs a number of seconds"),
        (
            &["--frobnicate", "true"][..],
            "unknown option \"--frobnicate\"",
        ),
    ] {
        let ended = run(args).await;
        assert_eq!(ended.code, Some(cli::EXIT_USAGE), "{args:?}: {ended:?}");
        assert_eq!(
            ended.stderr,
            format!("container_init: {why}\n{}\n", cli::USAGE)
        );
    }
    let cfg = cli::parse(["--grace", "0.5", "--", "-x", "y"].map(Into::into)).unwrap();
    assert_eq!(
        (cfg.grace, cfg.program, cfg.args),
        (Duration::from_millis(500), "-x".into(), vec!["y".into()])
    );
}

#[overlap::test]
async fn a_command_not_found_exits_127_and_one_not_executable_126() {
    let ended = run(&["no-such-command-here"]).await;
    assert_eq!(ended.code, Some(127));
    assert_eq!(
        ended.stderr,
        "container_init: no-such-command-here: command not found\n"
    );
    let dir = TempDir::new("container-init");
    let script = dir.join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho never\n").unwrap();
    let script = script.to_str().unwrap();
    let ended = run(&[script]).await;
    assert_eq!((ended.code, ended.lines.len()), (Some(126), 0));
    assert_eq!(
        ended.stderr,
        format!("container_init: {script}: permission denied (not executable?)\n")
    );
}

#[overlap::test]
async fn the_main_command_gets_no_fd_of_the_inits_own() {
    let mut init = start(&["sh", "-c", "ls /proc/$$/fd; echo end; read x; exit 0"]);
    let mut fds = BTreeSet::new();
    loop {
        match init.line().await.as_str() {
            "end" => break,
            fd => fds.insert(fd.parse::<u32>().unwrap()),
        };
    }
    // The init's fds that an exec keeps: its stdio, and whatever it inherited itself.
    let (kept, closed) = rig::fds_by_cloexec(init.pid);
    assert_eq!(fds, kept);
    assert!([0, 1, 2].iter().all(|fd| kept.contains(fd)), "{kept:?}");
    assert!(
        !closed.is_empty(),
        "the init's epoll, pidfd, signal pipe: {closed:?}"
    );
    let ended = init.finish().await;
    assert_eq!(ended.code, Some(0), "{ended:?}");
}
