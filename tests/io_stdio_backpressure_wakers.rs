//! `io::stdout` with a full queue (a pipe nobody reads) and a waker that panics when woken:
//! one waiting for room, or one waiting for its handle's chunk to be written. Once the pipe
//! is drained, the writing goes on: the panic costs neither the chunks queued behind it, nor
//! the other tasks waiting for room, nor the room count. It used to end the pool job that
//! was writing, leaving the rest of the queue unwritten and every later write waiting.

mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use overlap::io::{AsyncWriteExt, Stdout};
use overlap::time::timeout;
use support::{run_with_unread_stdout, tagged_lines};

const CHILD_ENV: &str = "OVERLAP_STDIO_BACKPRESSURE_WAKERS_CHILD";
/// Where the child gives up waiting for writes to stop being accepted: far past the bound.
const LIMIT: usize = 4 * 1024 * 1024;
/// How long a write must stay pending for the child to take the queue as full.
const STALL: Duration = Duration::from_millis(300);
/// Lines written after the panicking waker's turn, once the parent drains the pipe.
const AFTER: usize = 40;

/// Panics when woken: a user's own waker gone wrong.
struct Boom;

impl Wake for Boom {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics when woken");
    }
}

fn boom() -> Waker {
    Waker::from(Arc::new(Boom))
}

fn line(i: usize) -> String {
    format!("LINE:{i:08}:{}\n", "x".repeat(80))
}

/// Writes lines through a handle each (kept, so each has its chunk in flight) until a write
/// stays pending: the queue is full. Returns the handles and how many lines were accepted.
async fn fill() -> (Vec<Stdout>, usize) {
    let mut handles = Vec::new();
    let mut accepted = 0;
    loop {
        assert!(accepted < LIMIT, "writes to an unread pipe never waited");
        let mut out = overlap::io::stdout();
        // Dropped on the timeout: a waiting write that accepted nothing.
        if timeout(STALL, out.write_all(line(handles.len()).as_bytes()))
            .await
            .is_err()
        {
            let n = handles.len();
            return (handles, n);
        }
        accepted += line(0).len();
        handles.push(out);
    }
}

/// Writes lines `from..from + AFTER`, each once room is made, and flushes the last.
async fn write_after(from: usize) {
    for i in from..from + AFTER {
        let mut out = overlap::io::stdout();
        let write = async {
            out.write_all(line(i).as_bytes()).await?;
            if i + 1 == from + AFTER {
                out.flush().await?;
            }
            std::io::Result::Ok(())
        };
        timeout(Duration::from_secs(30), write)
            .await
            .expect("a write waiting for room was never woken")
            .unwrap();
    }
}

fn child(case: &str) {
    overlap::block_on(async {
        let (mut handles, n) = fill().await;
        match case {
            "room" => {
                // A write polled once with the panicking waker, then dropped: its waker stays
                // among those woken when room is made.
                let mut out = overlap::io::stdout();
                let mut write = pin!(out.write(b"never\n"));
                let waker = boom();
                let polled = write.as_mut().poll(&mut Context::from_waker(&waker));
                assert!(polled.is_pending(), "the queue had room");
            }
            _ => {
                // The last accepted chunk's outcome awaited with the panicking waker: woken
                // by the job that writes it, ahead of the lines written below.
                let last = handles.last_mut().expect("a line was accepted");
                let mut flush = pin!(last.flush());
                let waker = boom();
                let polled = flush.as_mut().poll(&mut Context::from_waker(&waker));
                assert!(matches!(polled, Poll::Pending), "the chunk was written");
            }
        }
        eprintln!("BLOCKED lines={n}");
        write_after(n).await;
        drop(handles);
    });
}

/// Runs the test `name` as a child whose stdout is a pipe read only once the child reports
/// its queue full; checks that every line then arrives, in order.
fn run(name: &str, case: &str) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        return child(case);
    }
    let run = run_with_unread_stdout(name, CHILD_ENV, 1, |l| l.starts_with("BLOCKED lines="));
    let lines: usize = run.reports[0]["BLOCKED lines=".len()..]
        .trim()
        .parse()
        .unwrap();
    let out = run.stdout;
    let got = tagged_lines(&out, "LINE:");
    assert_eq!(got.len(), lines + AFTER);
    for (i, l) in got.iter().enumerate() {
        assert_eq!(format!("{l}\n"), line(i));
    }
    assert!(
        !out.contains("never"),
        "a dropped waiting write was written"
    );
}

#[test]
fn a_waker_that_panics_while_waiting_for_room_stops_no_write() {
    run(
        "a_waker_that_panics_while_waiting_for_room_stops_no_write",
        "room",
    );
}

#[test]
fn a_waker_that_panics_on_its_chunks_outcome_stops_no_write() {
    run(
        "a_waker_that_panics_on_its_chunks_outcome_stops_no_write",
        "outcome",
    );
}
