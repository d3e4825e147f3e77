//! A file's write job still queued (not yet started) when its runtime is dropped: its bytes
//! are written off the runtime's thread, and a write that blocks for good cannot hold the
//! drop for ever.

mod support;

use std::os::unix::fs::OpenOptionsExt;
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use overlap::fs::File;
use overlap::io::AsyncWriteExt;
use overlap::Runtime;
use support::{mkfifo, pattern, runtime_with_a_busy_pool, TempDir};

/// Buffers `data` in a `File` over `std`, whose write job then waits in the pool's queue.
fn queue_a_write(rt: &Runtime, std: std::fs::File, data: &[u8]) {
    rt.block_on(async {
        let mut file = File::from_std(std);
        assert_eq!(file.write(data).await.unwrap(), data.len());
        // Dropped unflushed: the queued job holds the bytes.
    });
}

#[test]
fn the_runtime_drop_writes_a_queued_job_and_waits_for_it() {
    let dir = TempDir::new("drop-queued");
    let path = dir.join("f");
    let data = pattern(300_000);
    let (rt, gate) = runtime_with_a_busy_pool();
    queue_a_write(&rt, std::fs::File::create(&path).unwrap(), &data);
    drop(rt);
    // The bytes are in the file when the drop returns, though the pool never ran the job.
    assert_eq!(std::fs::read(&path).unwrap(), data);
    gate.wait();
}

#[test]
fn a_queued_write_blocked_for_good_does_not_hold_the_shutdown_past_its_timeout() {
    let dir = TempDir::new("drop-queued-fifo");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    // A reader that never reads: more than the pipe holds blocks the write for good.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let (done_tx, done) = mpsc::channel();
    let shutdown = std::thread::spawn(move || {
        let (rt, gate) = runtime_with_a_busy_pool();
        queue_a_write(&rt, writer, &pattern(1 << 20));
        rt.shutdown_timeout(Duration::from_millis(50));
        done_tx.send(()).unwrap();
        gate.wait(); // lets the pool's job end
    });
    // Generous: the shutdown waits 50 ms; before the fix it wrote on its own thread, for
    // ever.
    let finished = done.recv_timeout(Duration::from_secs(60));
    // Let the write fail (EPIPE) so its thread ends, whatever happened.
    drop(reader);
    assert!(finished.is_ok(), "the runtime's shutdown hung in the write");
    shutdown.join().unwrap();
}

#[test]
fn a_file_dropped_while_the_pool_is_busy_starts_no_thread_past_its_limit() {
    let dir = TempDir::new("drop-busy");
    let path = dir.join("f");
    let (rt, gate) = runtime_with_a_busy_pool();
    let std = std::fs::File::create(&path).unwrap();
    let (busy_again, second_gate) = (mpsc::channel(), Arc::new(Barrier::new(2)));
    let g = second_gate.clone();
    rt.block_on(async move {
        let mut file = File::from_std(std);
        file.write_all(b"abc").await.unwrap(); // its job waits for the busy thread
        file.write_all(b"def").await.unwrap(); // buffered behind that job
        let started = busy_again.0;
        let held = overlap::spawn_blocking(move || {
            started.send(()).unwrap();
            g.wait();
        });
        gate.wait(); // the pool's thread writes "abc", then runs `held`
        busy_again.1.recv().unwrap();
        // Dropped with "def" buffered and no job in flight: a clean-up job takes it, and
        // waits for the busy thread as any job does while the runtime runs. A thread
        // started past `max_blocking_threads(1)` would go on to serve `spawn_blocking` work.
        drop(file);
        drop(held);
    });
    assert_eq!(rt.metrics().blocking_threads, 1);
    // The shutdown drops the queued clean-up job, which is queued again and run on a
    // thread of its own, while the held job still holds the pool's thread.
    drop(rt);
    assert_eq!(std::fs::read(path).unwrap(), b"abcdef");
    second_gate.wait();
}
