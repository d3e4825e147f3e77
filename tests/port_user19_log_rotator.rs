//! A user's log collector with rotation and compression (a small `logrotate` and
//! `svlogd` in one daemon), sketched as one would for tokio, then written for overlap by
//! changing `tokio::` and `tokio_util::` to `overlap::`: the line framing with its cut at
//! a maximum length (`port_user19_log_rotator/line_codec.rs`), `current` written through
//! one write-behind `fs::File` and rotated at line boundaries (`current.rs`), the
//! compressor child and retention (`compress.rs`), the sockets, signal, timer, writer and
//! shutdown (`daemon.rs`), and the tests' clients and reader of the files (`check.rs`);
//! the tests that need a process of their own are in `in_child.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::fs::{self, File, OpenOptions};
//! use tokio::io::AsyncWriteExt;
//! use tokio::net::{UdpSocket, UnixListener};
//! use tokio::process::Command;
//! use tokio::signal::unix::{signal, SignalKind};
//! use tokio::sync::{mpsc, Notify};
//! use tokio_util::codec::{Decoder, FramedRead};   // a Decoder that cuts at max_line
//! use futures::StreamExt;
//!
//! // Feeders: a task per Unix client, one for UDP, one for SIGHUP, one for the interval,
//! // all into one bounded mpsc the writer drains (rotations queue behind earlier lines).
//! let mut lines = FramedRead::new(stream, LogLineCodec::new(max_line));
//! while let Some(Ok(line)) = lines.next().await { tx.send(Event::Line(line.bytes)).await?; }
//! let mut hup = signal(SignalKind::hangup())?;
//! while hup.recv().await.is_some() { tx.send(Event::Rotate(Reason::Signal, None)).await?; }
//! // The writer: a batch, flushed (write-behind: write_all only accepted the bytes).
//! file.write_all(&batch).await?;
//! file.flush().await?;                  // on error: drop the batch, count, set_len back
//! // Rotation, at a line boundary:
//! file.flush().await?;
//! file.sync_data().await?;
//! fs::rename(dir.join("current"), dir.join(format!("@{seq:06}.u"))).await?;
//! file = OpenOptions::new().create(true).append(true).open(dir.join("current")).await?;
//! compress.notify_one();
//! // The compressor, one at a time: stdin the rotated file, stdout into `.s.tmp`.
//! let input = File::open(&plain).await?.into_std().await;
//! let mut child = Command::new("gzip").arg("-c").stdin(input)
//!     .stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).spawn()?;
//! tokio::io::copy(&mut child.stdout.take().unwrap(), &mut out).await?;
//! if child.wait().await?.success() {
//!     out.flush().await?; out.sync_data().await?;
//!     fs::rename(&tmp, &done).await?; fs::remove_file(&plain).await?;
//! }                                     // else: the .u stays for the next rotation
//! // Retention: remove the oldest past `keep`.
//! ```
//!
//! The tests check, against real files, real `gzip` children, a real Unix stream socket
//! in a temp dir and UDP on 127.0.0.1: lines from four Unix clients and UDP, across a dozen
//! size rotations, each found exactly once after decompressing every file (std's
//! `gzip -dc`), each client's in its order, the line numbers growing across files, and at
//! most one compressor running; size rotation exactly at line boundaries (files of exactly
//! the limit), and a rotation asked for on an empty `current` doing nothing; `SIGHUP`
//! rotating while two clients write (in a child process, as the signal is process-wide);
//! timer rotation on the paused clock at exactly 60 s and 120 s, an empty `current` not
//! rotated; a failing compressor (`sh -c 'exit 3'`) leaving the `.u` intact and no `.tmp`,
//! its exit status and stderr reported, and the next rotation compressing both files;
//! retention keeping the newest three; a file size limit (`RLIMIT_FSIZE`, in a child)
//! reported with its kind and path, the failed lines counted and no torn line left, and the
//! daemon accepting and writing again after a rotation; a mebibyte without a newline (and
//! a long datagram) cut at the maximum line length, the next line intact; clients vanishing
//! mid-line or at once, and empty datagrams, counted or written as documented; shutdown
//! writing every line sent before it (the UDP socket drained, a client still in the
//! listener's backlog served), killing and reaping a compressor that outlives the grace
//! period, and leaving no fd and no child behind (in a child process).
//!
//! # What porting it found missing
//! Nothing in the library. `fs::File` (write-behind, with `flush`, `sync_data`, `set_len`,
//! `into_std`), `fs::rename`, `fs::metadata`, `fs::read_dir`, `fs::remove_file`,
//! `process::Command` with `kill_on_drop` and a `std::fs::File` as stdin, `Child::kill`,
//! `io::copy` from the child's stdout into a `File`, `signal(SignalKind::hangup())`,
//! `interval_at`, `mpsc` with `recv_many`, `oneshot`, `Notify`, `CancellationToken` with
//! `run_until_cancelled`, `JoinSet`, `select!`, `codec::{Decoder, FramedRead, BytesMut}`,
//! and `into_std` on `UdpSocket` and `UnixListener` all have tokio's names and behaved as
//! tokio's would.
//!
//! What the port got wrong first, as it would have with tokio (the tests caught each):
//! - Draining the UDP socket at shutdown with `try_recv_from` lost the datagrams: like
//!   tokio's, it reads only while the reactor knows the socket to be readable, and what came
//!   after the last `recv_from` is not known yet. The drain reads the std socket
//!   (`into_std`, still non-blocking) until `WouldBlock`; the listener's backlog likewise.
//! - The compressor checked the stop flag after its pass, so a stop that came during a pass
//!   skipped the file rotated last; it now reads the flag before the pass.
//! - Aborting the compressor task at shutdown left its `.s.tmp` behind and its child to
//!   `kill_on_drop`, reaped in the background: once the runtime had ended first, by
//!   overlap's process-wide orphan reaper, whose wake pipe (two fds) then stays open for
//!   the life of the process, which the fd count saw. Cancelling it instead
//!   (`CancellationToken`) lets it kill and reap its child and remove the `.tmp` itself.
//! - A refused write drops its whole batch: the lines written after a file size limit are
//!   not a prefix of those sent (a later, smaller batch may still fit), as the test first
//!   assumed.
//!
//! What the port changed, against tokio: the imports (`futures::StreamExt` is
//! `overlap::stream::StreamExt`, `bytes::BytesMut` is `overlap::codec::BytesMut`, whose
//! `Buf` methods are inherent); shared state is `Rc` with `Cell`/`RefCell`. On the paused
//! clock a running child does not hold the clock back (as in tokio): the timer test lets
//! the clock run (`time::resume`) before it waits for the compressor and shuts down, since
//! the shutdown's grace period would otherwise expire at once. Each batch is flushed before
//! its lines count as written, so the flush before a rotation's rename finds nothing left
//! to write; it stays, since without it a `File` used write-behind would hand the
//! compressor a rotated file missing its last bytes.

