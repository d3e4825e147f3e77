//! Tests of the pool's life as a whole: the graceful reload, the shutdown deadline with a
//! subreaper master, fds after a whole cycle, and the heartbeat and back-off on their own
//! (the heartbeat on the paused clock, with the test as the worker).

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::UnixStream;
use overlap::time::Instant;

use super::backoff::Backoff;
use super::heartbeat::{Beat, Heartbeat};
use super::pool::{Config, Event, ExitReason};
use super::support::{self, open_fds, process_state, run_in_child, within, TempDir};
use super::worker::Setup;
use super::{ask, connect, line, next_event, pid_over, start, started, sys, HANG};

#[overlap::test]
async fn a_reload_lets_the_request_in_flight_on_an_old_worker_finish() {
    let (pool, mut events) = start(Config::new(2)).await;
    let old: BTreeSet<u32> = started(&mut events, 2).await;
    let mut busy = connect(&pool).await;
    let busy_pid = pid_over(&mut busy).await;
    assert_eq!(ask(&mut busy, "SLEEP 300").await, "SLEEPING 300");
    // The reload runs while the old worker is in the middle of that request.
    let (report, rest) = overlap::join!(pool.reload(), async {
        (line(&mut busy).await, line(&mut busy).await)
    });
    assert_eq!(
        rest,
        (Some("SLEPT 300".into()), None),
        "the whole answer, then the old worker closes"
    );
    let report = report.unwrap();
    assert_eq!(
        report.old.iter().map(|r| r.pid).collect::<BTreeSet<_>>(),
        old
    );
    assert!(
        report.old.iter().all(|r| r.status.code() == Some(0)),
        "both finished on SIGTERM: {:?}",
        report.old
    );
    let new: BTreeSet<u32> = report.new.iter().copied().collect();
    assert_eq!(new.len(), 2);
    assert!(new.is_disjoint(&old));
    assert!(old.contains(&busy_pid));
    // The new generation's Readys came before any old worker exited.
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(match next_event(&mut events).await {
            Event::Ready {
                generation: 2, pid, ..
            } if new.contains(&pid) => "ready",
            Event::Exited {
                reason: ExitReason::Retired,
                pid,
                ..
            } if old.contains(&pid) => "retired",
            other => panic!("{other:?}"),
        });
    }
    assert_eq!(order, ["ready", "ready", "retired", "retired"]);
    let (mut a, mut b) = (connect(&pool).await, connect(&pool).await);
    let seen: BTreeSet<u32> = [pid_over(&mut a).await, pid_over(&mut b).await].into();
    assert_eq!(seen, new);
    drop((a, b));
    pool.shutdown(HANG).await;
}

/// In a child process of its own: the master makes itself a subreaper there.
#[test]
fn the_shutdown_deadline_kills_a_hung_worker_and_its_grandchild_is_reaped() {
    run_in_child(
        "tests_lifecycle::the_shutdown_deadline_kills_a_hung_worker_and_its_grandchild_is_reaped",
        || {
            overlap::process::set_child_subreaper(true).unwrap();
            overlap::Runtime::new()
                .unwrap()
                .block_on(shutdown_kills_hung());
        },
    );
}

async fn shutdown_kills_hung() {
    let mut cfg = Config::new(2);
    cfg.reap_orphans = true;
    let (pool, mut events) = start(cfg).await;
    started(&mut events, 2).await;
    let pids = pool.pids().await;
    let mut c = connect(&pool).await;
    let hung = pid_over(&mut c).await;
    let hung_slot = pids.iter().position(|&p| p == hung).unwrap();
    let answer = ask(&mut c, "SPAWN").await;
    let grandchild: u32 = answer.strip_prefix("SPAWNED ").unwrap().parse().unwrap();
    let mut group = support::live_group_members(hung);
    group.sort();
    let mut want = vec![hung, grandchild];
    want.sort();
    assert_eq!(group, want, "the grandchild is in the worker's group");
    c.write_all(b"HANG\n").await.unwrap();
    let retired = pool.shutdown(Duration::from_secs(1)).await;
    let ends: Vec<(usize, u32, Option<i32>, Option<i32>)> = retired
        .iter()
        .map(|r| (r.slot, r.pid, r.status.code(), r.status.signal()))
        .collect();
    let idle_slot = 1 - hung_slot;
    let mut want = vec![
        (hung_slot, hung, None, Some(libc::SIGKILL)),
        (idle_slot, pids[idle_slot], Some(0), None),
    ];
    want.sort();
    assert_eq!(ends, want, "the idle one finished, the hung one was killed");
    let mut orphans = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::OrphanReaped { pid, status } = e {
            orphans.push((pid, status.signal()));
        }
    }
    assert_eq!(orphans, [(grandchild, Some(libc::SIGKILL))]);
    assert_eq!(process_state(grandchild), None, "reaped, not a zombie");
    let gone = sys::probe(grandchild).unwrap_err();
    assert_eq!(gone.raw_os_error(), Some(libc::ESRCH));
    assert_eq!(support::children(), "", "no child left");
}

/// In a child process of its own, so no other test's fds are counted.
#[test]
fn no_fd_is_left_in_the_master_after_a_whole_cycle() {
    run_in_child(
        "tests_lifecycle::no_fd_is_left_in_the_master_after_a_whole_cycle",
        || {
            overlap::Runtime::new().unwrap().block_on(whole_cycle());
        },
    );
}

