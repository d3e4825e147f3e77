//! `File` turns many small calls into few pool jobs (the `blocking_jobs` metric counts
//! them), and what its read-ahead means for a file another handle changes.

mod support;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt, SeekFrom};
use support::{pattern, TempDir};

/// While a write job is in flight, writes gather in one buffer that the next job carries
/// whole. The pool is held busy while the 10,000 writes run, so the first job cannot finish
/// meanwhile: how many jobs a loop of writes makes on a free pool depends on how fast the
/// pool is next to the loop (each job that finishes lets the next write start one more).
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
        // The first write's job, then one for the other 9,999 writes' bytes; tokio-style
        // one job per write would be 10,000.
        assert_eq!(jobs, 2, "{jobs} jobs for 10,000 writes");
    });
    drop(rt);
    assert!(std::fs::read(&path).unwrap() == data);
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
