//! `overlap::process::reap_orphans`: it reaps the exited children overlap did not spawn
//! (a std child, an orphan reparented to a subreaper), with their statuses, and never one
//! of overlap's own, exited and kept unreaped, running, racing with it on another thread,
//! or dropped and reaped in the background.
//!
//! Each test runs in a child process of its own (`run_in_child`): `reap_orphans` reaps any
//! child of the whole process that overlap did not spawn, which would include the other
//! tests' std children, and the subreaper flag is the whole process's.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, BufReader};
use overlap::process::{reap_orphans, Command};
use overlap::stream::StreamExt;

use support::{process_state, run_in_child, until, within, KillIfPanicking};

/// A hang guard only: every wait here ends in milliseconds.
const HANG: Duration = Duration::from_secs(30);

/// Calls `reap_orphans` until it has reaped something, and returns what it reaped.
async fn reap_until_some() -> Vec<(u32, ExitStatus)> {
    let mut reaped = Vec::new();
    until(
        || {
            reaped.extend(reap_orphans().unwrap());
            !reaped.is_empty()
        },
        "an orphan reaped",
    )
    .await;
    reaped
}

#[test]
fn a_std_child_is_reaped_and_an_exited_overlap_child_is_left_alone() {
    run_in_child(
        "a_std_child_is_reaped_and_an_exited_overlap_child_is_left_alone",
        || overlap::block_on(std_child_reaped_ours_left()),
    );
}

// The std children here are `reap_orphans`'s to reap, not std's `wait`'s.
#[allow(clippy::zombie_processes)]
async fn std_child_reaped_ours_left() {
    let mut ours = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let ours_pid = ours.id().unwrap();
    let stray = std::process::Command::new("sh")
        .args(["-c", "exit 7"])
        .spawn()
        .unwrap();
    let status = within(HANG, ours.exited(), "ours exits").await.unwrap();
    assert_eq!(status.code(), Some(3));
    until(|| process_state(stray.id()) == Some('Z'), "the stray exits").await;
    // Both are zombies now: `waitid(P_ALL)` may name either first.
    let reaped = reap_orphans().unwrap();
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!((reaped[0].0, reaped[0].1.code()), (stray.id(), Some(7)));
    assert_eq!(process_state(stray.id()), None, "reaped");
    assert_eq!(reap_orphans().unwrap(), vec![], "nothing more");
    assert_eq!(process_state(ours_pid), Some('Z'), "ours still a zombie");
    assert_eq!(ours.id(), Some(ours_pid));
    assert_eq!(ours.wait().await.unwrap(), status);
    assert_eq!(process_state(ours_pid), None);
}

#[test]
fn nothing_to_reap_gives_an_empty_vec() {
    run_in_child("nothing_to_reap_gives_an_empty_vec", || {
        overlap::block_on(nothing_to_reap())
    });
}

// The std children here are `reap_orphans`'s to reap, not std's `wait`'s.
#[allow(clippy::zombie_processes)]
async fn nothing_to_reap() {
    // No child at all (`ECHILD` underneath).
    assert_eq!(reap_orphans().unwrap(), vec![]);
    // Children running, one of them overlap's: nothing has exited.
    let mut ours = Command::new("sleep")
        .arg("1000")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stray = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let _guard = KillIfPanicking(stray.id());
    assert_eq!(reap_orphans().unwrap(), vec![]);
    // The stray killed: it is the one reaped, with its signal.
    stray.kill().unwrap();
    let reaped = reap_until_some().await;
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(
        (reaped[0].0, reaped[0].1.signal()),
        (stray.id(), Some(libc::SIGKILL))
    );
    assert_eq!(reap_orphans().unwrap(), vec![]);
    ours.kill().await.unwrap();
    assert_eq!(reap_orphans().unwrap(), vec![], "no child left");
}

#[test]
fn a_double_forked_orphan_is_reaped_by_its_subreaper() {
    run_in_child("a_double_forked_orphan_is_reaped_by_its_subreaper", || {
        overlap::block_on(double_forked_orphan())
    });
}

