//! `File` turns many small calls into few pool jobs (the `blocking_jobs` metric counts
//! them).

mod support;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{pattern, TempDir};

#[test]
fn small_writes_are_batched() {
    let dir = TempDir::new("batch-write");
    let path = dir.join("f");
    let data = pattern(100_000);
    overlap::block_on(async {
        let mut file = File::create(&path).await.unwrap();
        let before = overlap::metrics().blocking_jobs;
        for chunk in data.chunks(10) {
            file.write_all(chunk).await.unwrap();
        }
        file.flush().await.unwrap();
        let jobs = overlap::metrics().blocking_jobs - before;
        // 10,000 writes; tokio-style one job per write would be 10,000.
        assert!((1..=100).contains(&jobs), "{jobs} jobs for 10,000 writes");
    });
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
