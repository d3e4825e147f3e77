//! async-process's `tests/std.rs` (std's process tests, made async), ported to
//! `overlap::process`, where not already in `process.rs`. A smol user's
//! `child.status().await` is `child.wait().await` here (both close the child's stdin
//! first), `child.output().await` is `child.wait_with_output().await`, and the synchronous
//! `child.kill()` is `start_kill()` (`kill().await` also reaps).

mod support;

use std::io::ErrorKind;
use std::os::unix::process::ExitStatusExt;
use std::process::{Output, Stdio};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::process::Command;
use support::within;

const HANG: Duration = Duration::from_secs(30);

/// Spawns `cmd` with piped stdout, reads it to the end, checks the exit: the output.
async fn run_output(cmd: &mut Command) -> String {
    let mut child = cmd.spawn().unwrap();
    let mut out = String::new();
    child
        .stdout
        .as_mut()
        .expect("stdout was piped")
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert!(child.wait().await.unwrap().success());
    out
}

// async-process: std.rs smoke_failure, test_process_output_fail_to_start
#[overlap::test]
async fn a_missing_program_fails_to_spawn_and_to_give_output() {
    let err = Command::new("if-this-is-a-binary-then-the-world-has-ended")
        .spawn()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = Command::new("/no-binary-by-this-name-should-exist")
        .output()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

// async-process: std.rs exit_reported_right, test_finish_once, test_finish_twice
#[overlap::test]
async fn the_exit_code_is_reported_by_every_wait() {
    let mut p = Command::new("false").spawn().unwrap();
    assert_eq!(
        within(HANG, p.wait(), "wait").await.unwrap().code(),
        Some(1)
    );
    assert_eq!(p.wait().await.unwrap().code(), Some(1));
    assert_eq!(p.try_wait().unwrap().and_then(|s| s.code()), Some(1));
}

// async-process: std.rs signal_reported_right (a child blocked reading its stdin, killed)
#[overlap::test]
async fn a_killed_child_reports_signal_9() {
    let mut p = Command::new("/bin/sh")
        .arg("-c")
        .arg("read a")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    p.start_kill().unwrap();
    let status = within(HANG, p.wait(), "wait").await.unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

// async-process: std.rs stdout_works, set_current_dir_works
#[overlap::test]
async fn stdout_and_the_current_dir_reach_the_child() {
    let mut cmd = Command::new("echo");
    cmd.arg("foobar").stdout(Stdio::piped());
    assert_eq!(within(HANG, run_output(&mut cmd), "echo").await, "foobar\n");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("pwd")
        .current_dir("/")
        .stdout(Stdio::piped());
    assert_eq!(within(HANG, run_output(&mut cmd), "pwd").await, "/\n");
}

// async-process: std.rs stdin_works (one `write`, not `write_all`, then stdin dropped)
#[overlap::test]
async fn a_line_written_to_stdin_comes_back_on_stdout() {
    let mut p = Command::new("/bin/sh")
        .arg("-c")
        .arg("read line; echo $line")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let n = p.stdin.as_mut().unwrap().write(b"foobar").await.unwrap();
    assert_eq!(n, 6, "a pipe takes 6 bytes in one write");
    drop(p.stdin.take());
    let mut out = String::new();
    let read = p.stdout.as_mut().unwrap().read_to_string(&mut out);
    within(HANG, read, "stdout").await.unwrap();
    assert!(p.wait().await.unwrap().success());
    assert_eq!(out, "foobar\n");
}

// async-process: std.rs test_process_status, test_process_output_output,
// test_process_output_error
#[overlap::test]
async fn status_and_output_of_commands_that_succeed_and_fail() {
    assert_eq!(
        Command::new("false").status().await.unwrap().code(),
        Some(1)
    );
    assert!(Command::new("true").status().await.unwrap().success());

    let Output {
        status,
        stdout,
        stderr,
    } = Command::new("echo").arg("hello").output().await.unwrap();
    assert!(status.success());
    assert_eq!(stdout, b"hello\n");
    assert_eq!(stderr, b"");

    let Output {
        status,
        stdout,
        stderr,
    } = Command::new("mkdir").arg("./").output().await.unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(stdout, b"");
    assert!(!stderr.is_empty());
}

// async-process: std.rs test_wait_with_output_once, child_status_preserved_with_kill_on_drop
// (a child's `output()`, which consumes it, must not kill it on the way: the status is its
// own exit)
#[overlap::test]
async fn output_of_a_spawned_child_keeps_its_exit_even_with_kill_on_drop() {
    let p = Command::new("echo")
        .arg("hello")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = within(HANG, p.wait_with_output(), "output").await.unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.stderr, b"");

    for _ in 0..20 {
        let p = Command::new("true").kill_on_drop(true).spawn().unwrap();
        let out = within(HANG, p.wait_with_output(), "output").await.unwrap();
        assert!(out.status.success(), "{:?}", out.status);
    }
}

// async-process: std.rs test_override_env, test_add_to_env, test_capture_env_at_spawn
#[overlap::test]
async fn the_environment_is_set_cleared_and_captured_at_spawn() {
    let mut cmd = Command::new("env");
    cmd.env_clear().env("RUN_TEST_NEW_ENV", "123");
    if let Some(p) = std::env::var_os("PATH") {
        cmd.env("PATH", p);
    }
    let out = String::from_utf8(cmd.output().await.unwrap().stdout).unwrap();
    assert!(out.lines().any(|l| l == "RUN_TEST_NEW_ENV=123"), "{out}");
    assert!(
        !out.lines().any(|l| l.starts_with("HOME=")),
        "cleared: {out}"
    );

    let out = Command::new("env")
        .env("RUN_TEST_NEW_ENV", "123")
        .output()
        .await
        .unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.lines().any(|l| l == "RUN_TEST_NEW_ENV=123"), "{out}");

    // The parent's environment is read when the child is spawned, not when `Command` is
    // built. (The only test in this file that touches the environment.)
    let mut cmd = Command::new("env");
    cmd.env("RUN_TEST_NEW_ENV1", "123");
    std::env::set_var("RUN_TEST_NEW_ENV2", "456");
    let out = cmd.output().await.unwrap();
    std::env::remove_var("RUN_TEST_NEW_ENV2");
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(out.lines().any(|l| l == "RUN_TEST_NEW_ENV1=123"), "{out}");
    assert!(out.lines().any(|l| l == "RUN_TEST_NEW_ENV2=456"), "{out}");
}

// async-process: std.rs test_spawn_multiple_with_stdio (one `Command`, spawned twice, each
// child with pipes of its own)
#[overlap::test]
async fn one_command_spawned_twice_gives_each_child_its_own_pipes() {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("echo foo; echo bar 1>&2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for _ in 0..2 {
        let p = cmd.spawn().unwrap();
        let out = within(HANG, p.wait_with_output(), "output").await.unwrap();
        assert_eq!(out.stdout, b"foo\n");
        assert_eq!(out.stderr, b"bar\n");
        assert!(out.status.success());
    }
}
