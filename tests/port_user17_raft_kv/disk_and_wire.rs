//! The tests of the files and the wire: the log replayed, torn and corrupt tails cut off
//! (at the storage level, and in a running cluster), a bad meta file refused, the codec
//! fed a byte at a time, and malformed RPC frames closing only their connection.

use std::io::ErrorKind;

use overlap::codec::{BytesMut, Decoder};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;

use crate::cluster::Cluster;
use crate::raft::Config;
use crate::storage::{parse_log, record, Storage};
use crate::support::{within, TempDir};
use crate::wire::{frame_bytes, Command, Entry, Frame, RaftCodec, Request, Response, MAX_FRAME};
use crate::HANG;

fn entries(n: u64) -> Vec<Entry> {
    (1..=n)
        .map(|i| Entry {
            term: 1 + i / 3,
            cmd: Command::Put(format!("k{i}"), "v".repeat(i as usize)),
        })
        .collect()
}

#[overlap::test]
async fn the_log_replays_and_a_torn_tail_is_cut_at_every_byte() {
    let dir = TempDir::new("raft-storage");
    let path = dir.join("n");
    let all = entries(5);
    {
        let (mut st, loaded) = Storage::open(&path).await.unwrap();
        assert_eq!(
            (loaded.term, loaded.vote, loaded.entries.len()),
            (0, None, 0)
        );
        st.append(1, &all[..3]).await.unwrap();
        st.append(4, &all[3..]).await.unwrap();
        st.save_meta(7, Some(2)).await.unwrap();
    }
    let (_, loaded) = Storage::open(&path).await.unwrap();
    assert_eq!(
        (loaded.term, loaded.vote, loaded.torn_bytes),
        (7, Some(2), 0)
    );
    assert_eq!(loaded.entries, all);
    let log = std::fs::read(path.join("log")).unwrap();
    let last = record(5, &all[4]);
    let whole = log.len() - last.len();
    // A crash mid-append leaves any prefix of the last record: each is cut off exactly.
    for cut in 1..last.len() {
        std::fs::write(path.join("log"), &log[..whole + cut]).unwrap();
        let (_, loaded) = Storage::open(&path).await.unwrap();
        assert_eq!(loaded.torn_bytes, cut as u64, "cut {cut}");
        assert_eq!(loaded.entries, all[..4], "cut {cut}");
        assert_eq!(
            std::fs::metadata(path.join("log")).unwrap().len(),
            whole as u64
        );
    }
    // A whole last record failing its checksum (a bit flipped) goes too.
    let mut flipped = log.clone();
    *flipped.last_mut().unwrap() ^= 1;
    std::fs::write(path.join("log"), &flipped).unwrap();
    let (mut st, loaded) = Storage::open(&path).await.unwrap();
    assert_eq!(
        (loaded.torn_bytes, loaded.entries.len()),
        (last.len() as u64, 4)
    );
    // Appending after the repair continues the file cleanly.
    st.append(5, &all[4..]).await.unwrap();
    drop(st);
    assert_eq!(std::fs::read(path.join("log")).unwrap(), log);
    // A meta file that fails its checksum is refused, not taken as term 0.
    let mut meta = std::fs::read(path.join("meta")).unwrap();
    meta[3] ^= 0x40;
    std::fs::write(path.join("meta"), &meta).unwrap();
    let err = Storage::open(&path).await.err().expect("a bad meta file");
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert_eq!(err.to_string(), "meta: bad checksum");
}

#[test]
fn the_codec_takes_frames_a_byte_at_a_time() {
    let frames = vec![
        Frame::Req(Request::Vote {
            term: 3,
            candidate: 1,
            last_index: 9,
            last_term: 2,
        }),
        Frame::Req(Request::Append {
            term: 3,
            leader: 1,
            prev_index: 8,
            prev_term: 2,
            entries: entries(4),
            commit: 7,
        }),
        Frame::Req(Request::Append {
            term: 3,
            leader: 1,
            prev_index: 8,
            prev_term: 2,
            entries: vec![],
            commit: 7,
        }),
        Frame::Req(Request::Snapshot {
            term: 4,
            leader: 0,
            last_index: 20,
            last_term: 4,
            data: vec![1, 2, 3],
        }),
        Frame::Resp(Response::Vote {
            term: 3,
            granted: true,
        }),
        Frame::Resp(Response::Append {
            term: 3,
            success: false,
            index: 5,
        }),
        Frame::Resp(Response::Snapshot {
            term: 4,
            last_index: 20,
        }),
    ];
    let bytes: Vec<u8> = frames.iter().flat_map(frame_bytes).collect();
    let (mut codec, mut buf, mut got) = (RaftCodec, BytesMut::new(), Vec::new());
    for b in bytes {
        buf.extend_from_slice(&[b]);
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            got.push(f);
        }
    }
    assert_eq!(got, frames);
    assert!(buf.is_empty());
}