mod support;

#[path = "port_user19_log_rotator/check.rs"]
mod check;
#[path = "port_user19_log_rotator/compress.rs"]
mod compress;
#[path = "port_user19_log_rotator/current.rs"]
mod current;
#[path = "port_user19_log_rotator/daemon.rs"]
mod daemon;
#[path = "port_user19_log_rotator/in_child.rs"]
mod in_child;
#[path = "port_user19_log_rotator/line_codec.rs"]
mod line_codec;

use std::collections::BTreeSet;
use std::time::Duration;

use check::{bodies, read_all, udp_client, unix_client, wait_for};
use daemon::{Config, Daemon, Reason};
use support::{within, TempDir};

/// A hang guard only.
const HANG: Duration = Duration::from_secs(120);

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix} {i:04}")).collect()
}

#[overlap::test]
async fn every_line_from_four_unix_clients_and_udp_lands_exactly_once_in_order() {
    let dir = TempDir::new("rotator-all");
    let mut cfg = Config::new(dir.path());
    (cfg.max_size, cfg.max_line, cfg.keep, cfg.queue) = (2048, 200, 1000, 64);
    let daemon = Daemon::start(cfg).await.unwrap();
    let sent: Vec<Vec<String>> = (0..4).map(|c| lines(&format!("unix{c}"), 300)).collect();
    let datagrams = lines("udp", 100);
    within(
        HANG,
        async {
            let clients = sent
                .iter()
                .map(|l| unix_client(&daemon.socket_path, l.clone()));
            overlap::join!(
                overlap::future::join_all(clients),
                udp_client(daemon.udp_addr, datagrams.clone())
            );
            wait_for(&daemon, "every line written", |s| s.lines_written == 1300).await;
        },
        "clients",
    )
    .await;
    let stats = within(HANG, daemon.shutdown(), "shutdown").await;
    let files = read_all(dir.path());
    let got = bodies(&files);
    let mut expected: Vec<String> = sent.concat();
    expected.extend(datagrams.iter().cloned());
    let mut sorted = got.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "each line exactly once");
    for (c, mine) in sent.iter().enumerate() {
        let prefix = format!("unix{c} ");
        let seen: Vec<&String> = got.iter().filter(|b| b.starts_with(&prefix)).collect();
        assert_eq!(seen, mine.iter().collect::<Vec<_>>(), "client {c}'s order");
    }
    // 1300 lines of 24 to 26 bytes: at least 15 files of 2 KiB.
    assert!(stats.rotations.len() >= 15, "{:?}", stats.rotations);
    assert!(stats.rotations.iter().all(|r| r.reason == Reason::Size));
    let rotated = &files[..files.len() - 1];
    assert_eq!(rotated.len(), stats.rotations.len());
    for pair in files.windows(2) {
        let Some(next) = pair[1].entries.first() else {
            continue;
        };
        let next_line = format!("{:08} {} {}\n", next.n, next.time, next.body).len();
        assert!(
            pair[0].size <= 2048,
            "{} has {} bytes",
            pair[0].name,
            pair[0].size
        );
        assert!(
            pair[0].size + next_line > 2048,
            "{} rotated early",
            pair[0].name
        );
    }
    assert!(
        rotated.iter().all(|f| f.name.ends_with(".s")),
        "all compressed"
    );
    let all_seqs: Vec<u64> = (1..=rotated.len() as u64).collect();
    assert_eq!(stats.compressed, all_seqs);
    assert_eq!(stats.max_compressors, 1);
    assert!(stats.compress_failures.is_empty() && stats.write_errors.is_empty());
    assert_eq!((stats.lines_written, stats.lines_dropped), (1300, 0));
}

