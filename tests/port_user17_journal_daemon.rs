//! A user's journald-like logging daemon, sketched as one would for tokio, then written for
//! overlap by changing `tokio::` and `tokio_util::` to `overlap::`: the journal file format
//! (`port_user17_journal_daemon/format.rs`), the files with recovery, rotation and retention
//! (`journal.rs`), per-pid rate limiting (`ratelimit.rs`), the datagram socket and the
//! shutdown (`daemon.rs`), the follow API (`follow.rs`), and the tests' logging client,
//! follower, child process and journal reader (`client.rs`); the tests of the follow API
//! are in `following.rs`, those of recovery in `recovery.rs`, the rest here.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::net::{UnixDatagram, UnixListener};
//! use tokio::sync::broadcast::{self, error::RecvError};
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//!
//! // The socket: the sender's pid/uid/gid from the kernel, never from the record.
//! let socket = UnixDatagram::bind(dir.join("journal.sock"))?;
//! nix::sys::socket::setsockopt(&socket, PassCred, &true)?;   // tokio has no set_passcred
//! loop {
//!     let deadline = limiter.next_deadline();
//!     tokio::select! {
//!         _ = token.cancelled() => return,
//!         // tokio has no recv_from_with_cred: recvmsg with SCM_CREDENTIALS by hand,
//!         // in socket.async_io(Interest::READABLE, || nix::sys::socket::recvmsg(..))
//!         r = recv_with_cred(&socket, &mut buf) => { /* parse `<P>msg`, rate limit, append */ }
//!         _ = tokio::time::sleep_until(deadline.unwrap()), if deadline.is_some() => {
//!             /* one "suppressed N messages" entry per ended window */
//!         }
//!     }
//! }
//! // Appending: positional writes at the end offset (tokio: std's FileExt::write_all_at
//! // in spawn_blocking, the file in an Arc).
//! let f = file.clone();
//! buf = spawn_blocking(move || f.write_all_at(&buf, offset).map(|_| buf)).await??;
//! // Rotation: footer, sync, new file, the oldest past `keep` removed.
//! tokio::fs::remove_file(&oldest).await?;
//! // Recovery: the newest file scanned, a torn tail cut.
//! file.set_len(good_end).await?;
//! // Following: subscribe, then the files, then live; lagging = cut off with a marker.
//! let mut rx = live.subscribe();
//! for f in files { /* spawn_blocking(read_at) the file, entries >= next */ }
//! loop {
//!     match rx.recv().await {
//!         Ok((seq, rec)) if seq >= next => { wr.write_all(&rec).await?; next = seq + 1 }
//!         Ok(_) => {}
//!         Err(RecvError::Lagged(_)) => { wr.write_all(&marker(next)).await?; break }
//!         Err(RecvError::Closed) => break,
//!     }
//! }
//! // Shutdown.
//! token.cancel(); tracker.close(); tracker.wait().await;
//! ```
//!
//! The tests check, over a real Unix datagram socket and a real Unix stream socket in a
//! temp dir, with real files, on the paused clock: records from this process carrying its
//! real pid, uid and gid, exact in the file (seq, ms, priority, message); a python3 child's
//! records carrying the child's pid whatever their text claims; malformed datagrams (empty,
//! cut before `>`, a bad priority, one byte over the limit) counted and ignored while one
//! exactly at the limit is written; rate limiting with exact counts (the burst written, the
//! excess dropped, one "suppressed N messages" entry when the window ends, a new window
//! after) and per pid (this process limited, the child not); rotation and retention with
//! the exact set of files left, each sealed one's footer, and none over the limit; a
//! follower from seq 1 seeing every entry exactly once in order across rotations, one from
//! the middle starting there; a slow follower cut off with a marker while a fast one gets
//! everything; a follower from a seq not yet written getting nothing before it; bad follow
//! requests, a follower vanishing mid-request and a silent one timed out, each ending only
//! its own session; the record format's every cut and every bit flip caught; recovery after a
//! torn write and after a corrupt last entry (cut off, the seq continued), and after a
//! sealed file (a new file); and no task and no fd left at shutdown.
//!
//! What the user got wrong at first, in both runtimes: the slow-follower test sent 1500
//! records from one pid with the default burst of 1000 a window, so the rate limiter
//! dropped the rest and the fast follower waited for entries that never came; and the
//! entries' timestamps counted from the receive task's first poll, not from `start`.
//!
//! The tests were run with the daemon broken on purpose, one fault at a time: a burst of
//! one more than allowed failed both rate-limit tests; recovery not cutting the torn tail
//! failed the torn-write test; a follower not skipping what it has already sent (or what
//! it did not ask for) failed the future-seq test, though not the rotation one, where no
//! entry is both in a file read for the catch-up and in the channel.
//!
//! What porting it found missing
//! -----------------------------
//!
//! Nothing that tokio has: overlap has more here than tokio does. tokio's `UnixDatagram`
//! has no `set_passcred` and no way to receive `SCM_CREDENTIALS` (the sketch needs
//! `nix` and a hand-written `recvmsg` in `async_io`); overlap's `set_passcred` and
//! `recv_from_with_cred` did it in two lines, and gave the child's pid, not the one its
//! text claimed. tokio has no positional file either (the sketch needs std's `FileExt` in
//! `spawn_blocking` with the file in an `Arc`); `PositionalFile::write_vec_at` took the
//! entry's buffer and handed it back for the next one, `read_vec_at` read a whole file for
//! a follower's catch-up, and `set_len`/`sync_all`/`sync_data`/`metadata` were there for
//! recovery and sealing. `broadcast` with `RecvError::Lagged`, `watch::Receiver::wait_for`,
//! `CancellationToken`, `TaskTracker`, `select!` with an `if` precondition,
//! `time::sleep_until`, `timeout`, `fs::read_dir`/`remove_file`, `OpenOptions::create_new`
//! and `process::Command` all have their tokio names and behaved as tokio's would.
//!
//! Awkward, as it would be with tokio too:
//!
//! - The paused clock auto-advances while the runtime waits on a child process (its docs
//!   say so): with the rate limiter's window timer armed, a test waiting for a python3
//!   child would see the window end meanwhile. The two tests with a child run on the real
//!   clock, and the per-pid one pauses it (`time::pause`, then `advance`) only after the
//!   child is done.
//! - Waiting for "n entries written" by polling with `sleep(1ms)` moves a paused clock a
//!   millisecond a round, which showed in the entries' timestamps (1501 instead of 1500);
//!   the daemon publishes its count on a `watch` instead, and the tests `wait_for` it.
//! - overlap's Unix stream sockets have no `SO_SNDBUF` setter (`UnixStream` and
//!   `UnixSocket`; tokio's `UnixStream` has none either, as far as I know), so the daemon
//!   keeps the kernel's default for its followers and the slow-follower test writes 1500
//!   entries (about 350 KiB) before the stalled follower's write blocks and the live feed
//!   laps it; a user wanting a smaller buffer would `setsockopt` on the raw fd.
//! - A follower that stops reading holds its task (blocked in `write_all`) until it reads
//!   again or the daemon shuts down: `Lagged` is only seen at its next `recv`. The daemon
//!   itself never waits for it (the `broadcast` send does not block), which is what the
//!   slow-follower test checks; the marker then goes out once the follower reads again.
//! - A follower starting from a seq whose file retention already deleted starts, silently,
//!   at the oldest entry left (the shutdown test shows it); a real daemon would say so.

