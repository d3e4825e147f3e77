//! The tests of the follow API: every entry once and in order across rotations, from the
//! start, the middle and a seq not yet written; a slow follower cut off while a fast one
//! goes on; bad, vanishing and silent requests each ending only their own session.

use crate::client::{read_journal, Follower, Logger};
use crate::daemon::{Config, Daemon};
use crate::format::Record;
use crate::support::{self, within, TempDir};
use crate::{send_numbered, small_files, HANG};

#[overlap::test(start_paused = true)]
async fn a_follower_sees_every_entry_once_in_order_across_rotations() {
    let dir = TempDir::new("journal-follow");
    within(
        HANG,
        async {
            let d = Daemon::start(small_files(&dir, 20)).await.unwrap();
            let log = Logger::new(&d.socket_path);
            send_numbered(&log, 1, 5).await;
            d.written(5).await;
            let mut from_start = Follower::start(&d.follow_path, 1).await;
            let mut from_mid = Follower::start(&d.follow_path, 4).await;
            // The past, from the files (two of them already).
            for seq in 1..=5 {
                assert_eq!(from_start.entry().await.seq, seq);
            }
            for seq in 4..=5 {
                assert_eq!(from_mid.entry().await.seq, seq);
            }
            // Live ones, across six more rotations, in small batches.
            for batch in 0..5 {
                send_numbered(&log, 6 + batch * 5, 5).await;
                for seq in 6 + batch as u64 * 5..11 + batch as u64 * 5 {
                    let e = from_start.entry().await;
                    assert_eq!(e.seq, seq);
                    assert_eq!(e.msg, format!("rotation entry {seq:02}").into_bytes());
                    assert_eq!(from_mid.entry().await.seq, seq);
                }
            }
            assert_eq!(d.stats().rotations, 9);
            let (on_disk, _) = read_journal(dir.path());
            assert_eq!(on_disk.len(), 30);
            // Nothing more: the shutdown ends both with EOF.
            d.shutdown().await;
            assert!(from_start.rest().await.is_empty());
            assert!(from_mid.rest().await.is_empty());
        },
        "follow",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_slow_follower_is_cut_off_while_a_fast_one_goes_on() {
    let dir = TempDir::new("journal-slow");
    within(
        HANG,
        async {
            let mut cfg = Config::new(dir.path().to_owned());
            // No rate limit here (its default burst is 1000 a window).
            (cfg.follow_lag, cfg.burst) = (8, u32::MAX);
            let d = Daemon::start(cfg).await.unwrap();
            let log = Logger::new(&d.socket_path);
            let mut fast = Follower::start(&d.follow_path, 1).await;
            let mut slow = Follower::start(&d.follow_path, 1).await;
            support::until(|| d.shared.live.receiver_count() == 2, "two subscribed").await;
            // 1500 entries of 238 bytes: more than a Unix stream's buffer holds, in
            // batches of 4, the fast follower reading each batch before the next.
            const N: u64 = 1500;
            let body = "x".repeat(200);
            for batch in 0..N / 4 {
                for _ in 0..4 {
                    log.log(6, &body).await;
                }
                for seq in batch * 4 + 1..=batch * 4 + 4 {
                    assert_eq!(fast.entry().await.seq, seq);
                }
            }
            assert_eq!(d.stats().written, N);
            // The slow one: a prefix in order, then the marker naming the first it missed.
            let mut next = 1;
            let cut = loop {
                match slow.next().await.unwrap() {
                    Some(Record::Entry(e, _)) => {
                        assert_eq!(e.seq, next);
                        next += 1;
                    }
                    Some(Record::Cut(at)) => break at,
                    other => panic!("{other:?}"),
                }
            };
            assert_eq!(cut, next);
            assert!(cut > 100 && cut < N, "cut at {cut}");
            assert!(slow.rest().await.is_empty(), "closed after the marker");
            assert_eq!(d.stats().followers_cut, 1);
            // The fast one still follows.
            log.log(6, "after the cut").await;
            let e = fast.entry().await;
            assert_eq!((e.seq, e.msg), (N + 1, b"after the cut".to_vec()));
            d.shutdown().await;
        },
        "slow follower",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn bad_silent_and_vanishing_follow_requests_end_their_sessions_only() {
    let dir = TempDir::new("journal-requests");
    within(
        HANG,
        async {
            use overlap::io::AsyncWriteExt;
            use overlap::net::UnixStream;
            let d = Daemon::start(Config::new(dir.path().to_owned()))
                .await
                .unwrap();
            let baseline = overlap::metrics().tasks_alive;
            let mut good = Follower::start(&d.follow_path, 1).await;
            for request in [&b"HELLO\n"[..], b"FOLLOW x\n", b"FOLLOW -1\n", &[b'F'; 100]] {
                let mut s = UnixStream::connect(&d.follow_path).await.unwrap();
                s.write_all(request).await.unwrap();
                let mut f = Follower::from_stream(s);
                assert_eq!(f.rest().await, b"ERR bad request\n");
            }
            // Gone in the middle of its request line.
            let mut s = UnixStream::connect(&d.follow_path).await.unwrap();
            s.write_all(b"FOLL").await.unwrap();
            drop(s);
            support::until(|| d.stats().bad_requests == 5, "5 bad requests").await;
            // Silent: closed when the request's time is up (the paused clock jumps there).
            let silent = UnixStream::connect(&d.follow_path).await.unwrap();
            assert!(Follower::from_stream(silent).rest().await.is_empty());
            assert_eq!(d.stats().request_timeouts, 1);
            // The good follower was not disturbed, and only its task (and the daemon's)
            // is left.
            Logger::new(&d.socket_path).log(6, "still here").await;
            assert_eq!(good.entry().await.msg, b"still here");
            support::until(
                || overlap::metrics().tasks_alive == baseline + 1,
                "tasks end",
            )
            .await;
            assert_eq!(d.stats().followers, 7);
            d.shutdown().await;
        },
        "requests",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_follower_from_a_future_seq_gets_nothing_before_it() {
    let dir = TempDir::new("journal-future");
    within(
        HANG,
        async {
            let d = Daemon::start(Config::new(dir.path().to_owned()))
                .await
                .unwrap();
            let log = Logger::new(&d.socket_path);
            log.log(6, "one").await;
            d.written(1).await;
            let mut f = Follower::start(&d.follow_path, 4).await;
            support::until(|| d.shared.live.receiver_count() == 1, "subscribed").await;
            for m in ["two", "three", "four", "five"] {
                log.log(6, m).await;
            }
            let e = f.entry().await;
            assert_eq!((e.seq, e.msg), (4, b"four".to_vec()));
            assert_eq!(f.entry().await.seq, 5);
            d.shutdown().await;
            assert!(f.rest().await.is_empty());
        },
        "future",
    )
    .await;
}
