//! Bytes a `write` to `io::stdout`/`io::stderr` accepted reach the stream even if the program
//! never flushes and its runtime ends right after, as with tokio (whose runtime's drop waits
//! for the blocking write): the last line a tokio program prints at the end of `main` must
//! not vanish when it moves over.

mod support;

use std::process::Command;

use overlap::io::AsyncWriteExt;
use support::{poll_once, tagged_lines};

const CHILD_ENV: &str = "OVERLAP_STDIO_UNFLUSHED_CHILD";

/// The child's part: lines to both streams, the last one unflushed as `main` returns.
fn print_and_return() {
    overlap::block_on(async {
        let mut out = overlap::io::stdout();
        let mut err = overlap::io::stderr();
        for i in 0..100 {
            out.write_all(format!("OUT:{i}\n").as_bytes())
                .await
                .unwrap();
        }
        out.write_all(b"OUT:last\n").await.unwrap();
        err.write_all(b"ERR:last\n").await.unwrap();
    });
}

/// The child's part of the second test: one `Stdout` written under three runtimes in turn,
/// each ended right after its write (the second one without waiting for anything).
fn write_across_runtimes() {
    let mut out = overlap::io::stdout();
    overlap::block_on(async { out.write_all(b"OUT:one\n").await.unwrap() });
    let rt = overlap::Runtime::new().unwrap();
    rt.block_on(async { out.write_all(b"OUT:two\n").await.unwrap() });
    rt.shutdown_background();
    overlap::block_on(async {
        out.write_all(b"OUT:three\n").await.unwrap();
        out.flush().await.unwrap();
    });
}

/// Runs the test `name` again as a child that runs its part, and returns the child's stdout
/// and stderr, once it succeeded.
fn run_child(name: &str) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {stderr}");
    (stdout, stderr)
}

#[test]
fn the_last_unflushed_write_reaches_stdout_and_stderr() {
    const NAME: &str = "the_last_unflushed_write_reaches_stdout_and_stderr";
    if std::env::var(CHILD_ENV).as_deref() == Ok(NAME) {
        return print_and_return();
    }
    // A lost line shows up as a race: try several times.
    for round in 0..5 {
        let (stdout, stderr) = run_child(NAME);
        let got = tagged_lines(&stdout, "OUT:");
        assert_eq!(got.len(), 101, "round {round}: {stdout}");
        assert_eq!(got.last(), Some(&"OUT:last"), "round {round}");
        assert!(stderr.contains("ERR:last"), "round {round}: {stderr}");
    }
}

/// A write accepted under a runtime since ended is not reported as failed by the next one
/// (its bytes were written all the same): a retry would print them twice. It used to fail
/// with "standard stream job failed: task was cancelled". The bytes come out once each, in
/// order, also when the earlier runtime's write may still be running as the next one starts.
#[test]
fn a_stdout_outliving_its_runtime_writes_on_under_the_next() {
    const NAME: &str = "a_stdout_outliving_its_runtime_writes_on_under_the_next";
    if std::env::var(CHILD_ENV).as_deref() == Ok(NAME) {
        return write_across_runtimes();
    }
    for round in 0..5 {
        let (stdout, _) = run_child(NAME);
        let got = tagged_lines(&stdout, "OUT:");
        assert_eq!(got, ["OUT:one", "OUT:two", "OUT:three"], "round {round}");
    }
}

/// The child's part of the third test. A thread holds stdout's lock, so the write accepted
/// under the first runtime stays in flight past that runtime; the second runtime's job that
/// would wait for it is queued behind a busy pool thread and dropped unrun with it. The
/// third runtime's flush must still wait for the first write.
fn flush_after_a_dropped_relay() {
    use std::sync::mpsc;
    let (release, hold) = mpsc::channel::<()>();
    let (locked_tx, locked) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        let _lock = std::io::stdout().lock();
        locked_tx.send(()).unwrap();
        let _ = hold.recv();
    });
    locked.recv().unwrap();
    let mut out = overlap::io::stdout();
    let first = overlap::Runtime::new().unwrap();
    first.block_on(async { out.write_all(b"OUT:one\n").await.unwrap() });
    first.shutdown_background();
    let second = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let (unbusy, busy) = mpsc::channel::<()>();
    second.block_on(async {
        drop(overlap::spawn_blocking(move || busy.recv()));
        assert!(poll_once(out.flush()).await.is_pending());
    });
    drop(second);
    overlap::block_on(async {
        let flushed = poll_once(out.flush()).await;
        assert!(
            flushed.is_pending(),
            "flushed before the write: {flushed:?}"
        );
        drop(release);
        out.flush().await.unwrap();
    });
    holder.join().unwrap();
    drop(unbusy);
}

/// A flush under a later runtime waits for a write still in flight from an earlier one, even
/// when the runtime in between, which waited for it too, ended with that wait still queued.
/// It used to return at once, with the bytes not yet written.
#[test]
fn a_flush_waits_for_an_earlier_runtimes_write_past_a_dropped_wait() {
    const NAME: &str = "a_flush_waits_for_an_earlier_runtimes_write_past_a_dropped_wait";
    if std::env::var(CHILD_ENV).as_deref() == Ok(NAME) {
        return flush_after_a_dropped_relay();
    }
    let (stdout, _) = run_child(NAME);
    assert_eq!(tagged_lines(&stdout, "OUT:"), ["OUT:one"]);
}

/// The child's part of the fourth test: a new `stdout()` for each line, as a `println!`
/// stand-in would make, each dropped with its write in flight.
fn a_handle_per_line() {
    overlap::block_on(async {
        for i in 0..LINES {
            let line = format!("OUT:{i}\n");
            overlap::io::stdout()
                .write_all(line.as_bytes())
                .await
                .unwrap();
        }
    });
}

const LINES: usize = 2000;

/// Lines written through one short-lived handle after another come out in the order they
/// were written. Each handle's write was a job of its own, and the pool ran them in any
/// order (a known tokio pitfall, tokio#2978): the lines came out shuffled.
#[test]
fn writes_through_successive_handles_keep_their_order() {
    const NAME: &str = "writes_through_successive_handles_keep_their_order";
    if std::env::var(CHILD_ENV).as_deref() == Ok(NAME) {
        return a_handle_per_line();
    }
    let want: Vec<String> = (0..LINES).map(|i| format!("OUT:{i}")).collect();
    for round in 0..3 {
        let (stdout, _) = run_child(NAME);
        let got = tagged_lines(&stdout, "OUT:");
        assert_eq!(got.len(), LINES, "round {round}");
        let first_wrong = got.iter().zip(&want).position(|(g, w)| g != w);
        assert_eq!(first_wrong, None, "round {round}: out of order");
    }
}
