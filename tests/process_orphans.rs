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
        cmd.spawn().unwrap().id().unwrap() // dropped here: killed; its reaper goes with the runtime
    });
    assert!(gone(pid), "pid {pid} left in state {:?}", state(pid));
}

#[test]
fn a_child_outliving_its_runtime_is_reaped_when_it_exits() {
    let pid = block_on(async {
        let child = overlap::process::spawn(Command::new("sleep").arg("0.1")).unwrap();
        child.id().unwrap()
    });
    assert!(gone(pid), "pid {pid} left in state {:?}", state(pid));
}

/// An orphan that runs on (here for 30 s) holds back no other: one that exits meanwhile is
/// reaped at once, not after the long one.
#[test]
fn orphans_are_reaped_as_each_exits_whatever_the_order() {
    let (long, short) = block_on(async {
        let long = overlap::process::spawn(Command::new("sleep").arg("30")).unwrap();
        let short = overlap::process::spawn(Command::new("sleep").arg("0.1")).unwrap();
        (long.id().unwrap(), short.id().unwrap())
    });
    assert!(gone(short), "pid {short} left in state {:?}", state(short));
    // SAFETY: kill takes plain integers; `long` is our child, not reaped yet.
    assert_eq!(unsafe { libc::kill(long as libc::pid_t, libc::SIGKILL) }, 0);
    assert!(gone(long), "pid {long} left in state {:?}", state(long));
}

/// A `Child` dropped inside another runtime than the one that spawned it is still reaped,
/// and one awaited there is waited for: its exit is watched from the runtime polling it.
#[test]
fn a_child_moved_to_another_runtime_is_waited_for_and_reaped() {
    let mut waited = block_on(async {
        overlap::process::spawn(Command::new("sh").args(["-c", "sleep 0.1; exit 3"])).unwrap()
    });
    let status = block_on(async { waited.wait().await }).unwrap();
    assert_eq!(status.code(), Some(3));

    let dropped =
        block_on(async { overlap::process::spawn(Command::new("sleep").arg("0.1")).unwrap() });
    let pid = dropped.id().unwrap();
    block_on(async move {
        drop(dropped);
        overlap::time::sleep(Duration::from_millis(400)).await;
    });
    assert!(gone(pid), "pid {pid} left in state {:?}", state(pid));
}
