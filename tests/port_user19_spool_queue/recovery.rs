//! Retention (segments deleted, the consumed front punched out) and recovery after a
//! crash (a torn tail, a record with a bad CRC), each followed by a restart on the same
//! directory.

use std::io::Write;
use std::os::unix::fs::MetadataExt;

use super::client::{message, publish_all, Consumer, Reply};
use super::record;
use super::segment;
use super::support::{until, within, TempDir};
use super::{publish_from, spool, start, HANG};

#[overlap::test]
async fn retention_deletes_read_segments_and_punches_the_consumed_front() {
    let dir = TempDir::new("spool-retention");
    let cfg = || spool::Config {
        roll_bytes: 256 << 10,
        ..Default::default()
    };
    let broker = start(dir.path(), cfg(), Default::default()).await;
    let (target, path, older, blocks_before, len_before) = within(
        HANG,
        async {
            let acked = publish_from(&broker, 2, 1000, 1000).await;
            let mut a = Consumer::subscribe(broker.addr, 0, "a").await;
            let mut b = Consumer::subscribe(broker.addr, 0, "b").await;
            let (ra, rb) = overlap::join!(a.take(2000), b.take(2000));
            assert!(ra.iter().chain(&rb).all(|(o, p)| p == &acked[o]));
            // Both groups past the first 100 records of the next-to-last segment.
            let paths = broker.spool.segment_paths();
            assert!(paths.len() >= 4, "{} segments", paths.len());
            let path = paths[paths.len() - 2].clone();
            let base = segment::base_of(path.file_name().unwrap().to_str().unwrap()).unwrap();
            let target = base + 100;
            let meta = std::fs::metadata(&path).unwrap();
            a.commit(target + 50).await;
            let a_line = format!("a {}\n", target + 50);
            let groups = dir.path().join("groups");
            until(
                || std::fs::read_to_string(&groups).unwrap().contains(&a_line),
                "a's commit",
            )
            .await;
            assert_eq!(broker.spool.oldest(), 0, "b has read nothing past 0 yet");
            b.commit(target).await;
            // The oldest offset moves first (readers then see the records gone), then the
            // hole is punched.
            let stats = &broker.spool.stats;
            until(
                || stats.punched.get() > 0 || stats.holes_unsupported.get(),
                "the punch",
            )
            .await;
            assert_eq!(broker.spool.oldest(), target);
            (target, path, paths.len() - 2, meta.blocks(), meta.len())
        },
        "retention",
    )
    .await;
    let stats = &broker.spool.stats;
    let left = broker.spool.segment_paths();
    assert_eq!(left[0], path, "the segments before it deleted");
    assert_eq!(stats.deleted.get(), older as u64);
    assert!(!dir.path().join(segment::file_name(0)).exists());
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len(), len_before, "the size kept");
    let log = broker.spool.log.borrow().join("\n");
    if stats.holes_unsupported.get() {
        // This file system has no holes: the bytes stay, and the log says why.
        assert!(
            log.contains("retention: no holes on this file system"),
            "{log}"
        );
        assert_eq!(meta.blocks(), blocks_before);
    } else {
        // 100 records of 1020 bytes punched: at least 23 whole 4 KiB blocks given back.
        assert_eq!(stats.punched.get(), 100 * 1020);
        assert!(
            meta.blocks() + 23 * 8 <= blocks_before,
            "{} -> {} blocks",
            blocks_before,
            meta.blocks()
        );
        let name = path.file_name().unwrap().to_string_lossy();
        let line = format!("retention: punched bytes 0..102000 of {name} (offsets below {target})");
        assert!(log.contains(&line), "{log}");
    }
    within(
        HANG,
        async {
            // Below the retention: refused with the reason; from it: the records, intact.
            let mut old = Consumer::subscribe(broker.addr, 0, "").await;
            let why = format!("offset 0 was removed by retention (the oldest kept is {target})");
            assert_eq!(old.next().await, Reply::Error(why));
            assert_eq!(old.next().await, Reply::Closed);
            let mut c = Consumer::subscribe(broker.addr, target, "").await;
            let got = c.take(2000 - target as usize).await;
            assert_eq!(got[0].0, target);
            assert_eq!(got.last().unwrap().0, 1999);
        },
        "reads after retention",
    )
    .await;
    broker.shutdown().await;

    // A restart finds the first record kept behind the hole, and group b resumes there.
    let broker = start(dir.path(), cfg(), Default::default()).await;
    within(
        HANG,
        async {
            assert_eq!((broker.spool.oldest(), broker.spool.end()), (target, 2000));
            let mut b = Consumer::subscribe(broker.addr, u64::MAX, "b").await;
            let first = b.take(1).await;
            assert_eq!(first[0].0, target);
        },
        "the restart",
    )
    .await;
    broker.shutdown().await;
}