#[overlap::test]
async fn size_rotation_happens_at_line_boundaries() {
    let dir = TempDir::new("rotator-size");
    let mut cfg = Config::new(dir.path());
    (cfg.max_size, cfg.max_line) = (100, 50);
    let daemon = Daemon::start(cfg).await.unwrap();
    // Each line is `00000000 0.000 ` (15 bytes), `line 000n` (9) and `\n`: 25 bytes, so
    // four fill a file exactly and the fifth starts the next.
    within(
        HANG,
        unix_client(&daemon.socket_path, lines("line", 10)),
        "client",
    )
    .await;
    wait_for(&daemon, "10 lines", |s| s.lines_written == 10).await;
    assert_eq!(daemon.rotate().await, Some(3), "current held two lines");
    assert_eq!(
        daemon.rotate().await,
        None,
        "an empty current is not rotated"
    );
    let stats = within(HANG, daemon.shutdown(), "shutdown").await;
    let reasons: Vec<Reason> = stats.rotations.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, [Reason::Size, Reason::Size, Reason::Asked]);
    let files = read_all(dir.path());
    let shape: Vec<(&str, usize, usize)> = files
        .iter()
        .map(|f| (f.name.as_str(), f.size, f.entries.len()))
        .collect();
    assert_eq!(
        shape,
        [
            ("@000001.s", 100, 4),
            ("@000002.s", 100, 4),
            ("@000003.s", 50, 2),
            ("current", 0, 0)
        ]
    );
    assert_eq!(bodies(&files), lines("line", 10));
}