async fn whole_cycle() {
    let dir = TempDir::new("user19-fds");
    let mut cfg = Config::new(2);
    cfg.unix_dir = Some(dir.path().to_owned());
    cfg.worker.max_requests = Some(2);
    // A first run, so what the runtime keeps for good (its blocking pool, signal pipe) is
    // in place before counting.
    let (pool, _events) = start(cfg.clone()).await;
    pool.shutdown(HANG).await;
    std::fs::remove_file(dir.join("pool.sock")).unwrap();
    let before = open_fds();
    let (pool, mut events) = start(cfg).await;
    started(&mut events, 2).await;
    let mut c = UnixStream::connect(pool.unix_path.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(ask(&mut c, "ECHO a").await, "a");
    assert_eq!(ask(&mut c, "ECHO b").await, "b");
    assert_eq!(line(&mut c).await, None, "recycled");
    drop(c);
    let mut c = connect(&pool).await;
    c.write_all(b"CRASH\n").await.unwrap();
    assert_eq!(line(&mut c).await, None, "crashed");
    drop(c);
    let mut exits = 0;
    while exits < 2 {
        if let Event::Exited { .. } = next_event(&mut events).await {
            exits += 1;
        }
    }
    within(HANG, pool.reload(), "the reload").await.unwrap();
    pool.shutdown(HANG).await;
    drop(events);
    std::fs::remove_file(dir.join("pool.sock")).unwrap();
    support::settle().await;
    assert_eq!(open_fds(), before);
}

#[overlap::test(start_paused = true)]
async fn the_heartbeat_is_missed_exactly_a_timeout_after_the_last_beat() {
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let timeout = Duration::from_millis(300);
    let t0 = Instant::now();
    let mut hb = Heartbeat::new(ours, timeout);
    // The test is the worker: ready, four beats 100 ms apart, then silence.
    let worker = overlap::spawn(async move {
        theirs.write_all(b"ready\n").await.unwrap();
        for _ in 0..4 {
            overlap::time::sleep(Duration::from_millis(100)).await;
            theirs.write_all(b"beat\n").await.unwrap();
        }
        theirs // kept silent by the test, then closed
    });
    let mut seen = Vec::new();
    for _ in 0..5 {
        let beat = hb.next().await;
        seen.push((beat, t0.elapsed()));
    }
    let ms = Duration::from_millis;
    assert_eq!(
        seen,
        [
            (Beat::Ready, ms(0)),
            (Beat::Alive, ms(100)),
            (Beat::Alive, ms(200)),
            (Beat::Alive, ms(300)),
            (Beat::Alive, ms(400)),
        ]
    );
    let theirs = worker.await.unwrap();
    let last = t0 + ms(400);
    assert_eq!(hb.next().await, Beat::Missed { since: last });
    assert_eq!(
        t0.elapsed(),
        ms(700),
        "exactly the timeout after the last beat"
    );
    // The clock starts again: missed once more a timeout later.
    assert_eq!(
        hb.next().await,
        Beat::Missed {
            since: t0 + ms(700)
        }
    );
    drop(theirs);
    assert_eq!(hb.next().await, Beat::Closed);
    assert_eq!(t0.elapsed(), ms(1000), "at once");
}

#[test]
fn the_back_off_doubles_and_the_worker_setup_names_a_bad_variable() {
    let ms = Duration::from_millis;
    let mut b = Backoff::new(ms(10), ms(50));
    let pauses: Vec<Duration> = (0..5).map(|_| b.failed()).collect();
    assert_eq!(pauses, [ms(10), ms(20), ms(40), ms(50), ms(50)]);
    assert_eq!(b.failures(), 5);
    b.succeeded();
    assert_eq!((b.failures(), b.failed()), (0, ms(10)));

    let env = |pairs: &'static [(&str, &str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let good: &'static [(&str, &str)] = &[
        ("PREFORK_LISTENERS", "2"),
        ("PREFORK_MAX_REQUESTS", "0"),
        ("PREFORK_BEAT_MS", "50"),
    ];
    assert_eq!(
        Setup::from_env(env(good)),
        Ok(Setup {
            listeners: 2,
            max_requests: None,
            beat: ms(50)
        })
    );
    let bad = |pairs: &'static [(&str, &str)]| Setup::from_env(env(pairs)).unwrap_err();
    assert_eq!(bad(&good[..2]), "PREFORK_BEAT_MS is not set");
    assert_eq!(
        bad(&[("PREFORK_LISTENERS", "3")]),
        "bad PREFORK_LISTENERS=3: 1 or 2"
    );
    assert_eq!(
        bad(&[("PREFORK_LISTENERS", "1"), ("PREFORK_MAX_REQUESTS", "-1")]),
        "bad PREFORK_MAX_REQUESTS=\"-1\": invalid digit found in string"
    );
    assert_eq!(
        bad(&[
            ("PREFORK_LISTENERS", "1"),
            ("PREFORK_MAX_REQUESTS", "1"),
            ("PREFORK_BEAT_MS", "0")
        ]),
        "bad PREFORK_BEAT_MS=0: must beat"
    );
}
