//! Bad input to the pipe crate's constructors: a NUL byte where the kernel wants a C string
//! (a program, an argument, an environment entry, a working directory, a FIFO path) is an
//! `InvalidInput` error before anything runs or opens, through every entry point, and
//! leaves no fd behind (the pipes a piped `Command` would make included). Spawns that fail
//! only at `exec` give the kernel's error and leave no zombie either.

mod support;

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use overlap::pipe::{Receiver, Sender};
use overlap::process::Command;
use support::{open_fds, TempDir};

/// Commands that each carry a NUL byte in a different place, all three stdio piped.
fn commands_with_a_nul() -> Vec<(&'static str, Command)> {
    let piped = |mut cmd: Command| {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut arg = Command::new("echo");
    arg.arg("before\0after");
    let program = Command::new("ec\0ho");
    let mut env_key = Command::new("echo");
    env_key.env("KEY\0PART", "value");
    let mut env_value = Command::new("echo");
    env_value.env("KEY", "val\0ue");
    let mut dir = Command::new("echo");
    dir.current_dir("/tmp\0/x");
    let mut arg0 = Command::new("echo");
    arg0.arg0("ec\0ho");
    vec![
        ("an argument", piped(arg)),
        ("the program", piped(program)),
        ("an environment key", piped(env_key)),
        ("an environment value", piped(env_value)),
        ("the working directory", piped(dir)),
        ("argv[0]", piped(arg0)),
    ]
}

fn expect_nul_error(what: &str, how: &str, e: io::Error) {
    assert_eq!(
        e.kind(),
        io::ErrorKind::InvalidInput,
        "a NUL byte in {what}, {how}: {e}"
    );
}

// The fd counts below are the whole process's: each test that takes them runs alone in a
// child, so the other tests' fds (the child the last test spawns, say) cannot move them.

#[test]
fn a_nul_byte_anywhere_in_a_command_is_invalid_input_and_leaks_nothing() {
    support::run_in_child(
        "a_nul_byte_anywhere_in_a_command_is_invalid_input_and_leaks_nothing",
        a_nul_byte_anywhere_in_a_command_is_invalid_input_and_leaks_nothing_alone,
    );
}

fn a_nul_byte_anywhere_in_a_command_is_invalid_input_and_leaks_nothing_alone() {
    overlap::block_on(async {
        let before = open_fds();
        for (what, mut cmd) in commands_with_a_nul() {
            let e = cmd.spawn().map(drop).unwrap_err();
            expect_nul_error(what, "spawn", e);
            let e = cmd.output().await.unwrap_err();
            expect_nul_error(what, "output", e);
            let e = cmd.status().await.unwrap_err();
            expect_nul_error(what, "status", e);
            let e = overlap::process::spawn(cmd.as_std_mut())
                .map(drop)
                .unwrap_err();
            expect_nul_error(what, "process::spawn", e);
            let e = overlap::process::output(cmd.as_std_mut())
                .await
                .unwrap_err();
            expect_nul_error(what, "process::output", e);
        }
        assert_eq!(open_fds(), before, "fds leaked by spawns refused for a NUL");
    });
}

#[test]
fn a_fifo_path_with_a_nul_is_invalid_input_and_opens_nothing() {
    support::run_in_child(
        "a_fifo_path_with_a_nul_is_invalid_input_and_opens_nothing",
        a_fifo_path_with_a_nul_is_invalid_input_and_opens_nothing_alone,
    );
}

fn a_fifo_path_with_a_nul_is_invalid_input_and_opens_nothing_alone() {
    let dir = TempDir::new("review-nul-fifo");
    let mut raw = dir.path().as_os_str().as_bytes().to_vec();
    raw.extend_from_slice(b"/fi\0fo");
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
    overlap::block_on(async {
        let before = open_fds();
        let e = Receiver::open(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let e = Sender::open(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert_eq!(open_fds(), before, "an fd leaked by a refused open");
    });
}

/// Spawns the kernel refuses at `exec` (after the fork: an argument over the kernel's
/// 128 KiB limit, a program that is no executable, a working directory that is missing)
/// give the kernel's error, and leave neither an fd nor a child behind: the forked process
/// that failed to `exec` is reaped before the error is returned.
#[test]
fn spawns_failing_at_exec_leave_no_zombie_and_no_fd() {
    support::run_in_child(
        "spawns_failing_at_exec_leave_no_zombie_and_no_fd",
        spawns_failing_at_exec_leave_no_zombie_and_no_fd_alone,
    );
}

fn spawns_failing_at_exec_leave_no_zombie_and_no_fd_alone() {
    use std::os::unix::fs::PermissionsExt;

    let dir = TempDir::new("review-exec-fails");
    let not_exec = dir.join("not-exec");
    std::fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    overlap::block_on(async {
        let before = open_fds();
        let piped = |mut cmd: Command| {
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd
        };
        let mut long = Command::new("echo");
        long.arg("x".repeat(200 << 10));
        let mut missing_dir = Command::new("echo");
        missing_dir.current_dir(dir.join("missing"));
        let cases = [
            ("an argument over 128 KiB", piped(long), libc::E2BIG),
            (
                "a file without x bits",
                piped(Command::new(&not_exec)),
                libc::EACCES,
            ),
            (
                "a missing working directory",
                piped(missing_dir),
                libc::ENOENT,
            ),
        ];
        for (what, mut cmd, errno) in cases {
            let e = cmd.spawn().map(drop).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(errno), "{what}: {e}");
            let e = cmd.output().await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(errno), "{what}, output: {e}");
            let e = cmd.status().await.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(errno), "{what}, status: {e}");
        }
        assert_eq!(support::children(), "", "a failed spawn left a child");
        assert_eq!(open_fds(), before, "fds leaked by spawns failing at exec");
    });
}
