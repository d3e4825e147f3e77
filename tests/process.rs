//! `overlap::process`: real child processes, their pipes, their exit codes and signals, a
//! loop that keeps running while they do, and no zombie left behind.

mod support;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::process::{output, spawn};
use overlap::time::sleep;
use overlap::{block_on, spawn as spawn_task};
use support::{gone, pattern_seeded, within};

const HANG: Duration = Duration::from_secs(30);

#[test]
fn output_collects_stdout_stderr_and_the_exit_code() {
    block_on(async {
        let out = output(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]))
            .await
            .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    });
}

#[test]
fn four_mib_through_cat_both_ways_at_once() {
    block_on(async {
        let mut child = spawn(
            Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped()),
        )
        .unwrap();
        let data = pattern_seeded(4 << 20, 9);
        let mut stdin = child.stdin.take().unwrap();
        let sent = data.clone();
        // Writing all before reading would deadlock on the pipes' 64 KiB: run both at once.
        let writer = spawn_task(async move {
            stdin.write_all(&sent).await.unwrap();
            // Dropping stdin ends cat's input.
        });
        let mut got = Vec::new();
        let mut stdout = child.stdout.take().unwrap();
        within(HANG, stdout.read_to_end(&mut got), "cat's output stalled")
            .await
            .unwrap();
        writer.await.unwrap();
        assert!(got == data, "bytes changed through cat");
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn kill_ends_a_sleeping_child_and_wait_reports_the_signal() {
    block_on(async {
        let mut child = spawn(Command::new("sleep").arg("100")).unwrap();
        assert!(child.try_wait().unwrap().is_none());
        child.start_kill().unwrap();
        let status = within(HANG, child.wait(), "wait missed the exit")
            .await
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Waiting again, or killing again, is harmless.
        assert_eq!(child.wait().await.unwrap(), status);
        child.start_kill().unwrap();
        child.kill().await.unwrap();
    });
}

/// `send_signal` delivers the signal asked for: a shell that traps `SIGTERM` runs its
/// handler and exits with its own code; a `sleep` dies of it. Signal 0 only checks, a
/// number that is no signal is `InvalidInput`, and a reaped child is left alone.
#[test]
fn send_signal_delivers_the_signal_asked_for() {
    block_on(async {
        let script = "trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.01; done";
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).stdout(Stdio::piped());
        let mut child = spawn(&mut cmd).unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut ready = [0u8; 6];
        within(HANG, out.read_exact(&mut ready), "ready")
            .await
            .unwrap();
        assert_eq!(&ready, b"ready\n");
        child.send_signal(0).unwrap();
        let err = child.send_signal(999).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        child.send_signal(libc::SIGTERM).unwrap();
        let status = within(HANG, child.wait(), "the trapped exit")
            .await
            .unwrap();
        assert_eq!(status.code(), Some(7));
        let mut rest = Vec::new();
        out.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"term\n");
        // Reaped: nothing is sent, whatever the signal.
        child.send_signal(libc::SIGTERM).unwrap();
        child.send_signal(999).unwrap();

        let mut child = spawn(Command::new("sleep").arg("100")).unwrap();
        child.send_signal(libc::SIGTERM).unwrap();
        let status = within(HANG, child.wait(), "wait").await.unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    });
}

/// `kill().await` is tokio's: it signals and reaps, so the status is there at once and the
/// pid, free for reuse, is no longer reported.
#[test]
fn kill_waits_for_the_child_and_id_ends_with_the_reap() {
    block_on(async {
        let mut child = spawn(Command::new("sleep").arg("100")).unwrap();
        let pid = child.id().expect("running: it has a pid");
        within(HANG, child.kill(), "kill missed the exit")
            .await
            .unwrap();
        assert_eq!(child.id(), None, "pid {pid} reported after the reap");
        let status = child.try_wait().unwrap().expect("reaped by kill");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Reaped already: left alone.
        child.kill().await.unwrap();
        assert_eq!(child.wait().await.unwrap(), status);
    });
}

