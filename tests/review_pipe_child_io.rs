//! A child's pipes and its life, taken apart: stdout that ends while the child runs on, a
//! kill after the child has exited (and after it was reaped), a killed child whose
//! grandchild still holds its stdout (tokio's `kill_on_drop` test), and a child's stdout
//! spliced into a socket.

mod support;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::process::Command;
use support::{gone, within};

const HANG: Duration = Duration::from_secs(10);

/// `sh -c script` with all three stdio piped.
fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The child closes its stdout and goes on reading its stdin: the reader sees the bytes
/// and end of file at once, with the child still running, and the child's stdin still
/// works; then the child ends on its own when stdin closes.
#[test]
fn stdout_ends_while_the_child_runs_on() {
    overlap::block_on(async {
        let mut child = sh("echo early; exec >&-; exec cat >&2").spawn().unwrap();
        let mut out = Vec::new();
        let mut stdout = child.stdout.take().unwrap();
        within(HANG, stdout.read_to_end(&mut out), "stdout never ended")
            .await
            .unwrap();
        assert_eq!(out, b"early\n");
        // End of file again, not a wait.
        let mut more = [0u8; 8];
        assert_eq!(stdout.read(&mut more).await.unwrap(), 0);
        assert!(child.try_wait().unwrap().is_none(), "the child runs on");
        assert!(child.id().is_some());

        // Its stdin still reaches it (echoed on stderr).
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"still here\n").await.unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let mut got = [0u8; 11];
        within(HANG, stderr.read_exact(&mut got), "stderr never echoed")
            .await
            .unwrap();
        assert_eq!(&got, b"still here\n");
        drop(stdin);
        let status = within(HANG, child.wait(), "wait hung").await.unwrap();
        assert!(status.success(), "{status:?}");
        let mut rest = Vec::new();
        stderr.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}

/// A kill after the child exited (not reaped yet) reaps it and reports its own status, not
/// a signal; after the reap, `kill`, `start_kill` and `wait` keep answering with it.
#[test]
fn kill_after_exit_keeps_the_exit_status() {
    overlap::block_on(async {
        let mut child = sh("exec <&-; exit 3").spawn().unwrap();
        let pid = child.id().unwrap();
        // The child has exited once its stdout ends (`exit` closes it) and its zombie is
        // all that is left; wait for the kernel to say so without reaping it.
        let mut out = Vec::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_end(&mut out)
            .await
            .unwrap();
        within(
            HANG,
            async {
                while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap()
                    .contains(") Z ")
                {
                    overlap::time::sleep(Duration::from_millis(5)).await;
                }
            },
            "the child never became a zombie",
        )
        .await;
        within(HANG, child.kill(), "kill of an exited child hung")
            .await
            .unwrap();
        assert_eq!(child.id(), None, "kill reaped it");
        let status = child.try_wait().unwrap().expect("reaped by kill");
        assert_eq!((status.code(), status.signal()), (Some(3), None));
        child.start_kill().unwrap();
        within(HANG, child.kill(), "a second kill hung")
            .await
            .unwrap();
        assert_eq!(child.wait().await.unwrap(), status);
        gone(pid, "the child was not reaped").await;
    });
}

/// tokio's `kill_on_drop`: dropping the `Child` kills it but not the grandchild it started,
/// which holds the stdout pipe: the reader gets the grandchild's line, then end of file
/// once it exits, and never the line the killed child would have written.
#[test]
fn kill_on_drop_leaves_a_grandchild_holding_stdout() {
    overlap::block_on(async {
        // The grandchild says it is there, then waits for our stdin (kept on its fd 3: a
        // background job's own stdin is /dev/null) to close before its last line.
        let script = "exec 3<&0; (echo started; read _ <&3; echo grandchild ran) & \
                      exec sleep 100 3<&-";
        let mut child = sh(script).kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut started = [0u8; 8];
        within(HANG, stdout.read_exact(&mut started), "no grandchild")
            .await
            .unwrap();
        assert_eq!(&started, b"started\n");
        drop(child);
        gone(pid, "kill_on_drop did not kill the child").await;
        drop(stdin);
        let mut msg = String::new();
        within(HANG, stdout.read_to_string(&mut msg), "stdout never ended")
            .await
            .unwrap();
        assert_eq!(msg, "grandchild ran\n");
    });
}

/// A child's stdout spliced into a socket until the child's end of file: every byte, in
/// order, and the splice's 0 only once the child is done writing.
#[test]
fn a_childs_stdout_spliced_into_a_socket() {
    overlap::block_on(async {
        let mut child = sh("head -c 300000 /dev/zero | tr '\\0' x").spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let reader = overlap::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.map(|_| got)
        });
        let mut moved = 0;
        loop {
            let n = within(HANG, stdout.splice_to(&a, 1 << 20), "splice_to hung")
                .await
                .unwrap();
            if n == 0 {
                break;
            }
            moved += n;
        }
        assert_eq!(moved, 300_000);
        a.shutdown(std::net::Shutdown::Write).unwrap();
        let got = reader.await.unwrap().unwrap();
        assert_eq!(got.len(), 300_000);
        assert!(got.iter().all(|&c| c == b'x'));
        assert!(child.wait().await.unwrap().success());
        let err: io::Result<usize> = stdout.splice_to(&a, 1).await;
        assert_eq!(err.unwrap(), 0, "end of file stays");
    });
}
