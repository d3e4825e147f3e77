//! A user's CPU-heavy job service (a tiny render farm), sketched as one would for tokio
//! with `spawn_blocking`, a `Semaphore` and tokio-util's `LengthDelimitedCodec`, then
//! written for overlap: the wire format (`port_user15_render_farm/proto.rs`), the CPU work
//! cut into steps with its progress and cancel flag (`work.rs`), the results cache on disk
//! (`cache.rs`), admission, timeouts and the job's task (`farm.rs`), the accept loop,
//! connections and the graceful shutdown (`server.rs`), and the tests' client, gate and
//! direct computations (`client.rs`).
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
//! use tokio::sync::{mpsc, Semaphore};
//! use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//!
//! // admission: a slot now, else a place in a bounded queue, else BUSY
//! let permit = match slots.clone().try_acquire_owned() {
//!     Ok(p) => p,
//!     Err(_) if waiting.load(Relaxed) >= cfg.queue => return reply(Busy { id }).await,
//!     Err(_) => tokio::select! {
//!         p = slots.clone().acquire_owned() => p.unwrap(),
//!         _ = gone.cancelled() => return,              // the client left the queue
//!     },
//! };
//! // the job: progress from the pool thread, a flag it checks between steps
//! let cancel = Arc::new(AtomicBool::new(false));
//! let (ptx, mut prx) = mpsc::channel(4);
//! let flag = cancel.clone();
//! let mut job = tokio::task::spawn_blocking(move || {
//!     let _permit = permit;                // the slot is held for as long as the work runs
//!     work::run(&op, &flag, |done, total| ptx.blocking_send((done, total)))
//! });
//! let deadline = tokio::time::sleep(cfg.job_timeout);
//! tokio::pin!(deadline);
//! loop {
//!     tokio::select! {
//!         biased;
//!         res = &mut job => { /* cache.put, RESULT, or ERROR with the panic */ break }
//!         Some((done, total)) = prx.recv() => { let _ = out.try_send(Progress { .. }); }
//!         _ = &mut deadline => {
//!             cancel.store(true, Ordering::SeqCst);
//!             out.send(Timeout { id }).await;
//!             // late: cache a finished result, send nothing
//!             tokio::spawn(async move { if let Ok(Done(r)) = job.await { cache.put(..).await } });
//!             break;
//!         }
//!         _ = gone.cancelled() => { cancel.store(true, Ordering::SeqCst); break }
//!     }
//! }
//! // the cache: tokio::fs::write(tmp) then tokio::fs::rename(tmp, entry); a bad checksum
//! // on read is a miss, the entry removed
//! // shutdown: stop accepting; jobs.close(); timeout(deadline, jobs.wait()).await;
//! //           abandon.cancel(); report jobs still running
//! let rt = tokio::runtime::Builder::new_current_thread()
//!     .max_blocking_threads(8)
//!     .thread_keep_alive(Duration::from_secs(30))
//!     .enable_all()
//!     .build()?;
//! ```
//!
//! The tests check, over real TCP on 127.0.0.1 (one on ::1), with the cache in a temp dir:
//! each op's result equal to a direct computation, its progress one message a step in
//! order; a result cached on disk (the entry's exact bytes, no temporary file left) and
//! served again without running; four kinds of corrupt entry detected, removed and
//! recomputed; a full queue answered `BUSY` while the queued job runs later; a ping
//! answered while every slot is held, and a cache hit too (the pool has threads beyond the
//! slots), but not with a pool of as many threads as slots, where the cache's file read
//! waits behind the jobs and the ping does not; a timeout answered `TIMEOUT` while the job
//! holds its slot until it sees its cancel flag (exact step counts), nothing sent after
//! it; a result finished after its timeout cached and not sent; a client vanishing in the
//! middle of a job (its slot freed once the job stops) and another while queued (its job
//! never run); a panicking job answered with an `ERROR` naming the panic, the farm going
//! on; ten malformed requests answered on a connection that goes on, an oversized frame
//! and a frame cut off closing only theirs; a graceful shutdown refusing new connections
//! and jobs, draining one job and abandoning the other at its deadline; and, in a child
//! process, no fd and no task left after a run with every fault. All on the paused clock
//! where time matters (`time::advance`: a held job stops auto-advance, as in tokio).
//!
//! What porting it found missing in overlap, or different from tokio:
//!
//! - `Builder::thread_keep_alive` (tokio's name) was missing: overlap called it
//!   `blocking_keep_alive` only, so the sketch's builder did not compile. Fixed in the
//!   runtime (commit `runtime: Builder::thread_keep_alive ...`, pinned in
//!   `tests/blocking_pool.rs`), the same setting under both names. `max_blocking_threads`
//!   has tokio's name and default (512). As in tokio, the pool is shared with `fs`: a farm
//!   that caps the pool at its slot count makes its cache reads wait behind its jobs (a
//!   test shows it, the ping still answered); bound the CPU work with the semaphore, not
//!   with the pool.
//! - The permit cannot go into the blocking job. tokio's idiom moves the
//!   `OwnedSemaphorePermit` into the `spawn_blocking` closure, so the slot is held exactly
//!   as long as the work runs, whoever stops waiting for it. overlap's `Semaphore` and its
//!   permits are `Rc`-based and not `Send`, so the job's task keeps the permit and awaits
//!   the job to its end even after a timeout or a vanished client (`farm.rs`); were it
//!   aborted or dropped, the slot would come back while the work still ran. The
//!   `Semaphore` docs did not say so; they do now, with an example (commit `sync:
//!   Semaphore's docs ...`). There is no `Send` semaphore (as `mpsc::cross_thread` is to
//!   `mpsc`): not added, the task-held permit being enough here.
//! - The progress channel is another type: tokio's one `mpsc` has `blocking_send`; here
//!   `sync::mpsc` is not `Send`, and `sync::mpsc::cross_thread` (which the `spawn_blocking`
//!   docs point at) is the one a pool thread can hold, with the same `blocking_send`,
//!   `recv` and `try_recv`. It behaved as tokio's: bounded, the job held back while full,
//!   `blocking_send` failing once the receiver is dropped (a job given up never blocks).
//! - `SinkExt::close` on a `FramedWrite<_, LengthDelimitedCodec>` needs its item type
//!   named (`SinkExt::<Vec<u8>>::close(&mut sink)`): overlap's codec encodes `BytesMut`,
//!   `Vec<u8>` and `&[u8]`, tokio-util's only `Bytes`, so a bare `sink.close()` is
//!   ambiguous here (a compile error naming the three impls, clear enough).
//! - An aborted `spawn_blocking` handle reports cancelled without waiting for the running
//!   job (tokio's waits and gives the result): the farm never aborts it, awaiting it
//!   instead, which behaves the same in both. The pool's metrics are
//!   `metrics().blocking_queued`/`blocking_threads` (tokio: `blocking_queue_depth`,
//!   `num_blocking_threads`), mapped in the README.
//!
//! Otherwise everything had tokio's name and behaved as tokio's would: `spawn_blocking`
//! with a panic as a `JoinError` and `try_into_panic`, `Semaphore::try_acquire_owned` and
//! `acquire_owned` (cancel-safe in `select!`), `mpsc::Sender::try_send`,
//! `CancellationToken`, `TaskTracker`, `FramedRead`/`FramedWrite`/`Framed` with
//! `LengthDelimitedCodec` and its `LengthDelimitedCodecError` inside the `io::Error`,
//! `fs::read`/`write`/`rename`/`remove_file`/`create_dir_all`, `select!` with `biased;`,
//! `pin_mut!`, `time::advance` on a paused clock while a job runs.
//!
//! What the tests got wrong at first was the user's, and would be in tokio: waiting with a
//! sleep loop (`support::until`) on the paused clock while a job was held hung, since a
//! running blocking job stops auto-advance; those waits yield instead (`spin_until`). And
//! reading one job's replies up to its final one, with two jobs on a connection, swallowed
//! the other's final reply when it finished first (a hang in one run of three); the client
//! now collects the finals of all of them (`Client::finals`).
//!
//! Break-it check: with the job's look at its cancel flag removed, four tests failed (the
//! timeout, the vanishing client, the shutdown and the no-leak child: each waits for the
//! given-up job to stop at its flag, and it ran all its steps and finished instead).

