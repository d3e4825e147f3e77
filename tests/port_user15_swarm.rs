//! A user's BitTorrent-like piece exchange, sketched as one would for tokio with
//! `tokio::net`, `tokio::fs` and tokio-util's `LengthDelimitedCodec`, then written for
//! overlap by changing `tokio::` and `tokio_util::` to `overlap::`: the metadata, the
//! FNV-1a 64 checksums, the handshake and the messages (`port_user15_swarm/proto.rs`), the
//! rarest-first picker with its endgame (`picker.rs`), the file (`storage.rs`), the node
//! with its listener and settings (`node.rs`), a connection's task (`conn.rs`), and the
//! tests' scripted peers (`script.rs`); the tests of misbehaving peers are in `faults.rs`,
//! those of resuming in `resume.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use futures::{SinkExt, StreamExt};
//! use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
//! use tokio::net::{TcpListener, TcpStream};
//! use tokio::sync::{mpsc, watch, Mutex};
//! use tokio::task::JoinSet;
//! use tokio_util::codec::{Framed, LengthDelimitedCodec};
//!
//! // A connection: a 21-byte handshake (magic, version, info-hash, peer id) both ways,
//! // then length-prefixed messages.
//! stream.write_all(&handshake(info_hash, my_id)).await?;
//! let mut hs = [0u8; 21];
//! timeout(cfg.handshake_timeout, stream.read_exact(&mut hs)).await??;
//! let mut frames = Framed::new(stream, LengthDelimitedCodec::builder()
//!     .max_frame_length(9 + BLOCK).new_codec());
//! frames.send(Msg::Bitfield(bits).encode()).await?;
//! loop {
//!     update_interest().await?;      // Interested / NotInterested
//!     fill().await?;                 // picker.pick(..) until max_outstanding in flight
//!     let deadline = outstanding.values().min().copied();
//!     tokio::select! {
//!         f = frames.next() => match f { .. }   // choke, unchoke, have, request, piece ..
//!         Some(cmd) = rx.recv() => ..           // Have / Cancel / Refill / Ban from others
//!         _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() =>
//!             return Err(Timeout),
//!     }
//! }
//! // A block received: written at its offset; a piece done: read back and checked.
//! let mut file = storage.lock().await;       // tokio::sync::Mutex<tokio::fs::File>
//! file.seek(SeekFrom::Start(offset)).await?;
//! file.write_all(&data).await?;
//! file.flush().await?;
//! // the node: a JoinSet of the accept loop and the connections, aborted on shutdown
//! tasks.spawn(accept_loop(listener));
//! tasks.shutdown().await;
//! ```
//!
//! The tests check, over real TCP on 127.0.0.1 (one on ::1) and real files in a temp dir,
//! the clock paused where a timeout matters: the FNV-1a vectors, every message encoded and
//! decoded and bad frames and bitfields refused; the picker's rarest-first order, its
//! endgame duplicates and the banning bookkeeping (`port_user15_swarm.rs`); a seed to one
//! leecher with every block sent once; one seed and four leechers meshed, all ending with
//! the seed's bytes; the rarest piece asked for first over the wire; endgame duplicates
//! sent to a second peer and cancelled at the slow one, exactly; the same over ::1; no fd
//! and no task left in a child process; a resumed download fetching only the pieces the
//! file lacks, and a node shut down mid-transfer and resumed (`resume.rs`); a peer
//! sending corrupt data banned, its blocks fetched again from a good peer, and refused
//! when it comes back; a peer vanishing in the middle of a message, its requests
//! reassigned; a peer that never answers dropped at the request timeout; a choke dropping
//! the requests and an unchoke asking them again; malformed messages (an unknown id, bad
//! lengths, out-of-range indexes, a late bitfield, an oversized frame) and bad handshakes
//! (foreign info-hash, our own id, bad magic, cut short, silence) each closing only their
//! connection, for its own reason, while the node keeps serving; and the peer limit
//! (`faults.rs`).
//!
//! The tests were run against the program broken on purpose, one fault at a time: the
//! picker ordering by index instead of rarity failed the picker's test and the rarest-first
//! one over the wire; no cancels in endgame failed the endgame test (the slow peer's
//! requests then run into the request timeout instead).
//!
//! What porting it found missing: nothing that tokio or tokio-util has. `TcpListener`,
//! `TcpStream` with `set_nodelay`, `Framed` with `LengthDelimitedCodec::builder()` and its
//! `max_frame_length`, `SinkExt`/`StreamExt`, `select!` with an `if` precondition and a
//! `Some(cmd) =` pattern, `sleep_until` with `time::Instant`, `timeout`, `watch`'s
//! `wait_for`, unbounded `mpsc`, the async `Mutex`, `JoinSet` (`spawn`, `abort_all`,
//! `shutdown`), `fs::OpenOptions` and `File`'s `seek`, `set_len` and `metadata`, and the
//! paused clock with real sockets and real files: all have tokio's names and behaved as
//! tokio's would. Points a user meets, none of them a gap against tokio:
//!
//! - No positional file I/O: overlap's `File` has no `read_at`/`write_at` (`pread`/
//!   `pwrite`), and neither has tokio's. Blocks arriving on several connections are
//!   written at their offsets as a seek, a `write_all` and a `flush` under an async
//!   `Mutex` around the one `File`, and a piece is read back for its checksum as a seek
//!   and a `read_exact` under the same lock (`try_clone` would not help: the clone shares
//!   the offset). The seek before each read also drops what the `File` had read ahead
//!   (it fetches at least 64 KiB a job, where tokio's reads what is asked), so a piece
//!   read back is the file as it is now, as its docs say. std's `FileExt::write_all_at`
//!   in `spawn_blocking` is the way round the lock, with either runtime.
//! - A peer gone in the middle of a frame ends the `Framed` stream with an `io::Error` of
//!   kind `Other`, "bytes remaining on stream", exactly tokio-util's: code that looks for
//!   `UnexpectedEof` to tell a cut message from a clean close misses it with both. The
//!   frame-length limit's error names both sizes ("frame size too big: 65536 bytes, the
//!   maximum is 4105") where tokio-util's says only "frame size too big".
//! - A `select!` branch disabled by its `if` still evaluates its future's expression, as
//!   tokio's does, so the sketch's deadline is `unwrap_or_else(Instant::now)`, not
//!   `unwrap()`, with both. The timer made before the `select!` and named in a branch is
//!   written `{ timer }` there: overlap's `select!` borrows a future given by bare name
//!   (and asks it to be `Unpin`), where tokio's moves it in, as the README's table says.
//! - `File::set_len` takes `&mut self` where tokio's takes `&self` (the README says why);
//!   the lock gives a `&mut File` anyway.

