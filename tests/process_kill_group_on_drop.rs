//! `kill_group_on_drop`: dropping a `Child` sends `SIGKILL` to the whole process group it
//! leads, so a shell script's background `sleep`s die with it, even once the script itself
//! has exited or was waited for; without it they live on. Set on the `Command` (which
//! refuses it without `process_group(0)`) or on the `Child` (which checks the child). Each
//! straggler's death shows twice: its stdout pipe reaches end of file, and no live process
//! is left in the group. Where pidfds are missing, through `kill(-pid)` while the leader is
//! unreaped (in a child process with a seccomp filter).

mod support;

use std::io::{self, BufRead, Read};
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt};
use overlap::pipe::Receiver;
use overlap::process::{Child, Command};
use support::{
    gone, live_group_members, process_state, run_in_child, until, within, KillIfPanicking, TempDir,
};

const HANG: Duration = Duration::from_secs(30);

/// `sh -c script`, its stdout piped, leading a group of its own, its group killed on drop
/// if `kill_group`.
fn sh(script: &str, kill_group: bool) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .process_group(0)
        .kill_group_on_drop(kill_group)
        .spawn()
        .unwrap()
}

/// The next `n` lines of `out`, each a pid, each guarded: killed if the test fails.
async fn pids(out: &mut overlap::io::BufReader<Receiver>, n: usize) -> Vec<KillIfPanicking> {
    let mut pids = Vec::new();
    for _ in 0..n {
        let mut line = String::new();
        within(HANG, out.read_line(&mut line), "a pid")
            .await
            .unwrap();
        pids.push(KillIfPanicking(line.trim().parse().unwrap()));
    }
    pids
}

/// Whether process `pid` still runs (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    !matches!(process_state(pid), None | Some('Z'))
}

/// The pipe reaches end of file with nothing more written, and the group has no live
/// process left.
async fn all_killed(mut out: overlap::io::BufReader<Receiver>, pgid: u32) {
    let mut rest = Vec::new();
    within(HANG, out.read_to_end(&mut rest), "end of file")
        .await
        .unwrap();
    assert_eq!(rest, b"");
    until(
        || live_group_members(pgid).is_empty(),
        "no process left in the group",
    )
    .await;
}

/// Takes the child's stdout, buffered.
fn stdout(child: &mut Child) -> overlap::io::BufReader<Receiver> {
    overlap::io::BufReader::new(child.stdout.take().unwrap())
}

#[overlap::test]
async fn dropping_a_running_leader_kills_its_whole_group() {
    running_leader_dropped().await;
}

/// A script waiting for two `sleep`s, dropped: all three die.
async fn running_leader_dropped() {
    let mut child = sh("sleep 100 & echo $!; sleep 100 & echo $!; wait", true);
    let pgid = child.id().unwrap();
    let mut out = stdout(&mut child);
    let sleeps = pids(&mut out, 2).await;
    assert_eq!(live_group_members(pgid).len(), 3, "sh and two sleeps");
    drop(child);
    all_killed(out, pgid).await;
    for sleep in &sleeps {
        assert!(!alive(sleep.0));
    }
    gone(pgid, "the leader reaped in the background").await;
}

#[overlap::test]
async fn a_leader_already_waited_for_still_has_its_group_killed_on_drop() {
    let mut child = sh("sleep 100 & echo $!; exit 0", true);
    let pgid = child.id().unwrap();
    let mut out = stdout(&mut child);
    let sleep = pids(&mut out, 1).await;
    let status = within(HANG, child.wait(), "the wait").await.unwrap();
    assert!(status.success());
    assert_eq!(live_group_members(pgid), vec![sleep[0].0]);
    // Through the pidfd, which names the group after the reap (Linux 6.9+). An older
    // kernel cannot: the drop leaves the group alone (see the fallback test below).
    if let Err(e) = child.send_signal_to_group(0) {
        assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
        // SAFETY: kill takes integers only; the sleep is alive, its pid its own.
        unsafe { libc::kill(sleep[0].0 as libc::pid_t, libc::SIGKILL) };
    }
    drop(child);
    all_killed(out, pgid).await;
}

#[overlap::test]
async fn set_on_the_child_after_an_exit_it_kills_the_group_on_drop() {
    exited_leader_dropped().await;
}

/// A script that exited leaving a `sleep`, seen by `exited` (not reaped), its group then
/// set to be killed on drop through the `Child`, dropped: the `sleep` dies.
async fn exited_leader_dropped() {
    let mut child = sh("sleep 100 & echo $!; exit 7", false);
    let pgid = child.id().unwrap();
    let mut out = stdout(&mut child);
    let _sleep = pids(&mut out, 1).await;
    let status = within(HANG, child.exited(), "the exit").await.unwrap();
    assert_eq!(status.code(), Some(7));
    child.kill_group_on_drop(true).unwrap();
    drop(child);
    all_killed(out, pgid).await;
    gone(pgid, "the leader reaped in the background").await;
}

