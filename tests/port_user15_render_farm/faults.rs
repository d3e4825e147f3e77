//! The faults: timeouts with the late result dropped or cached, clients vanishing in a job,
//! in the queue and in a frame, a panicking job, malformed and oversized requests, the
//! graceful shutdown, and (in a child process) no fd or task left after all of it.

use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::time::Duration;

use overlap::net::TcpStream;
use overlap::time;

use crate::client::{hash_direct, hash_payload, mandel_direct, spin_until, Rig};
use crate::farm::Config;
use crate::proto::Reply;
use crate::server::ShutdownReport;
use crate::support::{open_fds, run_in_child, until, within};
use crate::work::{Tile, HASH_STEPS};
use crate::{result_of, tile, HANG};

fn progress(id: u32, steps: std::ops::RangeInclusive<u32>) -> Vec<Reply> {
    steps
        .map(|done| Reply::Progress {
            id,
            done,
            total: HASH_STEPS,
        })
        .collect()
}

#[overlap::test(start_paused = true)]
async fn a_timed_out_job_gets_timeout_and_stops_at_its_cancel_flag() {
    within(
        HANG,
        async {
            let cfg = Config {
                job_timeout: Duration::from_secs(10),
                ..Config::default()
            };
            let (rig, gate, mut arrived) = Rig::gated(cfg.clone(), 2).await;
            let farm = rig.farm();
            let mut c = rig.client().await;
            c.submit(1, "hash", &hash_payload(8000, b"slow")).await;
            assert_eq!(arrived.recv().await, Some(2));
            // A held job stops auto-advance: the timeout comes when the clock is moved.
            time::advance(cfg.job_timeout).await;
            let mut expected = progress(1, 1..=2);
            expected.push(Reply::Timeout { id: 1 });
            assert_eq!(c.until_final(1).await, expected);
            let s = farm.stats();
            assert_eq!(
                (s.timeouts, s.running, s.free_slots),
                (1, 1, 1),
                "slot held"
            );
            // The job goes on to its next look at the flag, then stops.
            gate.open();
            until(|| farm.stats().late_discarded == 1, "the job stopped").await;
            let w = &farm.work;
            assert_eq!(
                w.steps.load(Ordering::SeqCst),
                2,
                "no step after the timeout"
            );
            assert_eq!(w.stopped_early.load(Ordering::SeqCst), 1);
            assert_eq!(w.finished.load(Ordering::SeqCst), 0);
            let s = farm.stats();
            assert_eq!((s.running, s.free_slots, s.late_cached), (0, 2, 0));
            // Nothing more was sent for the job: the next reply is the ping's.
            c.ping(2).await;
            assert_eq!(c.next().await, Some(Reply::Pong { id: 2 }));
            assert_eq!(crate::cache_files(&rig), Vec::<String>::new());
        },
        "timeout",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_result_finished_after_its_timeout_is_cached_not_sent() {
    within(
        HANG,
        async {
            // Held after the last step: the work is done, only the return is late.
            let cfg = Config::default();
            let (rig, gate, mut arrived) = Rig::gated(cfg.clone(), HASH_STEPS).await;
            let farm = rig.farm();
            let mut c = rig.client().await;
            let payload = hash_payload(9000, b"late");
            c.submit(1, "hash", &payload).await;
            arrived.recv().await.unwrap();
            time::advance(cfg.job_timeout).await;
            let mut expected = progress(1, 1..=HASH_STEPS);
            expected.push(Reply::Timeout { id: 1 });
            assert_eq!(c.until_final(1).await, expected);
            gate.open();
            until(|| farm.stats().late_cached == 1, "the late result cached").await;
            c.ping(2).await;
            assert_eq!(c.next().await, Some(Reply::Pong { id: 2 }));
            // The next ask is served from the cache, with the right bytes.
            c.submit(3, "hash", &payload).await;
            let (cached, data) = result_of(c.next().await.unwrap());
            assert!(cached);
            assert_eq!(data, hash_direct(9000, b"late"));
            let s = farm.stats();
            assert_eq!((s.timeouts, s.results_sent, s.late_discarded), (1, 1, 0));
            assert_eq!(farm.work.started.load(Ordering::SeqCst), 1);
        },
        "late result",
    )
    .await;
}

#[overlap::test]
async fn a_client_vanishing_mid_job_or_mid_frame_frees_everything() {
    within(
        HANG,
        async {
            let (rig, gate, mut arrived) = Rig::gated(Config::default(), 1).await;
            let farm = rig.farm();
            let mut gone = rig.client().await;
            gone.submit(1, "hash", &hash_payload(4000, b"x")).await;
            arrived.recv().await.unwrap();
            drop(gone);
            until(|| farm.stats().client_gone == 1, "the client seen gone").await;
            let s = farm.stats();
            assert_eq!((s.running, s.free_slots), (1, 1), "held until the job ends");
            gate.open();
            until(|| farm.stats().late_discarded == 1, "the job stopped").await;
            assert_eq!(farm.work.stopped_early.load(Ordering::SeqCst), 1);
            assert_eq!(farm.work.steps.load(Ordering::SeqCst), 1);
            // A client gone in the middle of a frame: counted, its connection closed.
            let mut cut = rig.client().await;
            cut.write_raw(&[0, 0, 0, 100, b'J', 0, 0]).await;
            drop(cut);
            until(|| farm.stats().truncated_frames == 1, "the cut frame").await;
            until(|| rig.server.connections() == 0, "both connections closed").await;
            let s = farm.stats();
            assert_eq!((s.running, s.free_slots, s.panics), (0, 2, 0));
            // The farm serves on.
            let mut c = rig.client().await;
            let reply = c.run(2, "hash", &hash_payload(4000, b"x")).await;
            assert_eq!(result_of(reply), (false, hash_direct(4000, b"x")));
        },
        "vanishing client",
    )
    .await;
}

#[overlap::test]
async fn a_queued_job_of_a_vanished_client_never_runs() {
    within(
        HANG,
        async {
            let cfg = Config {
                slots: 1,
                queue: 1,
                ..Config::default()
            };
            let (rig, gate, mut arrived) = Rig::gated(cfg, 1).await;
            let farm = rig.farm();
            let mut running = rig.client().await;
            running.submit(1, "hash", &hash_payload(400, b"a")).await;
            arrived.recv().await.unwrap();
            let mut queued = rig.client().await;
            queued.submit(2, "hash", &hash_payload(400, b"b")).await;
            until(|| farm.stats().waiting == 1, "queued").await;
            drop(queued);
            until(|| farm.stats().client_gone_queued == 1, "left the queue").await;
            assert_eq!(farm.stats().waiting, 0);
            gate.open();
            let last = running.until_final(1).await.pop().unwrap();
            assert_eq!(result_of(last), (false, hash_direct(400, b"a")));
            until(|| farm.stats().free_slots == 1, "the slot back").await;
            assert_eq!(
                farm.work.started.load(Ordering::SeqCst),
                1,
                "job 2 never ran"
            );
        },
        "queued client gone",
    )
    .await;
}

#[overlap::test]
async fn a_panicking_job_is_an_error_reply_and_the_farm_carries_on() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default(), None).await;
            let mut c = rig.client().await;
            let huge = tile(300, 300);
            assert_eq!(
                c.run(1, "mandel", &huge.encode()).await,
                Reply::Error {
                    id: 1,
                    message: "job panicked: tile too large: 300x300".into()
                }
            );
            let s = rig.farm().stats();
            assert_eq!((s.panics, s.running, s.free_slots), (1, 0, 2));
            let small = tile(16, 16);
            let reply = c.run(2, "mandel", &small.encode()).await;
            assert_eq!(result_of(reply), (false, mandel_direct(&small)));
            c.ping(3).await;
            assert_eq!(c.next().await, Some(Reply::Pong { id: 3 }));
            // Nothing was cached for the panicking tile.
            assert_eq!(crate::cache_files(&rig).len(), 1);
        },
        "panic",
    )
    .await;
}

