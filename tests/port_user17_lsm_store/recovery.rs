//! The tests of faults: a crash with a torn log tail, a flipped byte in a block, a
//! footer, an index and the MANIFEST, a full disk, a writer cancelled while waiting for
//! its batch, and what closing leaves behind.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use overlap::Runtime;

use super::db::{Db, Options};
use super::format::{decode_records, Footer, FOOTER};
use super::manifest::Manifest;
use super::rig::{fds_in, files, flip_byte, key, small, Client};
use super::server::Server;
use super::sst::{table_name, BlockCache, Table};
use super::support::{self, poll_once, run_in_child, until, within, TempDir};
use super::wal::log_name;

const HANG: Duration = Duration::from_secs(120);

/// Opens a table on its own (no store) to look at its index.
async fn peek_table(dir: &std::path::Path, id: u64) -> Table {
    let (tx, _rx) = overlap::sync::mpsc::unbounded_channel();
    Table::open(dir, id, Rc::new(BlockCache::new(0)), tx)
        .await
        .unwrap()
}

/// A crash between a batch's write and its sync: the runtime dropped with the committer
/// hung and its writers unanswered, the log's tail then torn by three bytes. Every
/// acknowledged write comes back, the torn record does not, the whole records of the
/// unanswered batch do, and the log is cut to its last whole record.
#[test]
fn a_crash_with_a_torn_log_tail_keeps_every_acked_write() {
    let dir = TempDir::new("lsm-crash");
    let opts = Options {
        memtable_bytes: 8 * 1024,
        ..small()
    };
    let mut acked = BTreeMap::new();
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let db = Db::open(dir.path(), opts.clone()).await.unwrap();
        for i in 0..300 {
            let v = format!("acked{i}");
            db.put(&key(i), v.as_bytes()).await.unwrap();
            acked.insert(key(i), v.into_bytes());
        }
        db.delete(&key(7)).await.unwrap();
        acked.remove(&key(7));
        db.wait_idle().await;
        assert!(db.stats().flushes > 0, "some of it in tables");
        let written = db.stats().batches_written;
        db.stall_before_sync();
        let writers: Vec<_> = (0..5)
            .map(|i| {
                let db = db.clone();
                overlap::spawn(async move { db.put(format!("unacked{i}").as_bytes(), b"?").await })
            })
            .collect();
        until(|| db.stats().batches_written > written, "the batch written").await;
        support::settle().await;
        assert!(writers.iter().all(|w| !w.is_finished()), "nobody answered");
        // Dropped mid-write: the runtime goes with every task.
    });
    drop(rt);

    let log = files(dir.path(), ".log").pop().unwrap();
    let path = dir.join(&log);
    let bytes = std::fs::read(&path).unwrap();
    let (recs, good) = decode_records(&bytes);
    assert_eq!(good, bytes.len(), "whole records up to the crash");
    let torn_key = recs.last().unwrap().0.clone();
    assert!(torn_key.starts_with(b"unacked"), "{torn_key:?}");
    let torn_len = bytes.len() as u64 - 3;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(torn_len)
        .unwrap();
    // A compaction's output never installed, and a manifest never renamed.
    std::fs::write(dir.join("000999.sst"), b"half a table").unwrap();
    std::fs::write(dir.join("MANIFEST.tmp"), b"lsm-manifest 1\n").unwrap();

    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        let db = Db::open(dir.path(), opts.clone()).await.unwrap();
        let s = db.stats();
        assert_eq!(s.garbage_removed, 2, "{s:?}");
        assert!(!dir.join("000999.sst").exists());
        let torn: Vec<_> = s.replayed.iter().filter(|r| r.cut.is_some()).collect();
        assert_eq!(torn.len(), 1, "{s:?}");
        assert_eq!(dir.join(&log_name(torn[0].log)), path);
        assert_eq!(torn[0].records, recs.len() - 1, "the torn one left out");
        let cut: Vec<_> = s.replayed.iter().filter_map(|r| r.cut).collect();
        let last_whole = bytes.len() as u64 - record_len(&bytes, recs.len() - 1);
        assert_eq!(cut, [(torn_len, last_whole)], "{s:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last_whole);
        for (k, v) in &acked {
            assert_eq!(db.get(k).await.unwrap().as_ref(), Some(v), "{k:?}");
        }
        assert_eq!(db.get(&key(7)).await.unwrap(), None, "the delete too");
        assert_eq!(db.get(&torn_key).await.unwrap(), None, "the torn record");
        let whole_unacked = recs
            .iter()
            .filter(|(k, _)| k.starts_with(b"unacked"))
            .count()
            - 1;
        for (k, v) in recs
            .iter()
            .filter(|(k, _)| k.starts_with(b"unacked"))
            .take(whole_unacked)
        {
            assert_eq!(
                db.get(k).await.unwrap(),
                v.clone(),
                "a whole record replayed"
            );
        }
        db.put(b"after", b"crash").await.unwrap();
        db.close().await;
        // Once more: the cut log replays with no cut, the write after it is there.
        let db = Db::open(dir.path(), opts.clone()).await.unwrap();
        assert!(db.stats().replayed.iter().all(|r| r.cut.is_none()));
        assert_eq!(db.get(b"after").await.unwrap(), Some(b"crash".to_vec()));
        assert_eq!(db.get(&torn_key).await.unwrap(), None);
        assert_eq!(
            db.scan(b"k", Some(b"l"), usize::MAX).await.unwrap().len(),
            acked.len()
        );
        db.close().await;
    });
}

