//! `overlap::process` rustdoc promises that no other test held to: stdin closed by a `wait`
//! even when that wait is cancelled, and by `exited`, `wait_with_output` and `status`; a
//! signal to a child that exited but was not reaped reaps it with its own status; a
//! cancelled `kill` has sent its signal; a dropped `Child` keeps running and is reaped
//! later, and so is the child of an `output` future dropped unpolled; what
//! `process::output` and `Command::from(std)` do with the stdio a command was given, and
//! that it is inherited afterwards; `status` ends at the exit, not at the pipes' end of
//! file; a wait outside any runtime fails with `Other` while the child runs and a later one
//! inside goes on; the subreaper flag is not inherited by the children spawned.

mod support;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use futures_util::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::process::Command;
use support::{gone, poll_once, within};

const HANG: Duration = Duration::from_secs(30);

/// `sh -c script`, as an overlap `Command`.
fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// A script that, with `MODE=hold`, becomes a long `sleep` keeping its stdio (to read its
/// fds from /proc); otherwise prints where its stdin comes from, and `err` on stderr.
const STDIO_PROBE: &str =
    "case \"$MODE\" in hold) exec sleep 100;; *) readlink /proc/self/fd/0; echo err >&2;; esac";

/// Where fds 0, 1 and 2 of process `pid` (or `self`) point.
fn stdio_of(pid: &str) -> [std::path::PathBuf; 3] {
    [0, 1, 2].map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap())
}

/// `wait` "closes the child's stdin first ... Cancel-safe: dropping the future loses
/// nothing, though stdin, closed when it is first polled, stays closed": a wait polled once
/// and dropped has taken `Child::stdin`, the child sees end of file and exits, and the next
/// wait gets its status.
#[test]
fn a_wait_cancelled_after_its_first_poll_has_closed_stdin_for_good() {
    overlap::block_on(async {
        let mut child = sh("cat >/dev/null; exit 4")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(child.stdin.is_some());
        assert_eq!(child.try_wait().unwrap(), None, "blocked reading its stdin");
        let _ = poll_once(Box::pin(child.wait())).await;
        assert!(child.stdin.is_none(), "the cancelled wait left stdin open");
        let status = within(HANG, child.wait(), "the child never saw end of file")
            .await
            .unwrap();
        assert_eq!(status.code(), Some(4));
        assert_eq!(child.id(), None);
    });
}

/// `wait_with_output` "closes stdin first": `cat` with its stdin still in the `Child` ends
/// with no output and success.
#[test]
fn wait_with_output_closes_a_stdin_left_in_the_child() {
    overlap::block_on(async {
        let child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(child.stdin.is_some());
        let out = within(HANG, child.wait_with_output(), "stdin was left open")
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!((out.stdout, out.stderr), (vec![], vec![]));
    });
}

/// `Command::status`: "a piped stdin is closed before waiting": `cat` reading it ends with
/// success; its output, piped too, is read and dropped.
#[test]
fn status_closes_a_piped_stdin_before_waiting() {
    overlap::block_on(async {
        let status = within(
            HANG,
            sh("cat; echo done; exit 6")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .status(),
            "status() left the piped stdin open",
        )
        .await
        .unwrap();
        assert_eq!(status.code(), Some(6));
    });
}

/// `start_kill`/`send_signal`: "one that has exited is reaped instead (its status is then
/// `try_wait`'s)": no signal, the exit code kept, the pid no longer reported.
#[test]
fn a_signal_to_an_exited_child_reaps_it_with_its_own_status() {
    overlap::block_on(async {
        for signal in [libc::SIGKILL, libc::SIGTERM] {
            let mut child = sh("exit 3").spawn().unwrap();
            // Exited, left a zombie: the signal finds it unreaped.
            assert_eq!(child.exited().await.unwrap().code(), Some(3));
            assert!(child.id().is_some());
            if signal == libc::SIGKILL {
                child.start_kill().unwrap();
            } else {
                child.send_signal(signal).unwrap();
            }
            assert_eq!(child.id(), None, "signal {signal}: not reaped");
            let status = child
                .try_wait()
                .unwrap()
                .expect("reaped by the signal call");
            assert_eq!((status.code(), status.signal()), (Some(3), None));
            assert_eq!(child.wait().await.unwrap(), status);
        }
    });
}

/// `kill` is "cancel-safe: dropped before it is done, the signal has been sent and `wait`
/// reaps the child later".
#[test]
fn a_kill_dropped_after_one_poll_has_sent_sigkill_and_wait_reaps() {
    overlap::block_on(async {
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let _ = poll_once(Box::pin(child.kill())).await;
        let status = within(HANG, child.wait(), "the kill was not sent")
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(child.id(), None);
    });
}

