//! Writes the kernel refuses, in child processes with `RLIMIT_FSIZE` lowered (`SIGXFSZ`
//! ignored, so a write past it fails with `EFBIG`): growing the data file, appending to
//! the log, and checkpointing; and a whole run's fds and tasks.

use std::io::ErrorKind;
use std::path::Path;

use super::index::fsck;
use super::page::PAGE;
use super::pager::{Options, PageStore, DATA, LOG};
use super::support::{open_fds, run_in_child, set_soft_limit, until, within, TempDir};
use super::workload::{apply, Model, Op};
use super::HANG;

/// Ignores `SIGXFSZ` and sets the soft file size limit to `soft` bytes.
fn set_fsize(soft: libc::rlim_t) {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    set_soft_limit(libc::RLIMIT_FSIZE, soft);
}

fn key(i: usize) -> Vec<u8> {
    format!("key{i}").into_bytes()
}

fn value(i: usize, round: usize) -> Vec<u8> {
    let mut v = format!("{i}/{round}:").into_bytes();
    v.resize(900, b'0' + (round % 10) as u8);
    v
}

/// Puts `ops` and commits; on success the model takes them.
async fn commit_ops(
    store: &mut PageStore,
    model: &mut Model,
    ops: Vec<Op>,
) -> std::io::Result<u64> {
    for op in &ops {
        match op {
            Op::Put(k, v) => store.put(k, v).await?,
            Op::Delete(k) => {
                store.delete(k).await?;
            }
        }
    }
    let txid = store.commit().await?;
    apply(model, &ops);
    Ok(txid)
}

/// The store holds exactly `model`, every page accounted for.
async fn check(store: &mut PageStore, model: &Model) {
    let header = store.header();
    assert!(fsck(store, &header).await.unwrap().map == *model);
}

