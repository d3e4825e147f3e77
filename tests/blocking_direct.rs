//! overlap's own pool jobs (files, `Unblock`) hand their results straight to whoever awaits
//! them: an operation left in flight under one runtime finishes under another on the same
//! thread while the first one lives on undriven, and file I/O works inside a blocking job.

mod support;

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt, Unblock};
use support::{poll_once, within, TempDir};

const LIMIT: Duration = Duration::from_secs(10);

/// Writes through what `open` makes and starts a `flush` under one runtime, dropping it
/// while its job is on the pool; then flushes again under a second runtime, the first one
/// still alive and never driven again. Every byte must reach the file.
fn flush_left_under_one_runtime_finishes_under_another<W, Fut>(
    name: &str,
    open: impl FnOnce(std::path::PathBuf) -> Fut,
) where
    W: overlap::io::AsyncWrite + Unpin,
    Fut: std::future::Future<Output = W>,
{
    let dir = TempDir::new(name);
    let path = dir.join("out");
    let first = overlap::Runtime::new().unwrap();
    let mut out = first.block_on(async {
        let mut out = open(path.clone()).await;
        out.write_all(&[7u8; 100_000]).await.unwrap();
        let flushing = pin!(out.flush());
        assert!(
            poll_once(flushing).await.is_pending(),
            "the write job runs on the pool"
        );
        out
    });
    let second = overlap::Runtime::new().unwrap();
    second.block_on(within(
        LIMIT,
        async { out.flush().await.unwrap() },
        "the first runtime's job never reached the second",
    ));
    assert_eq!(std::fs::read(&path).unwrap(), vec![7u8; 100_000]);
    drop(first);
}

#[test]
fn a_file_flush_left_under_one_runtime_finishes_under_another() {
    flush_left_under_one_runtime_finishes_under_another("direct-file", |path| async move {
        File::create(path).await.unwrap()
    });
}

#[test]
fn an_unblock_write_left_under_one_runtime_finishes_under_another() {
    flush_left_under_one_runtime_finishes_under_another("direct-unblock", |path| async move {
        Unblock::new(std::fs::File::create(path).unwrap())
    });
}

#[test]
fn a_read_left_pending_under_one_runtime_is_not_lost_under_another() {
    let dir = TempDir::new("direct-read");
    let path = dir.join("in");
    std::fs::write(&path, b"abcdef").unwrap();
    let first = overlap::Runtime::new().unwrap();
    let mut file = first.block_on(File::open(&path)).unwrap();
    let mut buf = [0u8; 3];
    first.block_on(async {
        let read = pin!(file.read(&mut buf));
        assert!(matches!(poll_once(read).await, Poll::Pending));
    });
    let second = overlap::Runtime::new().unwrap();
    let rest = second.block_on(within(
        LIMIT,
        async {
            let mut rest = Vec::new();
            file.read_to_end(&mut rest).await.unwrap();
            rest
        },
        "the first runtime's read job never reached the second",
    ));
    // The dropped read's bytes are kept by the file (or never read): nothing is lost.
    assert_eq!(rest, b"abcdef");
    drop(first);
}

#[test]
fn file_io_works_inside_a_blocking_job() {
    let dir = TempDir::new("direct-in-job");
    let path = dir.join("f");
    overlap::block_on(async move {
        let got = overlap::spawn_blocking(move || {
            overlap::Handle::current().block_on(async {
                overlap::fs::write(&path, b"from the pool").await?;
                overlap::fs::read(&path).await
            })
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(got, b"from the pool");
    });
}

#[test]
fn file_jobs_go_to_the_pool_with_no_task_relaying_them() {
    let dir = TempDir::new("direct-no-relay");
    let path = dir.join("f");
    overlap::block_on(async move {
        let before = overlap::metrics();
        overlap::fs::write(&path, b"one job").await.unwrap();
        assert_eq!(overlap::fs::read(&path).await.unwrap(), b"one job");
        let after = overlap::metrics();
        assert_eq!(
            after.blocking_jobs - before.blocking_jobs,
            2,
            "one job each"
        );
        assert_eq!(after.tasks_spawned, before.tasks_spawned, "no relay task");
        // A user's `spawn_blocking` counts too.
        overlap::spawn_blocking(|| ()).await.unwrap();
        assert_eq!(overlap::metrics().blocking_jobs - after.blocking_jobs, 1);
    });
}

/// Polled in the very poll that started it, one of overlap's own pool jobs waits even when
/// it is done by then: an operation dropped after that poll leaves the result to its owner
/// on a loaded machine as on an idle one. It wakes itself, so nothing stalls.
#[test]
fn the_poll_that_starts_an_io_job_waits_even_when_the_job_is_done() {
    let rt = overlap::Runtime::new().unwrap();
    let _guard = rt.enter();
    // No loop poll starts in between: to the handle, this is the poll that made it.
    let mut job = overlap_runtime::spawn_blocking_or_error(|| 5);
    while !job.is_finished() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let task = support::ManualTask::default();
    assert!(task.poll(pin!(&mut job)).is_pending());
    assert!(task.is_woken(), "done: it asks to be polled again");
    match task.poll(pin!(&mut job)) {
        Poll::Ready(out) => assert_eq!(out.unwrap().unwrap(), 5),
        Poll::Pending => panic!("the second poll returns the output"),
    }
}

/// Polled first in a later poll (a `File`'s next write looking at the job the previous
/// write started), a finished job's handle gives its output at once.
#[test]
fn an_io_job_first_polled_in_a_later_poll_gives_its_output_at_once() {
    overlap::block_on(async {
        let mut job = overlap_runtime::spawn_blocking_or_error(|| 5);
        // At least one wait, so the handle is first polled in a later poll than its own,
        // even when the job is done at once.
        loop {
            overlap::time::sleep(Duration::from_millis(1)).await;
            if job.is_finished() {
                break;
            }
        }
        let task = support::ManualTask::default();
        match task.poll(pin!(&mut job)) {
            Poll::Ready(out) => assert_eq!(out.unwrap().unwrap(), 5),
            Poll::Pending => panic!("a finished job's output waited"),
        }
    });
}