/// "Dropping a `Child`: the process keeps running, as with std. A background task waits
/// for it and reaps it": a child dropped (after a wait was cancelled) still reads the line
/// written to it afterwards and answers, then is reaped with no zombie left. `kill_on_drop`
/// is off by default.
#[test]
fn a_dropped_child_keeps_running_and_is_reaped_once_it_exits() {
    overlap::block_on(async {
        let (mut input, rx) = overlap::pipe::pipe().unwrap();
        let mut cmd = sh("read line; echo \"got $line\"");
        assert!(!cmd.get_kill_on_drop());
        let mut child = cmd
            .stdin(Stdio::try_from(rx).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        drop(cmd); // the read end it held for the child
        let pid = child.id().unwrap();
        let mut out = child.stdout.take().unwrap();
        let _ = poll_once(Box::pin(child.wait())).await;
        drop(child);
        input.write_all(b"x\n").await.unwrap();
        let mut answer = String::new();
        within(HANG, out.read_to_string(&mut answer), "the answer")
            .await
            .unwrap();
        assert_eq!(answer, "got x\n", "the dropped child did not run on");
        gone(pid, "the dropped child was not reaped").await;
    });
}

/// `process::output`: "stdout and stderr are piped and stdin is `/dev/null`, whatever `cmd`
/// set ... Afterwards `cmd`'s stdio is back to the default (inherited)": the child's stdin
/// is /dev/null though `cmd` asked for a pipe, its output is captured though `cmd` asked
/// for /dev/null and this process's stderr, and the next spawn shares this process's
/// stdio.
#[test]
fn output_fn_overrides_the_commands_stdio_then_leaves_it_inherited() {
    overlap::block_on(async {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", STDIO_PROBE])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let out = overlap::process::output(&mut cmd).await.unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"/dev/null\n");
        assert_eq!(out.stderr, b"err\n");

        cmd.env("MODE", "hold");
        let mut child = overlap::process::spawn(&mut cmd).unwrap();
        assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
        let pid = child.id().unwrap().to_string();
        assert_eq!(stdio_of(&pid), stdio_of("self"), "not inherited afterwards");
        child.kill().await.unwrap();
    });
}

/// `From<std::process::Command>`: "Its stdio settings cannot be read back, so `output`
/// then treats them as unset: its defaults (stdin `/dev/null`, stdout and stderr piped)
/// apply to that run, and afterwards all three are inherited."
#[test]
fn a_std_commands_stdio_is_unset_for_output_and_inherited_after() {
    overlap::block_on(async {
        let mut std_cmd = std::process::Command::new("sh");
        std_cmd
            .args(["-c", STDIO_PROBE])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut cmd = Command::from(std_cmd);
        let out = cmd.output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(out.stdout, b"/dev/null\n");
        assert_eq!(out.stderr, b"err\n");

        let mut child = cmd.env("MODE", "hold").kill_on_drop(true).spawn().unwrap();
        assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
        let pid = child.id().unwrap().to_string();
        assert_eq!(stdio_of(&pid), stdio_of("self"), "not inherited afterwards");
        child.kill().await.unwrap();
    });
}

/// `Command::output` "keeps explicit settings" and `process::output` does not: the same
/// explicit `Stdio::null()` stdout, set through this type, gives no captured output.
#[test]
fn command_output_keeps_an_explicit_null_stdout() {
    overlap::block_on(async {
        let out = sh(STDIO_PROBE)
            .stdout(Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!((out.stdout, out.stderr), (vec![], b"err\n".to_vec()));
    });
}

/// `wait`: "Awaited in another runtime than the one that spawned the child (that one
/// dropped ...), it watches the child from there. Outside any runtime it fails with an
/// `Other` error while the child runs, and a later wait inside one goes on; a child that
/// has already exited is reaped there too, and its status returned." `exited` alike.
#[test]
fn a_wait_outside_any_runtime_fails_with_other_and_a_later_one_goes_on() {
    let rt = overlap::Runtime::new().unwrap();
    let (mut running, mut ended) = rt.block_on(async {
        let running = Command::new("sleep").arg("100").spawn().unwrap();
        let mut ended = sh("exit 2").spawn().unwrap();
        // Exited, not reaped: a zombie when the waits below look.
        assert_eq!(ended.exited().await.unwrap().code(), Some(2));
        (running, ended)
    });
    drop(rt);
    let outside = |what: &str, res: Option<io::Result<std::process::ExitStatus>>| match res {
        Some(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::Other, "{what}: {e}"),
        other => panic!("{what} outside any runtime: {other:?}"),
    };
    outside("wait", running.wait().now_or_never());
    outside("exited", running.exited().now_or_never());
    assert!(running.id().is_some(), "still running, unreaped");
    let code = |res: Option<io::Result<std::process::ExitStatus>>| res.unwrap().unwrap().code();
    assert_eq!(code(ended.exited().now_or_never()), Some(2));
    assert!(ended.id().is_some(), "exited leaves it unreaped");
    assert_eq!(code(ended.wait().now_or_never()), Some(2));
    assert_eq!(ended.id(), None, "reaped by the wait outside any runtime");
    overlap::block_on(async {
        running.send_signal(libc::SIGTERM).unwrap();
        let status = within(HANG, running.wait(), "the later wait")
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    });
}

/// `exited` "closes the child's stdin first, as `wait` does, so a child reading it to the
/// end can finish".
#[test]
fn exited_closes_stdin_so_a_child_reading_it_finishes() {
    overlap::block_on(async {
        let mut child = sh("cat >/dev/null; exit 5")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let status = within(HANG, child.exited(), "exited left stdin open")
            .await
            .unwrap();
        assert_eq!(status.code(), Some(5));
        assert!(child.stdin.is_none());
        assert_eq!(child.wait().await.unwrap(), status);
    });
}

/// A `Command::output` future dropped before its first poll: "Its piped stdio closes now,
/// as for a dropped `Child`", and the child is "waited for by a background task": `cat`,
/// its stdin piped by the command, sees end of file, writes its last line to the pipe this
/// test reads, and is reaped.
#[test]
fn an_unpolled_output_future_dropped_closes_the_childs_stdin_and_reaps_it() {
    overlap::block_on(async {
        let (tx, mut rx) = overlap::pipe::pipe().unwrap();
        let output = sh("echo $$; cat; echo after")
            .stdin(Stdio::piped())
            .stdout(Stdio::try_from(tx).unwrap())
            .output();
        drop(output);
        let mut said = String::new();
        within(
            HANG,
            rx.read_to_string(&mut said),
            "the child's stdin stayed open",
        )
        .await
        .unwrap();
        let (pid, rest) = said.split_once('\n').unwrap();
        assert_eq!(rest, "after\n");
        gone(pid.parse().unwrap(), "the child was not reaped").await;
    });
}

/// `set_child_subreaper`: "The setting ... is not inherited by the children it spawns": an
/// orphan left by a grandchild of this subreaper is reparented past the child that is
/// still running, to this process, which reaps it. In a process of its own: the flag is
/// the whole process's.
#[test]
fn the_subreaper_flag_is_not_inherited_by_a_spawned_child() {
    support::run_in_child(
        "the_subreaper_flag_is_not_inherited_by_a_spawned_child",
        subreaper_flag_not_inherited,
    );
}

/// The body of [`the_subreaper_flag_is_not_inherited_by_a_spawned_child`], in its own
/// process.
fn subreaper_flag_not_inherited() {
    overlap::block_on(async {
        use overlap::io::AsyncBufReadExt;
        overlap::process::set_child_subreaper(true).unwrap();
        // The child's `sh -c` starts a subshell in the background, reading the child's
        // stdin (as fd 3: a background job's own stdin is /dev/null), and exits at once,
        // orphaning it; the child itself lives on.
        let script = "sh -c 'exec 3<&0; (read x <&3; exit 7) & echo $!'; exec sleep 1000";
        let mut child = sh(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut out = overlap::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).await.unwrap();
        let orphan: u32 = line.trim().parse().unwrap();
        let _guard = support::KillIfPanicking(orphan);
        let me = std::process::id();
        support::until(
            || support::parent_pid(orphan) == Some(me),
            "the orphan reparented to this process, not to the child",
        )
        .await;
        assert_eq!(support::parent_pid(child.id().unwrap()), Some(me));
        // End of file on its fd 3: the orphan exits with 7.
        drop(child.stdin.take());
        let mut reaped = Vec::new();
        within(
            HANG,
            async {
                while reaped.is_empty() {
                    reaped = overlap::process::reap_orphans().unwrap();
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
            },
            "the orphan was not reaped",
        )
        .await;
        assert_eq!(reaped.len(), 1, "{reaped:?}");
        assert_eq!((reaped[0].0, reaped[0].1.code()), (orphan, Some(7)));
        child.kill().await.unwrap();
    });
}

/// `Command::status`: "what the child writes to a piped stdout or stderr is read and
/// dropped until it exits": the exit decides, not the end of file, so a background `sleep`
/// the child left holding its stdout does not hold the status back. (The `sleep`, in the
/// child's own group, is killed when the reaped child is dropped: `kill_group_on_drop`.)
#[test]
fn status_returns_at_the_exit_while_a_background_process_holds_the_pipe() {
    let dir = support::TempDir::new("process-contracts-audit");
    let pid_file = dir.join("straggler");
    overlap::block_on(async {
        let script = format!("sleep 100 & echo $! > '{}'; exit 3", pid_file.display());
        let status = within(
            HANG,
            sh(&script)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_group_on_drop(true)
                .status(),
            "status() waited for the pipe's end of file",
        )
        .await
        .unwrap();
        assert_eq!(status.code(), Some(3));
        let straggler = std::fs::read_to_string(&pid_file).unwrap();
        gone(
            straggler.trim().parse().unwrap(),
            "the group was not killed",
        )
        .await;
    });
}
