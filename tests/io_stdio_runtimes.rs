//! `io::stdin` under two runtimes in turn: a read cancelled when the first one's `block_on`
//! ends (a timeout) hands its bytes to the next read, under the second, with no error.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use support::poll_once;

const CHILD_ENV: &str = "OVERLAP_STDIN_RUNTIMES_CHILD";
const NAME: &str = "a_read_cancelled_with_its_runtime_hands_its_bytes_to_the_next_runtime";

fn child() {
    let mut stdin = overlap::io::stdin();
    let mut buf = [0u8; 100];
    let first = overlap::block_on(async {
        overlap::time::timeout(Duration::from_millis(50), stdin.read(&mut buf)).await
    });
    assert!(first.is_err(), "no input yet: the read times out");
    // The parent sends the input only now.
    eprintln!("READY");
    let got = overlap::block_on(async {
        let mut got = Vec::new();
        loop {
            let n = stdin
                .read(&mut buf)
                .await
                .expect("no error for the cancelled read");
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    });
    eprintln!("GOT {:?}", String::from_utf8_lossy(&got));
}

#[test]
fn a_read_cancelled_with_its_runtime_hands_its_bytes_to_the_next_runtime() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("1") {
        return child();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The input goes once the first read has timed out, and not after a fixed pause: a
    // child slow to start (exec, libtest) could otherwise find it there at its first read.
    let mut errors = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = stderr_until_ready(&mut errors);
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"hello\n").unwrap();
    drop(input);
    std::io::Read::read_to_string(&mut errors, &mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {seen}");
    assert!(seen.contains("GOT \"hello\\n\""), "{seen}");
}

const RELAY_NAME: &str = "a_read_in_flight_reaches_a_runtime_after_one_that_ended_waiting";

/// The child's part of the second test: a read started under a first runtime (its job taken
/// by a pool thread, blocked in `read`), waited for under a second whose only pool thread is
/// busy (so its job that would wait is queued, and dropped unrun with it), then read under
/// a third.
fn child_past_a_dropped_wait() {
    let mut stdin = overlap::io::stdin();
    let mut buf = [0u8; 100];
    let first = overlap::Runtime::new().unwrap();
    first.block_on(async {
        assert!(poll_once(stdin.read(&mut buf)).await.is_pending());
        let m = overlap::metrics;
        while m().blocking_threads == 0 || m().blocking_queued > 0 {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    });
    first.shutdown_background();
    let second = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let (unbusy, busy) = std::sync::mpsc::channel::<()>();
    second.block_on(async {
        drop(overlap::spawn_blocking(move || busy.recv()));
        assert!(poll_once(stdin.read(&mut buf)).await.is_pending());
    });
    drop(second);
    eprintln!("READY");
    let mut got = String::new();
    overlap::block_on(stdin.read_to_string(&mut got)).unwrap();
    eprintln!("GOT {got:?}");
    drop(unbusy);
}

/// The bytes the first runtime's read takes in reach the third runtime's read, although the
/// second runtime ended with its wait for that read still queued. They used to be lost (the
/// dropped wait held the only way to them), and a second read started beside the first.
#[test]
fn a_read_in_flight_reaches_a_runtime_after_one_that_ended_waiting() {
    if std::env::var(CHILD_ENV).as_deref() == Ok(RELAY_NAME) {
        return child_past_a_dropped_wait();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([RELAY_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, RELAY_NAME)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut errors = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = stderr_until_ready(&mut errors);
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"hello\n").unwrap();
    drop(input);
    std::io::Read::read_to_string(&mut errors, &mut seen).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {seen}");
    assert!(seen.contains("GOT \"hello\\n\""), "{seen}");
}

/// The child's stderr up to and including its `READY` line (or all of it, if it ends first).
fn stderr_until_ready(errors: &mut impl std::io::BufRead) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = errors.read_line(&mut line).unwrap();
        seen.push_str(&line);
        if n == 0 || line.starts_with("READY") {
            return seen;
        }
    }
}
