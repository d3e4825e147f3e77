//! The tests of resuming: a file partly there (one piece of it wrong) checked at the
//! start, and a node shut down in the middle of a transfer, then started again on its file.

use super::*;

#[overlap::test]
async fn a_resumed_download_fetches_only_what_the_file_lacks() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-resume");
            let (data, meta) = torrent(6);
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            // Pieces 0-3 on disk, one byte of piece 2 wrong, and nothing after piece 3.
            let mut partial = data[..4 * PIECE as usize].to_vec();
            partial[2 * PIECE as usize + 77] ^= 0x40;
            std::fs::write(dir.join("leech-2"), &partial).unwrap();
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            assert_eq!(l.stats().resumed, 3);
            let have = l.have();
            assert_eq!(have, [true, true, false, true, false, false, false, false]);
            assert_eq!(
                std::fs::metadata(dir.join("leech-2")).unwrap().len(),
                meta.total_len
            );
            l.connect(seeder.addr).await.unwrap();
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            assert_eq!((l.stats().blocks_in, seeder.stats().blocks_out), (20, 20));
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "resume",
    )
    .await;
}

#[overlap::test]
async fn a_node_shut_down_mid_transfer_resumes_from_its_file() {
    within(
        HANG,
        async {
            let dir = TempDir::new("swarm-restart");
            let (data, meta) = torrent(7);
            let l = leech(&dir, &meta, 2, Config::default()).await;
            // A peer that serves ten blocks (pieces 0 and 1, half of 2), then stalls.
            let mut p = Script::connect(l.addr, &meta, 60).await;
            p.open_as_seed(&meta).await;
            for _ in 0..10 {
                let b = p.next_request().await;
                p.send(Script::piece(&meta, &data, b)).await;
            }
            until(|| l.stats().blocks_in == 10, "ten blocks").await;
            // Cancelled mid-transfer: every task stopped, requests still outstanding.
            let state = l.shutdown().await;
            assert!(state.upgrade().is_none());
            // What the peer had not read: the four requests still outstanding (the limit),
            // perhaps a have of piece 0 or 1 (sent as a command, in the loop's own time),
            // then the close.
            let rest = p.until_closed().await;
            let mut asked: Vec<Block> = rest
                .iter()
                .filter_map(|m| match m {
                    Msg::Request(b) => Some(*b),
                    _ => None,
                })
                .collect();
            asked.sort();
            let want = [
                meta.block(2, 2),
                meta.block(2, 3),
                meta.block(3, 0),
                meta.block(3, 1),
            ];
            assert_eq!(asked, want);
            let others = rest.iter().filter(|m| !matches!(m, Msg::Request(_)));
            assert!(
                others.clone().all(|m| matches!(m, Msg::Have(0 | 1))),
                "{rest:?}"
            );
            let seeder = seed(&dir, &data, &meta, 1, "127.0.0.1").await;
            let mut l = leech(&dir, &meta, 2, Config::default()).await;
            assert_eq!(
                l.have(),
                [true, true, false, false, false, false, false, false]
            );
            l.connect(seeder.addr).await.unwrap();
            l.wait_complete().await;
            assert!(file_of(&dir, 2) == data);
            assert_eq!(seeder.stats().blocks_out, 24);
            seeder.shutdown().await;
            l.shutdown().await;
        },
        "restart",
    )
    .await;
}
