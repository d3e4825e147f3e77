//! `File` turns many small calls into few pool jobs (each job is one spawned task, so
//! `tasks_spawned` counts them).

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
        let before = overlap::metrics().tasks_spawned;
        for chunk in data.chunks(10) {
            file.write_all(chunk).await.unwrap();
        }
        file.flush().await.unwrap();
        let jobs = overlap::metrics().tasks_spawned - before;
        // 10,000 writes; tokio-style one job per write would be 10,000.
        assert!(jobs <= 100, "{jobs} jobs for 10,000 writes");
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
        let before = overlap::metrics().tasks_spawned;
        let mut back = Vec::new();
        let mut buf = [0; 100];
        loop {
            let n = file.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        let jobs = overlap::metrics().tasks_spawned - before;
        assert!(back == data);
        // 10,486 reads of 100 bytes; chunks start at 64 KiB and grow.
        assert!(jobs <= 20, "{jobs} jobs for 1 MiB in 100-byte reads");
    });
}