#[overlap::test(start_paused = true)]
async fn the_timer_rotates_on_the_paused_clock() {
    let dir = TempDir::new("rotator-timer");
    let mut cfg = Config::new(dir.path());
    cfg.every = Some(Duration::from_secs(60));
    let daemon = Daemon::start(cfg).await.unwrap();
    let start = overlap::time::Instant::now();
    unix_client(&daemon.socket_path, lines("first", 3)).await;
    wait_for(&daemon, "3 lines", |s| s.lines_written == 3).await;
    wait_for(&daemon, "the first tick", |s| s.rotations.len() == 1).await;
    unix_client(&daemon.socket_path, lines("second", 2)).await;
    wait_for(&daemon, "5 lines", |s| s.lines_written == 5).await;
    assert!(start.elapsed() < Duration::from_secs(120));
    wait_for(&daemon, "the second rotation", |s| s.rotations.len() == 2).await;
    // The ticks in between found `current` empty and rotated nothing.
    let at: Vec<(u64, Reason, Duration)> = daemon
        .stats()
        .rotations
        .iter()
        .map(|r| (r.seq, r.reason, r.at))
        .collect();
    let minute = Duration::from_secs(60);
    assert_eq!(
        at,
        [(1, Reason::Timer, minute), (2, Reason::Timer, 2 * minute)]
    );
    // A child does not hold the paused clock back: let it run for the compressor.
    overlap::time::resume();
    wait_for(&daemon, "both compressed", |s| s.compressed.len() == 2).await;
    let stats = within(HANG, daemon.shutdown(), "shutdown").await;
    assert_eq!(stats.rotations.len(), 2);
    let files = read_all(dir.path());
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["@000001.s", "@000002.s", "current"]);
    let times = |f: &check::FileLines| f.entries.iter().map(|e| e.time.clone()).collect::<Vec<_>>();
    assert!(
        times(&files[0]).iter().all(|t| t.starts_with("0.")),
        "{:?}",
        times(&files[0])
    );
    assert!(
        times(&files[1]).iter().all(|t| t.starts_with("60.")),
        "{:?}",
        times(&files[1])
    );
    let mut expected = lines("first", 3);
    expected.extend(lines("second", 2));
    assert_eq!(bodies(&files), expected);
}

#[overlap::test]
async fn a_failing_compressor_keeps_the_u_file_and_the_next_rotation_retries_it() {
    let dir = TempDir::new("rotator-fail");
    let mut cfg = Config::new(dir.path());
    cfg.compressor = ["sh", "-c", "echo disk on fire >&2; exit 3"]
        .map(Into::into)
        .to_vec();
    let daemon = Daemon::start(cfg).await.unwrap();
    within(
        HANG,
        unix_client(&daemon.socket_path, lines("one", 3)),
        "client",
    )
    .await;
    wait_for(&daemon, "3 lines", |s| s.lines_written == 3).await;
    let before = std::fs::read(dir.join("current")).unwrap();
    assert_eq!(daemon.rotate().await, Some(1));
    wait_for(&daemon, "the failure", |s| !s.compress_failures.is_empty()).await;
    let failure = daemon.stats().compress_failures[0].clone();
    assert!(
        failure.contains("@000001.u")
            && failure.contains("exit status: 3")
            && failure.contains("disk on fire"),
        "{failure}"
    );
    assert_eq!(
        std::fs::read(dir.join("@000001.u")).unwrap(),
        before,
        "left intact"
    );
    assert!(!dir.join("@000001.s").exists() && !dir.join("@000001.s.tmp").exists());

    daemon.set_compressor(&["gzip", "-c"]);
    within(
        HANG,
        unix_client(&daemon.socket_path, lines("two", 2)),
        "client",
    )
    .await;
    wait_for(&daemon, "5 lines", |s| s.lines_written == 5).await;
    assert_eq!(daemon.rotate().await, Some(2));
    wait_for(&daemon, "both compressed", |s| s.compressed.len() == 2).await;
    let stats = within(HANG, daemon.shutdown(), "shutdown").await;
    assert_eq!(stats.compressed, [1, 2], "the old one first");
    assert_eq!(stats.compress_failures.len(), 1);
    let files = read_all(dir.path());
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["@000001.s", "@000002.s", "current"]);
    let mut expected = lines("one", 3);
    expected.extend(lines("two", 2));
    assert_eq!(bodies(&files), expected);
}

