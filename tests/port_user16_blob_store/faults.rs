//! Recovery and faults: a torn or flipped last log record, a blob whose bytes changed, a
//! pack cut short under the running store, a GET timing out while its read is still
//! queued, and a file size limit refusing a PUT.

use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::time::Duration;

use overlap::Runtime;

use super::client::Client;
use super::log::RECORD;
use super::server::{Config, Server};
use super::store::{Store, CHUNK};
use super::support::{run_in_child, set_soft_limit, TempDir};
use super::{blob, open};

fn log_len(dir: &TempDir) -> u64 {
    std::fs::metadata(dir.join("index.log")).unwrap().len()
}

#[overlap::test]
async fn a_torn_or_flipped_last_record_is_ignored_and_cut_off() {
    let dir = TempDir::new("blobs-torn");
    let hs: Vec<u64> = {
        let store = open(dir.path()).await;
        let mut hs = Vec::new();
        for i in 0..4 {
            hs.push(store.put(&blob(i, 3000)).await.unwrap());
        }
        assert!(store.delete(hs[1]).await.unwrap());
        hs
    };
    assert_eq!(log_len(&dir), 5 * RECORD as u64);
    // The tombstone cut 10 bytes short: ignored, so the blob is back; the tail goes.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("index.log"))
        .unwrap();
    f.set_len(5 * RECORD as u64 - 10).unwrap();
    let (store, rec) = Store::open(dir.path()).await.unwrap();
    assert_eq!((rec.records, rec.torn), (4, true));
    assert_eq!(store.hashes(), sorted(&hs));
    assert_eq!(log_len(&dir), 4 * RECORD as u64);
    // A record after the cut is replayed: the log was cut back to whole records.
    let e = store.put(&blob(9, 777)).await.unwrap();
    drop(store);
    let (store, rec) = Store::open(dir.path()).await.unwrap();
    assert_eq!((rec.records, rec.torn), (5, false));
    assert_eq!(store.get(e).await.unwrap().unwrap(), blob(9, 777));
    drop(store);
    // Half a record of garbage after the last: ignored.
    f.write_all_at(&[0xa5; RECORD / 2], 5 * RECORD as u64)
        .unwrap();
    let (store, rec) = Store::open(dir.path()).await.unwrap();
    assert_eq!((rec.records, rec.torn, store.len()), (5, true, 5));
    drop(store);
    // One flipped bit in the last record: it is gone, its blob not indexed.
    let mut b = [0u8; 1];
    f.read_at(&mut b, 4 * RECORD as u64 + 3).ok();
    let rf = std::fs::File::open(dir.join("index.log")).unwrap();
    rf.read_exact_at(&mut b, 4 * RECORD as u64 + 3).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], 4 * RECORD as u64 + 3)
        .unwrap();
    let (store, rec) = Store::open(dir.path()).await.unwrap();
    assert_eq!((rec.records, rec.torn), (4, true));
    assert_eq!(store.get(e).await.unwrap(), None);
    assert_eq!(store.hashes(), sorted(&hs));
}

fn sorted(v: &[u64]) -> Vec<u64> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v
}

#[overlap::test]
async fn verify_names_exactly_the_blob_whose_bytes_changed() {
    let dir = TempDir::new("blobs-verify");
    let (hs, bad_at) = {
        let store = open(dir.path()).await;
        let mut hs = Vec::new();
        for i in 0..6 {
            hs.push(store.put(&blob(i, 1 + i * 9000)).await.unwrap());
        }
        assert_eq!(store.verify().await.unwrap(), Vec::<u64>::new());
        let loc = store.lookup(hs[4]).unwrap().1;
        (hs, loc.offset + loc.len / 2)
    };
    let pack = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("pack-00000.blob"))
        .unwrap();
    let mut b = [0u8; 1];
    pack.read_exact_at(&mut b, bad_at).unwrap();
    pack.write_all_at(&[!b[0]], bad_at).unwrap();
    let store = open(dir.path()).await;
    assert_eq!(store.verify().await.unwrap(), vec![hs[4]]);
    // A GET does not check: it serves the bytes as they are.
    let got = store.get(hs[4]).await.unwrap().unwrap();
    assert_ne!(got, blob(4, 1 + 4 * 9000));
    assert_eq!(got.len(), 1 + 4 * 9000);
}

