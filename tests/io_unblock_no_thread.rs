//! `io::Unblock` jobs that cannot start (no blocking thread exists and the kernel refuses a
//! new one). Each call that needed a job fails with an error saying so, and the value is
//! handed back untouched: the next call, once threads start again, goes on where the
//! reader was, a retried write and close work, and `into_inner` returns the value. Such a
//! job used to take the value with it, and every later call failed ("its value is gone").
//!
//! Thread creation fails under `RLIMIT_NPROC` as uid `nobody` (root only, undone after), or
//! for good under a seccomp filter, each in a child process of its own.

mod support;

use std::io::{Read, SeekFrom};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, Unblock};
use support::{
    no_pool_threads, pattern, run_in_child, watchdog, within, without_new_threads, TempDir,
};

const HANG: Duration = Duration::from_secs(30);

fn assert_no_thread_error<T: std::fmt::Debug>(res: std::io::Result<T>, what: &str) {
    let err = res.expect_err(what);
    assert!(
        err.to_string()
            .contains("could not start a blocking thread"),
        "{what}: {err}"
    );
}

/// A runtime whose idle pool threads expire at once.
fn runtime() -> overlap::Runtime {
    overlap::Runtime::builder()
        .blocking_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap()
}

#[test]
fn jobs_that_cannot_start_hand_the_value_back_for_the_next_call() {
    if !support::is_root() {
        eprintln!("skipped: needs root to switch to an RLIMIT_NPROC-bound uid");
        return;
    }
    run_in_child(
        "jobs_that_cannot_start_hand_the_value_back_for_the_next_call",
        || {
            let done = watchdog(60);
            let dir = TempDir::new("unblock-no-thread");
            runtime().block_on(reads_and_seeks(&dir.join("data")));
            runtime().block_on(writes_and_close(&dir.join("out")));
            done.store(true, Ordering::Relaxed);
        },
    );
}

async fn reads_and_seeks(path: &Path) {
    let data = pattern(100_000);
    std::fs::write(path, &data).unwrap();
    // Chunks of 16: the first read leaves 6 bytes read ahead.
    let mut file = Unblock::with_capacity(16, std::fs::File::open(path).unwrap());
    let mut head = [0u8; 10];
    file.read_exact(&mut head).await.unwrap();
    assert_eq!(head, data[..10]);
    no_pool_threads().await;
    without_new_threads(|| async {
        assert_no_thread_error(within(HANG, file.flush(), "flush").await, "flush");
        let seek = file.seek(SeekFrom::Current(0));
        assert_no_thread_error(within(HANG, seek, "seek").await, "seek");
        // The 6 bytes read ahead are still there (the flush and the seek never ran)...
        let mut six = [0u8; 6];
        file.read_exact(&mut six).await.unwrap();
        assert_eq!(six, data[10..16]);
        // ...and past them, a read needs a job.
        let mut buf = [0u8; 4];
        let read = file.read(&mut buf);
        assert_no_thread_error(within(HANG, read, "read").await, "read");
    })
    .await;
    // Threads start again: the same `Unblock` reads on from byte 16, and seeks.
    let mut next = [0u8; 20];
    within(HANG, file.read_exact(&mut next), "read after")
        .await
        .unwrap();
    assert_eq!(next, data[16..36], "the read after the failures");
    let at = within(HANG, file.seek(SeekFrom::Current(0)), "seek after").await;
    assert_eq!(at.unwrap(), 36);
}

async fn writes_and_close(path: &Path) {
    let mut out = Unblock::new(std::fs::File::create(path).unwrap());
    out.write_all(b"first ").await.unwrap();
    out.flush().await.unwrap();
    no_pool_threads().await;
    without_new_threads(|| async {
        // Accepted, then reported as not written by the next call.
        out.write_all(b"lost").await.unwrap();
        assert_no_thread_error(within(HANG, out.flush(), "flush").await, "write");
        assert_no_thread_error(within(HANG, out.close(), "close").await, "close");
    })
    .await;
    // Retried once threads start again: written once, then closed.
    within(HANG, out.write_all(b"second"), "write after")
        .await
        .unwrap();
    within(HANG, out.close(), "close after").await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), b"first second");
    // Closed for good now.
    let err = within(HANG, out.write_all(b"x"), "write closed").await;
    assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
}

/// With no thread ever again (a seccomp filter): each call reports it, never a lost
/// value, and `into_inner` returns the value where it was.
#[test]
fn into_inner_returns_the_value_a_job_could_not_take() {
    run_in_child("into_inner_returns_the_value_a_job_could_not_take", || {
        let done = watchdog(60);
        let dir = TempDir::new("unblock-no-thread-ever");
        let path = dir.join("data");
        std::fs::write(&path, b"abc").unwrap();
        // A new runtime has no pool thread yet.
        runtime().block_on(async {
            let mut file = Unblock::new(std::fs::File::open(&path).unwrap());
            support::seccomp::deny(&[
                (libc::SYS_clone3, libc::EAGAIN),
                (libc::SYS_clone, libc::EAGAIN),
            ]);
            let mut buf = [0u8; 3];
            for _ in 0..2 {
                let read = file.read(&mut buf);
                assert_no_thread_error(within(HANG, read, "read").await, "read");
            }
            let mut std_file = within(HANG, file.into_inner(), "into_inner")
                .await
                .expect("the value comes back");
            let mut back = String::new();
            std_file.read_to_string(&mut back).unwrap();
            assert_eq!(back, "abc", "read from where it was");
        });
        done.store(true, Ordering::Relaxed);
    });
}

/// A job still queued when its runtime is dropped never runs either: the value comes back
/// under the next runtime, whose first call reports the dropped job and whose next one
/// reads from where the reader was.
#[test]
fn a_job_its_runtime_dropped_unrun_hands_the_value_back() {
    let dir = TempDir::new("unblock-dropped-unrun");
    let path = dir.join("data");
    std::fs::write(&path, b"abc").unwrap();
    let mut file = Unblock::new(std::fs::File::open(&path).unwrap());
    let mut buf = [0u8; 3];
    let (release, held) = std::sync::mpsc::channel::<()>();
    let rt = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        // The only pool thread is busy: the read job waits in the queue.
        let (started, is_started) = std::sync::mpsc::channel();
        let _busy = overlap::spawn_blocking(move || {
            started.send(()).unwrap();
            held.recv()
        });
        is_started.recv().unwrap();
        let read = support::poll_once(file.read(&mut buf)).await;
        assert!(read.is_pending(), "the read job ran: {read:?}");
    });
    drop(rt);
    release.send(()).unwrap();
    runtime().block_on(async {
        let first = within(HANG, file.read(&mut buf), "read").await;
        first.expect_err("the read job was dropped unrun");
        let n = within(HANG, file.read(&mut buf), "read again").await;
        assert_eq!(n.expect("the value came back"), 3);
        assert_eq!(&buf, b"abc");
    });
}