/// The encoded length of record `i` of a log.
fn record_len(log: &[u8], i: usize) -> u64 {
    let mut at = 0;
    for _ in 0..i {
        at += 8 + u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as usize;
    }
    8 + u32::from_le_bytes(log[at..at + 4].try_into().unwrap()) as u64
}

/// Builds a store whose keys `k00000..k00199` all sit in L1 tables, and closes it.
async fn store_in_l1(dir: &std::path::Path) -> Manifest {
    let db = Db::open(dir, small()).await.unwrap();
    for i in 0..200 {
        db.put(&key(i), format!("c{i}").as_bytes()).await.unwrap();
    }
    for i in 0..200 {
        db.put(format!("z{i}").as_bytes(), b"filler").await.unwrap();
    }
    db.compact_soon();
    db.wait_idle().await;
    db.close().await;
    Manifest::load(dir).await.unwrap().unwrap()
}

/// A flipped byte in a data block: reads of that block's keys fail with an error naming
/// the table, the block and its key range, over the API and the protocol; other blocks
/// read on; a compaction that meets it fails and installs nothing; nothing panics.
#[overlap::test]
async fn a_flipped_byte_in_a_block_is_an_error_naming_the_table_and_keys() {
    within(
        HANG,
        async {
            let dir = TempDir::new("lsm-corrupt");
            let m = store_in_l1(dir.path()).await;
            let id = m.l1[0];
            let t = peek_table(dir.path(), id).await;
            assert!(t.blocks() >= 3);
            let b1 = t.block_info(1).clone();
            drop(t);
            flip_byte(&dir.join(&table_name(id)), b1.offset + 6);
            let (first, last) = (
                String::from_utf8(b1.first.clone()).unwrap(),
                String::from_utf8(b1.last.clone()).unwrap(),
            );
            let db = Db::open(dir.path(), small()).await.unwrap();
            let want = format!("table {} is corrupt: block 1 of ", table_name(id));
            for _ in 0..2 {
                let e = db.get(&b1.first).await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidData);
                let msg = e.to_string();
                assert!(msg.starts_with(&want), "{msg}");
                assert!(
                    msg.contains(&format!(
                        "(keys \"{first}\" to \"{last}\", at offset {})",
                        b1.offset
                    )),
                    "{msg}"
                );
                assert!(msg.ends_with("fails its checksum"), "{msg}");
            }
            assert_eq!(
                db.get(&key(0)).await.unwrap(),
                Some(b"c0".to_vec()),
                "block 0"
            );
            assert_eq!(db.get(&key(199)).await.unwrap(), Some(b"c199".to_vec()));
            let e = db.scan(b"k", Some(b"l"), 1000).await.unwrap_err();
            assert!(e.to_string().starts_with(&want), "{e}");
            // Over the protocol: an ERR line, and the session goes on.
            let srv = Server::start(db.clone(), "127.0.0.1").await.unwrap();
            let mut c = Client::connect(srv.addr).await;
            let line = c.ask(&format!("GET {first}")).await;
            assert!(line.starts_with(&format!("ERR {want}")), "{line}");
            assert_eq!(c.scan("SCAN k l 5").await, [format!("ERR {}", e)]);
            assert_eq!(c.ask("GET k00000").await, "VALUE c0");
            c.close().await;
            srv.stop().await;
            // A compaction meets the block: it fails, L1 stays as it was.
            let before = db.levels().1;
            for i in 0..300 {
                db.put(format!("y{i}").as_bytes(), b"more").await.unwrap();
            }
            db.compact_soon();
            db.wait_idle().await;
            let s = db.stats();
            assert!(!s.compaction_errors.is_empty(), "{s:?}");
            assert!(s.compaction_errors[0].starts_with(&want), "{s:?}");
            assert_eq!(db.levels().1, before);
            assert!(db.poisoned().is_none(), "writes go on");
            db.put(b"still", b"writable").await.unwrap();
            db.close().await;
        },
        "corrupt block",
    )
    .await;
}

