//! `File` jobs that cannot start (no blocking thread exists and the kernel refuses a new
//! one). A seek fails and leaves the reader where it was: the read-ahead it threw away is
//! still counted, so once threads can start again the next read continues at the reader's
//! position (it used to continue at the fd's offset, 64 KiB further on). A write job is
//! written when dropped, on the loop's thread, and the `File` reports how that went (it used
//! to report the pool's error for bytes that were written, inviting a retry that would write
//! them twice).
//!
//! Thread creation is made to fail with RLIMIT_NPROC, which only binds a non-root user: the
//! test re-executes itself as a child that drops its uid to `nobody` (keeping root as saved
//! uid to come back), so the rest of the suite is untouched.

mod support;

use std::io::SeekFrom;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{no_pool_threads, pattern, without_new_threads, TempDir};

#[test]
fn a_write_that_cannot_start_is_written_and_reported_as_written() {
    if !support::is_root() {
        eprintln!("skipped: needs root to switch to an RLIMIT_NPROC-bound uid");
        return;
    }
    support::run_in_child(
        "a_write_that_cannot_start_is_written_and_reported_as_written",
        write_child,
    );
}

fn write_child() {
    let dir = TempDir::new("write-no-thread");
    let path = dir.join("data");
    let rt = overlap::Runtime::builder()
        .blocking_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    rt.block_on(async {
        let mut file = overlap::fs::File::create(&path).await.unwrap();
        no_pool_threads().await;
        let written = without_new_threads(|| async {
            file.write_all(b"hello").await?;
            file.flush().await
        })
        .await;
        written.expect("the bytes were written (when the job was dropped): no error");
        assert_eq!(std::fs::read(&path).unwrap(), b"hello", "written once");
    });
}

#[test]
fn a_seek_that_cannot_start_does_not_move_the_reader() {
    if !support::is_root() {
        eprintln!("skipped: needs root to switch to an RLIMIT_NPROC-bound uid");
        return;
    }
    support::run_in_child("a_seek_that_cannot_start_does_not_move_the_reader", child);
}

fn child() {
    let dir = TempDir::new("seek-no-thread");
    let path = dir.join("data");
    let data = pattern(512 * 1024);
    std::fs::write(&path, &data).unwrap();
    let rt = overlap::Runtime::builder()
        .blocking_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    rt.block_on(async {
        let mut file = overlap::fs::File::open(&path).await.unwrap();
        let mut head = [0u8; 10];
        file.read_exact(&mut head).await.unwrap();
        assert_eq!(head, data[..10]);
        // Let the read-ahead land and every pool thread expire.
        no_pool_threads().await;
        let seek = without_new_threads(|| file.seek(SeekFrom::Current(0))).await;
        let err = seek.expect_err("the seek job could not have started");
        println!("seek failed as expected: {err}");

        // The seek did not happen; the reader is where it was, at byte 10.
        let mut next = [0u8; 10];
        file.read_exact(&mut next).await.unwrap();
        let found = data.windows(10).position(|w| w == next);
        assert_eq!(
            next,
            data[10..20],
            "after the failed seek, the next read came from offset {found:?}, not 10"
        );
    });
}