/// A write into the stdin of a child that stops reading and exits, parked on the full
/// pipe, wakes with `BrokenPipe` when the child's end closes (no hang, no `SIGPIPE`).
#[test]
fn writing_to_a_child_that_exits_mid_input_is_broken_pipe() {
    block_on(async {
        let mut child = spawn(
            Command::new("sh")
                .args(["-c", "read line; exit 0"])
                .stdin(Stdio::piped()),
        )
        .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Far more than a pipe holds: the write waits for room after the first line.
        let input = vec![b'\n'; 4 << 20];
        let err = within(HANG, stdin.write_all(&input), "the write never woke")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn the_loop_keeps_running_while_a_child_is_awaited() {
    block_on(async {
        let ticker = spawn_task(async {
            let mut ticks = 0;
            for _ in 0..5 {
                sleep(Duration::from_millis(10)).await;
                ticks += 1;
            }
            ticks
        });
        let mut child = spawn(Command::new("sleep").arg("0.2")).unwrap();
        // The ticker finishes while the child still runs: waiting does not block the loop.
        assert_eq!(ticker.await.unwrap(), 5);
        assert!(within(HANG, child.wait(), "wait missed the exit")
            .await
            .unwrap()
            .success());
    });
}

/// Once reaped, a child's `wait` is ready for good: a loop awaiting it again and again
/// spends the task's cooperative budget and lets the other tasks run (tokio's is budgeted).
#[test]
fn a_wait_loop_on_a_reaped_child_lets_other_tasks_run() {
    const ROUNDS: u64 = 100_000;
    block_on(async {
        let mut child = spawn(&mut Command::new("true")).unwrap();
        within(HANG, child.wait(), "wait missed the exit")
            .await
            .unwrap();
        let child = std::rc::Rc::new(std::cell::RefCell::new(Some(child)));
        let n = support::steps_before_another_task_runs(ROUNDS, move || {
            let child = child.clone();
            async move {
                // Taken out for the await and put back: no borrow held across it.
                let mut c = child.borrow_mut().take().unwrap();
                let ok = c.wait().await.unwrap().success();
                *child.borrow_mut() = Some(c);
                ok
            }
        })
        .await;
        assert!(n < ROUNDS, "{ROUNDS} ready waits without yielding");
    });
}

#[test]
fn a_missing_program_is_not_found() {
    block_on(async {
        let err = spawn(&mut Command::new("/nonexistent/overlap-test-program")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    });
}

#[test]
fn a_dropped_child_is_reaped_in_the_background() {
    block_on(async {
        let child = spawn(Command::new("sleep").arg("0.05")).unwrap();
        let pid = child.id().unwrap();
        drop(child);
        // Once it exits, the runtime's reaper collects it: no zombie entry stays.
        gone(pid, "the dropped child stayed a zombie").await;
    });
}

#[test]
fn kill_on_drop_stops_the_child_and_it_is_reaped() {
    block_on(async {
        let mut child = spawn(Command::new("sleep").arg("100")).unwrap();
        child.kill_on_drop(true);
        let pid = child.id().unwrap();
        drop(child);
        // Killed, then reaped by the background task: its /proc entry goes away long
        // before the 100 s sleep would end.
        gone(pid, "the child was not killed and reaped").await;
    });
}

#[test]
fn the_command_builder_has_tokios_unix_setters() {
    use overlap::process::Command;

    block_on(async {
        use std::os::unix::fs::MetadataExt;
        // This process's own ids (its /proc entry's owner): allowed for any user.
        let me = std::fs::metadata("/proc/self").unwrap();
        let (uid, gid) = (me.uid(), me.gid());
        let mut cmd = Command::new("sh");
        cmd.arg0("renamed")
            .args(["-c", "echo $0; echo $$; cut -d' ' -f5 /proc/$$/stat; id -u"])
            .process_group(0)
            .uid(uid)
            .gid(gid)
            .kill_on_drop(true);
        assert!(cmd.get_kill_on_drop());
        assert_eq!(cmd.as_std().get_program(), "sh");
        let out = cmd.output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "renamed");
        // A group of its own: led by the child itself.
        assert_eq!(lines[1], lines[2]);
        assert_eq!(lines[3], uid.to_string());
    });
}

#[test]
fn the_command_builder_sets_args_env_dir_and_keeps_explicit_stdio() {
    use overlap::process::Command;

    block_on(async {
        let dir = std::env::temp_dir();
        let out = Command::new("sh")
            .args(["-c", "echo \"$A-$B\"; pwd; echo oops >&2; exit 4"])
            .env_clear()
            .env("A", "one")
            .envs([("B", "two")])
            .current_dir(&dir)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(4));
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("one-two"));
        assert_eq!(
            std::fs::canonicalize(lines.next().unwrap()).unwrap(),
            std::fs::canonicalize(&dir).unwrap()
        );
        assert_eq!(out.stderr, b"oops\n");

        // stderr set explicitly is kept by `output` (here: discarded, so nothing captured).
        let out = Command::new("sh")
            .args(["-c", "echo kept; echo dropped >&2"])
            .stderr(Stdio::null())
            .output()
            .await
            .unwrap();
        assert_eq!(out.stdout, b"kept\n");
        assert!(out.stderr.is_empty());

        // An explicit piped stdin under `output` is closed for the child: `cat` sees EOF.
        let out = Command::new("cat")
            .stdin(Stdio::piped())
            .output()
            .await
            .unwrap();
        assert!(out.status.success() && out.stdout.is_empty());

        // A missing program is `NotFound`, from `spawn`, `output` and `status` alike.
        let mut missing = Command::new("/nonexistent/overlap-test-program");
        assert_eq!(missing.spawn().unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(
            missing.output().await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            missing.status().await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    });
}

#[test]
fn status_waits_and_kill_on_drop_from_the_builder_kills() {
    use overlap::process::Command;

    block_on(async {
        let status = Command::new("sh")
            .args(["-c", "exit 9"])
            .status()
            .await
            .unwrap();
        assert_eq!(status.code(), Some(9));
        // `output`'s defaults do not stick: the same builder then spawns with inherited
        // stdio, so no pipe comes back.
        let mut cmd = Command::new("true");
        assert!(cmd.output().await.unwrap().status.success());
        let mut child = cmd.spawn().unwrap();
        assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
        assert!(child.wait().await.unwrap().success());

        let mut cmd = Command::new("sleep");
        cmd.arg("30").kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        gone(
            pid,
            "a kill_on_drop child from the builder outlived its handle",
        )
        .await;
    });
}

/// `status()` closes the pipes it was told to make before waiting (as tokio does): nobody
/// could read them, and a child filling one would never exit.
#[test]
fn status_with_piped_output_does_not_wait_for_a_reader() {
    block_on(async {
        let status = within(
            HANG,
            overlap::process::Command::new("sh")
                .arg("-c")
                .arg("head -c 1000000 /dev/zero")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .status(),
            "status() waited for a reader of the child's pipes",
        )
        .await;
        // What it wrote was read and dropped: it exited normally, as under std.
        assert!(status.unwrap().success());
        // A child that writes a little is not killed by a closed pipe either.
        for _ in 0..20 {
            let status = overlap::process::Command::new("sh")
                .arg("-c")
                .arg("echo hi; echo there >&2")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .status()
                .await
                .unwrap();
            assert!(status.success(), "{status:?}");
        }
    });
}

/// `output(&mut cmd)` pipes the child's stdout and stderr; afterwards `cmd` is back to
/// inheriting them, so a later spawn does not get pipes nobody reads.
#[test]
fn output_leaves_the_command_inheriting_its_stdio() {
    block_on(async {
        let mut cmd = Command::new("true");
        output(&mut cmd).await.unwrap();
        let mut child = spawn(&mut cmd).unwrap();
        assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
        assert!(child.wait().await.unwrap().success());
    });
}

/// As with tokio, `status()` and `output()` spawn when called and borrow nothing: the
/// future of a temporary `Command` can be stored, and a pipe end given to it goes away with
/// the `Command`, so the reader sees end of file once the child exits.
#[test]
fn status_of_a_temporary_command_lets_its_pipe_reader_see_eof() {
    block_on(async {
        let (tx, mut rx) = overlap::pipe::pipe().unwrap();
        let status = overlap::process::Command::new("echo")
            .arg("hello")
            .stdout(Stdio::try_from(tx).unwrap())
            .status();
        let mut out = Vec::new();
        let (status, read) = within(
            HANG,
            async { overlap::join!(status, rx.read_to_end(&mut out)) },
            "the pipe's reader never saw end of file",
        )
        .await;
        assert!(status.unwrap().success());
        assert_eq!(read.unwrap(), 6);
        assert_eq!(out, b"hello\n");
        // `output()` too: stored first, awaited later.
        let later = overlap::process::Command::new("echo").arg("hi").output();
        assert_eq!(later.await.unwrap().stdout, b"hi\n");
    });
}

/// A `status()`/`output()` future made before the runtime is entered (the argument of
/// `block_on` is evaluated first) still works: the child starts at the call and is watched
/// from the first poll.
#[test]
fn status_and_output_futures_made_outside_the_runtime_work() {
    let status = block_on(overlap::process::Command::new("true").status());
    assert!(status.unwrap().success());
    let out = overlap::process::Command::new("echo").arg("hi").output();
    assert_eq!(block_on(out).unwrap().stdout, b"hi\n");
}
