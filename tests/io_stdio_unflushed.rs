//! Bytes a `write` to `io::stdout`/`io::stderr` accepted reach the stream even if the program
//! never flushes and its runtime ends right after, as with tokio (whose runtime's drop waits
//! for the blocking write): the last line a tokio program prints at the end of `main` must
//! not vanish when it moves over.

mod support;

use std::process::Command;

use overlap::io::AsyncWriteExt;
use support::tagged_lines;

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

#[test]
fn the_last_unflushed_write_reaches_stdout_and_stderr() {
    const NAME: &str = "the_last_unflushed_write_reaches_stdout_and_stderr";
    if std::env::var(CHILD_ENV).is_ok() {
        return print_and_return();
    }
    // A lost line shows up as a race: try several times.
    for round in 0..5 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {stderr}");
        let got = tagged_lines(&stdout, "OUT:");
        assert_eq!(got.len(), 101, "round {round}: {stdout}");
        assert_eq!(got.last(), Some(&"OUT:last"), "round {round}");
        assert!(stderr.contains("ERR:last"), "round {round}: {stderr}");
    }
}