mod support;

#[path = "port_user15_swarm/conn.rs"]
mod conn;
#[path = "port_user15_swarm/faults.rs"]
mod faults;
#[path = "port_user15_swarm/node.rs"]
mod node;
#[path = "port_user15_swarm/picker.rs"]
mod picker;
#[path = "port_user15_swarm/proto.rs"]
mod proto;
#[path = "port_user15_swarm/resume.rs"]
mod resume;
#[path = "port_user15_swarm/script.rs"]
mod script;
#[path = "port_user15_swarm/storage.rs"]
mod storage;

use std::rc::Rc;
use std::time::Duration;

use node::{Config, Node};
use picker::Picker;
use proto::{fnv1a64, from_bitfield, to_bitfield, Block, Malformed, Meta, Msg};
use script::Script;
use support::{pattern_seeded, until, within, TempDir};

/// A hang guard only (virtual time where the clock is paused).
const HANG: Duration = Duration::from_secs(3600);
const PIECE: u32 = 16 * 1024;

/// 8 pieces of 4 blocks, the last piece and block short: 32 blocks.
fn torrent(seed: u32) -> (Vec<u8>, Meta) {
    let data = pattern_seeded(8 * PIECE as usize - 1000, seed);
    let meta = Meta::of(&data, PIECE);
    (data, meta)
}

/// A node holding the whole file.
async fn seed(dir: &TempDir, data: &[u8], meta: &Meta, id: u64, host: &str) -> Node {
    let path = dir.join(&format!("seed-{id}"));
    std::fs::write(&path, data).unwrap();
    let node = Node::start(&path, meta.clone(), id, host, Config::default())
        .await
        .unwrap();
    assert_eq!(node.stats().resumed, meta.pieces() as u64);
    node
}