mod support;

#[path = "port_user15_render_farm/cache.rs"]
mod cache;
#[path = "port_user15_render_farm/client.rs"]
mod client;
#[path = "port_user15_render_farm/farm.rs"]
mod farm;
#[path = "port_user15_render_farm/proto.rs"]
mod proto;
#[path = "port_user15_render_farm/server.rs"]
mod server;
#[path = "port_user15_render_farm/work.rs"]
mod work;

#[path = "port_user15_render_farm/faults.rs"]
mod faults;

use std::sync::atomic::Ordering;
use std::time::Duration;

use client::{hash_direct, hash_payload, mandel_direct, rle_decode, Client, Rig};
use farm::Config;
use proto::Reply;
use support::{pattern_seeded, until, within};
use work::{Tile, HASH_STEPS, RLE_CHUNK};

/// A hang guard (on the paused clock, virtual time).
const HANG: Duration = Duration::from_secs(3600);

fn tile(w: u16, h: u16) -> Tile {
    Tile {
        x0: -2.0,
        y0: -1.25,
        step: 2.5 / h as f64,
        w,
        h,
        max_iter: 200,
    }
}

fn result_of(reply: Reply) -> (bool, Vec<u8>) {
    match reply {
        Reply::Result { cached, data, .. } => (cached, data),
        other => panic!("not a result: {other:?}"),
    }
}

