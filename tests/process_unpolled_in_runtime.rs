//! A `status()` or `output()` future dropped before its first poll inside a runtime leaves
//! its child to that runtime, as a dropped `Child` is: waited for by a background task,
//! killed first with `kill_on_drop`. No orphan reaper thread is started for it (that thread
//! is for children whose runtime is gone). Alone in its test binary: the thread is
//! process-wide, and another test could start it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The pids of this process's children running `sleep` (or zombies that were).
fn sleeping_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // gone meanwhile
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let name = &stat[stat.find('(').unwrap_or(0) + 1..close];
        let ppid = stat[close + 2..].split_whitespace().nth(1);
        if name == "sleep" && ppid == Some(me.as_str()) {
            pids.push(pid);
        }
    }
    pids
}

/// The ids of this process's threads. A thread is listed as soon as it is created, while
/// its name is set only once it runs (by the thread itself): a look for the orphan reaper by
/// name right after it was started would often find the name it inherited instead.
fn threads() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .map(|t| t.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn unpolled_status_and_output_futures_leave_their_children_to_the_runtime() {
    overlap::block_on(async {
        // Runs on for a second, then the runtime reaps it.
        let short = overlap::process::Command::new("sleep").arg("1").status();
        // Killed at the drop, then reaped.
        let long = overlap::process::Command::new("sleep")
            .arg("100")
            .kill_on_drop(true)
            .output();
        let children = sleeping_children();
        assert_eq!(children.len(), 2, "{children:?}");
        // Nothing else in this binary starts a thread (no blocking work is done).
        let before = threads();
        drop((short, long));
        // The reaper thread would be listed now, started by the drop: it ends only once it
        // has no orphan left.
        let after = threads();
        assert_eq!(
            before, after,
            "a thread (the orphan reaper) was started for children of a live runtime"
        );

        let start = Instant::now();
        while !sleeping_children().is_empty() && start.elapsed() < Duration::from_secs(20) {
            overlap::time::sleep(Duration::from_millis(20)).await;
        }
        let left = sleeping_children();
        assert!(left.is_empty(), "children not reaped: {left:?}");
    });
}