#[overlap::test]
async fn malformed_requests_are_answered_and_oversized_frames_close_only_theirs() {
    within(
        HANG,
        async {
            let cfg = Config {
                max_payload: 1024,
                ..Config::default()
            };
            let rig = Rig::start("127.0.0.1", cfg, None).await;
            let mut c = rig.client().await;
            let job = |id: u8, op: &[u8], payload: &[u8]| {
                let mut f = vec![b'J', 0, 0, 0, id, op.len() as u8];
                f.extend_from_slice(op);
                f.extend_from_slice(payload);
                f
            };
            let error = |id: u32, m: &str| Reply::Error {
                id,
                message: m.into(),
            };
            let bad: Vec<(Vec<u8>, Reply)> = vec![
                (vec![], error(0, "empty frame")),
                (
                    vec![b'X', 0, 0, 0, 1],
                    error(0, "unknown request kind 0x58"),
                ),
                (vec![b'P', 0, 0], error(0, "frame too short for its id")),
                (
                    vec![b'P', 0, 0, 0, 4, 9],
                    error(0, "trailing bytes after a ping"),
                ),
                (
                    vec![b'J', 0, 0, 0, 5, 4, b'h', b'a'],
                    error(0, "frame too short for its op"),
                ),
                (job(6, &[0xff], b""), error(0, "op name is not ASCII")),
                (
                    job(7, b"hash", &[7; 1025]),
                    error(7, "payload of 1025 bytes over the limit of 1024"),
                ),
                (job(8, b"render", b"x"), error(8, "unknown op \"render\"")),
                (
                    job(9, b"mandel", &[0; 29]),
                    error(9, "mandel: payload of 29 bytes, not 30"),
                ),
                (
                    job(10, b"hash", &[0, 0]),
                    error(10, "hash: payload needs 4 bytes of rounds"),
                ),
            ];
            for (frame, reply) in &bad {
                c.send_raw(frame).await;
                assert_eq!(c.next().await.as_ref(), Some(reply), "{frame:?}");
            }
            // The connection goes on.
            c.ping(11).await;
            assert_eq!(c.next().await, Some(Reply::Pong { id: 11 }));
            let reply = c.run(12, "hash", &hash_payload(16, &[1; 1020])).await;
            assert_eq!(result_of(reply), (false, hash_direct(16, &[1; 1020])));
            assert_eq!(rig.farm().stats().bad_requests, bad.len() as u64);
            // A frame longer than the limit: refused from its header, the connection
            // closed after the error; another is not touched.
            let mut other = rig.client().await;
            let limit = 1024 + 1 + 4 + 1 + 255;
            c.write_raw(&(limit as u32 + 1).to_be_bytes()).await;
            c.write_raw(b"JJJJ").await;
            let msg = format!("frame of {} bytes over the limit of {limit}", limit + 1);
            assert_eq!(c.next().await, Some(error(0, &msg)));
            assert_eq!(c.next().await, None, "closed");
            assert_eq!(rig.farm().stats().oversized_frames, 1);
            other.ping(13).await;
            assert_eq!(other.next().await, Some(Reply::Pong { id: 13 }));
        },
        "malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn graceful_shutdown_drains_one_job_and_abandons_the_other_at_its_deadline() {
    within(
        HANG,
        async {
            let cfg = Config {
                slots: 2,
                queue: 1,
                job_timeout: Duration::from_secs(600),
                ..Config::default()
            };
            let (rig, gate, mut arrived) = Rig::gated(cfg, 1).await;
            let farm = rig.server.farm.clone();
            let mut c1 = rig.client().await;
            let mut c2 = rig.client().await;
            c1.submit(1, "hash", &hash_payload(3000, b"one")).await;
            arrived.recv().await.unwrap();
            c1.submit(2, "hash", &hash_payload(3000, b"two")).await;
            arrived.recv().await.unwrap();
            c2.submit(3, "hash", &hash_payload(3000, b"three")).await;
            spin_until(|| farm.stats().waiting == 1, "job 3 queued").await;
            let deadline = Duration::from_secs(5);
            let server = rig.server.clone();
            let shutdown = overlap::spawn(async move { server.shutdown(deadline).await });
            spin_until(|| farm.stopping.is_cancelled(), "stopped accepting").await;
            let refused = TcpStream::connect(rig.server.addr).await.unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
            // The queued job and a new one are refused; the connection still answers.
            assert_eq!(
                c2.next().await,
                Some(Reply::Error {
                    id: 3,
                    message: "shutting down".into()
                })
            );
            c2.submit(4, "hash", &hash_payload(10, b"four")).await;
            assert_eq!(
                c2.next().await,
                Some(Reply::Error {
                    id: 4,
                    message: "shutting down".into()
                })
            );
            c2.ping(5).await;
            assert_eq!(c2.next().await, Some(Reply::Pong { id: 5 }));
            // One job goes through and finishes within the deadline.
            gate.pass_one();
            let mut finished = None;
            while finished.is_none() {
                match c1.next().await.unwrap() {
                    Reply::Progress { .. } => {}
                    Reply::Result {
                        id,
                        cached: false,
                        data,
                    } => finished = Some((id, data)),
                    other => panic!("{other:?}"),
                }
            }
            let (done, data) = finished.unwrap();
            let name: &[u8] = if done == 1 { b"one" } else { b"two" };
            assert_eq!(data, hash_direct(3000, name));
            // The other is still held at the deadline: given up and told.
            time::advance(deadline).await;
            let left = 3 - done;
            let abandoned = Reply::Error {
                id: left,
                message: "abandoned at shutdown".into(),
            };
            let mut last = c1.next().await.unwrap();
            while let Reply::Progress { id, .. } = last {
                assert_eq!(id, left, "only the held job's progress from before");
                last = c1.next().await.unwrap();
            }
            assert_eq!(last, abandoned);
            assert_eq!(c1.next().await, None, "closed after the last reply");
            assert_eq!(c2.next().await, None);
            let report = shutdown.await.unwrap();
            assert_eq!(
                report,
                ShutdownReport {
                    running_at_start: 2,
                    abandoned: 1,
                    connections_closed: true
                }
            );
            let s = farm.stats();
            assert_eq!(
                (s.abandoned, s.refused_shutting_down, s.results_sent),
                (1, 2, 1)
            );
            // The abandoned job still stops at its flag, and frees its slot.
            gate.open();
            until(
                || farm.stats().late_discarded == 1,
                "the abandoned job ended",
            )
            .await;
            assert_eq!(farm.work.finished.load(Ordering::SeqCst), 1);
            assert_eq!(farm.work.stopped_early.load(Ordering::SeqCst), 1);
            assert_eq!(farm.stats().free_slots, 2);
            until(|| farm.jobs.is_empty(), "every job's task ended").await;
        },
        "shutdown",
    )
    .await;
}

#[test]
fn no_fd_or_task_is_left_after_a_run_with_every_fault() {
    run_in_child(
        "faults::no_fd_or_task_is_left_after_a_run_with_every_fault",
        || {
            let rt = overlap::Runtime::builder()
                .start_paused(true)
                .build()
                .unwrap();
            rt.block_on(within(HANG, every_fault_then_nothing_left(), "no leak"));
        },
    );
}

async fn every_fault_then_nothing_left() {
    let (fds, tasks) = (open_fds(), overlap::metrics().tasks_alive);
    let (rig, gate, mut arrived) = Rig::gated(Config::default(), 1).await;
    let farm = rig.server.farm.clone();
    let mut c = rig.client().await;
    let t = Tile {
        max_iter: 50,
        ..tile(10, 10)
    };
    assert!(matches!(
        c.run(1, "mandel", &t.encode()).await,
        Reply::Result { cached: false, .. }
    ));
    assert!(matches!(
        c.run(2, "mandel", &t.encode()).await,
        Reply::Result { cached: true, .. }
    ));
    let panics = c.run(3, "mandel", &tile(400, 400).encode()).await;
    assert!(matches!(panics, Reply::Error { .. }));
    // A timeout, the job let through to its flag.
    c.submit(4, "hash", &hash_payload(100, b"t")).await;
    arrived.recv().await.unwrap();
    time::advance(farm.cfg.job_timeout).await;
    assert_eq!(c.until_final(4).await.pop(), Some(Reply::Timeout { id: 4 }));
    gate.pass_one();
    until(|| farm.stats().late_discarded == 1, "timed-out job ended").await;
    // A client gone in the middle of a job.
    let mut gone = rig.client().await;
    gone.submit(5, "hash", &hash_payload(100, b"g")).await;
    arrived.recv().await.unwrap();
    drop(gone);
    // The job held: a sleep would never end on this paused clock.
    spin_until(|| farm.stats().client_gone == 1, "client gone").await;
    gate.pass_one();
    until(|| farm.stats().late_discarded == 2, "its job ended").await;
    // An oversized frame.
    let mut big = rig.client().await;
    big.write_raw(&u32::MAX.to_be_bytes()).await;
    assert!(matches!(big.next().await, Some(Reply::Error { id: 0, .. })));
    assert_eq!(big.next().await, None);
    drop((big, c));
    let report = rig.server.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        report,
        ShutdownReport {
            running_at_start: 0,
            abandoned: 0,
            connections_closed: true
        }
    );
    drop((rig, farm));
    until(
        || overlap::metrics().tasks_alive == tasks,
        "every task ended",
    )
    .await;
    until(|| open_fds() == fds, "every fd closed").await;
}