/// The cache's directory entries, sorted.
fn cache_files(rig: &Rig) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(rig.dir.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[overlap::test]
async fn each_op_matches_a_direct_computation_with_progress_per_step() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default(), None).await;
            let mut c = rig.client().await;
            let data = pattern_seeded(3000, 15);
            // hash: eight steps of progress, then the result.
            c.submit(1, "hash", &hash_payload(100_003, &data)).await;
            let replies = c.until_final(1).await;
            let progress: Vec<Reply> = (1..=HASH_STEPS)
                .map(|done| Reply::Progress {
                    id: 1,
                    done,
                    total: HASH_STEPS,
                })
                .collect();
            assert_eq!(replies[..8], progress[..]);
            assert_eq!(
                replies[8],
                Reply::Result {
                    id: 1,
                    cached: false,
                    data: hash_direct(100_003, &data)
                }
            );
            // mandel: a row a step.
            let t = tile(48, 40);
            let (cached, pixels) = result_of(c.run(2, "mandel", &t.encode()).await);
            assert!(!cached);
            assert_eq!(pixels, mandel_direct(&t));
            assert!(pixels.contains(&200) && pixels.iter().any(|&n| n < 5));
            // rle: a chunk a step; runs and noise both round-trip.
            let mut text = vec![b'a'; 700];
            text.extend(pattern_seeded(2 * RLE_CHUNK, 3));
            text.extend(vec![0; 600]);
            let (_, pairs) = result_of(c.run(3, "rle", &text).await);
            assert_eq!(rle_decode(&pairs), text);
            assert!(pairs.len() < 2 * text.len());
            let rle_steps = text.len().div_ceil(RLE_CHUNK) as u64;
            assert_eq!(rle_steps, 4);
            let s = rig.farm().stats();
            assert_eq!((s.jobs, s.results_sent, s.cache_hits), (3, 3, 0));
            assert_eq!(s.progress_sent, 8 + 40 + rle_steps);
            assert_eq!((s.progress_dropped, s.running, s.free_slots), (0, 0, 2));
            assert_eq!(rig.farm().work.finished.load(Ordering::SeqCst), 3);
            assert_eq!(
                rig.farm().work.steps.load(Ordering::SeqCst),
                8 + 40 + rle_steps
            );
        },
        "three ops",
    )
    .await;
}

#[overlap::test]
async fn a_result_is_cached_on_disk_and_served_again_without_running() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default(), None).await;
            let mut c = rig.client().await;
            let payload = hash_payload(5000, b"frame 17");
            let (cached, first) = result_of(c.run(1, "hash", &payload).await);
            assert!(!cached);
            // The entry: written whole, renamed into place, no temporary file left.
            let key = cache::key("hash", &payload);
            assert_eq!(cache_files(&rig), [format!("{key}.res")]);
            let entry = std::fs::read(rig.farm().cache().path(&key)).unwrap();
            assert_eq!(entry, cache::encode_entry(&first));
            // Served from the cache, on this connection and another, no progress.
            c.submit(2, "hash", &payload).await;
            assert_eq!(
                c.next().await.unwrap(),
                Reply::Result {
                    id: 2,
                    cached: true,
                    data: first.clone()
                }
            );
            let mut other = rig.client().await;
            assert_eq!(
                result_of(other.run(3, "hash", &payload).await),
                (true, first)
            );
            // The same op on other bytes is another entry.
            let (cached, _) = result_of(c.run(4, "hash", &hash_payload(5000, b"frame 18")).await);
            assert!(!cached);
            assert_eq!(cache_files(&rig).len(), 2);
            assert_eq!(rig.farm().work.started.load(Ordering::SeqCst), 2);
            assert_eq!(rig.farm().stats().cache_hits, 2);
        },
        "cache",
    )
    .await;
}

