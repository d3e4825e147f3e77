//! `io::stdout` on a pipe nobody reads, written through a new handle per line: the bytes
//! accepted and not yet written are bounded (1 MiB plus a chunk, beyond what the pipe
//! holds), a write that finds the queue full waits, and dropping it accepts nothing. Once
//! the pipe is drained, every accepted line arrives, in order, and the waiting writes go on.

mod support;

use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::time::timeout;
use support::{run_with_unread_stdout, tagged_lines, UnreadStdout};

const CHILD_ENV: &str = "OVERLAP_STDIO_BACKPRESSURE_CHILD";

/// The documented bound on a stream's accepted, unwritten bytes, and a write's largest chunk.
const QUEUE_CAP: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// Where the child gives up waiting for writes to stop being accepted: far past the bound.
const LIMIT: usize = 4 * QUEUE_CAP;
/// How long a write must stay pending for the child to take the queue as full. Too short a
/// wait on a busy machine only makes it report fewer accepted bytes, which the bound allows.
const STALL: Duration = Duration::from_millis(300);
/// Lines written after the stall, once the parent drains the pipe.
const AFTER: usize = 10;

fn line(tag: char, i: usize) -> String {
    format!("LINE:{tag}:{i:08}:{}\n", "x".repeat(80))
}

/// Writes `line(tag, i)` through a new `stdout()` handle, flushing it if asked.
async fn write_line(tag: char, i: usize, flush: bool) {
    let mut out = overlap::io::stdout();
    out.write_all(line(tag, i).as_bytes()).await.unwrap();
    if flush {
        out.flush().await.unwrap();
    }
}

/// One writer of the child, on a runtime of its own: lines tagged `tag` until a write stays
/// pending, a report on stderr, then more lines once the parent drains the pipe.
fn writer(tag: char) {
    overlap::block_on(async {
        let mut accepted = 0;
        let mut i = 0;
        let report = loop {
            if accepted > LIMIT {
                break "LIMIT";
            }
            // Dropped on the timeout: a waiting write that accepted nothing.
            if timeout(STALL, write_line(tag, i, false)).await.is_err() {
                break "BLOCKED";
            }
            accepted += line(tag, i).len();
            i += 1;
        };
        // Only once every writer has reported does the parent drain the pipe.
        eprintln!("{report} tag={tag} lines={i} accepted={accepted}");
        // The line whose write was dropped, again, then a few more: each waits for room until
        // the parent reads, and is woken by whichever runtime's pool job makes room.
        let last = i + AFTER;
        for i in i..=last {
            timeout(Duration::from_secs(60), write_line(tag, i, i == last))
                .await
                .expect("a write waiting for room was never woken");
        }
    });
}

fn child(writers: usize) {
    let threads: Vec<_> = (0..writers)
        .map(|n| std::thread::spawn(move || writer((b'a' + n as u8) as char)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Runs the test `name` as a child with `writers` writer threads, its stdout a pipe read
/// only once every writer reported; checks the reports and the lines.
fn run(name: &str, writers: usize) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        return child(writers);
    }
    let UnreadStdout {
        reports,
        stdout: out,
        pipe_size: pipe,
    } = run_with_unread_stdout(name, CHILD_ENV, writers, |l| {
        l.starts_with("BLOCKED") || l.starts_with("LIMIT")
    });

    let mut total = 0;
    for report in &reports {
        let field = |name: &str| -> &str {
            let at = report.find(name).unwrap() + name.len();
            report[at..].split_whitespace().next().unwrap()
        };
        let tag = field("tag=").chars().next().unwrap();
        let lines: usize = field("lines=").parse().unwrap();
        total += field("accepted=").parse::<usize>().unwrap();
        assert!(
            report.starts_with("BLOCKED"),
            "writes to an unread pipe were accepted without bound: {report}"
        );
        // Every accepted line, then the dropped one once (it accepted nothing), then the
        // rest: in order, none lost, none twice.
        let got = tagged_lines(&out, &format!("LINE:{tag}:"));
        assert_eq!(got.len(), lines + AFTER + 1, "{report}");
        for (i, l) in got.iter().enumerate() {
            assert_eq!(format!("{l}\n"), line(tag, i));
        }
    }
    // Whatever the number of writers: at most the cap and one chunk beyond the pipe.
    let bound = pipe + QUEUE_CAP + CHUNK;
    assert!(
        total <= bound,
        "{total} bytes accepted, over {bound}: {reports:?}"
    );
}

#[test]
fn stdout_written_per_line_to_an_unread_pipe_stops_accepting_then_catches_up() {
    run(
        "stdout_written_per_line_to_an_unread_pipe_stops_accepting_then_catches_up",
        1,
    );
}

#[test]
fn writers_on_several_runtimes_share_the_bound_and_wake_each_other() {
    run(
        "writers_on_several_runtimes_share_the_bound_and_wake_each_other",
        3,
    );
}
