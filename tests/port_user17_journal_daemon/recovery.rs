//! The tests of startup recovery: a torn last entry and a corrupt one cut off and the
//! sequence continued; a sealed newest file followed by a new one, a follower reading
//! across both.

use crate::client::{messages, read_journal, Follower, Logger};
use crate::daemon::{Config, Daemon};
use crate::format;
use crate::journal::path_of;
use crate::support::{within, TempDir};
use crate::{me, HANG};

/// Runs a daemon in `dir` that writes `n` records `entry N`, and shuts it down.
async fn journal_of(dir: &TempDir, cfg: Config, n: u32) {
    let d = Daemon::start(cfg).await.unwrap();
    let log = Logger::new(&d.socket_path);
    for i in 1..=n {
        log.log(6, &format!("entry {i}")).await;
    }
    d.written(n as u64).await;
    d.shutdown().await;
    assert_eq!(read_journal(dir.path()).0.len(), n as usize);
}

fn append_raw(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[overlap::test(start_paused = true)]
async fn recovery_cuts_a_torn_last_entry_and_continues_the_sequence() {
    let dir = TempDir::new("journal-torn");
    within(
        HANG,
        async {
            let cfg = Config::new(dir.path().to_owned());
            journal_of(&dir, cfg.clone(), 5).await;
            let path = path_of(dir.path(), 1);
            let good_len = std::fs::metadata(&path).unwrap().len();
            // A crash in the middle of the sixth entry's write: 20 of its 45 bytes.
            let mut torn = Vec::new();
            let e = format::Entry {
                seq: 6,
                ms: 0,
                pid: me(),
                uid: 0,
                gid: 0,
                prio: 6,
                msg: b"entry 6".to_vec(),
            };
            format::encode_entry(&e, &mut torn);
            append_raw(&path, &torn[..20]);
            let d = Daemon::start(cfg).await.unwrap();
            assert_eq!(d.recovery.truncated, 20);
            assert!(!d.recovery.was_sealed);
            assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
            Logger::new(&d.socket_path).log(2, "after the crash").await;
            d.written(1).await;
            d.shutdown().await;
            let (entries, files) = read_journal(dir.path());
            assert_eq!(files, vec![(1, false, good_len + 38 + 15)]);
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
            assert_eq!(entries[5].msg, b"after the crash");
        },
        "torn",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn recovery_cuts_a_corrupt_last_entry() {
    let dir = TempDir::new("journal-corrupt");
    within(
        HANG,
        async {
            let cfg = Config::new(dir.path().to_owned());
            journal_of(&dir, cfg.clone(), 5).await;
            let path = path_of(dir.path(), 1);
            let mut bytes = std::fs::read(&path).unwrap();
            let len = bytes.len();
            // One bit flipped in the last entry's message: its checksum no longer holds.
            bytes[len - 6] ^= 0x10;
            std::fs::write(&path, &bytes).unwrap();
            let d = Daemon::start(cfg).await.unwrap();
            assert_eq!(d.recovery.truncated, 38 + 7);
            Logger::new(&d.socket_path).log(6, "replaces it").await;
            d.written(1).await;
            d.shutdown().await;
            let (entries, _) = read_journal(dir.path());
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, [1, 2, 3, 4, 5]);
            assert_eq!(messages(&entries)[3..], ["entry 4", "replaces it"]);
        },
        "corrupt",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn recovery_after_a_sealed_file_starts_the_next_and_followers_read_both() {
    let dir = TempDir::new("journal-sealed");
    within(
        HANG,
        async {
            let cfg = Config::new(dir.path().to_owned());
            journal_of(&dir, cfg.clone(), 3).await;
            append_raw(&path_of(dir.path(), 1), &format::footer(3, 3));
            let d = Daemon::start(cfg).await.unwrap();
            assert!(d.recovery.was_sealed);
            assert_eq!(d.recovery.truncated, 0);
            Logger::new(&d.socket_path).log(6, "entry 4").await;
            d.written(1).await;
            let mut f = Follower::start(&d.follow_path, 2).await;
            for seq in 2..=4 {
                assert_eq!(f.entry().await.msg, format!("entry {seq}").into_bytes());
            }
            d.shutdown().await;
            assert!(f.rest().await.is_empty());
            let (entries, files) = read_journal(dir.path());
            assert_eq!(
                files.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
                [(1, true), (2, false)]
            );
            let head = std::fs::read(path_of(dir.path(), 2)).unwrap();
            assert_eq!(format::parse_header(&head), Some((2, 4)));
            assert_eq!(
                entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
                [1, 2, 3, 4]
            );
        },
        "sealed",
    )
    .await;
}