#[overlap::test]
async fn retention_keeps_the_newest_three() {
    let dir = TempDir::new("rotator-keep");
    let mut cfg = Config::new(dir.path());
    cfg.keep = 3;
    let daemon = Daemon::start(cfg).await.unwrap();
    for i in 0..6 {
        let line = format!("rotation {i}");
        within(HANG, unix_client(&daemon.socket_path, vec![line]), "client").await;
        wait_for(&daemon, "the line", |s| s.lines_written == i + 1).await;
        assert_eq!(daemon.rotate().await, Some(i + 1));
    }
    wait_for(&daemon, "all compressed", |s| s.compressed.len() == 6).await;
    wait_for(&daemon, "three deleted", |s| s.deleted.len() == 3).await;
    let stats = within(HANG, daemon.shutdown(), "shutdown").await;
    assert_eq!(stats.compressed, [1, 2, 3, 4, 5, 6]);
    assert_eq!(stats.deleted, [1, 2, 3]);
    let files = read_all(dir.path());
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["@000004.s", "@000005.s", "@000006.s", "current"]);
    assert_eq!(bodies(&files), ["rotation 3", "rotation 4", "rotation 5"]);
}

#[overlap::test]
async fn a_mebibyte_without_a_newline_is_cut_at_the_max_line_length() {
    let dir = TempDir::new("rotator-long");
    let mut cfg = Config::new(dir.path());
    cfg.max_line = 100;
    let daemon = Daemon::start(cfg).await.unwrap();
    within(
        HANG,
        async {
            let mut long = overlap::net::UnixStream::connect(&daemon.socket_path)
                .await
                .unwrap();
            use overlap::io::AsyncWriteExt;
            let huge = vec![b'x'; 1 << 20];
            overlap::join!(
                async {
                    long.write_all(&huge).await.unwrap();
                    long.write_all(b"\nafter\n").await.unwrap();
                    long.close().await.unwrap();
                },
                unix_client(&daemon.socket_path, lines("beside", 5)),
                udp_client(daemon.udp_addr, vec!["y".repeat(300)]),
            );
            wait_for(&daemon, "8 lines", |s| s.lines_written == 8).await;
        },
        "clients",
    )
    .await;
    let stats = within(HANG, daemon.shutdown(), "shutdown").await;
    assert_eq!(stats.lines_cut, 2);
    let got = bodies(&read_all(dir.path()));
    let x_then_after: Vec<&String> = got
        .iter()
        .filter(|b| b.starts_with('x') || *b == "after")
        .collect();
    assert_eq!(x_then_after, [&"x".repeat(100), &"after".to_string()]);
    let mut expected: BTreeSet<String> = lines("beside", 5).into_iter().collect();
    expected.extend(["x".repeat(100), "after".into(), "y".repeat(100)]);
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(stats.lines_written, 8);
}

#[overlap::test]
async fn clients_vanishing_and_empty_datagrams_break_nothing() {
    let dir = TempDir::new("rotator-vanish");
    let daemon = Daemon::start(Config::new(dir.path())).await.unwrap();
    use overlap::io::AsyncWriteExt;
    within(
        HANG,
        async {
            // Gone at once.
            drop(
                overlap::net::UnixStream::connect(&daemon.socket_path)
                    .await
                    .unwrap(),
            );
            // Gone mid-line: the half line is written as it is.
            let mut half = overlap::net::UnixStream::connect(&daemon.socket_path)
                .await
                .unwrap();
            half.write_all(b"whole\nhalf a li").await.unwrap();
            drop(half);
            udp_client(
                daemon.udp_addr,
                vec!["".into(), "\n".into(), "a\nb\n".into()],
            )
            .await;
            wait_for(&daemon, "3 lines", |s| s.lines_written == 3).await;
            unix_client(&daemon.socket_path, vec!["still served".into()]).await;
            wait_for(&daemon, "4 lines", |s| s.lines_written == 4).await;
        },
        "clients",
    )
    .await;
    let stats = within(HANG, daemon.shutdown(), "shutdown").await;
    assert_eq!(
        (stats.clients, stats.empty_datagrams, stats.lines_cut),
        (3, 2, 0)
    );
    let got = bodies(&read_all(dir.path()));
    let got: BTreeSet<&str> = got.iter().map(String::as_str).collect();
    assert_eq!(
        got,
        BTreeSet::from(["whole", "half a li", "a b", "still served"])
    );
}
