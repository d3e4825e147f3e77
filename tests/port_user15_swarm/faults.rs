//! The tests of misbehaving peers: corrupt data, vanishing mid-message, silence, choking,
//! malformed messages and handshakes, one connection too many.

use overlap::io::AsyncWriteExt;
use overlap::time::Instant;

use super::script::{raw, read_to_close};
use super::*;

#[overlap::test]
async fn a_peer_sending_corrupt_data_is_banned_and_the_piece_fetched_again() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-corrupt");
            let (data, meta) = torrent(20);
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            let mut bad = Script::connect(l.addr, &meta, 66).await;
            bad.open_as_seed(&meta).await;
            // Piece 0, every block with one bit flipped; the requests that follow are
            // read and never answered.
            for _ in 0..4 {
                let b = bad.next_request().await;
                let Msg::Piece {
                    index,
                    begin,
                    mut data,
                } = Script::piece(&meta, &data, b)
                else {
                    unreachable!()
                };
                data[5] ^= 1;
                bad.send(Msg::Piece { index, begin, data }).await;
            }
            bad.until_closed().await;
            let s = l.stats();
            assert_eq!(
                (s.blocks_in, s.hash_fails, s.banned, s.closed),
                (4, 1, 1, 1)
            );
            assert_eq!(l.banned(), [66]);
            assert_eq!(l.ends(), ["banned"]);
            assert_eq!(l.have(), [false; 8]);
            // Back under the same id: refused after the handshake.
            let mut again = Script::connect(l.addr, &meta, 66).await;
            assert!(again.until_closed().await.is_empty());
            assert_eq!(l.stats().refused, 1);
            // A good peer: everything, piece 0 again too.
            l.connect(seeder.addr).await.unwrap();
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            assert_eq!((l.stats().blocks_in, seeder.stats().blocks_out), (36, 32));
            assert_eq!(l.stats().hash_fails, 1);
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "corrupt",
    )
    .await;
}

#[overlap::test]
async fn a_peer_vanishing_mid_message_has_its_requests_reassigned() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-vanish");
            let (data, meta) = torrent(21);
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            let mut v = Script::connect(l.addr, &meta, 67).await;
            v.open_as_seed(&meta).await;
            let mut asked = Vec::new();
            for _ in 0..4 {
                asked.push(v.next_request().await);
            }
            for &b in &asked[..2] {
                v.send(Script::piece(&meta, &data, b)).await;
            }
            until(|| l.stats().blocks_in == 2, "two blocks").await;
            // The two requests that replaced them, read so the close is a clean FIN.
            for _ in 0..2 {
                asked.push(v.next_request().await);
            }
            assert_eq!(asked[4..], [meta.block(1, 0), meta.block(1, 1)]);
            // Half a piece message, then gone.
            let Msg::Piece { data: block, .. } = Script::piece(&meta, &data, asked[2]) else {
                unreachable!()
            };
            let mut frame = (9 + block.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(
                &Msg::Piece {
                    index: 0,
                    begin: 8192,
                    data: block,
                }
                .encode(),
            );
            v.send_raw(&frame[..2000]).await;
            drop(v);
            until(|| l.peers() == 0, "the connection gone").await;
            let s = l.stats();
            assert_eq!((s.blocks_in, s.closed, s.malformed), (2, 1, 0));
            // EOF inside a frame: the codec's error, as tokio-util's (kind `Other`).
            let ends = l.ends();
            assert!(
                ends.len() == 1 && ends[0] == "io: bytes remaining on stream",
                "{ends:?}"
            );
            l.connect(seeder.addr).await.unwrap();
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            assert_eq!(seeder.stats().blocks_out, 30);
            assert_eq!(l.stats().wasted, 0);
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "vanish",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_peer_that_never_answers_is_dropped_at_the_request_timeout() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-silent");
            let (data, meta) = torrent(22);
            let cfg = Config::default();
            let mut l = leech(&dir, &meta, 2, cfg.clone()).await;
            let mut q = Script::connect(l.addr, &meta, 68).await;
            q.open_as_seed(&meta).await;
            let start = Instant::now();
            // Exactly the limit of requests, then nothing until the node gives up.
            let rest = q.until_closed().await;
            let requests = rest.iter().filter(|m| matches!(m, Msg::Request(_))).count();
            assert_eq!(requests, cfg.max_outstanding);
            assert!(start.elapsed() >= cfg.request_timeout);
            let s = l.stats();
            assert_eq!((s.timeouts, s.closed, s.blocks_in), (4, 1, 0));
            assert_eq!(l.ends(), ["timeout"]);
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            l.connect(seeder.addr).await.unwrap();
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            assert_eq!(seeder.stats().blocks_out, 32);
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "silent",
    )
    .await;
}