async fn leech(dir: &TempDir, meta: &Meta, id: u64, cfg: Config) -> Node {
    let path = dir.join(&format!("leech-{id}"));
    Node::start(&path, meta.clone(), id, "127.0.0.1", cfg)
        .await
        .unwrap()
}

fn file_of(dir: &TempDir, id: u64) -> Vec<u8> {
    std::fs::read(dir.join(&format!("leech-{id}"))).unwrap()
}

#[test]
fn fnv_vectors_and_every_message_round_trips() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    let b = Block {
        index: 3,
        begin: 8192,
        len: 4096,
    };
    let all = [
        Msg::KeepAlive,
        Msg::Choke,
        Msg::Unchoke,
        Msg::Interested,
        Msg::NotInterested,
        Msg::Have(7),
        Msg::Bitfield(vec![0b1010_0000]),
        Msg::Request(b),
        Msg::Piece {
            index: 1,
            begin: 4096,
            data: vec![9; 10],
        },
        Msg::Cancel(b),
    ];
    for m in all {
        assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
    }
    assert_eq!(
        Msg::Request(b).encode(),
        [6, 0, 0, 0, 3, 0, 0, 0x20, 0, 0, 0, 0x10, 0]
    );
    assert_eq!(Msg::decode(&[9]), Err(Malformed::UnknownId(9)));
    assert_eq!(
        Msg::decode(&[4, 0, 0, 1]),
        Err(Malformed::BadLength { id: 4, len: 3 })
    );
    assert_eq!(
        Msg::decode(&[1, 0]),
        Err(Malformed::BadLength { id: 1, len: 1 })
    );
    assert_eq!(
        Msg::decode(&[7, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(Malformed::BadLength { id: 7, len: 8 })
    );
    // Bitfields: ten pieces in two bytes, the spare bits clear.
    let have = [
        true, false, true, true, false, false, false, false, false, true,
    ];
    assert_eq!(to_bitfield(&have), [0b1011_0000, 0b0100_0000]);
    assert_eq!(
        from_bitfield(&[0b1011_0000, 0b0100_0000], 10).unwrap(),
        have
    );
    assert_eq!(from_bitfield(&[0b1011_0000, 0b0110_0000], 10), None);
    assert_eq!(from_bitfield(&[0b1011_0000], 10), None);
    // The grid: the short last block of the short last piece, and nothing else.
    let (_, meta) = torrent(1);
    assert_eq!((meta.pieces(), meta.total_blocks()), (8, 32));
    let last = meta.block(7, 3);
    assert_eq!(last.len, PIECE - 1000 - 3 * 4096);
    assert!(meta.is_block(last));
    assert!(!meta.is_block(Block { len: 4096, ..last }));
    assert!(!meta.is_block(Block { index: 8, ..b }));
    assert!(!meta.is_block(Block { begin: 100, ..b }));
}

#[test]
fn picker_goes_rarest_first_then_endgame_and_tracks_senders() {
    let (_, meta) = torrent(1);
    let meta = Rc::new(meta);
    let mut p = Picker::new(meta.clone(), vec![false; 8]);
    let all = vec![true; 8];
    p.add_peer(&all, 1);
    let mut few = vec![false; 8];
    few[2] = true;
    few[6] = true;
    p.add_peer(&few, 1);
    // Pieces 2 and 6 are held by two peers: the other six come first, lowest first.
    let order: Vec<u32> = (0..24).map(|_| p.pick(1, &all).unwrap().0.index).collect();
    assert_eq!(
        order,
        [[0; 4], [1; 4], [3; 4], [4; 4], [5; 4], [7; 4]].concat()
    );
    // Connection 2 holds only 2 and 6: it takes piece 2, connection 1 then piece 6.
    for n in 0..4 {
        assert_eq!(p.pick(2, &few).unwrap(), (meta.block(2, n), false));
    }
    assert!(!p.endgame());
    for n in 0..4 {
        assert_eq!(p.pick(1, &all).unwrap(), (meta.block(6, n), false));
    }
    // Every block asked for: endgame, duplicates of what the other has outstanding.
    assert!(p.endgame());
    assert_eq!(p.pick(2, &few).unwrap(), (meta.block(6, 0), true));
    assert_eq!(p.pick(1, &all).unwrap(), (meta.block(2, 0), true));
    // The block arrives from 1: 2 is told to cancel it.
    let got = p.received(1, meta.block(2, 0)).unwrap();
    assert_eq!((got.cancel, got.piece_done), (vec![2], false));
    assert_eq!(p.received(2, meta.block(2, 0)), None, "the late copy");
    // Piece 0 from connection 1, but a block from 2: the failure names both.
    for n in 0..4 {
        let from = if n == 1 { 2 } else { 1 };
        let done = p.received(from, meta.block(0, n)).unwrap().piece_done;
        assert_eq!(done, n == 3);
    }
    assert_eq!(p.failed(0), vec![1, 2]);
    assert_eq!(p.release_all(1), 24, "pieces 1, 3, 4, 5, 6 and 7");
    assert_eq!(p.forget_from(1), 1, "block 2.0");
    assert_eq!(p.pick(1, &all).unwrap(), (meta.block(0, 0), false));
}

#[overlap::test]
async fn a_seed_sends_every_block_once_to_one_leecher() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-one");
            let (data, meta) = torrent(2);
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            assert_eq!(l.stats().resumed, 0);
            l.connect(seeder.addr).await.unwrap();
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            let (ls, ss) = (l.stats(), seeder.stats());
            assert_eq!((ls.blocks_in, ls.requests_sent, ls.wasted), (32, 32, 0));
            assert_eq!(
                (ls.endgame_requests, ls.cancels_sent, ls.hash_fails),
                (0, 0, 0)
            );
            assert_eq!(ss.blocks_out, 32);
            assert_eq!(l.have(), vec![true; 8]);
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "one leecher",
    )
    .await;
}