/// Publishes `n` messages; group `g` reads them all and commits `commit`; the broker stops.
async fn fill_and_stop(dir: &std::path::Path, n: usize, commit: u64) -> Vec<Vec<u8>> {
    let broker = start(dir, Default::default(), Default::default()).await;
    let msgs: Vec<_> = (0..n).map(|i| message(0, i, 50)).collect();
    within(
        HANG,
        async {
            assert_eq!(publish_all(broker.addr, &msgs).await.unwrap().len(), n);
            let mut g = Consumer::subscribe(broker.addr, 0, "g").await;
            g.take(n).await;
            g.commit(commit).await;
            until(
                || {
                    std::fs::read_to_string(dir.join("groups")).unwrap_or_default()
                        == format!("g {commit}\n")
                },
                "the commit",
            )
            .await;
            // And the retention that follows it, in the same task: a shutdown before it
            // cancels it, which is no harm (the records stay until the next commit), but
            // the restarts below expect the front punched out.
            until(
                || {
                    let log = broker.spool.log.borrow();
                    log.iter().any(|l| l.starts_with("retention: punched"))
                },
                "the front punched out",
            )
            .await;
        },
        "filling",
    )
    .await;
    broker.shutdown().await;
    msgs
}

/// Appends `bytes` to segment 0 as a crash would have left them; gives its length before.
fn append_raw(dir: &std::path::Path, bytes: &[u8]) -> u64 {
    let path = dir.join(segment::file_name(0));
    let len = std::fs::metadata(&path).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(bytes).unwrap();
    len
}

/// Restarts on `dir`: group `g` resumes at `from` and reads up to `n`, exactly; the next
/// publish takes offset `n`, and `g` gets it next.
async fn resume_exactly(dir: &std::path::Path, msgs: &[Vec<u8>], from: u64) -> String {
    let broker = start(dir, Default::default(), Default::default()).await;
    let n = msgs.len() as u64;
    within(
        HANG,
        async {
            assert_eq!(broker.spool.end(), n);
            let mut g = Consumer::subscribe(broker.addr, u64::MAX, "g").await;
            let got = g.take((n - from) as usize).await;
            for (i, (offset, payload)) in got.iter().enumerate() {
                assert_eq!(*offset, from + i as u64);
                assert_eq!(payload, &msgs[*offset as usize]);
            }
            assert_eq!(
                publish_all(broker.addr, &[b"after".to_vec()])
                    .await
                    .unwrap(),
                [n]
            );
            assert_eq!(g.next().await, Reply::Record(n, b"after".to_vec()));
        },
        "resuming",
    )
    .await;
    let log = broker.spool.log.borrow().join("\n");
    broker.shutdown().await;
    // Restarted once more: nothing left to cut, the record published after the cut kept,
    // and the front `g` had read (to `from`, the newest record always kept) a hole.
    let again = spool::Spool::open(dir, Default::default()).await.unwrap();
    let oldest = from.min(n - 1);
    assert_eq!((again.oldest(), again.end()), (oldest, n + 1));
    assert_eq!(
        *again.log.borrow(),
        [format!(
            "recovery: 1 segment(s), offsets {oldest}..{}",
            n + 1
        )]
    );
    again.close().await;
    log
}

#[overlap::test]
async fn recovery_cuts_a_torn_tail_and_consumers_resume_at_their_commit() {
    let dir = TempDir::new("spool-torn");
    let msgs = fill_and_stop(dir.path(), 300, 250).await;
    // Record 300, cut after 30 of its 70 bytes: the write a crash interrupted.
    let mut torn = Vec::new();
    record::encode(300, &message(0, 300, 50), &mut torn);
    let good = append_raw(dir.path(), &torn[..30]);
    let log = resume_exactly(dir.path(), &msgs, 250).await;
    let line = format!(
        "recovery: {}: a torn payload (10 of 50 bytes) at byte {good} (offset 300); cut 30 bytes, the log ends at offset 300",
        segment::file_name(0)
    );
    assert!(log.contains(&line), "{log}");
    let len = std::fs::metadata(dir.path().join(segment::file_name(0)))
        .unwrap()
        .len();
    assert_eq!(
        len,
        good + 25,
        "cut, then the next record (\"after\") appended"
    );
}

#[overlap::test]
async fn recovery_cuts_a_record_with_a_bad_crc_and_all_after_it() {
    let dir = TempDir::new("spool-bad-crc");
    let msgs = fill_and_stop(dir.path(), 100, 100).await;
    // Records 100 and 101 whole, but 100's payload not what its CRC says (its data blocks
    // never reached the disk): 101 cannot be trusted after it.
    let mut tail = Vec::new();
    record::encode(100, &message(0, 100, 50), &mut tail);
    tail[record::HEADER + 7] ^= 0x20;
    record::encode(101, &message(0, 101, 50), &mut tail);
    let good = append_raw(dir.path(), &tail);
    let log = resume_exactly(dir.path(), &msgs, 100).await;
    let line = format!(
        "recovery: {}: a CRC mismatch at byte {good} (offset 100); cut 140 bytes, the log ends at offset 100",
        segment::file_name(0)
    );
    assert!(log.contains(&line), "{log}");
}
