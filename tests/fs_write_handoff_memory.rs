//! The memory a `File`'s write hand-offs hold (see `fs_write_handoff`), counted by a
//! counting allocator in a child process, so that no other test allocates meanwhile.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::AsyncWriteExt;
use support::counting::{live, Counting};
use support::{hold_pool, one_thread_pool, pattern, within, TempDir};

#[global_allocator]
static ALLOC: Counting = Counting;

const GUARD: Duration = Duration::from_secs(60);
const MIB: usize = 1 << 20;

/// What a `File` holds for writing stays within `max_buf_size` (2 MiB by default: a job's
/// 1 MiB batch and 1 MiB handed to it), also once it has kept a spare buffer from an
/// earlier job. Counted by the allocator, in a child, so no other test allocates meanwhile.
#[test]
fn hand_offs_hold_no_more_than_max_buf_size() {
    let name = "hand_offs_hold_no_more_than_max_buf_size";
    support::run_in_child(name, || {
        let dir = TempDir::new(name);
        let chunk = pattern(MIB);
        one_thread_pool().block_on(async {
            let mut file = File::from_std(std::fs::File::create(dir.join("f")).unwrap());
            let base = live();
            for round in 0..3 {
                let held = hold_pool();
                assert_eq!(file.write(&chunk).await.unwrap(), MIB, "the job's batch");
                assert_eq!(file.write(&chunk).await.unwrap(), MIB, "handed to it");
                let held_bytes = live().saturating_sub(base);
                assert!(
                    held_bytes < 2 * MIB + MIB / 4,
                    "round {round}: {held_bytes} bytes held for 2 MiB accepted"
                );
                drop(held);
                within(GUARD, file.flush(), "flush").await.unwrap();
            }
        });
    });
}

/// Lowering `max_buf_size` while a job goes on taking hand-offs: the old-size buffer the
/// job gave back for them is let go at the next hand-off, so memory follows the new size
/// without waiting for that job to end. The job writes into a pipe whose reader takes what
/// it is told, so the job is surely between its two batches' swap and its end.
#[test]
fn a_long_running_job_lets_go_of_old_size_buffers() {
    let name = "a_long_running_job_lets_go_of_old_size_buffers";
    support::run_in_child(name, || {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let (read_more, told) = mpsc::channel::<usize>();
        let (has_read, read_done) = mpsc::channel::<()>();
        let reading = std::thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0;
            while let Ok(mut n) = told.recv() {
                while n > 0 {
                    let want = n.min(buf.len());
                    let k = std::io::Read::read(&mut reader, &mut buf[..want]).unwrap();
                    assert!(k > 0, "the pipe ended early");
                    (n, total) = (n - k, total + k);
                }
                has_read.send(()).unwrap();
            }
            total + std::io::copy(&mut reader, &mut std::io::sink()).unwrap() as usize
        });
        let chunk = pattern(MIB);
        one_thread_pool().block_on(async {
            let fd = std::os::fd::OwnedFd::from(writer);
            let mut file = File::from_std(std::fs::File::from(fd));
            assert_eq!(file.write(&chunk).await.unwrap(), MIB, "the job's batch");
            assert_eq!(file.write(&chunk).await.unwrap(), MIB, "handed to it");
            // Past the first batch and the pipe's 64 KiB: the job took the hand-off, giving
            // its emptied 1 MiB buffer back for the next, and blocks in its second batch.
            read_more.send(MIB + 128 * 1024).unwrap();
            read_done.recv().unwrap();
            file.set_max_buf_size(64 * 1024);
            let before = live();
            assert_eq!(file.write(&chunk[..1000]).await.unwrap(), 1000);
            let after = live();
            assert!(
                after + MIB * 7 / 8 < before,
                "{before} bytes live before the hand-off, {after} after"
            );
            drop(read_more);
            within(GUARD, file.flush(), "flush").await.unwrap();
        });
        assert_eq!(reading.join().unwrap(), 2 * MIB + 1000);
    });
}
