//! tokio's child-process patterns, ported name for name: a struct holding a child's
//! `ChildStdin` and the lines of its `ChildStdout`, a line-by-line conversation with a real
//! `cat`, and the child's `ChildStderr` read to the end.

mod support;

use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use overlap::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use overlap::stream::StreamExt;
use support::within;

const HANG: Duration = Duration::from_secs(30);

/// A line-oriented worker process, as a tokio program would keep one.
struct Worker {
    child: Child,
    input: ChildStdin,
    output: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    fn start() -> std::io::Result<Worker> {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let input = child.stdin.take().expect("stdin was piped");
        let output = BufReader::new(child.stdout.take().expect("stdout was piped")).lines();
        Ok(Worker {
            child,
            input,
            output,
        })
    }

    async fn ask(&mut self, question: &str) -> std::io::Result<Option<String>> {
        self.input
            .write_all(format!("{question}\n").as_bytes())
            .await?;
        self.output.next().await.transpose()
    }
}

#[overlap::test]
async fn a_worker_answers_line_by_line() -> std::io::Result<()> {
    let mut worker = Worker::start()?;
    for question in ["one", "two", "three"] {
        let answer = within(HANG, worker.ask(question), "no answer").await?;
        assert_eq!(answer.as_deref(), Some(question));
    }
    let Worker {
        mut child,
        input,
        mut output,
    } = worker;
    drop(input);
    assert!(within(HANG, output.next(), "no end of output")
        .await
        .is_none());
    assert!(within(HANG, child.wait(), "no exit").await?.success());
    Ok(())
}

#[overlap::test]
async fn child_stderr_reads_to_the_end() -> std::io::Result<()> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("echo oops >&2; exit 4")
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr: ChildStderr = child.stderr.take().expect("stderr was piped");
    let mut text = String::new();
    within(HANG, stderr.read_to_string(&mut text), "no end of stderr").await?;
    assert_eq!(text, "oops\n");
    assert_eq!(within(HANG, child.wait(), "no exit").await?.code(), Some(4));
    Ok(())
}
