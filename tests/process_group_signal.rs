//! `Child::send_signal_to_group`: a signal to the child's whole process group, so that what
//! a shell script started (a backgrounded `sleep`) goes with it; through the pidfd even
//! after the child was reaped, through `kill(-pid)` while it is not where pidfds cannot
//! do it (each such test installs its filter in a child process of its own).

mod support;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use overlap::io::AsyncBufReadExt;
use overlap::process::{Child, Command};
use support::{run_in_child, until, within};

const HANG: Duration = Duration::from_secs(30);

/// Whether process `pid` has ended: no /proc entry, or a zombie left to init (a grandchild
/// is not ours to reap).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Spawns `sh -c script` leading a group of its own (or not), its stdout piped.
fn sh(script: &str, own_group: bool) -> Child {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).stdout(Stdio::piped());
    if own_group {
        cmd.process_group(0);
    }
    cmd.spawn().unwrap()
}

/// The first line of the child's stdout, as a pid.
async fn first_pid(child: &mut Child) -> u32 {
    let mut out = overlap::io::BufReader::new(child.stdout.as_mut().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).await.unwrap();
    line.trim().parse().unwrap()
}

/// The script's backgrounded `sleep`, killed with it: the child's status says SIGKILL, and
/// the `sleep`, whose pid the script printed, is gone too.
async fn a_group_killed_while_its_leader_runs() {
    let mut child = sh("sleep 100 & echo $!; wait", true);
    let sleep = first_pid(&mut child).await;
    child.send_signal_to_group(libc::SIGKILL).unwrap();
    let status = within(HANG, child.wait(), "the wait").await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    until(|| ended(sleep), "the sleep killed with its group").await;
}

#[overlap::test]
async fn the_whole_group_is_signalled_while_the_leader_runs() {
    a_group_killed_while_its_leader_runs().await;
}

#[overlap::test]
async fn the_group_is_still_reached_through_the_pidfd_after_the_leader_is_reaped() {
    // The script exits at once, leaving its `sleep` in the group (with its own stdio).
    let mut child = sh("sleep 100 >/dev/null 2>&1 & echo $!", true);
    let sleep = first_pid(&mut child).await;
    assert!(within(HANG, child.wait(), "the wait")
        .await
        .unwrap()
        .success());
    assert_eq!(child.id(), None, "reaped");
    assert!(!ended(sleep));
    match child.send_signal_to_group(libc::SIGKILL) {
        Ok(()) => until(|| ended(sleep), "the sleep killed after the reap").await,
        // Linux before 6.9 has no group flag for pidfd_send_signal: nothing was sent.
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            assert!(!ended(sleep));
            // SAFETY: kill takes integers only; the sleep is alive, its pid its own.
            unsafe { libc::kill(sleep as libc::pid_t, libc::SIGKILL) };
        }
        Err(e) => panic!("{e}"),
    }
    // Nothing is left in the group: no error, nothing sent.
    until(|| ended(sleep), "the sleep gone").await;
    child.send_signal_to_group(libc::SIGKILL).unwrap();
}

#[overlap::test]
async fn a_child_without_a_group_of_its_own_is_refused_and_not_signalled() {
    let mut child = sh("echo $$; sleep 100", false);
    first_pid(&mut child).await;
    let err = child.send_signal_to_group(libc::SIGKILL).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("process_group(0)"), "{err}");
    // Neither it nor this process's own group got the signal.
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().await.unwrap();
}

#[overlap::test]
async fn a_bad_signal_number_is_refused_and_zero_only_checks() {
    let mut child = sh("sleep 100 & echo $!; wait", true);
    let sleep = first_pid(&mut child).await;
    let err = child.send_signal_to_group(99_999).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(err.to_string(), "99999 is not a signal number");
    child.send_signal_to_group(0).unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    assert!(!ended(sleep));
    child.send_signal_to_group(libc::SIGTERM).unwrap();
    let status = within(HANG, child.wait(), "the wait").await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    until(|| ended(sleep), "the sleep ended by SIGTERM").await;
}

/// Where `pidfd_send_signal` is missing (Linux before 5.1) or denied, `kill(-pid)` does it
/// while the leader is unreaped, and after the reap the call refuses, sending nothing.
#[test]
fn without_pidfd_signals_the_group_is_killed_until_the_leader_is_reaped() {
    run_in_child(
        "without_pidfd_signals_the_group_is_killed_until_the_leader_is_reaped",
        || {
            support::seccomp::deny(&[(libc::SYS_pidfd_send_signal, libc::ENOSYS)]);
            overlap::block_on(async {
                a_group_killed_while_its_leader_runs().await;
                let mut child = sh("sleep 100 >/dev/null 2>&1 & echo $!", true);
                let sleep = first_pid(&mut child).await;
                assert!(child.wait().await.unwrap().success());
                let err = child.send_signal_to_group(libc::SIGKILL).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
                assert!(!ended(sleep));
                // SAFETY: kill takes integers only; the sleep is alive, its pid its own.
                unsafe { libc::kill(sleep as libc::pid_t, libc::SIGKILL) };
                until(|| ended(sleep), "the sleep gone").await;
            });
        },
    );
}