async fn double_forked_orphan() {
    overlap::process::set_child_subreaper(true).unwrap();
    // Ours, kept a zombie throughout: the orphan must be found behind it.
    let mut kept = Command::new("sh").args(["-c", "exit 5"]).spawn().unwrap();
    let kept_status = within(HANG, kept.exited(), "kept exits").await.unwrap();
    // `sh` exits at once; its background subshell lives on a little, orphaned: it is
    // reparented to this process, which must reap it.
    let mut parent = Command::new("sh")
        .args(["-c", "(sleep 0.1; exit 7) & echo $!"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    let orphan: u32 = lines.next().await.unwrap().unwrap().parse().unwrap();
    let _guard = KillIfPanicking(orphan);
    let parent_status = within(HANG, parent.wait(), "the parent exits").await;
    assert_eq!(parent_status.unwrap().code(), Some(0));
    let reaped = within(HANG, reap_until_some(), "the orphan reaped").await;
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!((reaped[0].0, reaped[0].1.code()), (orphan, Some(7)));
    assert_eq!(process_state(orphan), None);
    assert_eq!(kept.wait().await.unwrap(), kept_status);
    assert_eq!(reap_orphans().unwrap(), vec![]);
}

/// How many overlap children race with `reap_orphans`, and how many at a time.
const RACING: usize = 200;
const AT_ONCE: usize = 20;

#[test]
fn overlap_children_racing_with_reap_orphans_keep_their_statuses() {
    run_in_child(
        "overlap_children_racing_with_reap_orphans_keep_their_statuses",
        || overlap::block_on(racing_children()),
    );
}

/// Spawns `RACING` children, `AT_ONCE` at a time, by every spawn path, each exiting with
/// its own code, while another thread calls `reap_orphans` without pause; each one's wait
/// must get its code, and the reaping thread nothing.
async fn racing_children() {
    let stop = Arc::new(AtomicBool::new(false));
    let reaper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut stolen = Vec::new();
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) {
                stolen.extend(reap_orphans().unwrap());
                calls += 1;
            }
            (stolen, calls)
        })
    };
    for batch in 0..RACING / AT_ONCE {
        let runs = (0..AT_ONCE).map(|i| run_one(batch * AT_ONCE + i));
        let codes = futures_util::future::join_all(runs).await;
        let want: Vec<_> = (0..AT_ONCE)
            .map(|i| Some(code_of(batch * AT_ONCE + i)))
            .collect();
        assert_eq!(codes, want, "batch {batch}");
    }
    stop.store(true, Ordering::Relaxed);
    let (stolen, calls) = reaper.join().unwrap();
    assert_eq!(stolen, vec![], "reap_orphans took overlap's children");
    assert!(calls > 0);
}

/// The exit code child `n` gives.
fn code_of(n: usize) -> i32 {
    (n % 120) as i32
}

/// Runs child `n` through one of the spawn paths and waits in one of the ways, returning
/// its exit code (`None` if a wait failed: the status was stolen).
async fn run_one(n: usize) -> Option<i32> {
    let script = format!("exit {}", code_of(n));
    let status = match n % 5 {
        0 => {
            Command::new("sh")
                .args(["-c", &script])
                .spawn()
                .unwrap()
                .wait()
                .await
        }
        1 => {
            let mut child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
            // Exited and unreaped a while, then reaped.
            let exited = child.exited().await;
            overlap::yield_now().await;
            let reaped = child.wait().await;
            assert_eq!(exited.as_ref().ok(), reaped.as_ref().ok(), "child {n}");
            reaped
        }
        2 => Command::new("sh").args(["-c", &script]).status().await,
        3 => Command::new("sh")
            .args(["-c", &script])
            .output()
            .await
            .map(|o| o.status),
        _ => {
            let mut cmd = std::process::Command::new("sh");
            let mut child = overlap::process::spawn(cmd.args(["-c", &script])).unwrap();
            loop {
                // `try_wait` polled, a reap of its own between the other thread's.
                if let Some(status) = child.try_wait().transpose() {
                    break status;
                }
                overlap::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    match status {
        Ok(status) => status.code(),
        Err(e) => panic!("child {n}: {e}"),
    }
}

#[test]
fn dropped_overlap_children_reaped_in_the_background_are_never_reported() {
    run_in_child(
        "dropped_overlap_children_reaped_in_the_background_are_never_reported",
        dropped_children,
    );
}

/// Children dropped inside a runtime (reaped by a background task) and left running when
/// their runtime ends (reaped by the orphan reaper thread), while `reap_orphans` is called
/// again and again: it reaps the one std child among them, and none of them.
// The std children here are `reap_orphans`'s to reap, not std's `wait`'s.
#[allow(clippy::zombie_processes)]
fn dropped_children() {
    let stray = std::process::Command::new("sh")
        .args(["-c", "sleep 0.05; exit 9"])
        .spawn()
        .unwrap();
    let mut dropped = Vec::new();
    let mut reaped = Vec::new();
    // Outlive their runtime: the orphan reaper thread reaps them.
    let outliving: Vec<_> = overlap::block_on(async {
        (0..20)
            .map(|_| {
                let child = Command::new("sh")
                    .args(["-c", "sleep 0.05; exit 1"])
                    .spawn();
                child.unwrap()
            })
            .collect()
    });
    dropped.extend(outliving.iter().map(|c| c.id().unwrap()));
    drop(outliving);
    overlap::block_on(async {
        for round in 0..40 {
            let child = Command::new("sh")
                .args([
                    "-c",
                    if round % 2 == 0 {
                        "exit 2"
                    } else {
                        "sleep 0.01"
                    },
                ])
                .spawn()
                .unwrap();
            dropped.push(child.id().unwrap());
            drop(child); // a background task reaps it
            reaped.extend(reap_orphans().unwrap());
            overlap::yield_now().await;
        }
        until(
            || {
                reaped.extend(reap_orphans().unwrap());
                dropped.iter().all(|&p| process_state(p).is_none())
                    && process_state(stray.id()).is_none()
            },
            "every dropped child and the stray reaped",
        )
        .await;
    });
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!((reaped[0].0, reaped[0].1.code()), (stray.id(), Some(9)));
    assert_eq!(reap_orphans().unwrap(), vec![]);
}