/// Frames a peer must refuse, each with what makes it bad.
fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let vote = frame_bytes(&Frame::Req(Request::Vote {
        term: 1,
        candidate: 0,
        last_index: 0,
        last_term: 0,
    }));
    let mut trailing = vote.clone();
    trailing[3] += 1;
    trailing.push(0);
    let mut short = vote.clone();
    short[3] -= 2;
    short.truncate(short.len() - 2);
    let mut bad_entry = frame_bytes(&Frame::Req(Request::Append {
        term: 1,
        leader: 0,
        prev_index: 0,
        prev_term: 0,
        entries: entries(1),
        commit: 0,
    }));
    let at = 4 + 1 + 8 + 1 + 8 + 8 + 8 + 4 + 8; // the first entry's command type
    bad_entry[at] = 9;
    vec![
        ("a zero length", vec![0, 0, 0, 0]),
        (
            "a length past the limit",
            ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec(),
        ),
        ("an unknown type", vec![0, 0, 0, 1, 99]),
        (
            "a reply where a request goes",
            frame_bytes(&Frame::Resp(Response::Vote {
                term: 1,
                granted: true,
            })),
        ),
        ("bytes after the fields", trailing),
        ("fields cut short", short),
        ("an unknown command", bad_entry),
    ]
}

#[overlap::test(start_paused = true)]
async fn malformed_rpc_frames_close_only_their_connection() {
    within(
        HANG,
        async {
            let c = Cluster::start("raft-malformed", 3, 9, Config::default()).await;
            let leader = c.wait_leader(&c.up()).await;
            let target = (leader + 1) % 3;
            let addr = c.net.peer_addr(target).unwrap();
            let mut cl = c.client();
            let cases = malformed();
            for (i, (what, bytes)) in cases.iter().enumerate() {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(bytes).await.unwrap();
                let mut rest = Vec::new();
                s.read_to_end(&mut rest).await.unwrap();
                assert!(rest.is_empty(), "{what}: {rest:?}");
                assert_eq!(c.status(target).malformed_frames, i as u64 + 1, "{what}");
                // The cluster goes on committing through the target meanwhile.
                cl.put(&format!("k{i}"), what).await.unwrap();
            }
            // A peer vanishing in the middle of a frame: counted too, nothing else lost.
            let mut s = TcpStream::connect(addr).await.unwrap();
            let vote = frame_bytes(&Frame::Req(Request::Vote {
                term: 1,
                candidate: 0,
                last_index: 0,
                last_term: 0,
            }));
            s.write_all(&vote[..9]).await.unwrap();
            drop(s);
            crate::support::until(
                || c.status(target).malformed_frames == cases.len() as u64 + 1,
                "the cut frame",
            )
            .await;
            // A good request on a fresh connection: a stale vote, answered and refused.
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&vote).await.unwrap();
            let mut reply = [0u8; 4 + 1 + 8 + 1];
            s.read_exact(&mut reply).await.unwrap();
            let term = c.status(target).term;
            assert_eq!(
                reply.to_vec(),
                frame_bytes(&Frame::Resp(Response::Vote {
                    term,
                    granted: false
                }))
            );
            let state = c.wait_converged(&[0, 1, 2]).await;
            assert_eq!(state.len(), cases.len());
            assert_eq!(c.status(leader).malformed_frames, 0);
            c.shutdown().await;
        },
        "malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_torn_log_tail_is_repaired_when_the_node_restarts() {
    within(
        HANG,
        async {
            let mut c = Cluster::start("raft-torn", 3, 10, Config::default()).await;
            let leader = c.wait_leader(&c.up()).await;
            let f = (leader + 1) % 3;
            let mut cl = c.client();
            for i in 0..10 {
                cl.put(&format!("k{i}"), "v").await.unwrap();
            }
            c.wait_converged(&[0, 1, 2]).await;
            c.crash(f);
            // The crash came in the middle of appending one more record.
            let path = c.node_dir(f).join("log");
            let mut log = std::fs::read(&path).unwrap();
            let n = parse_log(&log).0.len();
            let good = log.len();
            let next = record(
                n as u64 + 1,
                &Entry {
                    term: 99,
                    cmd: Command::Put("torn".into(), "x".into()),
                },
            );
            log.extend_from_slice(&next[..next.len() - 3]);
            std::fs::write(&path, &log).unwrap();
            c.restart(f).await;
            assert_eq!(c.status(f).torn_bytes, next.len() as u64 - 3);
            cl.put("after", "restart").await.unwrap();
            let state = c.wait_converged(&[0, 1, 2]).await;
            assert_eq!((state.len(), state.get("torn")), (11, None));
            let repaired = std::fs::read(&path).unwrap();
            assert_eq!(repaired[..good], log[..good]);
            assert_eq!(
                parse_log(&repaired).1,
                repaired.len() as u64,
                "whole records only"
            );
            c.shutdown().await;
        },
        "torn tail",
    )
    .await;
}
