//! The tests that change something process-wide, each in a child process of its own (this
//! test binary run again for the one test, see `tests/support/child.rs`): `SIGHUP` (every
//! daemon of the process would rotate), a file size limit, and the count of open fds and
//! children after a shutdown.

use std::collections::BTreeSet;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::UnixStream;
use overlap::sync::watch;

use super::check::{bodies, read_all, udp_client, unix_client, wait_for};
use super::daemon::{Config, Daemon, Reason};
use super::support::{
    children, open_fds, run_in_child, set_soft_limit, wait_until, within, TempDir,
};
use super::{lines, HANG};

/// Two clients write four rounds of 250 lines each; a `SIGHUP` is raised in each round
/// once its first line is written, while the rest are on their way.
#[test]
fn sighup_rotates_while_clients_write() {
    run_in_child("in_child::sighup_rotates_while_clients_write", || {
        overlap::block_on(async {
            let dir = TempDir::new("rotator-hup");
            let mut cfg = Config::new(dir.path());
            (cfg.hup, cfg.max_size) = (true, 1 << 20);
            let daemon = Daemon::start(cfg).await.unwrap();
            let (round_tx, round_rx) = watch::channel(0usize);
            let sent: Vec<Vec<String>> = (0..2).map(|c| lines(&format!("c{c}"), 1000)).collect();
            let clients = sent.iter().map(|mine| {
                let (mut round_rx, path) = (round_rx.clone(), daemon.socket_path.clone());
                async move {
                    let mut stream = UnixStream::connect(&path).await.unwrap();
                    for (round, chunk) in mine.chunks(250).enumerate() {
                        round_rx.wait_for(|r| *r > round).await.unwrap();
                        for line in chunk {
                            stream
                                .write_all(format!("{line}\n").as_bytes())
                                .await
                                .unwrap();
                        }
                    }
                    stream.close().await.unwrap();
                }
            });
            let rounds = async {
                for round in 0..4u64 {
                    round_tx.send(round as usize + 1).unwrap();
                    wait_for(&daemon, "a line of the round", |s| {
                        s.lines_written > round * 500
                    })
                    .await;
                    // SAFETY: raise only sends a signal to this thread; overlap's handler
                    // for SIGHUP is installed (the daemon asked for it at start).
                    assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
                    let want = round as usize + 1;
                    wait_for(&daemon, "the rotation", |s| s.rotations.len() == want).await;
                }
            };
            within(
                HANG,
                async { overlap::join!(overlap::future::join_all(clients), rounds) },
                "rounds",
            )
            .await;
            wait_for(&daemon, "every line", |s| s.lines_written == 2000).await;
            let stats = within(HANG, daemon.shutdown(), "shutdown").await;
            assert!(stats.rotations.iter().all(|r| r.reason == Reason::Signal));
            assert_eq!(stats.compressed, [1, 2, 3, 4]);
            let got = bodies(&read_all(dir.path()));
            for (c, mine) in sent.iter().enumerate() {
                let prefix = format!("c{c} ");
                let seen: Vec<&String> = got.iter().filter(|b| b.starts_with(&prefix)).collect();
                assert_eq!(
                    seen,
                    mine.iter().collect::<Vec<_>>(),
                    "client {c}: once, in order"
                );
            }
            assert_eq!(got.len(), 2000);
        })
    });
}