#[overlap::test]
async fn corrupt_cache_entries_are_detected_removed_and_recomputed() {
    within(
        HANG,
        async {
            let rig = Rig::start("127.0.0.1", Config::default(), None).await;
            let mut c = rig.client().await;
            let t = tile(20, 10);
            let payload = t.encode();
            let path = rig.farm().cache().path(&cache::key("mandel", &payload));
            let good = mandel_direct(&t);
            assert_eq!(
                result_of(c.run(1, "mandel", &payload).await),
                (false, good.clone())
            );
            let entry = std::fs::read(&path).unwrap();
            let mut flipped = entry.clone();
            *flipped.last_mut().unwrap() ^= 0x40;
            let corruptions = [
                flipped,                           // a bit flipped in the data: checksum
                entry[..entry.len() - 7].to_vec(), // torn: shorter than its header says
                b"RFC".to_vec(),                   // shorter than a header
                b"not a cache entry at all".to_vec(),
            ];
            let mut id = 10;
            for (n, bad) in corruptions.iter().enumerate() {
                std::fs::write(&path, bad).unwrap();
                id += 1;
                let reply = c.run(id, "mandel", &payload).await;
                assert_eq!(result_of(reply), (false, good.clone()), "corruption {n}");
                assert_eq!(rig.farm().stats().cache_corrupt, n as u64 + 1);
                // Rewritten whole, and good again.
                assert_eq!(std::fs::read(&path).unwrap(), entry);
                id += 1;
                let reply = c.run(id, "mandel", &payload).await;
                assert_eq!(result_of(reply), (true, good.clone()));
            }
            assert_eq!(rig.farm().work.started.load(Ordering::SeqCst), 5);
            assert_eq!(cache_files(&rig).len(), 1);
        },
        "corrupt cache",
    )
    .await;
}

#[overlap::test]
async fn a_full_queue_answers_busy_and_the_queued_job_runs_later() {
    within(
        HANG,
        async {
            let cfg = Config {
                slots: 2,
                queue: 1,
                ..Config::default()
            };
            let (rig, gate, mut arrived) = Rig::gated(cfg, 1).await;
            let mut c = rig.client().await;
            let payload = |n: u8| hash_payload(800, &[n; 8]);
            for id in [1, 2] {
                c.submit(id, "hash", &payload(id as u8)).await;
                arrived.recv().await.unwrap();
            }
            c.submit(3, "hash", &payload(3)).await;
            until(|| rig.farm().stats().waiting == 1, "job 3 queued").await;
            c.submit(4, "hash", &payload(4)).await;
            // Job 4 is refused at once, the two jobs held and job 3 waiting.
            let mut seen = Vec::new();
            loop {
                let r = c.next().await.unwrap();
                if let Reply::Busy { id } = r {
                    assert_eq!(id, 4);
                    break;
                }
                seen.push(r);
            }
            assert_eq!(
                seen,
                [
                    Reply::Progress {
                        id: 1,
                        done: 1,
                        total: 8
                    },
                    Reply::Progress {
                        id: 2,
                        done: 1,
                        total: 8
                    }
                ]
            );
            let s = rig.farm().stats();
            assert_eq!((s.running, s.waiting, s.free_slots, s.busy), (2, 1, 0, 1));
            assert_eq!(rig.farm().work.started.load(Ordering::SeqCst), 2);
            gate.open();
            for (r, id) in c.finals(3).await.into_iter().zip(1..) {
                assert_eq!(result_of(r), (false, hash_direct(800, &[id as u8; 8])));
            }
            let s = rig.farm().stats();
            assert_eq!((s.running, s.waiting, s.free_slots), (0, 0, 2));
            assert_eq!(rig.farm().work.started.load(Ordering::SeqCst), 3);
        },
        "busy",
    )
    .await;
}

