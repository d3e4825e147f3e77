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
        let before = overlap::metrics().tasks_spawned;
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
        let jobs = overlap::metrics().tasks_spawned - before;
        assert!(jobs < 100, "{jobs} jobs for 10,001 entries");
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
