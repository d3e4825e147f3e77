//! Damage the store must notice: a torn or misplaced data page, a damaged header, a torn
//! or corrupt log tail; and a store on a read-only fd, which must refuse writes clearly.

use std::io::ErrorKind;
use std::path::Path;

use overlap::fs::File;

use super::index::{bucket_of, fsck};
use super::page::{Header, Kind, Page, PAGE};
use super::pager::{Options, PageStore, Stage, Stats, DATA, LOG, NEW_DATA};
use super::support::{within, Rng, TempDir};
use super::wal::{scan, FRAME_HEAD, PAGE_FRAME};
use super::workload::{model_after, run_txn};
use super::{contents, open, stop_at, HANG};

/// The page that heads `key`'s bucket, read from the data file's directory page.
fn bucket_page(dir: &Path, key: &[u8]) -> usize {
    let bytes = std::fs::read(dir.join(DATA)).unwrap();
    let root = Page::from_bytes(&bytes[PAGE..2 * PAGE]);
    root.u32_at(4 * bucket_of(key)) as usize
}

/// Ten keys, each on a page of its own, committed and closed.
async fn ten_keys(dir: &Path) {
    let mut store = open(dir).await;
    for i in 0..10 {
        store
            .put(format!("k{i}").as_bytes(), &[b'0' + i; 100])
            .await
            .unwrap();
    }
    store.commit().await.unwrap();
    store.close().await.unwrap();
}

#[overlap::test]
async fn a_torn_or_misplaced_data_page_is_caught_by_its_checksum() {
    let dir = TempDir::new("pages-torn-page");
    within(
        HANG,
        async {
            ten_keys(dir.path()).await;
            let (torn, moved) = (
                bucket_page(dir.path(), b"k3"),
                bucket_page(dir.path(), b"k5"),
            );
            let mut bytes = std::fs::read(dir.join(DATA)).unwrap();
            // A write torn half way: the page's second half is what was there before.
            bytes[torn * PAGE + PAGE / 2..(torn + 1) * PAGE].fill(0xA5);
            // And another page written where k5's page belongs.
            let other = bucket_page(dir.path(), b"k6");
            bytes.copy_within(other * PAGE..(other + 1) * PAGE, moved * PAGE);
            std::fs::write(dir.join(DATA), &bytes).unwrap();

            let mut store = open(dir.path()).await;
            let err = store.get(b"k3").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData);
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("page {torn}: checksum mismatch")),
                "{msg}"
            );
            let err = store.get(b"k5").await.unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "page {moved}: holds page {other} (written at the wrong offset)"
                )),
                "{err}"
            );
            // The rest reads, and a reader on its own handle finds the same.
            assert_eq!(store.get(b"k4").await.unwrap().unwrap(), [b'4'; 100]);
            let mut reader = store.reader().await.unwrap();
            let err = reader.get(b"k3").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData);
            assert_eq!(reader.get(b"k6").await.unwrap().unwrap(), [b'6'; 100]);
            // A write that needs the page fails before it changes anything.
            assert_eq!(
                store.put(b"k3", b"new").await.unwrap_err().kind(),
                ErrorKind::InvalidData
            );
            assert_eq!(store.cache().dirty_count(), 0);
            let header = store.committed();
            assert!(fsck(&mut store, &header).await.is_err());
            store.close().await.unwrap();
            assert!(
                std::fs::read(dir.join(DATA)).unwrap() == bytes,
                "nothing written"
            );
        },
        "torn page",
    )
    .await;
}