mod support;

#[path = "port_user17_journal_daemon/client.rs"]
mod client;
#[path = "port_user17_journal_daemon/daemon.rs"]
mod daemon;
#[path = "port_user17_journal_daemon/follow.rs"]
mod follow;
#[path = "port_user17_journal_daemon/following.rs"]
mod following;
#[path = "port_user17_journal_daemon/format.rs"]
mod format;
#[path = "port_user17_journal_daemon/journal.rs"]
mod journal;
#[path = "port_user17_journal_daemon/ratelimit.rs"]
mod ratelimit;
#[path = "port_user17_journal_daemon/recovery.rs"]
mod recovery;

use std::time::Duration;

use client::{child_logs, ids, messages, read_journal, Follower, Logger};
use daemon::{Config, Daemon};
use format::Record;
use journal::path_of;
use support::{within, TempDir};

/// A hang guard only (virtual time on the paused clock).
const HANG: Duration = Duration::from_secs(24 * 3600);
/// A hang guard only, on the real clock.
const REAL_HANG: Duration = Duration::from_secs(120);
const HOUR: Duration = Duration::from_secs(3600);

fn me() -> i32 {
    std::process::id() as i32
}

/// Config with small files: 3 entries of a 17-byte message fit in one (16 + 3 * 55 + the
/// 21-byte footer = 202 bytes; a fourth would make 257).
fn small_files(dir: &TempDir, keep: usize) -> Config {
    Config {
        max_file: 256,
        keep,
        ..Config::new(dir.path().to_owned())
    }
}

