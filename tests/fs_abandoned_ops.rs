//! Operations on a `File` whose futures were dropped before they completed: their jobs
//! finish in the background, before whatever the `File` does next (a truncation too), a
//! seek asked for again counts twice, and a read job its runtime never ran does not fail a
//! read made later in another runtime. Also a `File` on a FIFO, which cannot seek.

mod support;

use std::io::{ErrorKind, Read, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use overlap::fs::{File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{mkfifo, pattern, poll_once_then_drop, runtime_with_a_busy_pool, TempDir};

#[test]
fn a_dropped_set_len_lands_before_the_next_write() {
    let dir = TempDir::new("abandoned-set-len");
    let path = dir.join("f");
    let data = pattern(256 * 1024);
    // Busy cores make a pool job that runs out of order likely, where one can.
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    let mut expected = data[..5].to_vec();
    expected.extend_from_slice(b"\0\0\0\0\0XYZ");
    let wrong = overlap::block_on(async {
        let mut wrong = Vec::new();
        for i in 0..400 {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
                .unwrap();
            f.write_all(&data).await.unwrap();
            f.seek(SeekFrom::Start(0)).await.unwrap();
            let mut head = [0u8; 10];
            f.read_exact(&mut head).await.unwrap(); // fetches 64 KiB ahead
            poll_once_then_drop(f.set_len(5)).await;
            f.write_all(b"XYZ").await.unwrap(); // at the reader's position, 10
            f.flush().await.unwrap();
            drop(f);
            let back = std::fs::read(&path).unwrap();
            if back != expected {
                wrong.push((i, back.len()));
            }
        }
        wrong
    });
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    assert!(wrong.is_empty(), "(iteration, length) wrong: {wrong:?}");
}

#[test]
fn a_seek_dropped_and_asked_again_counts_twice() {
    let dir = TempDir::new("abandoned-seek");
    let path = dir.join("f");
    std::fs::write(&path, pattern(1000)).unwrap();
    overlap::block_on(async {
        let mut f = File::open(&path).await.unwrap();
        poll_once_then_drop(f.seek(SeekFrom::Current(100))).await;
        assert_eq!(f.seek(SeekFrom::Current(100)).await.unwrap(), 200);
        let mut b = [0u8; 4];
        f.read_exact(&mut b).await.unwrap();
        assert_eq!(b, pattern(1000)[200..204]);
    });
}

#[test]
fn a_read_its_runtime_never_ran_does_not_fail_the_next_read() {
    let dir = TempDir::new("abandoned-read");
    let path = dir.join("f");
    let data = pattern(256 * 1024);
    std::fs::write(&path, &data).unwrap();
    for _ in 0..20 {
        let mut f = overlap::block_on(File::open(&path)).unwrap();
        // The runtime shuts down with the read job still queued (its one pool thread busy).
        let (rt, gate) = runtime_with_a_busy_pool();
        rt.block_on(poll_once_then_drop(f.read(&mut [0u8; 10])));
        drop(rt);
        gate.wait(); // the busy job ends; the queued read was dropped unrun
        let mut b = [0u8; 10];
        let n = overlap::block_on(f.read(&mut b)).unwrap();
        assert!(n > 0);
        assert_eq!(b[..n], data[..n]);
    }
}

#[test]
fn a_file_on_a_fifo_writes_after_a_read_and_loses_no_byte() {
    let dir = TempDir::new("fifo-file");
    let path = dir.join("fifo");
    mkfifo(&path);
    overlap::block_on(async {
        // Read-write, so opening does not wait for a peer.
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .await
            .unwrap();
        let mut peer = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        f.write_all(b"0123456789").await.unwrap();
        f.flush().await.unwrap();
        let mut b = [0u8; 4];
        f.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"0123");
        // No read-ahead was taken, and the write needs no seek.
        f.write_all(b"abc").await.unwrap();
        f.flush().await.unwrap();
        let mut rest = [0u8; 64];
        let n = peer.read(&mut rest).unwrap();
        assert_eq!(&rest[..n], b"456789abc");
        // A seek says why it cannot.
        let err = f.seek(SeekFrom::Start(0)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotSeekable, "{err}");
        // The bytes it held are still there for the next read.
        f.write_all(b"!").await.unwrap();
        let mut one = [0u8; 1];
        f.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"!");
    });
}

#[test]
fn a_seek_and_a_truncation_dropped_with_their_runtime_still_take_effect() {
    let dir = TempDir::new("never-ran-seek");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let mut f = overlap::block_on(OpenOptions::new().read(true).write(true).open(&path)).unwrap();

    let (rt, gate) = runtime_with_a_busy_pool();
    rt.block_on(poll_once_then_drop(f.seek(SeekFrom::Start(5))));
    drop(rt); // the seek job never ran
    gate.wait();
    let mut five = [0u8; 5];
    overlap::block_on(f.read_exact(&mut five)).unwrap();
    assert_eq!(&five, b"56789");

    overlap::block_on(f.seek(SeekFrom::Start(1))).unwrap();
    let (rt, gate) = runtime_with_a_busy_pool();
    rt.block_on(poll_once_then_drop(f.set_len(3)));
    drop(rt); // the truncation never ran
    gate.wait();
    overlap::block_on(async {
        f.write_all(b"X").await?;
        f.flush().await
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0X2");
}

/// A job already running when its runtime is dropped runs on and its effects happen; the
/// future, awaited in another runtime, gets the job's own result (it went straight to the
/// future, not through a task of the dropped runtime).
#[test]
fn a_job_running_when_its_runtime_goes_still_reports_its_result() {
    let dir = TempDir::new("abandon-running");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let rt = overlap::Runtime::new().unwrap();
    // Its pool thread blocks in open() until the FIFO gets a reader.
    let mut write = Box::pin(overlap::fs::write(fifo.clone(), b"written after all"));
    rt.block_on(async {
        assert!(futures_util::poll!(write.as_mut()).is_pending());
        while overlap::metrics().blocking_queued > 0 || overlap::metrics().blocking_threads == 0 {
            overlap::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // Taken off the queue: the job claims itself as it starts, right after; 100 ms
        // leaves ample time for that, even on a loaded machine.
        overlap::time::sleep(std::time::Duration::from_millis(100)).await;
    });
    drop(rt);
    let reader = std::thread::spawn(move || std::fs::read(&fifo).unwrap());
    overlap::Runtime::new()
        .unwrap()
        .block_on(write)
        .expect("the write ran, and says so");
    assert_eq!(reader.join().unwrap(), b"written after all");
}
