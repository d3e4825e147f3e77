//! A user's disk-backed message queue (a tiny Kafka/NSQ-style spool), sketched as one
//! would for tokio with `tokio::fs` (and `spawn_blocking` for what `tokio::fs::File` lacks:
//! positional reads and writes, `fallocate`), then written for overlap by changing
//! `tokio::` to `overlap::`: the record format and the recovery scan
//! (`port_user19_spool_queue/record.rs`), segment files (`segment.rs`), the spool with its
//! group-committing writer, reads by offset and hole-punching retention (`spool.rs`),
//! consumer groups' offsets, replaced atomically (`groups.rs`), the TCP broker
//! (`broker.rs`) and the tests' clients (`client.rs`). The tests of bad input, vanishing
//! peers, limits and timeouts are in `faults.rs`, those of retention and recovery in
//! `recovery.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use std::os::unix::fs::FileExt;
//! use tokio::sync::{mpsc, oneshot, watch};
//!
//! // segments: std files behind an Arc, since tokio::fs::File has no read_at/write_at
//! let seg = Arc::new(std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?);
//! // the writer: group commit
//! while rx.recv_many(&mut batch, 512).await > 0 {
//!     let bytes = encode(&batch, first);                  // magic | len | crc32 | offset | payload
//!     let f = seg.clone();
//!     let res = tokio::task::spawn_blocking(move || { f.write_all_at(&bytes, at)?; f.sync_data() }).await?;
//!     match res {
//!         Ok(()) => { end.send_replace(first + n); for (i, p) in batch.drain(..).enumerate() { p.ack.send(Ok(first + i)) } }
//!         Err(e) => { f.set_len(at)?; every ack gets the error }
//!     }
//! }
//! // a consumer: one record at a time, read only once the last is written
//! let bytes = spawn_blocking(move || { let mut b = vec![0; len]; f.read_exact_at(&mut b, pos)?; Ok(b) }).await??;
//! tokio::select! { _ = stop.cancelled() => .., r = wr.write_all(&frame) => .., r = &mut commits => .. }
//! // a group's commit: atomically
//! tokio::fs::write(&tmp, text).await?; File::open(&tmp).await?.sync_all().await?; tokio::fs::rename(&tmp, &path).await?;
//! // retention: delete whole segments, punch the consumed front of the one in use
//! tokio::fs::remove_file(&old).await?;
//! spawn_blocking(move || nix::fcntl::fallocate(fd, PUNCH_HOLE | KEEP_SIZE, 0, pos)).await??;
//! // recovery: read each segment whole, skip the hole's zeros, cut the first bad record
//! file.set_len(good_len).await?; file.sync_all().await?;
//! ```
//!
//! The tests check, over TCP on 127.0.0.1 against segment files in a temp dir: 10,000
//! messages from four pipelining producers, every offset once, each producer's order kept,
//! across segment rolls; group commit (fewer fsyncs than acks with producers pipelining,
//! exactly one per ack with one producer waiting for each ack); a consumer tailing the
//! log while producers write sees every record once, in order, and the next one when it
//! comes; retention deleting whole segments and punching the consumed front of the next
//! (its blocks freed, its size and later records' positions kept, or the `Unsupported`
//! path logged where the file system has no holes), a subscription below it refused with
//! the reason, and a restart finding the log behind the hole; recovery cutting a torn
//! tail, and a record with a bad CRC and what follows it, each with a log line saying what
//! and where, consumers resuming at their commit with nothing lost or repeated, the next
//! publish taking the first offset cut; bad frames (too long, empty, of no known kind, an
//! empty message, a short subscription, one past the end, a commit past the end) refused
//! with a clear error frame and the connection closed, a producer beside them acked
//! throughout; a consumer vanishing mid-stream, its group's commit kept; a slow consumer
//! holding the broker at one record of memory while it lags by thousands; a frame left
//! half-sent timed out on the paused clock; an fsync failing (`EIO` by seccomp) acking
//! nothing and cutting the bytes back; and no fd or task left after a shutdown.
//!
//! What the port changed, against tokio: the `spawn_blocking` closures over a std file
//! became `overlap::fs::PositionalFile` calls (`write_vec_at`, `read_vec_at`,
//! `sync_data`, `set_len`, `punch_hole`, `metadata`), each one pool job, on a handle
//! shared by clones; the `fallocate` through `nix` became `punch_hole`, whose
//! `Unsupported` error is the no-holes case. `Arc<Mutex<..>>` became `Rc<RefCell<..>>`
//! (the segment list is only touched between awaits), tokio-util's `CancellationToken`
//! and `TaskTracker` are in `overlap::sync` and `overlap::task`, and tokio's
//! `AsyncReadExt`/`AsyncWriteExt` are futures' under `overlap::io` (`close` where tokio has
//! `shutdown`). One `select!` difference showed, as its docs say: a future named in a
//! branch is borrowed, not moved in as tokio's is, so the producer's loop (an `async`
//! block, not `Unpin`) is `pin!`ned into a `let mut` first (`{ fut }` would move it in).
//!
//! The tests were run against the spool broken on purpose, one fault at a time, and each
//! fault made a test fail: no `sync_data` before the acks (the failed-fsync test acks);
//! recovery not skipping the punched front (retention's restart, and a restart after a
//! bad CRC, whose group's commit had punched the front too); a torn tail not cut (both
//! recovery tests: the next restart finds what the new record did not overwrite).
//!
//! # What porting it found missing
//!
//! Nothing in overlap. Every call the tokio sketch made
//! has an overlap counterpart under the same name or a documented one (the positional
//! calls tokio lacks are there natively), and `TcpSocket::set_send_buffer_size` on the
//! listener bounds what a slow consumer's connection holds, as with tokio.

