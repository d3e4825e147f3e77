//! tokio's conversions between its process types and std's: `Command::into_std` (the std
//! builder with the settings made, `kill_on_drop` lost) and `ChildStdin::from_std`,
//! `ChildStdout::from_std` and `ChildStderr::from_std` (a std child's pipes taken over,
//! non-blocking, on the reactor), which a JSON-RPC client handed a std child or wanting
//! std's builder back looks for (see `tests/port_user13_json_rpc.rs`).

mod support;

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::process::{ChildStderr, ChildStdin, ChildStdout, Command};
use support::within;

fn nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer; the caller keeps `fd` open for the call.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "{}", std::io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

#[test]
fn into_std_keeps_the_settings_and_loses_kill_on_drop() {
    let dir = support::TempDir::new("into-std");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "pwd; echo \"$A$B\"; exit 4"])
        .env("A", "x")
        .env("B", "y")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut std_cmd = cmd.into_std();
    assert_eq!(std_cmd.get_program(), "sh");
    assert_eq!(std_cmd.get_args().count(), 2);
    let envs: Vec<_> = std_cmd.get_envs().collect();
    assert!(
        envs.contains(&(OsStr::new("A"), Some(OsStr::new("x")))),
        "{envs:?}"
    );
    assert_eq!(std_cmd.get_current_dir(), Some(dir.path()));
    // std's own spawn runs it as set, the piped stdout included.
    let out = std_cmd.output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let cwd = Path::new(text.lines().next().unwrap());
    assert_eq!(
        cwd.canonicalize().unwrap(),
        dir.path().canonicalize().unwrap()
    );
    assert_eq!(text.lines().nth(1), Some("xy"));
    assert_eq!(out.status.code(), Some(4));
    // Back through `From`: the settings stay, `kill_on_drop` is gone (as with tokio).
    let mut again = Command::from(std_cmd);
    assert!(!again.get_kill_on_drop());
    let out = overlap::block_on(again.output()).unwrap();
    assert_eq!(out.status.code(), Some(4));
    // A NUL byte: std refuses the spawn itself, without naming the argument.
    let mut nul = Command::new("echo");
    nul.arg("a\0b");
    let err = nul.into_std().spawn().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
}

#[overlap::test]
async fn from_std_takes_a_std_childs_pipes_over_non_blocking() {
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "read line; echo \"out:$line\"; echo \"err:$line\" >&2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = ChildStdin::from_std(child.stdin.take().unwrap()).unwrap();
    let mut output = ChildStdout::from_std(child.stdout.take().unwrap()).unwrap();
    let mut errors = ChildStderr::from_std(child.stderr.take().unwrap()).unwrap();
    for fd in [input.as_raw_fd(), output.as_raw_fd(), errors.as_raw_fd()] {
        assert!(nonblocking(fd), "fd {fd} left blocking");
    }
    let reads = async {
        let (mut out, mut err) = (String::new(), String::new());
        output.read_to_string(&mut out).await.unwrap();
        errors.read_to_string(&mut err).await.unwrap();
        (out, err)
    };
    // The reads wait on the reactor first; the line that lets the child answer comes after.
    let write = async {
        overlap::task::yield_now().await;
        input.write_all(b"hello\n").await.unwrap();
        drop(input);
    };
    let ((out, err), ()) = within(
        Duration::from_secs(30),
        async { overlap::join!(reads, write) },
        "the child's answer",
    )
    .await;
    assert_eq!((out.as_str(), err.as_str()), ("out:hello\n", "err:hello\n"));
    assert!(child.wait().unwrap().success());
}

#[test]
fn from_std_outside_a_runtime_fails_with_other() {
    let mut child = std::process::Command::new("true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let e = ChildStdin::from_std(child.stdin.take().unwrap()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Other, "{e}");
    let e = ChildStdout::from_std(child.stdout.take().unwrap()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Other, "{e}");
    let e = ChildStderr::from_std(child.stderr.take().unwrap()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Other, "{e}");
    assert!(child.wait().unwrap().success());
}