#[overlap::test]
async fn one_seed_and_four_meshed_leechers_all_end_with_the_seeds_bytes() {
    within(
        HANG,
        async {
            let tasks = overlap::metrics().tasks_alive;
            let dir = TempDir::new("swarm-mesh");
            let (data, meta) = torrent(3);
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let mut leechers = Vec::new();
            for id in 10..14 {
                leechers.push(leech(&dir, &meta, id, Config::default()).await);
            }
            // Every leecher to every other one, then each to the seed.
            for i in 0..4 {
                for j in 0..i {
                    leechers[i].connect(leechers[j].addr).await.unwrap();
                }
            }
            until(|| leechers.iter().all(|l| l.peers() == 3), "the mesh").await;
            for l in &leechers {
                l.connect(seeder.addr).await.unwrap();
            }
            for l in &mut leechers {
                l.wait_complete().await;
            }
            for id in 10..14 {
                assert!(file_of(&dir, id) == data, "leecher {id}");
            }
            for l in &leechers {
                let s = l.stats();
                assert_eq!(
                    (s.blocks_in, s.hash_fails, s.malformed),
                    (32, 0, 0),
                    "{s:?}"
                );
                assert!(s.requests_sent >= 32 && s.requests_sent == 32 + s.endgame_requests);
            }
            // Every block sent was received, once or as a wasted copy (once the copies in
            // flight have landed).
            let sent = || {
                seeder.stats().blocks_out
                    + leechers.iter().map(|l| l.stats().blocks_out).sum::<u64>()
            };
            let landed = || {
                leechers
                    .iter()
                    .map(|l| l.stats().blocks_in + l.stats().wasted)
                    .sum::<u64>()
            };
            until(|| sent() == landed(), "the copies in flight").await;
            assert!(sent() >= 4 * 32);
            let mut alive = vec![seeder.shutdown().await];
            for l in leechers {
                alive.push(l.shutdown().await);
            }
            assert!(
                alive.iter().all(|w| w.upgrade().is_none()),
                "a node's state kept"
            );
            assert_eq!(overlap::metrics().tasks_alive, tasks);
        },
        "mesh",
    )
    .await;
}

