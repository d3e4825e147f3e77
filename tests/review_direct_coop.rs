//! A loop of small reads served from an `Unblock`'s read-ahead (no job in between) spends
//! the task's cooperative budget, as a `File`'s does, so it cannot keep every other task of
//! its runtime from running until the read-ahead is used up.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use overlap::io::{AsyncReadExt, Unblock};
use support::steps_before_another_task_runs;

#[test]
fn small_reads_from_an_unblocks_read_ahead_let_other_tasks_run() {
    const CHUNK: usize = 1 << 20;
    overlap::block_on(async {
        let data = std::io::Cursor::new(vec![7u8; 2 * CHUNK]);
        let mut first = Unblock::with_capacity(CHUNK, data);
        // One job fetches a whole chunk ahead.
        let mut byte = [0u8; 1];
        assert_eq!(first.read(&mut byte).await.unwrap(), 1);
        let unblock = Rc::new(RefCell::new(Some(first)));
        let steps = steps_before_another_task_runs(100_000, move || {
            let unblock = unblock.clone();
            async move {
                let mut byte = [0u8; 1];
                let mut reader = unblock.borrow_mut().take().unwrap();
                let n = reader.read(&mut byte).await.unwrap();
                *unblock.borrow_mut() = Some(reader);
                n == 1
            }
        })
        .await;
        assert!(steps < 1000, "{steps} reads before another task ran");
    });
}

const CHILD_ENV: &str = "OVERLAP_REVIEW_COOP_CHILD";

/// The child's part: small reads from its stdin's read-ahead, counted until another task
/// runs; the count goes to stdout.
fn count_stdin_reads() {
    overlap::block_on(async {
        let mut first = overlap::io::stdin();
        let mut byte = [0u8; 1];
        // One job fetches a chunk (64 KiB) ahead.
        assert_eq!(first.read(&mut byte).await.unwrap(), 1);
        let stdin = Rc::new(RefCell::new(Some(first)));
        let steps = steps_before_another_task_runs(50_000, move || {
            let stdin = stdin.clone();
            async move {
                let mut byte = [0u8; 1];
                let mut reader = stdin.borrow_mut().take().unwrap();
                let n = reader.read(&mut byte).await.unwrap();
                *stdin.borrow_mut() = Some(reader);
                n == 1
            }
        })
        .await;
        println!("STEPS:{steps}");
    });
}

/// The same for `io::stdin`, whose reads are served from a 64 KiB read-ahead.
#[test]
fn small_reads_from_stdins_read_ahead_let_other_tasks_run() {
    const NAME: &str = "small_reads_from_stdins_read_ahead_let_other_tasks_run";
    if std::env::var(CHILD_ENV).is_ok() {
        return count_stdin_reads();
    }
    let dir = support::TempDir::new("review-coop-stdin");
    let input = dir.join("in");
    std::fs::write(&input, vec![b'x'; 200_000]).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    // The harness prints the test's name on the same line, before it.
    let steps: u64 = stdout
        .split("STEPS:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no count from the child: {stdout}"))
        .parse()
        .unwrap();
    assert!(steps < 1000, "{steps} reads before another task ran");
}