/// A flipped byte in a table's footer or index, or in the MANIFEST: the store refuses to
/// open, saying which file and what is wrong; put back, it opens.
#[overlap::test]
async fn a_bad_footer_index_or_manifest_refuses_the_open_naming_the_file() {
    within(
        HANG,
        async {
            let dir = TempDir::new("lsm-footer");
            let m = store_in_l1(dir.path()).await;
            let id = *m.l1.last().unwrap();
            let path = dir.join(&table_name(id));
            let size = std::fs::metadata(&path).unwrap().len();
            let tail = std::fs::read(&path).unwrap();
            let footer = Footer::decode(&tail[tail.len() - FOOTER..]).unwrap();
            let cases = [
                (size - 1, "it has a footer that fails its checksum"),
                (size - 8, "it has no table footer (bad magic)"),
                (footer.index_off + 2, "its index fails its checksum"),
                (footer.bloom_off + 1, "its bloom filter fails its checksum"),
            ];
            for (at, why) in cases {
                flip_byte(&path, at);
                let e = Db::open(dir.path(), small()).await.err().unwrap();
                assert_eq!(e.kind(), ErrorKind::InvalidData);
                let want = format!("table {} is corrupt: {why}", table_name(id));
                assert_eq!(e.to_string(), want);
                flip_byte(&path, at);
            }
            let manifest = dir.join("MANIFEST");
            let good = std::fs::read_to_string(&manifest).unwrap();
            // A table number changed (still text), then a byte that is not text at all.
            let edited = good.replacen(&format!(" {id}"), &format!(" {}", id + 1), 1);
            let garbled = good.replacen("next", "n\u{fffd}xt", 1);
            for (text, why) in [
                (edited, "its checksum does not match"),
                (garbled, "its checksum does not match"),
            ] {
                std::fs::write(&manifest, text).unwrap();
                let e = Db::open(dir.path(), small()).await.err().unwrap();
                assert_eq!(e.kind(), ErrorKind::InvalidData);
                let want = format!("{} is corrupt: {why}", manifest.display());
                assert_eq!(e.to_string(), want);
            }
            flip_byte(&manifest, 3);
            let e = Db::open(dir.path(), small()).await.err().unwrap();
            let want = format!("{} is corrupt: it is not UTF-8 text", manifest.display());
            assert_eq!(e.to_string(), want);
            std::fs::write(&manifest, good).unwrap();
            let db = Db::open(dir.path(), small()).await.unwrap();
            assert_eq!(db.get(&key(150)).await.unwrap(), Some(b"c150".to_vec()));
            db.close().await;
        },
        "corrupt footer",
    )
    .await;
}

/// Ignores `SIGXFSZ` (so a write past the limit fails with `EFBIG` instead of killing the
/// process) and sets the soft file size limit.
fn set_fsize(soft: libc::rlim_t) {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    support::set_soft_limit(libc::RLIMIT_FSIZE, soft);
}

/// A full disk (`RLIMIT_FSIZE`, in a child process): the batch that does not fit fails its
/// writers with the reason, the store refuses writes from then on but serves reads, and
/// reopened with room again it has every acked write and none of the failed one.
#[test]
fn a_full_disk_fails_the_batch_and_stops_writes_but_not_reads() {
    run_in_child(
        "recovery::a_full_disk_fails_the_batch_and_stops_writes_but_not_reads",
        || {
            let dir = TempDir::new("lsm-full");
            overlap::block_on(async {
                let db = Db::open(dir.path(), Options::default()).await.unwrap();
                set_fsize(16 * 1024);
                let mut acked = Vec::new();
                let err = loop {
                    let i = acked.len();
                    match db.put(&key(i), &[b'v'; 1000]).await {
                        Ok(_) => acked.push(key(i)),
                        Err(e) => break e,
                    }
                };
                assert!(acked.len() >= 10 && acked.len() < 17, "{}", acked.len());
                let msg = err.to_string();
                assert!(msg.starts_with("write-ahead log: "), "{msg}");
                assert!(msg.contains("File too large"), "{msg}");
                assert!(msg.contains(".log"), "names the log: {msg}");
                let e = db.put(b"later", b"x").await.unwrap_err();
                assert!(
                    e.to_string().starts_with("store failed: write-ahead log: "),
                    "{e}"
                );
                for k in &acked {
                    assert_eq!(db.get(k).await.unwrap(), Some(vec![b'v'; 1000]));
                }
                assert_eq!(db.get(&key(acked.len())).await.unwrap(), None);
                db.close().await;
                set_fsize(libc::RLIM_INFINITY);
                let db = Db::open(dir.path(), Options::default()).await.unwrap();
                for k in &acked {
                    assert_eq!(db.get(k).await.unwrap(), Some(vec![b'v'; 1000]));
                }
                assert_eq!(
                    db.get(&key(acked.len())).await.unwrap(),
                    None,
                    "the failed one"
                );
                let cut = db
                    .stats()
                    .replayed
                    .iter()
                    .filter(|r| r.cut.is_some())
                    .count();
                assert_eq!(cut, 1, "its torn part cut off");
                db.put(b"room", b"again").await.unwrap();
                db.close().await;
            });
        },
    );
}