mod support;

#[path = "port_user19_spool_queue/broker.rs"]
mod broker;
#[path = "port_user19_spool_queue/client.rs"]
mod client;
#[path = "port_user19_spool_queue/faults.rs"]
mod faults;
#[path = "port_user19_spool_queue/groups.rs"]
mod groups;
#[path = "port_user19_spool_queue/record.rs"]
mod record;
#[path = "port_user19_spool_queue/recovery.rs"]
mod recovery;
#[path = "port_user19_spool_queue/segment.rs"]
mod segment;
#[path = "port_user19_spool_queue/spool.rs"]
mod spool;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use broker::Broker;
use client::{message, publish_all, Consumer, Reply};
use support::{within, TempDir};

/// A hang guard only.
const HANG: Duration = Duration::from_secs(60);

/// A spool in `dir` and a broker serving it.
async fn start(dir: &Path, spool: spool::Config, broker: broker::Config) -> Broker {
    let spool = spool::Spool::open(dir, spool).await.unwrap();
    Broker::start(spool, broker).await.unwrap()
}

/// Producer `p`'s `n` messages of `len` bytes.
fn messages(p: usize, n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| message(p, i, len)).collect()
}

/// Publishes `producers` × `n` messages at once, one connection each: every acked offset
/// with its message.
async fn publish_from(
    broker: &Broker,
    producers: usize,
    n: usize,
    len: usize,
) -> HashMap<u64, Vec<u8>> {
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let addr = broker.addr;
            overlap::spawn(async move {
                let msgs = messages(p, n, len);
                let offsets = publish_all(addr, &msgs).await.unwrap();
                assert!(
                    offsets.windows(2).all(|w| w[0] < w[1]),
                    "producer {p}'s acks out of order"
                );
                offsets.into_iter().zip(msgs).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acked = HashMap::new();
    for t in tasks {
        for (offset, msg) in t.await.unwrap() {
            assert!(
                acked.insert(offset, msg).is_none(),
                "offset {offset} acked twice"
            );
        }
    }
    acked
}

/// The producer and sequence number a [`message`] names.
fn origin(payload: &[u8]) -> (usize, usize) {
    let text =
        std::str::from_utf8(&payload[..payload.iter().position(|&b| b == b'|').unwrap()]).unwrap();
    let (p, seq) = text[1..].split_once('-').unwrap();
    (p.parse().unwrap(), seq.parse().unwrap())
}

#[overlap::test]
async fn ten_thousand_messages_from_four_producers_keep_each_producers_order() {
    let dir = TempDir::new("spool-round-trip");
    let cfg = spool::Config {
        roll_bytes: 64 << 10,
        ..Default::default()
    };
    let broker = start(dir.path(), cfg, Default::default()).await;
    within(
        HANG,
        async {
            let acked = publish_from(&broker, 4, 2500, 40).await;
            let mut offsets: Vec<u64> = acked.keys().copied().collect();
            offsets.sort();
            assert_eq!(offsets, (0..10_000).collect::<Vec<u64>>());
            assert!(
                broker.spool.segment_paths().len() > 4,
                "rolled into several segments"
            );

            let mut consumer = Consumer::subscribe(broker.addr, 0, "").await;
            let records = consumer.take(10_000).await;
            let mut next_seq = [0usize; 4];
            for (i, (offset, payload)) in records.iter().enumerate() {
                assert_eq!(*offset, i as u64);
                assert_eq!(payload, &acked[offset], "record {offset}");
                let (p, seq) = origin(payload);
                assert_eq!(seq, next_seq[p], "producer {p}'s order at offset {offset}");
                next_seq[p] += 1;
            }
            assert_eq!(next_seq, [2500; 4]);
        },
        "the round trip",
    )
    .await;
    broker.shutdown().await;
}

#[overlap::test]
async fn group_commit_acks_many_messages_per_fsync() {
    let dir = TempDir::new("spool-group-commit");
    let broker = start(dir.path(), Default::default(), Default::default()).await;
    within(
        HANG,
        async {
            // One producer waiting for each ack before the next: nothing to share a sync with.
            let alone = messages(9, 50, 100);
            for (i, m) in alone.iter().enumerate() {
                assert_eq!(
                    publish_all(broker.addr, std::slice::from_ref(m))
                        .await
                        .unwrap(),
                    [i as u64]
                );
            }
            let stats = &broker.spool.stats;
            assert_eq!((stats.acks.get(), stats.fsyncs.get()), (50, 50));

            // Eight producers pipelining: the writer takes what queued during the last sync.
            let acked = publish_from(&broker, 8, 500, 100).await;
            assert_eq!(acked.len(), 4000);
            let (acks, fsyncs) = (stats.acks.get() - 50, stats.fsyncs.get() - 50);
            assert_eq!(acks, 4000);
            assert!(fsyncs * 4 <= acks, "{fsyncs} fsyncs for {acks} acks");
            assert!(
                stats.largest_batch.get() >= 8,
                "largest batch {}",
                stats.largest_batch.get()
            );
        },
        "the publishes",
    )
    .await;
    broker.shutdown().await;
}

#[overlap::test]
async fn a_consumer_tailing_while_producers_write_sees_everything_exactly_once() {
    let dir = TempDir::new("spool-tail");
    let cfg = spool::Config {
        roll_bytes: 32 << 10,
        ..Default::default()
    };
    let broker = start(dir.path(), cfg, Default::default()).await;
    within(
        HANG,
        async {
            let mut consumer = Consumer::subscribe(broker.addr, 0, "tail").await;
            let (acked, records) =
                overlap::join!(publish_from(&broker, 3, 1000, 60), consumer.take(3000));
            for (i, (offset, payload)) in records.iter().enumerate() {
                assert_eq!(*offset, i as u64);
                assert_eq!(payload, &acked[offset]);
            }
            // Nothing more was sent: the next record is the next one published, once.
            let late = publish_all(broker.addr, &[b"late".to_vec()]).await.unwrap();
            assert_eq!(late, [3000]);
            assert_eq!(consumer.next().await, Reply::Record(3000, b"late".to_vec()));
            assert_eq!(broker.stats.delivered.get(), 3001);
        },
        "the tail",
    )
    .await;
    broker.shutdown().await;
}
