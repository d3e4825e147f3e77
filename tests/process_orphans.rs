//! A child dropped while running is reaped even if its runtime ends first: the background
//! task waiting for it goes with the runtime, and the orphan reaper thread takes over.

use std::process::Command;
use std::time::{Duration, Instant};

use overlap::block_on;

/// The process state letter from /proc (`Z` for a zombie), or `None` once it is gone.
fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

/// Waits (generously) for `pid` to be gone, reaped: a zombie still has a /proc entry.
fn gone(pid: u32) -> bool {
    let start = Instant::now();
    while state(pid).is_some() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    state(pid).is_none()
}

#[test]
fn a_child_killed_on_drop_as_the_runtime_ends_is_reaped() {
    let pid = block_on(async {
        let mut cmd = overlap::process::Command::new("sleep");
        cmd.arg("100").kill_on_drop(true);
        cmd.spawn().unwrap().id() // dropped here: killed; its reaper goes with the runtime
    });
    assert!(gone(pid), "pid {pid} left in state {:?}", state(pid));
}

#[test]
fn a_child_outliving_its_runtime_is_reaped_when_it_exits() {
    let pid = block_on(async {
        let child = overlap::process::spawn(Command::new("sleep").arg("0.1")).unwrap();
        child.id()
    });
    assert!(gone(pid), "pid {pid} left in state {:?}", state(pid));
}