#[overlap::test]
async fn a_pack_cut_short_under_the_store_names_the_file() {
    let dir = TempDir::new("blobs-cut-pack");
    let store = open(dir.path()).await;
    let server = Server::start("127.0.0.1", store.clone(), Config::default()).await;
    let mut c = Client::connect(server.addr).await;
    let a = c.put(&blob(1, 1000)).await;
    let b = c.put(&blob(2, 3 * CHUNK)).await;
    let tail = c.put(&blob(3, 500)).await;
    let path = store.active().path.clone();
    let std = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    std.set_len(1000 + CHUNK as u64 + 10).unwrap();
    // Its first chunk gone: an error, naming the pack, and the connection goes on.
    let err = c.get(tail).await.unwrap().unwrap_err();
    assert!(
        err.starts_with("ERR ") && err.contains(path.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(c.has(tail).await, "YES 500");
    assert_eq!(c.get(a).await.unwrap().unwrap(), blob(1, 1000));
    // Cut after its first chunk went out: the stream stops short.
    let cut = c.get(b).await.unwrap_err();
    assert_eq!(cut.kind(), ErrorKind::UnexpectedEof);
    let mut c = Client::connect(server.addr).await;
    assert_eq!(c.get(a).await.unwrap().unwrap(), blob(1, 1000));
    let err = store.verify().await.unwrap_err();
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    server.stop().await;
}

/// Bytes this process has read through `read`-like calls so far.
fn rchar() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    let line = io.lines().find(|l| l.starts_with("rchar:")).unwrap();
    line[6..].trim().parse().unwrap()
}

#[test]
fn a_get_timing_out_while_its_read_is_queued_skips_the_read() {
    run_in_child(
        "faults::a_get_timing_out_while_its_read_is_queued_skips_the_read",
        || {
            let dir = TempDir::new("blobs-timeout");
            let rt = Runtime::builder().max_blocking_threads(1).build().unwrap();
            rt.block_on(async {
                let store = open(dir.path()).await;
                let cfg = Config {
                    read_timeout: Duration::from_millis(50),
                    ..Config::default()
                };
                let server = Server::start("127.0.0.1", store.clone(), cfg).await;
                let mut c = Client::connect(server.addr).await;
                let big = c.put(&blob(1, 2 * CHUNK)).await;
                let small = c.put(&blob(2, 100)).await;
                // The pool's one thread held: the GET's first read waits in the queue.
                let (release, held) = mpsc::channel::<()>();
                drop(overlap::spawn_blocking(move || held.recv()));
                let before = rchar();
                let err = c.get(big).await.unwrap().unwrap_err();
                assert_eq!(err, "ERR timed out reading the blob");
                assert_eq!(server.stats.timeouts.get(), 1);
                assert_eq!(c.has(big).await, format!("YES {}", 2 * CHUNK));
                release.send(()).unwrap();
                assert_eq!(c.get(small).await.unwrap().unwrap(), blob(2, 100));
                let grew = rchar() - before;
                assert!(
                    grew < CHUNK as u64,
                    "the dropped read ran: {grew} bytes read"
                );
                // Not skipped when nobody gave up on it.
                assert_eq!(c.get(big).await.unwrap().unwrap(), blob(1, 2 * CHUNK));
                assert!(rchar() - before >= 2 * CHUNK as u64);
                server.stop().await;
            });
        },
    );
}

#[test]
fn a_file_size_limit_refuses_a_put_and_the_store_goes_on() {
    run_in_child(
        "faults::a_file_size_limit_refuses_a_put_and_the_store_goes_on",
        || {
            let dir = TempDir::new("blobs-fsize");
            // SAFETY: ignoring a signal installs no handler code.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            set_soft_limit(libc::RLIMIT_FSIZE, 256 * 1024);
            overlap::block_on(async {
                let store = open(dir.path()).await;
                let server = Server::start("127.0.0.1", store.clone(), Config::default()).await;
                let mut c = Client::connect(server.addr).await;
                let a = c.put(&blob(1, 100 * 1024)).await;
                let line = c.put_line(&blob(2, 200 * 1024)).await.unwrap();
                let pack = store.active().path.clone();
                assert!(
                    line.starts_with("ERR ") && line.contains(pack.to_str().unwrap()),
                    "{line}"
                );
                assert!(line.contains("File too large"), "{line}");
                assert_eq!(store.active().end(), 100 * 1024, "the extent given back");
                assert_eq!(
                    (
                        store.len(),
                        c.has(crate::hash::hash(&blob(2, 200 * 1024)))
                            .await
                            .as_str()
                    ),
                    (1, "NO")
                );
                // The connection and the store go on.
                let b = c.put(&blob(3, 50 * 1024)).await;
                assert_eq!(c.get(a).await.unwrap().unwrap(), blob(1, 100 * 1024));
                assert_eq!(c.get(b).await.unwrap().unwrap(), blob(3, 50 * 1024));
                server.stop().await;
                drop(store);
                let (store, rec) = Store::open(dir.path()).await.unwrap();
                assert_eq!((rec.records, rec.torn, store.len()), (2, false, 2));
                assert_eq!(store.get(b).await.unwrap().unwrap(), blob(3, 50 * 1024));
            });
        },
    );
}

#[overlap::test]
async fn a_lost_pack_drops_its_entries_and_compactions_do_not_overlap() {
    let dir = TempDir::new("blobs-lost-pack");
    {
        let store = open(dir.path()).await;
        for i in 0..3 {
            store.put(&blob(i, 2000)).await.unwrap();
        }
        // One compaction at a time: the second is refused, the first goes on.
        let (first, second) = overlap::join!(store.compact(), store.compact());
        assert_eq!(first.unwrap().moved, 3);
        let err = second.unwrap_err();
        assert!(err.to_string().contains("already running"), "{err}");
        assert_eq!(store.pack_ids(), vec![1]);
        store.put(&blob(3, 2000)).await.unwrap();
        assert_eq!(store.len(), 4);
    }
    // The pack every entry points into is gone (removed by hand): the entries go, counted,
    // and the store starts a fresh pack.
    std::fs::remove_file(dir.join("pack-00001.blob")).unwrap();
    let (store, rec) = Store::open(dir.path()).await.unwrap();
    assert_eq!((rec.records, rec.torn, rec.missing_pack), (7, false, 4));
    assert_eq!((store.len(), store.pack_ids()), (0, vec![0]));
    let h = store.put(b"after the loss").await.unwrap();
    assert_eq!(store.get(h).await.unwrap().unwrap(), b"after the loss");
}
