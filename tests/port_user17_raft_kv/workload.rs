//! The seeded random workload with faults (partitions, lossy and slow links, crashes and
//! restarts) ending with every node holding the same state, that state agreeing with what
//! the client was told; and a shutdown leaving no task, timer, registered fd or open file.

use std::collections::BTreeMap;
use std::time::Duration;

use overlap::time;

use crate::cluster::{double_leaders, Cluster};
use crate::raft::Config;
use crate::support::{within, Rng};
use crate::transport::Link;
use crate::HANG;

const KEYS: usize = 6;

/// Runs `steps` random steps on a 5-node cluster: gives, per key, the last version the
/// client was told was written, and the last one it tried.
async fn workload(c: &mut Cluster, seed: u64, steps: usize) -> (Vec<u64>, Vec<u64>) {
    let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
    let mut cl = c.client();
    cl.attempts = 20;
    let (mut acked, mut tried) = (vec![0u64; KEYS], vec![0u64; KEYS]);
    for _ in 0..steps {
        match rng.below(20) {
            0..=9 => {
                let k = rng.below(KEYS);
                tried[k] += 1;
                if cl
                    .put(&format!("k{k}"), &tried[k].to_string())
                    .await
                    .is_ok()
                {
                    acked[k] = tried[k];
                }
            }
            10..=13 => {
                // Linearizable: at least the last version acknowledged, at most the last tried.
                let k = rng.below(KEYS);
                if let Ok(v) = cl.get(&format!("k{k}")).await {
                    let v: u64 = v.map_or(0, |v| v.parse().unwrap());
                    assert!(
                        acked[k] <= v && v <= tried[k],
                        "k{k}: read {v}, acked {}, tried {}",
                        acked[k],
                        tried[k]
                    );
                }
            }
            14 => {
                let a = rng.below(5) as u8;
                c.net.partition(5, &[a, (a + 1 + rng.below(4) as u8) % 5]);
            }
            15 => {
                let (a, b) = (rng.below(5) as u8, rng.below(5) as u8);
                let link = Link {
                    cut: false,
                    drop_pct: 30,
                    delay: Duration::from_millis(rng.below(40) as u64),
                };
                c.net.set_link(a, b, link);
            }
            16 => c.net.heal(),
            17 if c.up().len() == 5 => c.crash(rng.below(5) as u8),
            17 | 18 => {
                for id in 0..5 {
                    if !c.is_up(id) {
                        c.restart(id).await;
                    }
                }
            }
            _ => time::sleep(Duration::from_millis(rng.below(400) as u64)).await,
        }
    }
    (acked, tried)
}

#[overlap::test(start_paused = true)]
async fn a_seeded_workload_with_faults_ends_the_same_on_every_node() {
    within(
        HANG,
        async {
            for seed in 1..=3 {
                let cfg = Config {
                    snapshot_every: 25,
                    ..Config::default()
                };
                let mut c = Cluster::start(&format!("raft-workload-{seed}"), 5, seed, cfg).await;
                let (acked, tried) = workload(&mut c, seed, 100).await;
                c.net.heal();
                for id in 0..5 {
                    if !c.is_up(id) {
                        c.restart(id).await;
                    }
                }
                c.wait_leader(&c.up()).await;
                // A last write through the leader commits everything before it everywhere.
                c.client().put("end", "1").await.unwrap();
                let state = c.wait_converged(&[0, 1, 2, 3, 4]).await;
                for k in 0..KEYS {
                    let v: u64 = state
                        .get(&format!("k{k}"))
                        .map_or(0, |v| v.parse().unwrap());
                    assert!(
                        acked[k] <= v && v <= tried[k],
                        "seed {seed} k{k}: {v}, acked {}, tried {}",
                        acked[k],
                        tried[k]
                    );
                }
                assert!(acked.iter().sum::<u64>() > 20, "seed {seed}: {acked:?}");
                assert!(c.net.dropped.get() > 0, "seed {seed}: no fault hit");
                assert!(
                    double_leaders(&c.history).is_empty(),
                    "seed {seed}: {:?}",
                    c.history.borrow()
                );
                for id in 0..5 {
                    let s = c.status(id);
                    assert_eq!(s.state, state, "seed {seed} node {id}");
                }
                c.shutdown().await;
            }
        },
        "workload",
    )
    .await;
}

/// The files of `dir` open in this process (other tests' files are elsewhere).
fn open_files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            if target.starts_with(dir) {
                out.push(target.display().to_string());
            }
        }
    }
    out
}

#[overlap::test(start_paused = true)]
async fn shutdown_leaves_no_task_timer_socket_or_file() {
    within(
        HANG,
        async {
            let before = overlap::metrics();
            let mut c = Cluster::start("raft-shutdown", 3, 11, Config::default()).await;
            c.wait_leader(&c.up()).await;
            let mut cl = c.client();
            cl.put("a", "1").await.unwrap();
            // A crash and a restart on the way: the crashed node's tasks go too.
            c.crash(2);
            c.restart(2).await;
            c.wait_converged(&[0, 1, 2]).await;
            let dir = c.dir.path().to_path_buf();
            let open: BTreeMap<String, ()> = open_files_under(&dir)
                .into_iter()
                .map(|f| (f, ()))
                .collect();
            assert_eq!(open.len(), 3, "the three logs: {open:?}");
            // Per node: the core, a sender per peer and the two listeners, at least.
            assert!(overlap::metrics().tasks_alive >= before.tasks_alive + 3 * 5);
            drop(cl);
            c.shutdown().await;
            for _ in 0..16 {
                overlap::yield_now().await;
            }
            let after = overlap::metrics();
            assert_eq!(after.tasks_alive, before.tasks_alive);
            assert_eq!(after.registered_fds, before.registered_fds);
            assert_eq!(after.timers_active, before.timers_active);
            assert_eq!(open_files_under(&dir), Vec::<String>::new());
        },
        "shutdown",
    )
    .await;
}
