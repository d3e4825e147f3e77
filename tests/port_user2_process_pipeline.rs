//! A user's process pipeline, sketched as one would for tokio (`Command` with piped stdio,
//! one child's stdout handed to the next as its stdin with `try_into::<Stdio>()`, the
//! input written and stderr read concurrently with `join!`, a failing child's exit code
//! read from its status, a hung child killed after a `timeout`) and then written for
//! overlap's `process::Command`. Every child is `sh -c`.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::process::{Child, ChildStderr, Command};
use overlap::stream::StreamExt;
use overlap::time::timeout;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// All of a child's stderr, read while the rest of the pipeline runs.
async fn collect_stderr(stderr: Option<ChildStderr>) -> io::Result<Vec<String>> {
    let Some(stderr) = stderr else {
        return Ok(Vec::new());
    };
    let mut lines = BufReader::new(stderr).lines();
    let mut got = Vec::new();
    while let Some(line) = lines.next().await {
        got.push(line?);
    }
    Ok(got)
}

/// `input | upper | sort -r`, each stage reporting on stderr how many lines it saw.
async fn run_pipeline(input: &str) -> io::Result<(String, Vec<String>, Vec<String>)> {
    let mut upper = Command::new("sh")
        .args(["-c", "tr a-z A-Z; echo upper done >&2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // tokio: `let stdin: Stdio = upper.stdout.take().unwrap().try_into()?;`; the same
    // conversion here, and its error converts with `?`.
    let middle: Stdio = upper.stdout.take().unwrap().try_into()?;
    let mut sort = Command::new("sh")
        .args(["-c", "sort -r; echo sort done >&2"])
        .stdin(middle)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;

    let mut stdin = upper.stdin.take().unwrap();
    let feed = async move {
        stdin.write_all(input.as_bytes()).await?;
        stdin.close().await // end of input: tokio's `drop(stdin)` or `shutdown()`
    };
    let mut out = String::new();
    let mut sorted = sort.stdout.take().unwrap();
    let read_out = sorted.read_to_string(&mut out);
    let (fed, read, err1, err2) = overlap::join!(
        feed,
        read_out,
        collect_stderr(upper.stderr.take()),
        collect_stderr(sort.stderr.take())
    );
    fed?;
    read?;
    assert!(upper.wait().await?.success());
    assert!(sort.wait().await?.success());
    Ok((out, err1?, err2?))
}

#[overlap::test]
async fn a_two_stage_pipeline_transforms_the_input_and_reports_on_stderr() {
    let (out, err1, err2) = within(HANG, run_pipeline("pear\napple\nfig\n"), "pipeline")
        .await
        .unwrap();
    assert_eq!(out, "PEAR\nFIG\nAPPLE\n");
    assert_eq!(err1, ["upper done"]);
    assert_eq!(err2, ["sort done"]);
}

#[overlap::test]
async fn a_big_input_goes_through_without_deadlocking_on_full_pipes() {
    // More than a pipe holds in each direction: the writer and the reader must overlap.
    let mut input = String::new();
    for n in 0..40_000 {
        input.push_str(&format!("line {n:05}\n"));
    }
    let (out, _, _) = within(HANG, run_pipeline(&input), "big pipeline")
        .await
        .unwrap();
    assert_eq!(out.lines().count(), 40_000);
    assert_eq!(out.lines().next(), Some("LINE 39999"));
    assert_eq!(out.lines().last(), Some("LINE 00000"));
}

#[overlap::test]
async fn a_failing_child_gives_its_exit_code_and_its_stderr() {
    let out = within(
        HANG,
        Command::new("sh")
            .args(["-c", "echo partial; echo 'bad input on line 3' >&2; exit 3"])
            .output(),
        "failing child",
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"partial\n");
    assert_eq!(out.stderr, b"bad input on line 3\n");
}

/// Waits up to `limit` for `child`; a child still running then is killed and reaped.
async fn wait_or_kill(child: &mut Child, limit: Duration) -> io::Result<Option<i32>> {
    match timeout(limit, child.wait()).await {
        Ok(status) => Ok(status?.code()),
        Err(_elapsed) => {
            child.kill().await?;
            Ok(None)
        }
    }
}

#[overlap::test]
async fn a_hung_child_is_killed_on_timeout_and_reaped() {
    let mut child = Command::new("sh")
        .args(["-c", "echo started; exec sleep 60"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    within(HANG, stdout.read_line(&mut first), "first line")
        .await
        .unwrap();
    assert_eq!(first, "started\n");
    let pid = child.id().expect("running");

    let code = within(
        HANG,
        wait_or_kill(&mut child, Duration::from_millis(50)),
        "kill",
    )
    .await
    .unwrap();
    assert_eq!(code, None, "killed, not exited");
    assert_eq!(child.id(), None, "reaped by kill");
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    // The pid is gone: no zombie left behind.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || !is_zombie(pid));
    // Its stdout ends once the process is gone.
    let mut rest = String::new();
    within(HANG, stdout.read_to_string(&mut rest), "rest")
        .await
        .unwrap();
    assert_eq!(rest, "");
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[overlap::test]
async fn a_missing_program_fails_to_spawn_with_not_found() {
    let err = Command::new("/nonexistent/tool").spawn().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

/// A request-reply exchange over any one stream, as written for a `TcpStream`: a line out,
/// a line back.
async fn ask<S>(conn: &mut S, question: &str) -> io::Result<String>
where
    S: overlap::io::AsyncBufRead + overlap::io::AsyncWrite + Unpin,
{
    conn.write_all(format!("{question}\n").as_bytes()).await?;
    conn.flush().await?;
    let mut answer = String::new();
    conn.read_line(&mut answer).await?;
    Ok(answer.trim_end().to_string())
}

#[overlap::test]
async fn a_child_spoken_to_as_one_stream_through_io_join() {
    // tokio 1.41's `io::join(reader, writer)`: the child's stdout and stdin as one
    // read-write value, for code written against a socket.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "while read -r line; do echo \"got $line\"; done; echo bye >&2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut conn = io::join(stdout, child.stdin.take().unwrap());
    assert_eq!(
        within(HANG, ask(&mut conn, "one"), "one").await.unwrap(),
        "got one"
    );
    assert_eq!(
        within(HANG, ask(&mut conn, "two"), "two").await.unwrap(),
        "got two"
    );
    // Closing the joined stream closes the writer: the child sees the end of its input.
    conn.close().await.unwrap();
    let (mut stdout, _stdin) = conn.into_inner();
    let mut rest = String::new();
    within(HANG, stdout.read_to_string(&mut rest), "rest")
        .await
        .unwrap();
    assert_eq!(rest, "");
    let err = collect_stderr(child.stderr.take());
    assert_eq!(within(HANG, err, "stderr").await.unwrap(), ["bye"]);
    assert!(child.wait().await.unwrap().success());
}