#[overlap::test(start_paused = true)]
async fn records_carry_this_process_kernel_checked_ids() {
    let dir = TempDir::new("journal-ids");
    within(
        HANG,
        async {
            let d = Daemon::start(Config::new(dir.path().to_owned()))
                .await
                .unwrap();
            let log = Logger::new(&d.socket_path);
            log.log(6, "hello").await;
            log.log(3, "pid=1 uid=0 says the text").await;
            // Stamped when the daemon takes it, on the runtime's clock.
            d.written(2).await;
            overlap::time::advance(Duration::from_millis(1500)).await;
            log.log(0, "").await;
            d.written(3).await;
            assert_eq!(d.stats().received, 3);
            d.shutdown().await;
            let (entries, files) = read_journal(dir.path());
            let (uid, gid) = ids();
            assert_eq!(files, vec![(1, false, 16 + 38 * 3 + 5 + 25)]);
            let got: Vec<_> = entries
                .iter()
                .map(|e| (e.seq, e.pid, e.uid, e.gid, e.prio))
                .collect();
            assert_eq!(
                got,
                vec![
                    (1, me(), uid, gid, 6),
                    (2, me(), uid, gid, 3),
                    (3, me(), uid, gid, 0)
                ]
            );
            assert_eq!(
                messages(&entries),
                ["hello", "pid=1 uid=0 says the text", ""]
            );
            assert_eq!((entries[1].ms, entries[2].ms), (0, 1500));
        },
        "ids",
    )
    .await;
}

