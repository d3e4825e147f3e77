//! No accepted byte is lost when a `File` is dropped without `flush`; cancelled operations
//! finish in the background.

mod support;

use std::time::Duration;

use overlap::fs::{self, File};
use overlap::io::AsyncWriteExt;
use support::{pattern, wait_until, SlowFifo, TempDir};

/// Waits (generously) for background jobs to put `len` bytes in `path`.
fn wait_for_len(path: &std::path::Path, len: u64) -> bool {
    wait_until(Duration::from_secs(10), || {
        std::fs::metadata(path).map(|m| m.len()).ok() == Some(len)
    })
}

#[test]
fn drop_mid_write_keeps_every_accepted_byte() {
    let dir = TempDir::new("drop-mid");
    let path = dir.join("f");
    let data = pattern(5 * 1024 * 1024 + 333);
    let accepted = overlap::block_on(async {
        let mut file = File::create(&path).await.unwrap();
        let mut off = 0;
        // Many small writes: some go out in jobs, some are still buffered at the drop.
        while off < data.len() {
            let end = (off + 10_007).min(data.len());
            off += file.write(&data[off..end]).await.unwrap();
        }
        drop(file);
        // Keep the runtime (and its pool) alive while the background jobs finish.
        overlap::time::sleep(Duration::from_millis(20)).await;
        off
    });
    assert_eq!(accepted, data.len());
    assert!(wait_for_len(&path, data.len() as u64));
    assert!(std::fs::read(&path).unwrap() == data);
}

#[test]
fn drop_right_after_a_write_with_a_job_in_flight() {
    let dir = TempDir::new("drop-inflight");
    let path = dir.join("f");
    overlap::block_on(async {
        let mut file = File::create(&path).await.unwrap();
        file.write_all(&[b'a'; 1000]).await.unwrap(); // goes to a job at once
        file.write_all(&[b'b'; 1000]).await.unwrap(); // buffered behind it
        drop(file);
        overlap::time::sleep(Duration::from_millis(20)).await;
    });
    assert!(wait_for_len(&path, 2000));
    let back = std::fs::read(&path).unwrap();
    assert!(back[..1000].iter().all(|&b| b == b'a') && back[1000..].iter().all(|&b| b == b'b'));
}

/// A `File` taken out of its runtime and dropped later still writes its bytes (on the
/// dropping thread, as there is no pool to use).
#[test]
fn drop_outside_the_runtime() {
    let dir = TempDir::new("drop-outside");
    let path = dir.join("f");
    let file = overlap::block_on(async {
        let mut file = File::create(&path).await.unwrap();
        file.write_all(b"first").await.unwrap();
        file.write_all(b" second").await.unwrap();
        file
    });
    drop(file);
    assert!(wait_for_len(&path, 12));
    assert_eq!(std::fs::read(&path).unwrap(), b"first second");
}

/// Cancelling a whole-file write still writes the file: the job runs to the end.
#[test]
fn cancelled_write_future_finishes_in_the_background() {
    let dir = TempDir::new("drop-cancel");
    let path = dir.join("f");
    let data = pattern(1 << 20);
    overlap::block_on(async {
        let mut fut = Box::pin(fs::write(&path, data.clone()));
        // Poll once so the job is queued, then drop the future.
        let _ = futures_util::poll!(fut.as_mut());
        drop(fut);
        // Keep the runtime alive until the job is done: a runtime that is dropped drops jobs
        // still queued (documented), which is not what this test is about.
        let start = std::time::Instant::now();
        while std::fs::metadata(&path).map_or(0, |m| m.len()) < data.len() as u64
            && start.elapsed() < Duration::from_secs(10)
        {
            overlap::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(wait_for_len(&path, data.len() as u64));
    assert!(std::fs::read(&path).unwrap() == data);
}

/// Bytes accepted while a write job waits in the pool's queue are handed to that job; if
/// the runtime is dropped with the job still queued, the job's destructor writes its own
/// bytes and the handed ones, in order, on the thread dropping the runtime.
#[test]
fn bytes_of_a_dropped_file_survive_the_runtime_going_first() {
    let dir = TempDir::new("drop-shutdown");
    let path = dir.join("f");
    let rt = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    rt.block_on(async {
        let mut f = File::create(&path).await.unwrap();
        // The pool's only thread is kept busy: the write job below waits in the queue.
        drop(overlap::spawn_blocking(move || blocked.recv()));
        f.write_all(b"first ").await.unwrap(); // a write job, queued
        f.write_all(b"second").await.unwrap(); // handed to that job
        drop(f);
    });
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "nothing ran yet"
    );
    drop(rt);
    let got = std::fs::read(&path).unwrap();
    let _ = release.send(()); // the blocker may have been dropped unrun with the runtime
    assert_eq!(String::from_utf8_lossy(&got), "first second");
}

/// A `File` dropped without `flush` as its runtime ends (the end of an `#[overlap::main]`
/// function, or an early `?` return from it): the runtime's drop waits for the write job
/// still running, so every accepted byte has been written once `block_on` returns, before
/// the process could exit. The file is a FIFO drained slowly by a thread, so the last job
/// is still blocked in `write` when the runtime is dropped.
#[test]
fn the_runtime_drop_waits_for_a_running_write_job() {
    // More than the write buffer holds (1 MiB): a job is running when the `File` drops.
    const TOTAL: usize = (1 << 20) + 4096;
    let dir = TempDir::new("drop-at-exit");
    let (fifo, writer) = SlowFifo::open(&dir);
    overlap::block_on(async {
        let mut file = File::from_std(writer);
        file.write_all(&pattern(TOTAL)).await.unwrap();
        // Dropped here, unflushed, with the runtime.
    });
    // This is where `main` would return: every byte must have left the process.
    fifo.assert_all_left(TOTAL);
}
