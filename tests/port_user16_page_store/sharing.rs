//! Sharing and cancelling: readers on `try_clone`d handles reading while the writer
//! commits, each read all from one commit; a commit dropped part way.

use std::cell::Cell;
use std::rc::Rc;

use super::index::fsck;
use super::support::{poll_once_then_drop, within, TempDir};
use super::workload::{apply, model_after, run_txn, Op};
use super::{contents, open, HANG};

/// The value every tracked key has after transaction `txid` in the readers' test.
fn tracked(txid: u64, key: usize) -> Vec<u8> {
    let mut v = format!("{key}@{txid}:").into_bytes();
    v.resize(200 + key * 30, b'.');
    v
}

#[overlap::test]
async fn concurrent_readers_see_whole_commits_while_the_writer_commits() {
    let dir = TempDir::new("pages-readers");
    within(
        HANG,
        async {
            const KEYS: usize = 24;
            const COMMITS: u64 = 40;
            let keys: Vec<Vec<u8>> = (0..KEYS).map(|k| format!("t{k}").into_bytes()).collect();
            let mut store = open(dir.path()).await;
            for (k, key) in keys.iter().enumerate() {
                store.put(key, &tracked(1, k)).await.unwrap();
            }
            assert_eq!(store.commit().await.unwrap(), 1);
            let done = Rc::new(Cell::new(false));
            let mut tasks = Vec::new();
            for _ in 0..4 {
                // Each reader on a handle of its own: `read_exact_at` takes `&mut self`.
                let mut reader = store.reader().await.unwrap();
                let (keys, done) = (keys.clone(), done.clone());
                tasks.push(overlap::spawn(async move {
                    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
                    let mut seen = Vec::new();
                    while !done.get() {
                        let (seq, values) = reader.get_many(&refs).await.unwrap();
                        // Every key from the same commit as the header read with them, and
                        // the extra key that commit added, not the one before's.
                        for (k, v) in values.iter().enumerate() {
                            assert_eq!(
                                v.as_deref(),
                                Some(&tracked(seq, k)[..]),
                                "key {k} at {seq}"
                            );
                        }
                        let extra = reader
                            .get_many(&[format!("x{seq}").as_bytes()])
                            .await
                            .unwrap();
                        if extra.0 == seq && seq > 1 {
                            assert!(extra.1[0].is_some(), "x{seq} missing");
                        }
                        assert!(seen.last().is_none_or(|&last| last <= seq), "went back");
                        seen.push(seq);
                    }
                    (seen, reader.pages_read)
                }));
            }
            for txid in 2..=COMMITS {
                for (k, key) in keys.iter().enumerate() {
                    store.put(key, &tracked(txid, k)).await.unwrap();
                }
                store
                    .delete(format!("x{}", txid - 1).as_bytes())
                    .await
                    .unwrap();
                store
                    .put(format!("x{txid}").as_bytes(), b"extra")
                    .await
                    .unwrap();
                assert_eq!(store.commit().await.unwrap(), txid);
                overlap::yield_now().await;
            }
            done.set(true);
            let mut all = std::collections::BTreeSet::new();
            for t in tasks {
                let (seen, pages) = t.await.unwrap();
                assert!(!seen.is_empty() && pages > 0);
                all.extend(seen);
            }
            // The readers ran between the commits, not just before or after them all.
            assert!(all.len() > 2, "the readers saw only {all:?}");
            let header = store.header();
            let found = fsck(&mut store, &header).await.unwrap();
            assert_eq!(found.map.len(), KEYS + 1);
            store.close().await.unwrap();
        },
        "readers",
    )
    .await;
}

#[overlap::test]
async fn a_commit_cancelled_part_way_leaves_the_store_unusable_until_a_reopen() {
    let dir = TempDir::new("pages-cancel");
    within(
        HANG,
        async {
            let mut store = open(dir.path()).await;
            for txid in 1..=3 {
                run_txn(&mut store, txid).await.unwrap();
            }
            // Dropped after its first step: a transaction that needs no new page starts
            // with its log write, whose job then runs on.
            let mut want = model_after(3);
            let key = want.keys().next().unwrap().clone();
            store.put(&key, b"changed").await.unwrap();
            assert!(store.header().page_count == store.committed().page_count);
            poll_once_then_drop(store.commit()).await;
            let err = store.get(&key).await.unwrap_err();
            assert!(
                err.to_string().contains("a commit was cancelled part way"),
                "{err}"
            );
            assert!(store.put(b"k2", b"x").await.is_err());
            assert!(store.commit().await.is_err());
            // Close waits for the job and leaves the log; the record the job wrote is
            // whole, though never synced nor checkpointed: the reopen finds it committed,
            // as it would after a crash, and replays it with the three before it.
            store.close().await.unwrap();
            let mut store = open(dir.path()).await;
            assert_eq!(store.stats.replayed, 4);
            want.insert(key.clone(), b"changed".to_vec());
            assert!(contents(&mut store).await == want);
            assert_eq!(store.committed().seq, 4);

            // Dropped while growing the data file: nothing was logged, and the reopen
            // finds transaction 4 the last.
            let before = store.committed();
            for i in 0..3 {
                store
                    .put(format!("new{i}").as_bytes(), &[9; 900])
                    .await
                    .unwrap();
            }
            assert!(store.header().page_count > before.page_count);
            poll_once_then_drop(store.commit()).await;
            store.close().await.unwrap();
            let mut store = open(dir.path()).await;
            assert_eq!((store.stats.replayed, store.stats.torn_log_bytes), (0, 0));
            assert_eq!(store.committed(), before);
            assert!(contents(&mut store).await == want);
            // And it goes on.
            let mut model = want;
            let ops = vec![Op::Put(key.clone(), b"again".to_vec())];
            apply(&mut model, &ops);
            store.put(&key, b"again").await.unwrap();
            assert_eq!(store.commit().await.unwrap(), 5);
            assert!(contents(&mut store).await == model);
            store.close().await.unwrap();
        },
        "cancellation",
    )
    .await;
}
