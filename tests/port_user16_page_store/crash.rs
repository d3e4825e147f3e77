//! Writers killed with `SIGKILL` in child processes (this test binary run again): at each
//! step of a commit, through the store's hook, and from outside at random moments; then
//! the store reopened, every committed transaction there and no other.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::index::fsck;
use super::pager::{Options, PageStore, Stage, DATA, LOG, STAGES};
use super::support::{within, Rng, TempDir};
use super::workload::{model_after, run_txn};
use super::HANG;

/// Tells a copy of this test binary it is a test's writer, and where its store is.
const DIR_ENV: &str = "OVERLAP_PAGE_STORE_DIR";
/// For the stage test's writer: `txid,stage` at which it kills itself.
const KILL_ENV: &str = "OVERLAP_PAGE_STORE_KILL_AT";

fn spawn_writer(test: &str, dir: &Path, kill_at: Option<String>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(k) = kill_at {
        cmd.env(KILL_ENV, k);
    }
    cmd.spawn().unwrap()
}

/// The writer: transactions one after another from where the store is, each printed (a
/// line, flushed) once its commit returned; with a hook that kills the process at a step.
fn writer(dir: &str, opts: Options) {
    let kill_at = std::env::var(KILL_ENV).ok().map(|k| {
        let (txid, stage) = k.split_once(',').unwrap();
        (
            txid.parse::<u64>().unwrap(),
            STAGES[stage.parse::<usize>().unwrap()],
        )
    });
    overlap::block_on(async {
        let mut store = PageStore::open(dir.as_ref(), opts).await.unwrap();
        if let Some(at) = kill_at {
            store.set_hook(Box::new(move |txid, stage| {
                if (txid, stage) == at {
                    // SAFETY: kill takes plain integers; the process ends here.
                    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                }
                Ok(())
            }));
        }
        loop {
            let txid = store.committed().seq + 1;
            run_txn(&mut store, txid).await.unwrap();
            println!("COMMIT {txid}");
            assert!(kill_at.is_none_or(|(t, _)| txid < t), "not killed");
            assert!(txid < 10_000, "never killed");
        }
    });
}

/// The transaction a writer's line says it committed. (The first line also holds what
/// the test harness printed before the test's own output: "test NAME ... COMMIT 1".)
fn commit_of(line: std::io::Result<String>) -> Option<u64> {
    let line = line.unwrap();
    let (_, n) = line.split_once("COMMIT ")?;
    Some(n.parse().unwrap())
}

/// The committed transactions a writer printed: the last one, or 0.
fn last_commit(lines: impl Iterator<Item = std::io::Result<String>>) -> u64 {
    let mut last = 0;
    for n in lines.filter_map(commit_of) {
        assert_eq!(n, last + 1, "commits in order");
        last = n;
    }
    last
}

/// Reopens the store after a crash: its state must be that after transaction `seq`
/// exactly, with every page accounted for. Gives `seq` and what recovery did.
async fn reopen_and_check(dir: &Path, opts: Options) -> (u64, super::pager::Stats) {
    let mut store = PageStore::open(dir, opts).await.unwrap();
    let header = store.committed();
    let found = fsck(&mut store, &header).await.unwrap();
    assert!(
        found.map == model_after(header.seq),
        "the store after {} transactions differs from the model",
        header.seq
    );
    assert_eq!(std::fs::metadata(dir.join(LOG)).unwrap().len(), 0);
    let stats = store.stats.clone();
    store.close().await.unwrap();
    (header.seq, stats)
}

