//! The tests in child processes: a writer killed with `SIGKILL` in a write storm, and a
//! whole run's fds and tasks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::server::{Client, Server};
use super::store::{scan, Store, LOG};
use super::support::{open_fds, run_in_child, until, within, TempDir};
use super::{value_of, HANG};

/// Tells a copy of this test binary it is the storm's writer, and where its store is.
const STORM_DIR: &str = "OVERLAP_WAL_STORM_DIR";

/// The writer: eight tasks setting keys as fast as acks come, each ack printed (a line,
/// flushed) once `set` returned, until the parent kills the process.
fn storm(dir: &str) {
    overlap::block_on(async {
        let store = Store::open(dir.as_ref()).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                overlap::spawn(async move {
                    for i in 0.. {
                        let key = format!("s{t}-{i}");
                        store.set(key.as_bytes(), &value_of(&key, i)).await.unwrap();
                        println!("ACK {key} {i}");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn a_writer_killed_mid_storm_keeps_every_acked_key() {
    const NAME: &str = "crash::a_writer_killed_mid_storm_keeps_every_acked_key";
    if let Ok(dir) = std::env::var(STORM_DIR) {
        return storm(&dir);
    }
    let dir = TempDir::new("wal-kill");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(STORM_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = BTreeMap::new();
    let take = |acked: &mut BTreeMap<String, usize>, line: String| {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (key, round) = rest.split_once(' ').unwrap();
            acked.insert(key.to_string(), round.parse::<usize>().unwrap());
        }
    };
    // Well into the storm (with writes in flight at every moment), then the kill.
    for line in lines.by_ref() {
        take(&mut acked, line.unwrap());
        if acked.len() == 600 {
            break;
        }
    }
    assert_eq!(acked.len(), 600, "the writer ended early");
    child.kill().unwrap();
    // The acks it printed before it died.
    for line in lines {
        take(&mut acked, line.unwrap());
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    let image = std::fs::read(dir.join(LOG)).unwrap();
    let (_, good) = scan(&image);
    overlap::block_on(within(
        HANG,
        async {
            let store = Store::open(dir.path()).await.unwrap();
            assert_eq!(store.stats.cut_on_open.get(), image.len() as u64 - good);
            for (key, round) in &acked {
                let got = store.get(key.as_bytes()).await.unwrap();
                assert_eq!(got, Some(value_of(key, *round)), "{key}, acked, lost");
            }
            // Anything written past the acks (a batch whose sync the kill beat) is whole.
            assert!(store.len() >= acked.len());
            store.close().await;
        },
        "reopening after the kill",
    ));
    let after = std::fs::read(dir.join(LOG)).unwrap();
    assert_eq!(after.len() as u64, good, "cut at the last whole record");
    assert_eq!(scan(&after).1, good);
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "crash::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        let dir = TempDir::new("wal-fds");
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let store = Store::open(dir.path()).await.unwrap();
                let server = Server::start(store.clone()).await.unwrap();
                let mut a = Client::connect(server.addr).await;
                let mut b = Client::connect(server.addr).await;
                for i in 0..20 {
                    assert_eq!(a.ask(&format!("SET k{i} {i}")).await, "OK");
                }
                assert_eq!(b.ask("DEL k3").await, "OK");
                assert!(b.ask("COMPACT").await.starts_with("OK "));
                assert_eq!(a.ask("GET k4").await, "VALUE 4");
                assert!(b.ask("bogus").await.starts_with("ERR"));
                server.stop().await;
                store.close().await;
                drop((store, a, b));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the whole run",
        ));
    });
}
