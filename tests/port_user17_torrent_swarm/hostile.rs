//! The tests of hostile and vanishing peers: each bad frame or protocol violation closes
//! its own connection only, the file never written outside its range; a handshake never
//! sent, a node full, a node shut down mid-transfer.

use overlap::net::{TcpListener, TcpStream};
use overlap::time::Instant;

use super::node::Config;
use super::rig::{fd_names, shut_down_clean, Swarm, LEN, SEED_ID};
use super::rogue::Rogue;
use super::wire::{to_bitfield, Block, Msg, BLOCK};
use super::{encode, HANG};
use crate::support::{until, within};

const ROGUE: u64 = 0x0bad;

/// Every violation a peer can commit, each on its own connection to one seed while a
/// leecher downloads from it: each closes only its connection, with the reason recorded.
#[overlap::test(start_paused = true)]
async fn each_malformed_message_closes_only_its_own_connection() {
    let swarm = Swarm::new("pf-malformed", "127.0.0.1");
    let seed = swarm.seed(SEED_ID, Config::default()).await;
    let mut leech = swarm.node(1, Config::default()).await;
    leech.connect(seed.addr).await.unwrap();
    until(|| seed.peers() == 1, "the leecher's connection").await;
    let req = |index, begin, len| encode(Msg::Request(Block { index, begin, len })).to_vec();
    let mut flood = Vec::new();
    for _ in 0..65 {
        flood.extend_from_slice(&req(0, 0, BLOCK));
    }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0, 1, 0, 0, 7], "malformed: frame of 65536 bytes"),
        (vec![0, 0, 0, 1, 42], "malformed: unknown message id 42"),
        (
            vec![0, 0, 0, 3, 4, 0, 0],
            "malformed: message 4 with a 2-byte body",
        ),
        (
            encode(Msg::Have(6)).to_vec(),
            "malformed: have out of range",
        ),
        (req(6, 0, BLOCK), "malformed: request out of range"),
        (req(5, 3 * BLOCK, BLOCK), "malformed: request out of range"),
        (req(0, 100, BLOCK), "malformed: request out of range"),
        (req(0, 0, BLOCK + 1), "malformed: request out of range"),
        (
            encode(Msg::Handshake {
                info_hash: 1,
                peer_id: 2,
            })
            .to_vec(),
            "malformed: a second handshake",
        ),
        (flood, "malformed: too many requests queued"),
    ];
    let mut want_ends = Vec::new();
    for (i, (bytes, why)) in cases.into_iter().enumerate() {
        let mut rogue = Rogue::connect(seed.addr, swarm.meta.info_hash(), ROGUE + i as u64).await;
        // Its bitfield first, so that the next message is the violation (but for the
        // flood, which must be unchoked to be queued).
        rogue.send(Msg::Bitfield(to_bitfield(&[false; 6]))).await;
        if why.contains("too many") {
            rogue.send(Msg::Interested).await;
            rogue.until(|m| (*m == Msg::Unchoke).then_some(())).await;
        }
        rogue.send_raw(&bytes).await;
        let seen = within(HANG, rogue.until_closed(), why).await;
        assert!(
            seen.iter().all(|m| !matches!(m, Msg::Piece { .. })),
            "{why}: {seen:?}"
        );
        want_ends.push(why.to_string());
        assert_eq!(seed.ends(), want_ends);
        assert_eq!(seed.peers(), 1, "the leecher's connection goes on");
    }
    // A bitfield after another message, from a peer that sent its own first.
    let mut rogue = Rogue::connect(seed.addr, swarm.meta.info_hash(), ROGUE + 99).await;
    rogue.send(Msg::Interested).await;
    rogue.send(Msg::Bitfield(to_bitfield(&[true; 6]))).await;
    rogue.until_closed().await;
    want_ends.push("malformed: bitfield after the first message".to_string());
    assert_eq!(seed.ends(), want_ends);
    within(HANG, leech.wait_complete(), "the leecher to complete").await;
    until(
        || seed.stats().blocks_out == 24,
        "the seed's uploads counted",
    )
    .await;
    swarm.assert_identical(1);
    shut_down_clean(leech, swarm.path(1)).await;
    shut_down_clean(seed, swarm.path(SEED_ID)).await;
}

#[overlap::test(start_paused = true)]
async fn a_wrong_info_hash_or_no_handshake_is_refused() {
    let swarm = Swarm::new("pf-handshake", "127.0.0.1");
    let seed = swarm.seed(SEED_ID, Config::default()).await;
    let mut rogue = Rogue::connect(seed.addr, swarm.meta.info_hash() ^ 1, ROGUE).await;
    let seen = rogue.until_closed().await;
    let hs = Msg::Handshake {
        info_hash: swarm.meta.info_hash(),
        peer_id: SEED_ID,
    };
    assert_eq!(seen, [hs], "its handshake, then nothing: no bitfield");
    assert_eq!(seed.ends(), ["refused: info-hash"]);
    // Connected and silent: closed at the handshake timeout, on the paused clock.
    let start = Instant::now();
    let mut silent = TcpStream::connect(seed.addr).await.unwrap();
    let mut buf = Vec::new();
    let n = overlap::io::AsyncReadExt::read_to_end(&mut silent, &mut buf)
        .await
        .unwrap();
    assert_eq!(n, 21, "only the seed's handshake");
    assert!(start.elapsed() >= Config::default().handshake_timeout);
    assert_eq!(seed.ends(), ["refused: info-hash", "timeout"]);
    assert_eq!((seed.peers(), seed.stats().refused), (0, 1));
    shut_down_clean(seed, swarm.path(SEED_ID)).await;
}