#[overlap::test]
async fn a_damaged_header_is_refused_with_a_clear_error() {
    let dir = TempDir::new("pages-header");
    within(
        HANG,
        async {
            ten_keys(dir.path()).await;
            let good = std::fs::read(dir.join(DATA)).unwrap();
            let header =
                Header::from_page(&Page::from_bytes(&good[..PAGE]), good.len() as u64).unwrap();
            let resealed = |h: Header| {
                let mut page = h.to_page();
                page.seal();
                page
            };
            type Damage = Box<dyn Fn(&mut Vec<u8>)>;
            let cases: Vec<(Damage, ErrorKind, String)> = vec![
                (
                    Box::new(|b| b[16..24].copy_from_slice(b"SQLite f")),
                    ErrorKind::InvalidData,
                    "not a page store: bad magic \"SQLite f\" (expected \"OVPGSTOR\")".into(),
                ),
                (
                    Box::new(|b| b[24] = 2),
                    ErrorKind::Unsupported,
                    "page store version 2, this build reads version 1".into(),
                ),
                (
                    Box::new(|b| b[16 + 32] ^= 0x10),
                    ErrorKind::InvalidData,
                    "header page 0: checksum mismatch".into(),
                ),
                (
                    Box::new(|b| b.truncate(3 * PAGE)),
                    ErrorKind::InvalidData,
                    format!(
                        "header: {} pages need {} bytes, the data file has {}: it was cut short",
                        header.page_count,
                        header.page_count as usize * PAGE,
                        3 * PAGE
                    ),
                ),
                (
                    Box::new(|b| b.truncate(100)),
                    ErrorKind::InvalidData,
                    "the data file is 100 bytes, shorter than its header page".into(),
                ),
                (
                    Box::new(move |b| {
                        let h = Header { root: 0, ..header };
                        b[..PAGE].copy_from_slice(resealed(h).bytes());
                    }),
                    ErrorKind::InvalidData,
                    "header: inconsistent fields".into(),
                ),
            ];
            for (damage, kind, want) in cases {
                let mut bytes = good.clone();
                damage(&mut bytes);
                std::fs::write(dir.join(DATA), &bytes).unwrap();
                for read_only in [false, true] {
                    let opts = Options {
                        read_only,
                        ..Options::default()
                    };
                    let err = PageStore::open(dir.path(), opts)
                        .await
                        .err()
                        .expect("opened");
                    assert_eq!(err.kind(), kind, "{err}");
                    assert!(err.to_string().contains(&want), "{err}\nwanted: {want}");
                }
                assert!(
                    std::fs::read(dir.join(DATA)).unwrap() == bytes,
                    "left as it was"
                );
            }
            // Put right, it opens, and a half-made new store left by a crash goes.
            std::fs::write(dir.join(DATA), &good).unwrap();
            std::fs::write(dir.join(NEW_DATA), [0u8; 100]).unwrap();
            let mut store = open(dir.path()).await;
            assert_eq!(contents(&mut store).await.len(), 10);
            assert!(!dir.join(NEW_DATA).exists());
            store.close().await.unwrap();
        },
        "damaged header",
    )
    .await;
}

/// Puts `data` and `log` in place and opens the store: its last transaction and what
/// recovery did, its contents checked against the model.
async fn reopen(dir: &Path, data: &[u8], log: &[u8]) -> (u64, Stats) {
    std::fs::write(dir.join(LOG), log).unwrap();
    std::fs::write(dir.join(DATA), data).unwrap();
    let mut store = open(dir).await;
    let got = (store.committed().seq, store.stats.clone());
    assert!(contents(&mut store).await == model_after(got.0));
    store.close().await.unwrap();
    assert_eq!(std::fs::metadata(dir.join(LOG)).unwrap().len(), 0);
    got
}

#[overlap::test]
async fn a_torn_log_tail_is_ignored_and_whole_records_are_replayed() {
    let dir = TempDir::new("pages-torn-log");
    within(
        HANG,
        async {
            let mut store = open(dir.path()).await;
            for txid in 1..=3 {
                run_txn(&mut store, txid).await.unwrap();
            }
            // Transaction 4 stops once logged, as a crash there would stop it: in the log,
            // not in the data file.
            store.set_hook(stop_at(4, Stage::LogSynced));
            let err = run_txn(&mut store, 4).await.unwrap_err();
            assert!(err.to_string().contains("simulated crash"), "{err}");
            let err = store.get(b"k1").await.unwrap_err().to_string();
            assert!(
                err.contains("stopped at LogSynced of transaction 4"),
                "{err}"
            );
            store.close().await.unwrap();
            let (log, data) = (
                std::fs::read(dir.join(LOG)).unwrap(),
                std::fs::read(dir.join(DATA)).unwrap(),
            );
            let all = scan(&log);
            assert_eq!(all.txns.len(), 4);
            assert_eq!(all.good, log.len());
            let start = log.len() - (all.txns[3].pages.len() * PAGE_FRAME + FRAME_HEAD);
            assert_eq!(scan(&log[..start]).good, start);

            // Cut anywhere in the last record (frame edges and a few seeded points): the
            // first three are replayed, the fourth left out.
            let mut rng = Rng(4);
            let mut cuts = vec![0, 1, FRAME_HEAD - 1, FRAME_HEAD, PAGE_FRAME, PAGE_FRAME + 1];
            cuts.extend((0..6).map(|_| rng.below(log.len() - start)));
            cuts.extend([log.len() - start - FRAME_HEAD, log.len() - start - 1]);
            for cut in cuts {
                let (seq, stats) = reopen(dir.path(), &data, &log[..start + cut]).await;
                assert_eq!((seq, stats.replayed), (3, 3), "cut at {cut}");
                assert_eq!(stats.torn_log_bytes, cut as u64);
            }
            // A flipped bit in the commit frame: the same.
            let mut flipped = log.clone();
            flipped[log.len() - 3] ^= 4;
            assert_eq!(reopen(dir.path(), &data, &flipped).await.0, 3);
            // Whole, with garbage after it (a torn start of a fifth): all four.
            let mut more = log.clone();
            more.extend_from_slice(&[0x5A; 300]);
            let (seq, stats) = reopen(dir.path(), &data, &more).await;
            assert_eq!((seq, stats.replayed, stats.torn_log_bytes), (4, 4, 300));
            // Recovered, the store goes on from there.
            let mut store = open(dir.path()).await;
            run_txn(&mut store, 5).await.unwrap();
            assert!(contents(&mut store).await == model_after(5));
            store.close().await.unwrap();
        },
        "torn log",
    )
    .await;
}