#[overlap::test]
async fn a_child_process_records_carry_the_childs_pid() {
    let dir = TempDir::new("journal-child");
    // The clock runs: a paused one would auto-advance while the child runs.
    within(
        REAL_HANG,
        async {
            let d = Daemon::start(Config::new(dir.path().to_owned()))
                .await
                .unwrap();
            let pid = child_logs(&d.socket_path, 2).await;
            Logger::new(&d.socket_path).log(5, "parent").await;
            d.written(3).await;
            d.shutdown().await;
            let (entries, _) = read_journal(dir.path());
            let got: Vec<_> = entries.iter().map(|e| (e.pid, e.prio)).collect();
            assert_eq!(got, vec![(pid as i32, 4), (pid as i32, 4), (me(), 5)]);
            assert_ne!(pid as i32, me());
            assert_eq!(
                messages(&entries),
                ["child says pid=1 #0", "child says pid=1 #1", "parent"]
            );
        },
        "child",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn malformed_datagrams_are_counted_and_ignored() {
    let dir = TempDir::new("journal-malformed");
    within(
        HANG,
        async {
            let mut cfg = Config::new(dir.path().to_owned());
            cfg.max_msg = 32;
            let d = Daemon::start(cfg).await.unwrap();
            let log = Logger::new(&d.socket_path);
            log.raw(b"").await;
            log.raw(b"<").await;
            log.raw(b"<6").await;
            log.raw(b"no priority at all").await;
            log.raw(b"<8>eight").await;
            log.raw(b"<a>letter").await;
            log.raw(b"<12>two digits").await;
            log.raw(&[b"<6>".as_slice(), &[b'x'; 33]].concat()).await;
            log.raw(&[b"<6>".as_slice(), &[b'y'; 5000]].concat()).await;
            log.raw(&[b"<7>".as_slice(), &[b'z'; 32]].concat()).await;
            log.log(1, "after").await;
            d.written(2).await;
            support::until(|| d.stats().received == 11, "all taken").await;
            let st = d.stats();
            assert_eq!(
                (
                    st.truncated,
                    st.bad_priority,
                    st.oversized,
                    st.written,
                    st.no_cred
                ),
                (4, 3, 2, 2, 0)
            );
            d.shutdown().await;
            let (entries, _) = read_journal(dir.path());
            assert_eq!(messages(&entries), ["z".repeat(32), "after".to_owned()]);
            assert_eq!((entries[0].seq, entries[1].seq), (1, 2));
        },
        "malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn rate_limit_writes_the_burst_and_one_suppressed_entry_per_window() {
    let dir = TempDir::new("journal-rate");
    within(
        HANG,
        async {
            let mut cfg = Config::new(dir.path().to_owned());
            (cfg.burst, cfg.window) = (5, Duration::from_secs(10));
            let d = Daemon::start(cfg).await.unwrap();
            let log = Logger::new(&d.socket_path);
            for i in 0..12 {
                log.log(6, &format!("a{i}")).await;
            }
            support::until(|| d.stats().received == 12, "12 taken").await;
            assert_eq!((d.stats().written, d.stats().suppressed), (5, 7));
            // The window ends (the paused clock jumps there): its suppressed count.
            d.written(6).await;
            // A new window: 5 again, 1 over, and its count when it ends.
            for i in 0..6 {
                log.log(6, &format!("b{i}")).await;
            }
            d.written(12).await;
            // A window with nothing suppressed owes nothing.
            overlap::time::advance(Duration::from_secs(60)).await;
            log.log(6, "c0").await;
            d.written(13).await;
            overlap::time::advance(Duration::from_secs(60)).await;
            support::settle().await;
            assert_eq!(d.stats().written, 13);
            assert_eq!(d.stats().suppressed, 8);
            d.shutdown().await;
            let (entries, _) = read_journal(dir.path());
            let want = [
                "a0",
                "a1",
                "a2",
                "a3",
                "a4",
                "suppressed 7 messages",
                "b0",
                "b1",
                "b2",
                "b3",
                "b4",
                "suppressed 1 messages",
                "c0",
            ];
            assert_eq!(messages(&entries), want);
            assert_eq!(entries[5].ms, 10_000, "written when the window ended");
            assert_eq!((entries[5].pid, entries[5].prio), (me(), 5));
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=13).collect::<Vec<_>>());
        },
        "rate",
    )
    .await;
}

/// The clock runs while the child does (a paused one would auto-advance meanwhile), then
/// is paused for the window to end.
#[overlap::test]
async fn rate_limit_is_per_pid() {
    let dir = TempDir::new("journal-rate-pid");
    within(
        2 * HOUR,
        async {
            let mut cfg = Config::new(dir.path().to_owned());
            (cfg.burst, cfg.window) = (3, HOUR);
            let d = Daemon::start(cfg).await.unwrap();
            let child = child_logs(&d.socket_path, 3).await as i32;
            d.written(3).await;
            let log = Logger::new(&d.socket_path);
            for i in 0..5 {
                log.log(6, &format!("parent {i}")).await;
            }
            support::until(|| d.stats().received == 8, "8 taken").await;
            assert_eq!((d.stats().written, d.stats().suppressed), (6, 2));
            overlap::time::pause();
            overlap::time::advance(HOUR).await;
            d.written(7).await; // the hour ended: the parent's count, none for the child
            d.shutdown().await;
            let (entries, _) = read_journal(dir.path());
            let got: Vec<_> = entries
                .iter()
                .map(|e| (e.pid, String::from_utf8(e.msg.clone()).unwrap()))
                .collect();
            let want: Vec<(i32, String)> = vec![
                (child, "child says pid=1 #0".into()),
                (child, "child says pid=1 #1".into()),
                (child, "child says pid=1 #2".into()),
                (me(), "parent 0".into()),
                (me(), "parent 1".into()),
                (me(), "parent 2".into()),
                (me(), "suppressed 2 messages".into()),
            ];
            assert_eq!(got, want);
        },
        "rate per pid",
    )
    .await;
}

/// Sends `n` records `rotation entry NN` (17 bytes each) from `first`.
async fn send_numbered(log: &Logger, first: u32, n: u32) {
    for i in first..first + n {
        log.log(6, &format!("rotation entry {i:02}")).await;
    }
}

#[overlap::test(start_paused = true)]
async fn rotation_and_retention_leave_the_exact_files() {
    let dir = TempDir::new("journal-rotate");
    within(
        HANG,
        async {
            let d = Daemon::start(small_files(&dir, 3)).await.unwrap();
            send_numbered(&Logger::new(&d.socket_path), 1, 20).await;
            d.written(20).await;
            let st = d.stats();
            assert_eq!((st.rotations, st.removed), (6, 4));
            d.shutdown().await;
            let (entries, files) = read_journal(dir.path());
            // 3 entries a file: files 1-6 full and sealed, 7 with two; 1-4 deleted.
            assert_eq!(files, vec![(5, true, 202), (6, true, 202), (7, false, 126)]);
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (13..=20).collect::<Vec<_>>());
            assert_eq!(messages(&entries)[0], "rotation entry 13");
            let sealed = std::fs::read(path_of(dir.path(), 6)).unwrap();
            let scan = format::scan(&sealed).unwrap();
            assert_eq!(
                (scan.index, scan.first_seq, scan.footer),
                (6, 16, Some((18, 3)))
            );
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert_eq!(
                names,
                [
                    "journal-000005.jnl",
                    "journal-000006.jnl",
                    "journal-000007.jnl"
                ]
            );
        },
        "rotation",
    )
    .await;
}