/// A peer sending a block the leecher never asked for, one out of the file's range, and
/// one off the block grid: the connection is closed and nothing is written.
#[overlap::test(start_paused = true)]
async fn an_unrequested_piece_closes_the_connection_and_writes_nothing() {
    let swarm = Swarm::new("pf-unrequested", "127.0.0.1");
    let leech = swarm.node(1, Config::default()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lies = [
        (0, 0, vec![0xaa; BLOCK as usize]),
        (6, 0, vec![0xbb; BLOCK as usize]),
        (5, 3 * BLOCK, vec![0xcc; BLOCK as usize]),
        (u32::MAX, u32::MAX - 8, vec![0xdd; 100]),
    ];
    for (round, (index, begin, data)) in lies.iter().cloned().enumerate() {
        leech.connect(listener.local_addr().unwrap()).await.unwrap();
        let mut rogue =
            Rogue::accept(&listener, swarm.meta.info_hash(), ROGUE + round as u64).await;
        rogue.seed_like(&swarm.meta).await;
        let asked = rogue
            .until(|m| match m {
                Msg::Request(b) => Some(*b),
                _ => None,
            })
            .await;
        assert_ne!((asked.index, asked.begin), (index, begin));
        rogue.send(Msg::Piece { index, begin, data }).await;
        rogue.until_closed().await;
        let ends = leech.ends();
        assert!(
            ends[round].starts_with("malformed: unrequested piece"),
            "{ends:?}"
        );
    }
    let s = leech.stats();
    assert_eq!((s.blocks_in, s.released), (0, 16));
    let file = std::fs::read(swarm.path(1)).unwrap();
    assert_eq!(file.len(), LEN, "never written past its length");
    assert!(file.iter().all(|&b| b == 0), "nothing written");
    shut_down_clean(leech, swarm.path(1)).await;
}

#[overlap::test(start_paused = true)]
async fn a_full_node_refuses_one_more_peer() {
    let swarm = Swarm::new("pf-full", "127.0.0.1");
    let seed = swarm
        .seed(
            SEED_ID,
            Config {
                max_peers: 1,
                ..Config::default()
            },
        )
        .await;
    let mut first = Rogue::connect(seed.addr, swarm.meta.info_hash(), ROGUE).await;
    first
        .until(|m| matches!(m, Msg::Bitfield(_)).then_some(()))
        .await;
    let mut second = Rogue::connect(seed.addr, swarm.meta.info_hash(), ROGUE + 1).await;
    assert_eq!(second.until_closed().await, [], "closed before a handshake");
    assert_eq!(seed.ends(), ["refused: full"]);
    assert_eq!((seed.peers(), seed.stats().refused), (1, 1));
    drop(first);
    until(|| seed.peers() == 0, "the first peer to go").await;
    assert_eq!(seed.ends(), ["refused: full", "eof"]);
    shut_down_clean(seed, swarm.path(SEED_ID)).await;
}

/// Both ends shut down in the middle of the transfer (writes and `send_to`s in flight):
/// every task ends, every `PositionalFile` clone is dropped and the fds close; the
/// leecher's file keeps its length, and restarted on it, the leecher fetches the rest.
#[overlap::test(start_paused = true)]
async fn a_node_shut_down_mid_transfer_leaves_nothing_and_resumes() {
    let swarm = Swarm::new("pf-shutdown", "127.0.0.1");
    let seed = swarm.seed(SEED_ID, Config::default()).await;
    let leech = swarm.node(1, Config::default()).await;
    leech.connect(seed.addr).await.unwrap();
    // Looked at after every round of the other tasks (a sleep would let it all finish).
    let mut rounds = 0u32;
    while leech.stats().blocks_in < 9 {
        rounds += 1;
        assert!(rounds < 10_000_000, "no blocks coming in");
        overlap::yield_now().await;
    }
    let held = leech.have().iter().filter(|&&h| h).count();
    assert!(
        (1..6).contains(&held) && leech.stats().blocks_in < 24,
        "{held} pieces"
    );
    let fds = (leech.file_fd(), seed.file_fd());
    let (a, b) = overlap::join!(leech.shutdown(), seed.shutdown());
    assert!(a.upgrade().is_none() && b.upgrade().is_none());
    until(
        || !fd_names(fds.0, &swarm.path(1)),
        "the leecher's fd to close",
    )
    .await;
    until(
        || !fd_names(fds.1, &swarm.path(SEED_ID)),
        "the seed's fd to close",
    )
    .await;
    assert_eq!(std::fs::metadata(swarm.path(1)).unwrap().len(), LEN as u64);
    let mut leech = swarm.node(1, Config::default()).await;
    let resumed = leech.have().iter().filter(|&&h| h).count();
    assert!(resumed >= held, "{resumed} < {held}");
    let seed = swarm.seed(SEED_ID, Config::default()).await;
    leech.connect(seed.addr).await.unwrap();
    within(HANG, leech.wait_complete(), "the rest").await;
    assert!(leech.stats().blocks_in <= 24 - 4 * resumed as u64);
    swarm.assert_identical(1);
    shut_down_clean(leech, swarm.path(1)).await;
    shut_down_clean(seed, swarm.path(SEED_ID)).await;
}