/// The limit stops the data file growing: the commit is refused before anything is
/// logged, rolled back, and the store goes on (with writes that need no new page).
async fn growth_refused(dir: &Path) {
    const LIMIT: u64 = 24 * PAGE as u64;
    set_fsize(LIMIT);
    let opts = Options {
        log_limit: 0,
        ..Options::default()
    };
    let mut store = PageStore::open(dir, opts.clone()).await.unwrap();
    let mut model = Model::new();
    let mut i = 0;
    let err = loop {
        let ops = vec![
            Op::Put(key(i), value(i, 0)),
            Op::Put(key(i + 1), value(i + 1, 0)),
        ];
        match commit_ops(&mut store, &mut model, ops).await {
            Ok(_) => i += 2,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
    assert!(err.to_string().contains(DATA), "{err}");
    assert!(i > 10, "only {i} keys went in");
    assert_eq!(store.stats.rollbacks, 1);
    assert!(store.data_len() <= LIMIT);
    assert_eq!(
        std::fs::metadata(dir.join(LOG)).unwrap().len(),
        0,
        "nothing logged"
    );
    assert_eq!(store.get(&key(i)).await.unwrap(), None, "rolled back");
    check(&mut store, &model).await;
    // A delete frees a page (or makes room in one), and the key goes back there: no
    // growth, so both commit.
    let seq = store.committed().seq;
    commit_ops(&mut store, &mut model, vec![Op::Delete(key(0))])
        .await
        .unwrap();
    commit_ops(&mut store, &mut model, vec![Op::Put(key(0), value(0, 1))])
        .await
        .unwrap();
    assert_eq!(store.committed().seq, seq + 2);
    check(&mut store, &model).await;
    store.close().await.unwrap();
    let mut store = PageStore::open(dir, opts).await.unwrap();
    assert_eq!(store.stats.replayed, 0);
    check(&mut store, &model).await;
    store.close().await.unwrap();
    set_fsize(libc::RLIM_INFINITY);
}

/// The limit stops the log (never emptied here) part way through a record: the torn
/// record is cut off, the transaction rolled back, the store consistent; a reopen replays
/// the logged transactions and empties the log, and commits go on.
async fn log_append_refused(dir: &Path) {
    const LIMIT: u64 = 16 * PAGE as u64;
    set_fsize(LIMIT);
    let opts = Options {
        log_limit: u64::MAX,
        ..Options::default()
    };
    let mut store = PageStore::open(dir, opts.clone()).await.unwrap();
    let mut model = Model::new();
    let ops = (0..4).map(|i| Op::Put(key(i), value(i, 0))).collect();
    commit_ops(&mut store, &mut model, ops).await.unwrap();
    let mut round = 1;
    let err = loop {
        let log_len = std::fs::metadata(dir.join(LOG)).unwrap().len();
        let ops = vec![Op::Put(key(round % 4), value(round % 4, round))];
        match commit_ops(&mut store, &mut model, ops).await {
            Ok(_) => round += 1,
            Err(e) => {
                // Cut back to where the record began.
                assert_eq!(std::fs::metadata(dir.join(LOG)).unwrap().len(), log_len);
                break e;
            }
        }
    };
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
    assert!(err.to_string().contains(LOG), "{err}");
    let seq = store.committed().seq;
    assert_eq!(seq, round as u64);
    assert_eq!(store.stats.rollbacks, 1);
    check(&mut store, &model).await;
    // Dropped without a close, as a crash would leave it: the log full of transactions.
    drop(store);
    let mut store = PageStore::open(dir, opts).await.unwrap();
    assert_eq!((store.stats.replayed, store.stats.torn_log_bytes), (seq, 0));
    check(&mut store, &model).await;
    commit_ops(&mut store, &mut model, vec![Op::Delete(key(1))])
        .await
        .unwrap();
    check(&mut store, &model).await;
    store.close().await.unwrap();
    set_fsize(libc::RLIM_INFINITY);
}

/// The limit, lowered below the data file's size, stops the checkpoint: the transaction
/// is committed (its record synced), so the commit's error says so and the store refuses
/// everything until a reopen; a reopen still under the limit fails, clearly; one without
/// it finishes the checkpoint.
async fn checkpoint_refused(dir: &Path) {
    let opts = Options {
        log_limit: 0,
        ..Options::default()
    };
    let mut store = PageStore::open(dir, opts.clone()).await.unwrap();
    let mut model = Model::new();
    let ops = (0..12).map(|i| Op::Put(key(i), value(i, 0))).collect();
    commit_ops(&mut store, &mut model, ops).await.unwrap();
    assert!(store.data_len() > 12 * PAGE as u64);
    set_fsize(8 * PAGE as u64);
    // The key put last has the last page, past the limit.
    store.put(&key(11), &value(11, 1)).await.unwrap();
    let err = store.commit().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("transaction 2 is committed in the log"),
        "{msg}"
    );
    assert!(msg.contains("reopen the store"), "{msg}");
    let err = store.get(&key(0)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the store is unusable: transaction 2"),
        "{err}"
    );
    assert!(store.put(&key(0), b"x").await.is_err());
    store.close().await.unwrap();
    model.insert(key(11), value(11, 1));

    let err = PageStore::open(dir, opts.clone())
        .await
        .err()
        .expect("opened");
    assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
    assert!(err.to_string().contains(DATA), "{err}");
    set_fsize(libc::RLIM_INFINITY);
    let mut store = PageStore::open(dir, opts).await.unwrap();
    assert_eq!(store.stats.replayed, 1);
    assert_eq!(store.committed().seq, 2);
    check(&mut store, &model).await;
    store.close().await.unwrap();
}

#[test]
fn a_file_size_limit_on_growth_log_or_checkpoint_leaves_the_store_consistent() {
    const NAME: &str =
        "faults::a_file_size_limit_on_growth_log_or_checkpoint_leaves_the_store_consistent";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let dir = TempDir::new("pages-efbig-grow");
                growth_refused(dir.path()).await;
                let dir = TempDir::new("pages-efbig-log");
                log_append_refused(dir.path()).await;
                let dir = TempDir::new("pages-efbig-checkpoint");
                checkpoint_refused(dir.path()).await;
            },
            "the file size limit",
        ));
    });
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "faults::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        let dir = TempDir::new("pages-fds");
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let mut store = PageStore::open(dir.path(), Options::default())
                    .await
                    .unwrap();
                let mut model = Model::new();
                let mut readers = Vec::new();
                for _ in 0..3 {
                    readers.push(store.reader().await.unwrap());
                }
                let reading: Vec<_> = readers
                    .into_iter()
                    .map(|mut r| {
                        overlap::spawn(async move {
                            for _ in 0..5 {
                                r.get(&key(1)).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for round in 0..6 {
                    let ops = vec![Op::Put(key(round % 3), value(round, round))];
                    commit_ops(&mut store, &mut model, ops).await.unwrap();
                }
                for r in reading {
                    r.await.unwrap();
                }
                store.put(b"dropped", b"never committed").await.unwrap();
                store.rollback();
                check(&mut store, &model).await;
                store.close().await.unwrap();
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the whole run",
        ));
    });
}