#[overlap::test]
async fn a_read_only_store_refuses_writes_with_a_clear_error() {
    let dir = TempDir::new("pages-read-only");
    within(
        HANG,
        async {
            ten_keys(dir.path()).await;
            let (data, log) = (
                std::fs::read(dir.join(DATA)).unwrap(),
                std::fs::read(dir.join(LOG)).unwrap(),
            );
            let ro = Options {
                read_only: true,
                ..Options::default()
            };
            let mut store = PageStore::open(dir.path(), ro.clone()).await.unwrap();
            assert_eq!(store.get(b"k2").await.unwrap().unwrap(), [b'2'; 100]);
            let mut reader = store.reader().await.unwrap();
            assert_eq!(reader.get(b"k9").await.unwrap().unwrap(), [b'9'; 100]);
            for err in [
                store.put(b"k2", b"x").await.unwrap_err(),
                store.delete(b"k2").await.unwrap_err(),
                store.commit().await.unwrap_err(),
            ] {
                assert_eq!(err.kind(), ErrorKind::PermissionDenied);
                assert!(
                    err.to_string().ends_with("the store is open read-only"),
                    "{err}"
                );
            }
            assert_eq!(contents(&mut store).await.len(), 10);
            store.close().await.unwrap();
            drop(reader);

            // Without the store's own check, the fd refuses: `EBADF` from `pwrite`, and
            // `EINVAL` (not `EBADF`) from `ftruncate`, each saying why.
            let mut file = File::open(dir.join(DATA)).await.unwrap();
            let err = file.write_all_at(&[0; PAGE], 0).await.unwrap_err();
            assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EBADF));
            let why = "pages.db: the file is not open for writing (open it with write(true))";
            assert!(err.to_string().contains(why), "{err}");
            let err = file.set_len(0).await.unwrap_err();
            assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EINVAL), "{err}");
            assert!(err.to_string().contains(why), "{err}");
            let mut back = vec![0; PAGE];
            file.read_exact_at(&mut back, PAGE as u64).await.unwrap();
            Page::from_bytes(&back).expect(Kind::Directory).unwrap();
            drop(file);
            assert!(std::fs::read(dir.join(DATA)).unwrap() == data);
            assert!(std::fs::read(dir.join(LOG)).unwrap() == log);

            // A committed transaction still in the log: read-only cannot finish it, and
            // says so; read-write recovers it, and read-only then sees it.
            let mut store = open(dir.path()).await;
            store.put(b"late", b"in the log").await.unwrap();
            store.set_hook(stop_at(2, Stage::LogSynced));
            store.commit().await.unwrap_err();
            store.close().await.unwrap();
            let err = PageStore::open(dir.path(), ro.clone()).await.err().unwrap();
            assert!(
                err.to_string().ends_with(
                    "1 committed transactions are not yet in the data file: open the store \
                     read-write once to recover them"
                ),
                "{err}"
            );
            open(dir.path()).await.close().await.unwrap();
            let mut store = PageStore::open(dir.path(), ro).await.unwrap();
            assert_eq!(store.get(b"late").await.unwrap().unwrap(), b"in the log");
            store.close().await.unwrap();
        },
        "read-only",
    )
    .await;
}