/// What `/proc/self/fd/{fd}` names now, if anything.
fn fd_link(fd: i32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

#[overlap::test(start_paused = true)]
async fn shutdown_leaves_no_task_no_fd_and_no_socket_file() {
    let dir = TempDir::new("journal-shutdown");
    within(
        HANG,
        async {
            let baseline = overlap::metrics().tasks_alive;
            let d = Daemon::start(small_files(&dir, 2)).await.unwrap();
            let log = Logger::new(&d.socket_path);
            send_numbered(&log, 1, 7).await;
            d.written(7).await;
            let mut f = Follower::start(&d.follow_path, 1).await;
            for seq in 4..=7 {
                // Files 1 was deleted by retention: the follower starts at what is left.
                assert_eq!(f.entry().await.seq, seq);
            }
            // One more follower, in the middle of its request.
            let mut half = overlap::net::UnixStream::connect(&d.follow_path)
                .await
                .unwrap();
            overlap::io::AsyncWriteExt::write_all(&mut half, b"FOLLOW")
                .await
                .unwrap();
            support::until(|| d.stats().followers == 2, "both accepted").await;
            assert_eq!(overlap::metrics().tasks_alive, baseline + 4);
            let journal_fd = d.shared.journal_fd.get();
            let journal_path = path_of(dir.path(), 3);
            assert_eq!(fd_link(journal_fd).as_deref(), Some(journal_path.as_path()));
            let (sock_fd, listener_fd) = (d.socket_fd, d.listener_fd);
            let (sock, listener) = (fd_link(sock_fd), fd_link(listener_fd));
            assert!(sock.is_some() && listener.is_some());
            let (sock_path, follow_path) = (d.socket_path.clone(), d.follow_path.clone());
            let weak = d.shutdown().await;
            assert!(
                weak.upgrade().is_none(),
                "a task still holds the daemon's state"
            );
            assert_eq!(overlap::metrics().tasks_alive, baseline);
            // Another test's fd may take a number: then it names something else.
            assert_ne!(fd_link(journal_fd).as_deref(), Some(journal_path.as_path()));
            // A socket's link names its inode, which no other socket has.
            assert_ne!(fd_link(sock_fd), sock);
            assert_ne!(fd_link(listener_fd), listener);
            assert!(Follower::from_stream(half).rest().await.is_empty());
            assert!(f.rest().await.is_empty());
            assert!(!sock_path.exists() && !follow_path.exists());
            assert_eq!(read_journal(dir.path()).1.len(), 2);
        },
        "shutdown",
    )
    .await;
}

#[test]
fn records_decode_exactly_and_every_cut_or_flip_is_caught() {
    let e = format::Entry {
        seq: 42,
        ms: 7,
        pid: -1,
        uid: 1000,
        gid: 100,
        prio: 3,
        msg: b"disk full".to_vec(),
    };
    let mut rec = Vec::new();
    format::encode_entry(&e, &mut rec);
    assert_eq!(rec.len(), 38 + 9);
    assert_eq!(format::decode(&rec), Record::Entry(e.clone(), rec.len()));
    // Followed by more bytes: the record's own length only.
    let mut two = rec.clone();
    two.extend_from_slice(&format::marker(43));
    assert_eq!(format::decode(&two), Record::Entry(e, rec.len()));
    assert_eq!(format::decode(&two[rec.len()..]), Record::Cut(43));
    for cut in 0..rec.len() {
        assert_eq!(format::decode(&rec[..cut]), Record::Short, "cut at {cut}");
    }
    for at in 5..rec.len() {
        let mut bad = rec.clone();
        bad[at] ^= 1;
        assert_eq!(format::decode(&bad), Record::Bad, "flip at {at}");
    }
    // A length that no entry has, a tag that no record has.
    let mut huge = rec.clone();
    huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(format::decode(&huge), Record::Bad);
    assert_eq!(format::decode(b"Zzz"), Record::Bad);
    let footer = format::footer(9, 3);
    assert_eq!(format::decode(&footer), Record::Footer(9, 3));
    // A known CRC-32 value ("123456789").
    assert_eq!(format::crc32(b"123456789"), 0xCBF4_3926);
}
