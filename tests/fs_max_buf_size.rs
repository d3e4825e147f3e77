//! `File::set_max_buf_size` (tokio's name): the most one pool job reads or writes, lowered
//! and raised, on real files. The `blocking_jobs` metric counts pool jobs.

mod support;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{open_fresh, pattern, TempDir};

const MIB: usize = 1 << 20;

#[test]
fn default_is_2_mib_and_zero_is_taken_as_one() {
    let dir = TempDir::new("maxbuf-default");
    overlap::block_on(async {
        let mut file = File::create(dir.join("f")).await.unwrap();
        assert_eq!(file.max_buf_size(), 2 * MIB);
        file.set_max_buf_size(4096);
        assert_eq!(file.max_buf_size(), 4096);
        let clone = file.try_clone().await.unwrap();
        assert_eq!(
            clone.max_buf_size(),
            4096,
            "a clone keeps the size, as tokio's"
        );
        file.set_max_buf_size(0);
        assert_eq!(file.max_buf_size(), 1);
        // One byte per job still moves every byte.
        let data = pattern(300);
        file.write_all(&data).await.unwrap();
        file.flush().await.unwrap();
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), data);
    });
}

#[test]
fn a_lower_cap_cuts_reads_and_read_ahead() {
    let dir = TempDir::new("maxbuf-read");
    let path = dir.join("f");
    let data = pattern(MIB);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        // A big buffer: one job reads four times the cap.
        let mut file = File::open(&path).await.unwrap();
        file.set_max_buf_size(64 * 1024);
        let mut buf = vec![0u8; MIB];
        let n = file.read(&mut buf).await.unwrap();
        assert_eq!(n, 256 * 1024);
        assert!(buf[..n] == data[..n]);

        // Small reads: the read-ahead never grows past the cap.
        let mut file = File::open(&path).await.unwrap();
        file.set_max_buf_size(4096);
        let before = overlap::metrics().blocking_jobs;
        let mut back = Vec::new();
        let mut small = [0u8; 100];
        while back.len() < 64 * 1024 {
            let n = file.read(&mut small).await.unwrap();
            back.extend_from_slice(&small[..n]);
        }
        let jobs = overlap::metrics().blocking_jobs - before;
        assert!(jobs >= 16, "{jobs} jobs for 64 KiB with at most 4 KiB each");
        assert!(back[..] == data[..back.len()]);
    });
}

#[test]
fn a_higher_cap_reads_more_in_one_job() {
    let dir = TempDir::new("maxbuf-read-big");
    let path = dir.join("f");
    let data = pattern(12 * MIB);
    std::fs::write(&path, &data).unwrap();
    overlap::block_on(async {
        let mut buf = vec![0u8; 12 * MIB];
        let mut file = File::open(&path).await.unwrap();
        assert_eq!(
            file.read(&mut buf).await.unwrap(),
            8 * MIB,
            "default: 4 x 2 MiB"
        );
        let mut file = File::open(&path).await.unwrap();
        file.set_max_buf_size(3 * MIB);
        assert_eq!(file.read(&mut buf).await.unwrap(), 12 * MIB);
        assert!(buf == data);
    });
}

#[overlap::test]
async fn the_cap_bounds_what_one_write_accepts() {
    let dir = TempDir::new("maxbuf-write");
    let data = pattern(100_000);
    let path = dir.join("f");
    let mut file = open_fresh(&path).await;
    file.set_max_buf_size(1000);
    assert_eq!(
        file.write(&data).await.unwrap(),
        500,
        "half the cap per write"
    );
    // Every later write too, whether it starts a job or is handed to the one running.
    let mut at = 500;
    while at < data.len() {
        let n = file.write(&data[at..]).await.unwrap();
        assert!((1..=500).contains(&n), "{n} bytes accepted at {at}");
        at += n;
    }
    file.flush().await.unwrap();
    assert!(std::fs::read(&path).unwrap() == data);

    // Raised: one write accepts half of 8 MiB, where the default takes 1 MiB.
    let big = pattern(6 * MIB);
    let mut file = File::create(dir.join("g")).await.unwrap();
    assert_eq!(file.write(&big).await.unwrap(), MIB);
    let mut file = File::create(dir.join("h")).await.unwrap();
    file.set_max_buf_size(8 * MIB);
    assert_eq!(file.write(&big).await.unwrap(), 4 * MIB);
    file.write_all(&big[4 * MIB..]).await.unwrap();
    file.flush().await.unwrap();
    assert!(std::fs::read(dir.join("h")).unwrap() == big);
}