#[test]
fn a_crash_at_each_commit_step_keeps_exactly_the_committed_transactions() {
    const NAME: &str =
        "crash::a_crash_at_each_commit_step_keeps_exactly_the_committed_transactions";
    // The log emptied after every commit: on a crash it holds the one transaction.
    let opts = Options {
        log_limit: 0,
        ..Options::default()
    };
    if let Ok(dir) = std::env::var(DIR_ENV) {
        return writer(&dir, opts);
    }
    for (n, &stage) in STAGES.iter().enumerate() {
        let dir = TempDir::new("pages-stage");
        let txid = 5 + 2 * n as u64;
        let mut child = spawn_writer(NAME, dir.path(), Some(format!("{txid},{n}")));
        let printed = last_commit(BufReader::new(child.stdout.take().unwrap()).lines());
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{stage:?}: {status:?}"
        );
        assert_eq!(printed, txid - 1, "{stage:?}");
        let log_len = std::fs::metadata(dir.join(LOG)).unwrap().len();
        let data_len = std::fs::metadata(dir.join(DATA)).unwrap().len();
        overlap::block_on(within(
            HANG,
            async {
                let (seq, stats) = reopen_and_check(dir.path(), opts.clone()).await;
                let committed = stage >= Stage::LogSynced;
                assert_eq!(seq, txid - 1 + committed as u64, "{stage:?}");
                assert_eq!(stats.replayed, committed as u64, "{stage:?}");
                match stage {
                    Stage::Grown => assert_eq!((log_len, stats.torn_log_bytes), (0, 0)),
                    Stage::LogHalfWritten => {
                        assert!(log_len > 0);
                        assert_eq!(stats.torn_log_bytes, log_len, "all of it torn");
                    }
                    _ => assert_eq!(stats.torn_log_bytes, 0, "{stage:?}"),
                }
                // The data file may be longer than the pages in use (grown for a
                // transaction that never committed), never shorter.
                let mut store = PageStore::open(dir.path(), opts.clone()).await.unwrap();
                assert!(data_len >= store.committed().page_count as u64 * 4096);
                // And the store goes on: the lost transaction again, then one more.
                for t in seq + 1..=txid + 1 {
                    run_txn(&mut store, t).await.unwrap();
                }
                store.close().await.unwrap();
                let (seq, _) = reopen_and_check(dir.path(), opts.clone()).await;
                assert_eq!(seq, txid + 1);
            },
            "reopening after the kill",
        ));
    }
}

#[test]
fn a_writer_killed_at_random_moments_loses_no_committed_transaction() {
    const NAME: &str = "crash::a_writer_killed_at_random_moments_loses_no_committed_transaction";
    // The log emptied only past 256 KiB (a dozen transactions or more): recovery replays
    // several at once.
    let opts = Options::default();
    if let Ok(dir) = std::env::var(DIR_ENV) {
        return writer(&dir, opts);
    }
    let dir = TempDir::new("pages-kill");
    let mut rng = Rng(16);
    let mut seq = 0;
    let mut replayed = 0;
    for round in 0..5 {
        let mut child = spawn_writer(NAME, dir.path(), None);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Some commits into this run (each printed after its commit returned), then the
        // kill, wherever the writer is by then.
        let wait_for = 1 + rng.below(12) as u64;
        let mut acked = seq;
        for n in lines.by_ref().filter_map(commit_of) {
            assert_eq!(n, acked + 1, "round {round}: commits in order");
            acked = n;
            if acked == seq + wait_for {
                break;
            }
        }
        assert_eq!(
            acked,
            seq + wait_for,
            "round {round}: the writer ended early"
        );
        child.kill().unwrap();
        // The commits it printed before it died count too.
        if let Some(n) = lines.filter_map(commit_of).last() {
            acked = n;
        }
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let (now, stats) = overlap::block_on(within(
            HANG,
            reopen_and_check(dir.path(), opts.clone()),
            "reopening",
        ));
        // Every acknowledged commit is there; at most the one in flight besides.
        assert!(
            now == acked || now == acked + 1,
            "round {round}: {now} after {acked} acked"
        );
        replayed += stats.replayed;
        seq = now;
    }
    assert!(seq >= 5);
    // Killed while its transactions sat in the log at least once (most rounds do).
    assert!(replayed > 0, "nothing was ever replayed");
}