#[overlap::test]
async fn a_choke_drops_the_requests_and_an_unchoke_asks_them_again() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-choke");
            let (data, meta) = torrent(23);
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            let mut k = Script::connect(l.addr, &meta, 69).await;
            k.open_as_seed(&meta).await;
            let mut first = Vec::new();
            for _ in 0..4 {
                first.push(k.next_request().await);
            }
            k.send(Msg::Choke).await;
            k.send(Msg::Unchoke).await;
            let mut again = Vec::new();
            for _ in 0..4 {
                again.push(k.next_request().await);
            }
            again.sort();
            assert_eq!(again, first);
            // Served from here on, again first.
            let mut queue = again;
            for _ in 0..32 {
                let b = if queue.is_empty() {
                    k.next_request().await
                } else {
                    queue.remove(0)
                };
                k.send(Script::piece(&meta, &data, b)).await;
            }
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            let s = l.stats();
            assert_eq!((s.requests_sent, s.blocks_in, s.wasted), (36, 32, 0));
            l.shutdown().await;
        },
        "choke",
    )
    .await;
}

#[overlap::test]
async fn malformed_messages_close_only_their_connection() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-malformed");
            let (data, meta) = torrent(24);
            let s = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let mut good = Script::connect(s.addr, &meta, 80).await;
            good.send(Msg::Bitfield(to_bitfield(&[false; 8]))).await;
            let frame = |body: &[u8]| {
                let mut f = (body.len() as u32).to_be_bytes().to_vec();
                f.extend_from_slice(body);
                f
            };
            let cases: Vec<(&str, Vec<u8>)> = vec![
                ("unknown id", frame(&[42])),
                ("short have", frame(&[4, 0, 0, 1])),
                ("have out of range", frame(&Msg::Have(8).encode())),
                ("choke with a body", frame(&[0, 7])),
                ("bitfield of one bit too many", frame(&[5, 0xff, 0x80])),
                ("late bitfield", [frame(&[2]), frame(&[5, 0])].concat()),
                (
                    "request off the grid",
                    frame(
                        &Msg::Request(Block {
                            index: 1,
                            begin: 100,
                            len: 4096,
                        })
                        .encode(),
                    ),
                ),
                (
                    "request too long",
                    frame(
                        &Msg::Request(Block {
                            index: 1,
                            begin: 0,
                            len: 5000,
                        })
                        .encode(),
                    ),
                ),
                (
                    "cancel out of range",
                    frame(
                        &Msg::Cancel(Block {
                            index: 9,
                            begin: 0,
                            len: 4096,
                        })
                        .encode(),
                    ),
                ),
                (
                    "piece off the grid",
                    frame(
                        &Msg::Piece {
                            index: 7,
                            begin: 12288,
                            data: vec![1; 4096],
                        }
                        .encode(),
                    ),
                ),
                ("oversized frame", vec![0, 1, 0, 0, 7]),
            ];
            for (n, (what, bytes)) in cases.iter().enumerate() {
                let mut bad = Script::connect(s.addr, &meta, 90 + n as u64).await;
                bad.send_raw(bytes).await;
                let seen = bad.until_closed().await;
                assert!(seen.len() <= 2, "{what}: {seen:?}");
                assert_eq!(s.stats().malformed, n as u64 + 1, "{what}");
            }
            // The first connection still served, byte for byte.
            good.send(Msg::Interested).await;
            good.until(|m| (*m == Msg::Unchoke).then_some(())).await;
            let b = meta.block(7, 3);
            good.send(Msg::Request(b)).await;
            let got = good
                .until(|m| matches!(m, Msg::Piece { .. }).then(|| m.clone()))
                .await;
            assert_eq!(got, Script::piece(&meta, &data, b));
            assert_eq!((s.peers(), s.stats().closed), (1, cases.len() as u64));
            // Each closed for its own reason, the codec's limit with its sizes.
            let off_grid = "malformed: request off the block grid";
            let want = [
                "malformed: UnknownId(42)",
                "malformed: BadLength { id: 4, len: 3 }",
                "malformed: have out of range",
                "malformed: BadLength { id: 0, len: 1 }",
                "malformed: bitfield of the wrong size",
                "malformed: bitfield after the first message",
                off_grid,
                off_grid,
                "malformed: cancel off the block grid",
                "malformed: piece off the block grid",
                "malformed: frame size too big: 65536 bytes, the maximum is 4105",
            ];
            assert_eq!(s.ends(), want);
            s.shutdown().await;
        },
        "malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn bad_handshakes_are_refused_and_a_silent_one_times_out() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-handshake");
            let (data, meta) = torrent(25);
            let s = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let ours = proto::handshake(meta.info_hash(), 1);
            let cases: [(&str, Vec<u8>); 4] = [
                (
                    "foreign torrent",
                    proto::handshake(meta.info_hash() ^ 1, 5).to_vec(),
                ),
                ("our own id", proto::handshake(meta.info_hash(), 1).to_vec()),
                ("bad magic", [b"XXXX".as_slice(), &ours[4..]].concat()),
                ("cut short", ours[..10].to_vec()),
            ];
            for (what, bytes) in &cases {
                let mut c = raw(s.addr).await;
                c.write_all(bytes).await.unwrap();
                if bytes.len() < ours.len() {
                    c.shutdown(std::net::Shutdown::Write).unwrap();
                }
                // The node's handshake, then the close.
                assert_eq!(read_to_close(&mut c).await, ours, "{what}");
            }
            let st = s.stats();
            assert_eq!((st.refused, st.malformed), (2, 2));
            let start = Instant::now();
            let mut silent = raw(s.addr).await;
            assert_eq!(read_to_close(&mut silent).await, ours);
            assert!(start.elapsed() >= Config::default().handshake_timeout);
            assert_eq!(s.stats().malformed, 3);
            assert_eq!((s.peers(), s.stats().closed), (0, 0));
            s.shutdown().await;
        },
        "handshakes",
    )
    .await;
}

#[overlap::test]
async fn connections_past_the_limit_are_closed_at_once() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-limit");
            let (data, meta) = torrent(26);
            let path = dir.join("seed-1");
            std::fs::write(&path, &data).unwrap();
            let cfg = Config {
                max_peers: 2,
                ..Config::default()
            };
            let s = Node::start(&path, meta.clone(), 1, "127.0.0.1", cfg)
                .await
                .unwrap();
            let a = Script::connect(s.addr, &meta, 81).await;
            let _b = Script::connect(s.addr, &meta, 82).await;
            until(|| s.peers() == 2, "two peers").await;
            let mut third = raw(s.addr).await;
            assert!(
                read_to_close(&mut third).await.is_empty(),
                "not even a handshake"
            );
            assert_eq!(s.stats().refused, 1);
            drop(a);
            until(|| s.peers() == 1, "a peer gone").await;
            let mut c = Script::connect(s.addr, &meta, 83).await;
            c.send(Msg::Bitfield(to_bitfield(&[false; 8]))).await;
            assert!(matches!(c.recv().await, Some(Msg::Bitfield(_))));
            assert_eq!(s.peers(), 2);
            s.shutdown().await;
        },
        "limit",
    )
    .await;
}