/// A writer dropped while waiting for its batch: its write was taken, so it is made
/// durable and applied, in its place in the order; a write after `close` is refused.
#[overlap::test]
async fn a_cancelled_writer_is_still_committed_in_order() {
    within(
        HANG,
        async {
            let dir = TempDir::new("lsm-cancel");
            let db = Db::open(dir.path(), small()).await.unwrap();
            db.put(b"k", b"first").await.unwrap();
            let mut put = Box::pin(db.put(b"k", b"cancelled"));
            assert!(poll_once(&mut put).await.is_pending(), "queued for a batch");
            drop(put);
            let seq = db.put(b"other", b"after").await.unwrap();
            assert_eq!(seq, 2, "the cancelled write took number 1");
            assert_eq!(db.get(b"k").await.unwrap(), Some(b"cancelled".to_vec()));
            // A timeout cutting a writer short: the same.
            let cut = overlap::time::timeout(Duration::ZERO, db.delete(b"other")).await;
            assert!(cut.is_err());
            db.put(b"sync", b"point").await.unwrap();
            assert_eq!(db.get(b"other").await.unwrap(), None);
            let spare = db.clone();
            db.close().await;
            let e = spare.put(b"late", b"x").await.unwrap_err();
            assert_eq!(
                (e.kind(), e.to_string().as_str()),
                (ErrorKind::BrokenPipe, "the store is closed")
            );
            drop(spare);
            let db = Db::open(dir.path(), small()).await.unwrap();
            assert_eq!(db.get(b"k").await.unwrap(), Some(b"cancelled".to_vec()));
            assert_eq!(db.get(b"other").await.unwrap(), None);
            db.close().await;
        },
        "cancel",
    )
    .await;
}

/// After a run with flushes, compactions, snapshots and connections, closing the server
/// and the store leaves no task and no fd open on the store's files.
#[overlap::test]
async fn closing_leaves_no_task_and_no_open_file() {
    within(
        HANG,
        async {
            let dir = TempDir::new("lsm-close");
            let tasks = overlap::metrics().tasks_alive;
            let db = Db::open(dir.path(), small()).await.unwrap();
            let srv = Server::start(db.clone(), "127.0.0.1").await.unwrap();
            let mut clients = Vec::new();
            for c in 0..3 {
                let mut client = Client::connect(srv.addr).await;
                for i in 0..150 {
                    let cmd = format!("PUT c{c}-{i:04} {}", "p".repeat(30));
                    assert!(client.ask(&cmd).await.starts_with("OK "));
                }
                clients.push(client);
            }
            let snap = db.snapshot();
            db.compact_soon();
            db.wait_idle().await;
            let (l0, l1) = db.levels();
            assert!(!l1.is_empty());
            assert!(
                fds_in(dir.path()) > l0.len() + l1.len(),
                "tables and the log open"
            );
            assert_eq!(
                snap.scan(b"c0-", Some(b"c0."), 1000).await.unwrap().len(),
                150
            );
            drop(snap);
            // One client still connected at the stop: its session ends too.
            let kept = clients.pop().unwrap();
            for c in clients {
                c.close().await;
            }
            srv.stop().await;
            drop(kept);
            db.close().await;
            until(
                || overlap::metrics().tasks_alive == tasks,
                "every task ended",
            )
            .await;
            assert_eq!(fds_in(dir.path()), 0, "no fd left on the store's files");
            let (_, l1_files) = (files(dir.path(), ".log"), files(dir.path(), ".sst"));
            assert_eq!(
                l1_files.len(),
                l0.len() + l1.len(),
                "obsolete tables deleted"
            );
        },
        "close",
    )
    .await;
}
