//! `File` turns many small calls into few pool jobs (the `blocking_jobs` metric counts
//! them), and what its read-ahead means for a file another handle changes.

mod support;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt, SeekFrom};
use std::time::Duration;

use support::{pattern, TempDir};

/// While a write job is in flight, writes gather in one buffer that the job writes after
/// its own bytes. The pool is held busy while the 10,000 writes run, so the first job cannot
/// finish meanwhile: how many jobs a loop of writes makes on a free pool depends on how fast
/// the pool is next to the loop (each job that finishes lets the next write start one more).
#[test]
fn small_writes_are_batched() {
    let dir = TempDir::new("batch-write");
    let path = dir.join("f");
    let data = pattern(100_000);
    let std_file = std::fs::File::create(&path).unwrap();
    let (rt, gate) = support::runtime_with_a_busy_pool();
    rt.block_on(async {
        let mut file = File::from_std(std_file);
        let before = overlap::metrics().blocking_jobs;
        for chunk in data.chunks(10) {
            file.write_all(chunk).await.unwrap();
        }
        gate.wait(); // the pool runs the first write's job now
        file.flush().await.unwrap();
        let jobs = overlap::metrics().blocking_jobs - before;
        // The first write's job writes the other 9,999 writes' bytes too; tokio-style one
        // job per write would be 10,000.
        assert_eq!(jobs, 1, "{jobs} jobs for 10,000 writes");
    });
    drop(rt);
    assert!(std::fs::read(&path).unwrap() == data);
}

/// Bytes accepted while a write job runs go out when it ends, with no further call on the
/// `File`: a log file written to and then left alone is not left holding its last line.
/// The first job writes into a pipe nobody reads yet, so it is surely still running when
/// the second write is accepted; only then does the reader start.
#[test]
fn bytes_accepted_while_a_job_runs_go_out_with_no_further_call() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let head = pattern(200_000); // past the pipe's 64 KiB: the job blocks in it
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let (done, got) = std::sync::mpsc::channel();
    let expected = head.len() + 4;
    let reading = std::thread::spawn(move || {
        wait_for_go.recv().unwrap();
        let mut back = vec![0; expected];
        let res = std::io::Read::read_exact(&mut reader, &mut back).map(|()| back);
        let _ = done.send(res);
    });
    overlap::block_on(async {
        let writer = std::fs::File::from(std::os::fd::OwnedFd::from(writer));
        let mut file = File::from_std(writer);
        file.write_all(&head).await.unwrap();
        file.write_all(b"tail").await.unwrap();
        go.send(()).unwrap();
        // `file` stays open and untouched until every byte has arrived (or 30 s passed).
        let back = overlap::spawn_blocking(move || got.recv_timeout(Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the bytes written while the first job ran never arrived")
            .unwrap();
        assert!(back[..head.len()] == head[..]);
        assert_eq!(&back[head.len()..], b"tail");
        drop(file);
    });
    reading.join().unwrap();
}

#[test]
fn small_reads_are_served_from_read_ahead() {
    let dir = TempDir::new("batch-read");
    let path = dir.join("f");
    let data = pattern(1 << 20);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut file = File::open(&path).await.unwrap();
        let before = overlap::metrics().blocking_jobs;
        let mut back = Vec::new();
        let mut buf = [0; 100];
        loop {
            let n = file.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        let jobs = overlap::metrics().blocking_jobs - before;
        assert!(back == data);
        // 10,486 reads of 100 bytes; chunks start at 64 KiB and grow.
        assert!(
            (1..=20).contains(&jobs),
            "{jobs} jobs for 1 MiB in 100-byte reads"
        );
    });
}

/// Bytes read ahead are the file as it was when they were fetched: a log writer cutting back
/// a torn tail (`set_len`) and appending anew through its own handle is not seen by a reader
/// holding them, as the docs say, until a seek (here to where the reader is) drops them.
#[test]
fn read_ahead_keeps_the_bytes_it_fetched_until_a_seek() {
    let dir = TempDir::new("batch-stale");
    let path = dir.join("log");
    overlap::block_on(async {
        let mut log = overlap::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        log.write_all(b"kepttorn").await.unwrap();
        log.flush().await.unwrap();
        let mut reader = File::open(&path).await.unwrap();
        let mut four = [0u8; 4];
        reader.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"kept");
        log.set_len(4).await.unwrap();
        log.write_all(b"new1new2").await.unwrap();
        log.flush().await.unwrap();
        reader.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"torn", "served from the read-ahead");
        // The reader is at 8 now; a seek there drops the read-ahead and reads the file anew.
        assert_eq!(reader.seek(SeekFrom::Current(0)).await.unwrap(), 8);
        reader.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"new2");
    });
}
