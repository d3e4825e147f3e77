//! `read_dir` lists every entry, in batches.

mod support;

use std::collections::HashSet;

use futures_util::StreamExt;
use overlap::fs;
use support::TempDir;

#[test]
fn lists_10_000_entries_in_few_jobs() {
    let dir = TempDir::new("readdir-10k");
    for i in 0..10_000 {
        std::fs::write(dir.join(&format!("f{i:05}")), b"").unwrap();
    }
    std::fs::create_dir(dir.join("sub")).unwrap();
    overlap::block_on(async {
        let before = overlap::metrics().blocking_jobs;
        let mut names = HashSet::new();
        let mut dirs = 0;
        let mut entries = fs::read_dir(dir.path()).await.unwrap();
        while let Some(entry) = entries.next().await {
            let entry = entry.unwrap();
            assert_eq!(entry.path(), dir.path().join(entry.file_name()));
            if entry.file_type().await.unwrap().is_dir() {
                dirs += 1;
            }
            assert!(names.insert(entry.file_name()));
        }
        assert_eq!(names.len(), 10_001);
        assert_eq!(dirs, 1);
        for i in 0..10_000 {
            assert!(names.contains(std::ffi::OsStr::new(&format!("f{i:05}"))));
        }
        // One job to open, then batches: far fewer than one job per entry.
        let jobs = overlap::metrics().blocking_jobs - before;
        assert!((2..100).contains(&jobs), "{jobs} jobs for 10,001 entries");
    });
}

#[test]
fn entry_metadata_and_next_entry() {
    let dir = TempDir::new("readdir-meta");
    std::fs::write(dir.join("f"), b"12345").unwrap();
    overlap::block_on(async {
        let mut entries = fs::read_dir(dir.path()).await.unwrap();
        let entry = entries.next_entry().await.unwrap().unwrap();
        assert_eq!(entry.file_name(), "f");
        assert_eq!(entry.metadata().await.unwrap().len(), 5);
        assert!(entries.next_entry().await.unwrap().is_none());
        assert!(entries.next_entry().await.unwrap().is_none());
    });
}

// tokio's `DirEntry::ino` and `ReadDir::poll_next_entry`.
#[overlap::test]
async fn entries_know_their_inode_and_poll_next_entry_ends_with_none() {
    use std::os::unix::fs::MetadataExt;

    let dir = TempDir::new("readdir-ino");
    for name in ["a", "b"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    std::fs::hard_link(dir.join("a"), dir.join("a-too")).unwrap();
    let mut entries = fs::read_dir(dir.path()).await.unwrap();
    let mut seen = Vec::new();
    while let Some(entry) = std::future::poll_fn(|cx| entries.poll_next_entry(cx))
        .await
        .unwrap()
    {
        let ino = std::fs::symlink_metadata(entry.path()).unwrap().ino();
        assert_eq!(entry.ino(), ino, "{:?}", entry.file_name());
        seen.push((entry.file_name().into_string().unwrap(), entry.ino()));
    }
    seen.sort();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].1, seen[1].1,
        "a hard link shares the inode: {seen:?}"
    );
    assert_ne!(seen[0].1, seen[2].1);
    // Ended: it stays ended.
    let again = std::future::poll_fn(|cx| entries.poll_next_entry(cx)).await;
    assert!(again.unwrap().is_none());
}

/// A batch its runtime dropped unrun (the runtime shut down with the fetch still queued)
/// loses no entry: the next call, in another runtime, fetches it again, as a `File`'s read
/// is submitted again. The listing was cut short after an error before.
#[test]
fn a_batch_its_runtime_never_ran_is_fetched_again() {
    let dir = TempDir::new("readdir-never-ran");
    for i in 0..300 {
        std::fs::write(dir.join(&format!("f{i:03}")), b"").unwrap();
    }
    let mut entries = overlap::block_on(fs::read_dir(dir.path())).unwrap();
    let (rt, gate) = support::runtime_with_a_busy_pool();
    rt.block_on(async {
        // Queued behind the busy job: its one pool thread is held.
        let pending = futures_util::poll!(std::pin::pin!(entries.next_entry()));
        assert!(pending.is_pending());
    });
    drop(rt);
    gate.wait(); // the busy job ends; the queued fetch was dropped unrun
    let names = overlap::block_on(async {
        let mut names = HashSet::new();
        while let Some(entry) = entries.next_entry().await.unwrap() {
            assert!(names.insert(entry.file_name()));
        }
        names
    });
    assert_eq!(names.len(), 300);
}