#[overlap::test]
async fn the_rarest_piece_is_asked_for_first_over_the_wire() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-rarest");
            let (data, meta) = torrent(4);
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            // Three peers that never unchoke: pieces 0-3 held by three, 4-5 by two, 6 by one.
            let mut chokers = Vec::new();
            for (id, held) in [(30, 7), (31, 6), (32, 4)] {
                let mut p = Script::connect(l.addr, &meta, id).await;
                let has: Vec<bool> = (0..8).map(|i| i < held).collect();
                p.send(Msg::Bitfield(to_bitfield(&has))).await;
                p.until(|m| (*m == Msg::Interested).then_some(())).await;
                chokers.push(p);
            }
            let mut s = Script::connect(l.addr, &meta, 40).await;
            s.open_as_seed(&meta).await;
            let mut asked = Vec::new();
            for _ in 0..32 {
                let b = s.next_request().await;
                asked.push(b);
                s.send(Script::piece(&meta, &data, b)).await;
            }
            let pieces: Vec<u32> = asked.iter().map(|b| b.index).collect();
            let want = [7, 6, 4, 5, 0, 1, 2, 3].map(|i| [i; 4]).concat();
            assert_eq!(pieces, want);
            assert!(asked
                .iter()
                .zip(0..)
                .all(|(b, n)| b.begin == (n % 4) * 4096));
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            assert_eq!(l.stats().requests_sent, 32);
            l.shutdown().await;
        },
        "rarest",
    )
    .await;
}

#[overlap::test]
async fn endgame_asks_a_second_peer_and_cancels_at_the_slow_one() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-endgame");
            let (data, meta) = torrent(5);
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            // A slow peer takes the first four requests and sits on them.
            let mut slow = Script::connect(l.addr, &meta, 50).await;
            slow.open_as_seed(&meta).await;
            let mut held = Vec::new();
            for _ in 0..4 {
                held.push(slow.next_request().await);
            }
            assert_eq!(held, (0..4).map(|n| meta.block(0, n)).collect::<Vec<_>>());
            l.connect(seeder.addr).await.unwrap();
            // The seed gets the other 28, then the four again; each copy that lands
            // cancels the slow peer's.
            let mut cancelled = Vec::new();
            while cancelled.len() < 4 {
                let b = slow
                    .until(|m| match m {
                        Msg::Cancel(b) => Some(*b),
                        Msg::Request(b) => panic!("a fifth request {b:?}"),
                        _ => None,
                    })
                    .await;
                cancelled.push(b);
            }
            cancelled.sort();
            assert_eq!(cancelled, held);
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            let s = l.stats();
            assert_eq!(
                (s.requests_sent, s.endgame_requests, s.cancels_sent),
                (36, 4, 4)
            );
            assert_eq!((s.blocks_in, s.wasted), (32, 0));
            assert_eq!(seeder.stats().blocks_out, 32);
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "endgame",
    )
    .await;
}

#[overlap::test]
async fn a_transfer_over_ipv6_loopback() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-v6");
            let (data, meta) = torrent(8);
            let seeder = seed(&dir, &data, &meta, 1, "::1").await;
            assert!(seeder.addr.is_ipv6());
            let path = dir.join("leech-2");
            let mut l = Node::start(&path, meta.clone(), 2, "::1", Config::default())
                .await
                .unwrap();
            seeder.connect(l.addr).await.unwrap();
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            assert_eq!(seeder.stats().blocks_out, 32);
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "ipv6",
    )
    .await;
}

#[test]
fn no_fd_or_task_is_left_after_transfers_and_shutdowns() {
    support::run_in_child(
        "no_fd_or_task_is_left_after_transfers_and_shutdowns",
        || {
            let rt = overlap::Runtime::new().unwrap();
            rt.block_on(async {
                let fds = support::open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let dir = TempDir::new("swarm-leaks");
                let (data, meta) = torrent(9);
                let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
                let mut a = leech(&dir, &meta, 2, Config::default()).await;
                let mut b = leech(&dir, &meta, 3, Config::default()).await;
                a.connect(seeder.addr).await.unwrap();
                b.connect(seeder.addr).await.unwrap();
                b.connect(a.addr).await.unwrap();
                a.wait_complete().await;
                b.wait_complete().await;
                // And a connection cut by a malformed frame.
                let mut bad = Script::connect(seeder.addr, &meta, 70).await;
                bad.send_raw(&[0, 0, 0, 1, 99]).await;
                bad.until_closed().await;
                drop(bad);
                for node in [seeder, a, b] {
                    assert!(node.shutdown().await.upgrade().is_none());
                }
                assert_eq!(overlap::metrics().tasks_alive, tasks);
                // A file's fd closes on the pool once its last job ends.
                until(|| support::open_fds() == fds, "the fds back").await;
            });
        },
    );
}