/// Two jobs held at their first step, one per slot, on their pool threads; a job of
/// `payload` cached before. Returns the client holding them.
async fn saturate(
    rig: &Rig,
    arrived: &mut overlap::sync::mpsc::cross_thread::UnboundedReceiver<u32>,
    cached: &[u8],
) -> Client {
    let mut c = rig.client().await;
    assert!(!result_of(c.run(1, "rle", cached).await).0);
    c.submit(2, "hash", &hash_payload(64, b"a")).await;
    c.submit(3, "hash", &hash_payload(64, b"b")).await;
    arrived.recv().await.unwrap();
    arrived.recv().await.unwrap();
    let s = rig.farm().stats();
    assert_eq!((s.running, s.free_slots), (2, 0));
    c
}

#[overlap::test]
async fn ping_and_cache_hits_are_answered_while_every_slot_is_held() {
    within(
        HANG,
        async {
            let (rig, gate, mut arrived) = Rig::gated(Config::default(), 0).await;
            let cached = pattern_seeded(5000, 1);
            let mut held = saturate(&rig, &mut arrived, &cached).await;
            // Another connection, every slot taken: a ping, and a job the cache answers
            // (its file read is a pool job too, and the pool has threads to spare).
            let mut c = rig.client().await;
            c.ping(7).await;
            assert_eq!(c.next().await.unwrap(), Reply::Pong { id: 7 });
            c.submit(8, "rle", &cached).await;
            let (hit, pairs) = result_of(c.next().await.unwrap());
            assert!(hit);
            assert_eq!(rle_decode(&pairs), cached);
            // Both answered while the two jobs were still held: by order, not by time.
            assert_eq!(rig.farm().stats().running, 2);
            assert_eq!(rig.farm().work.steps.load(Ordering::SeqCst), 5);
            gate.open();
            for (r, id) in held.finals(2).await.into_iter().zip(2..) {
                assert!(matches!(r, Reply::Result { id: i, cached: false, .. } if i == id));
            }
        },
        "responsive",
    )
    .await;
}

#[test]
fn a_pool_as_small_as_the_slots_makes_cache_reads_wait_but_not_pings() {
    // tokio: Builder::new_current_thread().max_blocking_threads(2).thread_keep_alive(..)
    let rt = overlap::runtime::Builder::new_current_thread()
        .max_blocking_threads(2)
        .thread_keep_alive(Duration::from_secs(30))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(within(
        HANG,
        async {
            let (rig, gate, mut arrived) = Rig::gated(Config::default(), 0).await;
            let cached = pattern_seeded(3000, 2);
            let mut held = saturate(&rig, &mut arrived, &cached).await;
            // Both pool threads are held by the jobs: the cache's read of the entry queues
            // behind them, while the ping, answered on the loop, comes first.
            let mut c = rig.client().await;
            c.submit(8, "rle", &cached).await;
            c.ping(9).await;
            assert_eq!(c.next().await.unwrap(), Reply::Pong { id: 9 });
            until(
                || overlap::metrics().blocking_queued == 1,
                "the read queued",
            )
            .await;
            assert_eq!(overlap::metrics().blocking_threads, 2);
            gate.open();
            let (hit, pairs) = result_of(c.next().await.unwrap());
            assert!(hit && rle_decode(&pairs) == cached);
            assert_eq!(held.finals(2).await.len(), 2);
        },
        "small pool",
    ));
}

#[overlap::test]
async fn the_same_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let rig = Rig::start("::1", Config::default(), None).await;
            assert!(rig.server.addr.is_ipv6());
            let mut c = rig.client().await;
            let t = tile(30, 24);
            assert_eq!(
                result_of(c.run(1, "mandel", &t.encode()).await),
                (false, mandel_direct(&t))
            );
            assert_eq!(
                result_of(c.run(2, "mandel", &t.encode()).await),
                (true, mandel_direct(&t))
            );
            c.ping(3).await;
            assert_eq!(c.next().await.unwrap(), Reply::Pong { id: 3 });
        },
        "::1",
    )
    .await;
}
