//! Crashes, partitions and leaks: a node recovering a torn record, a stale segment and a
//! half-saved metadata file; a partitioned follower catching up; nothing left behind.

use std::io::Write;

use crate::cluster::Cluster;
use crate::msg::Entry;
use crate::storage::{self, Log, SEGMENT};
use crate::support::{self, until};

/// A follower killed; the test then tears its last record (half a record appended, as a
/// crash mid-write leaves), leaves a compacted segment that a crash kept from removal and
/// a half-written metadata temp file. Restarted, it cuts the torn bytes, removes the rest,
/// keeps every whole entry, and catches up with what was committed while it was down.
#[overlap::test]
async fn a_restarted_follower_recovers_a_torn_record_and_catches_up() {
    let mut c = Cluster::start(3, "raft-torn").await;
    c.write_many("a", 150, 10).await;
    let before = c.converged().await;
    let f = (0..3).find(|&i| Some(i) != before.leader).unwrap();
    assert!(before.base >= SEGMENT, "compacted once: {before:?}");
    // Its own view, read with no await before the kill (an election since the cluster
    // settled would have added a no-op).
    let mine = c.node(f).status();
    c.kill(f);
    let dir = c.node_dir(f);
    let last_seg = *Log::open_firsts(&dir).last().unwrap();
    let seg_path = dir.join(format!("seg-{last_seg:020}.log"));
    let good_len = std::fs::metadata(&seg_path).unwrap().len();
    let mut torn = Vec::new();
    let entry = Entry {
        term: mine.term,
        data: b"never acknowledged".to_vec(),
    };
    storage::encode_record(mine.last_index + 1, &entry, &mut torn);
    torn.truncate(torn.len() - 5);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg_path)
        .unwrap()
        .write_all(&torn)
        .unwrap();
    std::fs::write(dir.join("seg-00000000000000000001.log"), b"compacted").unwrap();
    std::fs::write(dir.join("meta.tmp"), b"half").unwrap();
    // The cluster goes on without it.
    c.write_many("b", 100, 10).await;
    let node = c.restart(f).await;
    // (More only if a write was still in flight at the kill: it lands after, or is cut.)
    assert!(node.recovery.torn_bytes >= torn.len() as u64);
    assert!(node.recovery.stale_segments >= 1);
    let st = node.status();
    assert!(st.last_index >= mine.last_index, "every whole entry back");
    assert!(st.base >= mine.base);
    assert_eq!(
        std::fs::metadata(&seg_path).unwrap().len(),
        good_len,
        "cut back"
    );
    assert!(!dir.join("meta.tmp").exists());
    c.converged().await;
    c.assert_identical_on_disk().await;
}

/// A follower cut off by the proxies falls behind while the others commit; healed, it
/// catches up and every disk is the same again.
#[overlap::test]
async fn a_partitioned_follower_catches_up_after_healing() {
    let c = Cluster::start(3, "raft-partition").await;
    c.write_many("a", 50, 10).await;
    let st = c.converged().await;
    let f = (0..3).find(|&i| Some(i) != st.leader).unwrap();
    c.partition(f, true);
    c.write_many("b", 200, 20).await;
    let behind = c.node(f).status().last_index;
    let ahead = c
        .live()
        .filter(|n| n.id != f)
        .map(|n| n.status().last_index)
        .max()
        .unwrap();
    assert!(
        behind < ahead,
        "the cut follower is behind ({behind} < {ahead})"
    );
    c.partition(f, false);
    let st = c.converged().await;
    assert!(st.last_index >= 251, "{st:?}");
    c.assert_identical_on_disk().await;
    let payloads = c.payloads(f);
    assert!(payloads.contains(&crate::cluster::payload("b", 199)));
}

/// The leader killed in the middle of a stream of writes (its last appends perhaps half
/// done) and restarted at once from its disk: the writes all commit under a new leader,
/// and the old one's log ends the same as the others'.
#[overlap::test]
async fn a_leader_killed_mid_stream_and_restarted_at_once_rejoins() {
    let mut c = Cluster::start(3, "raft-midstream").await;
    let old = c.leader().await;
    let switch = c.node(old).kill_switch();
    let status = c.node(old).status.clone();
    let (indexes, ()) = overlap::join!(c.write_many("m", 300, 20), async {
        until(|| status.borrow().commit >= 100, "a hundred commits").await;
        for h in &switch {
            h.abort();
        }
    });
    assert_eq!(indexes.len(), 300);
    c.kill(old);
    c.restart(old).await;
    c.converged().await;
    c.assert_identical_on_disk().await;
}

/// Five nodes: two followers cut off at once still leave a majority that commits; healed,
/// they catch up; the leader killed, the four left elect one of them and go on; the old
/// leader restarted, all five end with the same disk.
#[overlap::test]
async fn five_nodes_ride_out_a_double_partition_and_a_lost_leader() {
    let mut c = Cluster::start(5, "raft-five").await;
    c.write_many("a", 60, 10).await;
    let st = c.converged().await;
    let cut: Vec<u64> = (0..5).filter(|&i| Some(i) != st.leader).take(2).collect();
    for &f in &cut {
        c.partition(f, true);
    }
    c.write_many("b", 100, 10).await;
    for &f in &cut {
        c.partition(f, false);
    }
    let st = c.converged().await;
    c.assert_identical_on_disk().await;
    let old = st.leader.unwrap();
    c.kill(old);
    let new = c.leader().await;
    assert_ne!(new, old);
    c.write_many("c", 100, 10).await;
    c.converged().await;
    c.assert_identical_on_disk().await;
    c.restart(old).await;
    let st = c.converged().await;
    assert!(st.last_index >= 262, "{st:?}");
    c.assert_identical_on_disk().await;
    assert!(c.payloads(old).contains(&crate::cluster::payload("c", 99)));
}

/// A whole run (writes, a kill, a restart, a partition healed) and the cluster dropped:
/// every fd and task is gone, and the temp dir with every file in it.
#[test]
fn a_finished_run_leaves_no_fd_task_or_file() {
    support::run_in_child("faults::a_finished_run_leaves_no_fd_task_or_file", || {
        overlap::block_on(async {
            overlap::yield_now().await;
            let fds = support::open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let path = {
                let mut c = Cluster::start(3, "raft-leak").await;
                let leader = c.leader().await;
                c.write_many("a", 80, 8).await;
                c.kill(leader);
                c.leader().await;
                c.write_many("b", 20, 4).await;
                c.restart(leader).await;
                let f = c.leader().await;
                let f = (0..3).find(|&i| i != f).unwrap();
                c.partition(f, true);
                c.write_many("c", 20, 4).await;
                c.partition(f, false);
                c.converged().await;
                c.dir.path().to_path_buf()
            };
            assert!(!path.exists(), "the temp dir removed");
            until(
                || support::open_fds() == fds && overlap::metrics().tasks_alive == tasks,
                "the fds and tasks back",
            )
            .await;
        })
    });
}