/// The file size limit: lines of 40 bytes (`00000000 0.000 ` and 25 of the body), the
/// limit at 4000 bytes, so at most 100 fit in `current`.
#[test]
fn a_file_size_limit_is_reported_and_the_daemon_keeps_accepting() {
    run_in_child(
        "in_child::a_file_size_limit_is_reported_and_the_daemon_keeps_accepting",
        || {
            // SAFETY: ignoring a signal installs no handler code; without it the kernel's
            // SIGXFSZ would end the process instead of the write failing with EFBIG.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            set_soft_limit(libc::RLIMIT_FSIZE, 4000);
            overlap::block_on(async {
                let dir = TempDir::new("rotator-fsize");
                let daemon = Daemon::start(Config::new(dir.path())).await.unwrap();
                let sent = lines("line of twenty-five", 150);
                within(
                    HANG,
                    unix_client(&daemon.socket_path, sent.clone()),
                    "client",
                )
                .await;
                wait_for(&daemon, "every line tried", |s| {
                    s.lines_written + s.lines_dropped == 150
                })
                .await;
                let stats = daemon.stats();
                assert!(
                    stats.lines_written <= 100 && stats.lines_dropped >= 50,
                    "{stats:?}"
                );
                let (kind, msg) = &stats.write_errors[0];
                assert_eq!(*kind, std::io::ErrorKind::FileTooLarge, "{msg}");
                let current = dir.join("current");
                assert!(msg.contains(&current.display().to_string()), "{msg}");
                let written = std::fs::read_to_string(&current).unwrap();
                assert_eq!(
                    written.len() as u64,
                    stats.lines_written * 40,
                    "no torn line"
                );
                // Still accepting: a rotation starts an empty file, and lines land again.
                assert_eq!(daemon.rotate().await, Some(1));
                within(
                    HANG,
                    unix_client(&daemon.socket_path, vec!["again".into()]),
                    "client",
                )
                .await;
                let before = stats.lines_written;
                wait_for(&daemon, "the new line", |s| s.lines_written == before + 1).await;
                wait_for(&daemon, "compressed", |s| s.compressed == [1]).await;
                let stats = within(HANG, daemon.shutdown(), "shutdown").await;
                // Whole batches were dropped (the one that crossed the limit, and what came
                // after it and did not fit): the lines written are the others, in order.
                let got = bodies(&read_all(dir.path()));
                assert_eq!(got.len() as u64, stats.lines_written);
                assert_eq!(got.last().map(String::as_str), Some("again"));
                let mut rest = sent.iter();
                for line in &got[..got.len() - 1] {
                    assert!(rest.any(|s| s == line), "{line} out of order or unknown");
                }
            })
        },
    );
}

/// Shutdown with lines still in the sockets and a compressor (`exec sleep 30`) that
/// outlives the grace period.
#[test]
fn shutdown_writes_everything_and_leaves_no_fd_and_no_child() {
    run_in_child(
        "in_child::shutdown_writes_everything_and_leaves_no_fd_and_no_child",
        || {
            let dir = TempDir::new("rotator-shutdown");
            let fds_before = open_fds();
            let sent: Vec<Vec<String>> = (0..2).map(|c| lines(&format!("c{c}"), 500)).collect();
            let datagrams = lines("udp", 50);
            let stats = overlap::block_on(async {
                let mut cfg = Config::new(dir.path());
                cfg.compressor = ["sh", "-c", "exec sleep 30"].map(Into::into).to_vec();
                cfg.grace = Duration::from_secs(1);
                let daemon = Daemon::start(cfg).await.unwrap();
                within(
                    HANG,
                    unix_client(&daemon.socket_path, vec!["first".into()]),
                    "client",
                )
                .await;
                wait_for(&daemon, "the first line", |s| s.lines_written == 1).await;
                assert_eq!(daemon.rotate().await, Some(1));
                wait_for(&daemon, "the compressor running", |s| {
                    s.max_compressors == 1
                })
                .await;
                // Everything sent and closed, none of it waited for: shutdown must write it.
                // The datagrams go last, right before the shutdown: most are still in the
                // socket when the daemon is told to stop.
                let clients = sent
                    .iter()
                    .map(|l| unix_client(&daemon.socket_path, l.clone()));
                overlap::future::join_all(clients).await;
                udp_client(daemon.udp_addr, datagrams.clone()).await;
                // And a client still in the listener's backlog.
                unix_client(&daemon.socket_path, vec!["late".into()]).await;
                let stats = within(HANG, daemon.shutdown(), "shutdown").await;
                assert_eq!(children(), "", "the compressor was killed and reaped");
                stats
            });
            assert_eq!(stats.lines_written, 1 + 1000 + 50 + 1, "{stats:?}");
            assert!(
                stats
                    .compress_failures
                    .iter()
                    .any(|f| f.contains("stopped at shutdown")),
                "{stats:?}"
            );
            let got = bodies(&read_all(dir.path()));
            let mut expected: BTreeSet<String> = sent.concat().into_iter().collect();
            expected.extend(datagrams);
            expected.extend(["first".into(), "late".into()]);
            assert_eq!(got.len(), expected.len());
            assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
            assert!(dir.join("@000001.u").exists(), "left for the next start");
            // A `File` whose job was in flight at its drop closes on the pool, a moment later.
            assert!(
                wait_until(Duration::from_secs(20), || open_fds() == fds_before),
                "fds: {} before, {} after: {}",
                fds_before,
                open_fds(),
                fd_targets()
            );
        },
    );
}

/// What this process's fds point at, for a failure message.
fn fd_targets() -> String {
    let fds = std::fs::read_dir("/proc/self/fd").unwrap();
    let targets = fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok());
    targets
        .map(|t| t.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