#[overlap::test]
async fn without_the_option_the_straggler_survives_the_drop() {
    let mut child = sh("sleep 100 & echo $!; exit 0", false);
    let pgid = child.id().unwrap();
    let mut out = stdout(&mut child);
    let sleep = pids(&mut out, 1).await;
    drop(child);
    // The drop is done and the leader reaped in the background; the sleep still runs, and
    // holds the pipe.
    gone(pgid, "the leader reaped in the background").await;
    overlap::time::sleep(Duration::from_millis(20)).await;
    assert!(alive(sleep[0].0));
    assert_eq!(live_group_members(pgid), vec![sleep[0].0]);
    // SAFETY: kill takes integers only; the sleep is alive, its pid its own.
    unsafe { libc::kill(sleep[0].0 as libc::pid_t, libc::SIGKILL) };
    all_killed(out, pgid).await;
}

#[overlap::test]
async fn a_command_without_process_group_zero_is_refused_before_anything_runs() {
    let dir = TempDir::new("kill-group-refused");
    let ran = dir.join("ran");
    let script = format!("touch '{}'", ran.display());
    let refused = |err: io::Error, said: &str| {
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("process_group(0)") && msg.contains(said),
            "{msg}"
        );
    };
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).kill_group_on_drop(true);
    assert!(cmd.get_kill_group_on_drop());
    refused(cmd.spawn().unwrap_err(), "none was set");
    refused(cmd.status().await.unwrap_err(), "none was set");
    refused(cmd.output().await.unwrap_err(), "none was set");
    // Joining this process's own group is no group of its own either.
    // SAFETY: getpgrp takes nothing and cannot fail.
    let own = unsafe { libc::getpgrp() };
    cmd.process_group(own);
    refused(cmd.spawn().unwrap_err(), "joins an existing group");
    assert!(!ran.exists(), "nothing ran");
    // With a group of its own it runs; turned off, any group does.
    cmd.process_group(0);
    assert!(cmd.status().await.unwrap().success());
    assert!(ran.exists());
    std::fs::remove_file(&ran).unwrap();
    cmd.process_group(own).kill_group_on_drop(false);
    assert!(cmd.status().await.unwrap().success());
    assert!(ran.exists());
}

#[overlap::test]
async fn the_child_setter_refuses_a_child_in_another_group_and_signals_nothing() {
    let mut child = Command::new("sleep").arg("100").spawn().unwrap();
    let err = child.kill_group_on_drop(true).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("process_group(0)"), "{err}");
    child.kill_group_on_drop(false).unwrap();
    assert_eq!(child.try_wait().unwrap(), None, "not signalled");
    child.kill().await.unwrap();
}

#[overlap::test]
async fn an_unpolled_status_future_dropped_kills_the_group() {
    let (tx, rx) = overlap::pipe::pipe().unwrap();
    let mut out = overlap::io::BufReader::new(rx);
    let status = Command::new("sh")
        .args(["-c", "echo $$; sleep 100 & echo $!; wait"])
        .stdout(Stdio::try_from(tx).unwrap())
        .process_group(0)
        .kill_group_on_drop(true)
        .status();
    let pids = pids(&mut out, 2).await;
    let pgid = pids[0].0;
    assert_eq!(live_group_members(pgid).len(), 2, "sh and its sleep");
    drop(status);
    all_killed(out, pgid).await;
}

/// Outside any runtime (the `status` future made and dropped there) the group is killed by
/// `kill(-pid)`, the leader being unreaped, and the orphan reaper reaps the leader.
#[test]
fn a_status_future_dropped_outside_a_runtime_kills_the_group() {
    let (rx, tx) = std::io::pipe().unwrap();
    let status = Command::new("sh")
        .args(["-c", "echo $$; sleep 100 & echo $!; wait"])
        .stdout(tx)
        .process_group(0)
        .kill_group_on_drop(true)
        .status();
    let mut out = io::BufReader::new(rx);
    let mut pids = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        pids.push(KillIfPanicking(line.trim().parse().unwrap()));
    }
    drop(status);
    // Looked at from a runtime of its own, made after the drop.
    let pgid = pids[0].0;
    overlap::block_on(until(
        || live_group_members(pgid).is_empty(),
        "no process left in the group",
    ));
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
}

/// Without pidfds (Linux before 5.3): `kill(-pid)` while the leader is unreaped, running or
/// exited (`exited` keeps it so); once it was reaped the drop leaves the group alone, and
/// the `Child` setter says so.
#[test]
fn without_pidfds_the_group_is_killed_until_the_leader_is_reaped() {
    run_in_child(
        "without_pidfds_the_group_is_killed_until_the_leader_is_reaped",
        || {
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            overlap::block_on(async {
                running_leader_dropped().await;
                exited_leader_dropped().await;

                let mut child = sh("sleep 100 & echo $!; exit 0", true);
                let pgid = child.id().unwrap();
                let mut out = stdout(&mut child);
                let sleep = pids(&mut out, 1).await;
                assert!(within(HANG, child.wait(), "the wait")
                    .await
                    .unwrap()
                    .success());
                let err = child.kill_group_on_drop(true).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
                drop(child);
                overlap::time::sleep(Duration::from_millis(20)).await;
                assert!(alive(sleep[0].0), "a reaped leader's group is left alone");
                // SAFETY: kill takes integers only; the sleep is alive, its pid its own.
                unsafe { libc::kill(sleep[0].0 as libc::pid_t, libc::SIGKILL) };
                all_killed(out, pgid).await;
            });
        },
    );
}
