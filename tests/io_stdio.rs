//! `io::stdin`, `io::stdout`, `io::stderr`: a copy of this test binary, run as a child with
//! piped standard streams, filters its stdin to its stdout through them.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::stream::StreamExt;
use support::tagged_lines;

const CHILD_ENV: &str = "OVERLAP_STDIO_CHILD";

/// The child's part: every line of stdin, upper-cased and tagged, to stdout; a count to
/// stderr.
fn filter() {
    overlap::block_on(async {
        let mut lines = BufReader::new(overlap::io::stdin()).lines();
        let mut out = overlap::io::stdout();
        let mut n = 0;
        while let Some(line) = lines.next().await {
            let line = line.unwrap();
            out.write_all(format!("OUT:{}\n", line.to_uppercase()).as_bytes())
                .await
                .unwrap();
            n += 1;
        }
        out.flush().await.unwrap();
        let mut err = overlap::io::stderr();
        err.write_all(format!("ERR:{n} lines\n").as_bytes())
            .await
            .unwrap();
        err.flush().await.unwrap();
    });
}

#[test]
fn a_child_filters_stdin_to_stdout_through_the_async_standard_streams() {
    const NAME: &str = "a_child_filters_stdin_to_stdout_through_the_async_standard_streams";
    if std::env::var(CHILD_ENV).is_ok() {
        return filter();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // More than one 64 KiB read, and more than a pipe holds, in both directions.
    let input: String = (0..20_000)
        .map(|i| format!("line {i} of input\n"))
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stderr}");
    let got = tagged_lines(&stdout, "OUT:");
    assert_eq!(got.len(), 20_000, "stderr: {stderr}");
    for (i, line) in got.iter().enumerate() {
        assert_eq!(*line, format!("OUT:LINE {i} OF INPUT"));
    }
    assert!(stderr.contains("ERR:20000 lines"), "{stderr}");
}
