//! `Child::exited`: waiting for a child's exit without reaping it. The child stays a zombie
//! (state `Z` in /proc), its pid kept, until `wait` reaps it with the same status; so a
//! group it led can still be signalled after it exited. Through the pidfd, and through
//! `SIGCHLD` where `pidfd_open` is denied (in a child process with a seccomp filter).

mod support;

use std::os::unix::process::ExitStatusExt;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures_util::future::{select, Either};
use overlap::io::AsyncBufReadExt;
use overlap::process::{Child, Command};
use support::{live_group_members, process_state, run_in_child, until, within, KillIfPanicking};

const HANG: Duration = Duration::from_secs(30);

/// Spawns `sh -c script`, its stdout piped, leading a group of its own.
fn sh(script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// Awaits `child.exited()` under a hang guard.
async fn exited(child: &mut Child) -> ExitStatus {
    within(HANG, child.exited(), "the exit").await.unwrap()
}

/// `exited` gives `expected`'s status and leaves the child a zombie under the same pid;
/// `wait` then reaps it with that status, and its /proc entry goes.
async fn seen_then_reaped(mut child: Child, expected: impl Fn(ExitStatus) -> bool) {
    let pid = child.id().unwrap();
    let status = exited(&mut child).await;
    assert!(expected(status), "{status:?}");
    assert_eq!(
        child.id(),
        Some(pid),
        "not reaped: the pid is still the child's"
    );
    assert_eq!(process_state(pid), Some('Z'), "a zombie");
    let reaped = within(HANG, child.wait(), "the wait").await.unwrap();
    assert_eq!(reaped, status);
    assert_eq!(child.id(), None);
    assert_eq!(process_state(pid), None, "reaped: /proc/{pid} is gone");
}

#[overlap::test]
async fn an_exit_code_is_seen_and_the_child_stays_a_zombie_until_waited_for() {
    seen_then_reaped(sh("exit 3"), |s| s.code() == Some(3)).await;
}

#[overlap::test]
async fn a_kill_is_seen_and_the_child_stays_a_zombie_until_waited_for() {
    let mut child = sh("exec sleep 100");
    child.start_kill().unwrap();
    seen_then_reaped(child, |s| {
        s.signal() == Some(libc::SIGKILL) && !s.core_dumped()
    })
    .await;
}

#[overlap::test]
async fn exited_twice_gives_the_same_status_and_try_wait_then_reaps() {
    let mut child = sh("exit 5");
    let pid = child.id().unwrap();
    let first = exited(&mut child).await;
    let second = exited(&mut child).await;
    assert_eq!(first.code(), Some(5));
    assert_eq!(second, first);
    assert_eq!(process_state(pid), Some('Z'));
    assert_eq!(child.try_wait().unwrap(), Some(first));
    assert_eq!(process_state(pid), None);
}

#[overlap::test]
async fn exited_after_wait_gives_the_status_the_child_was_reaped_with() {
    let mut child = sh("exit 9");
    let status = within(HANG, child.wait(), "the wait").await.unwrap();
    assert_eq!(status.code(), Some(9));
    assert_eq!(exited(&mut child).await, status);
    assert_eq!(child.id(), None);
}

#[overlap::test]
async fn a_cancelled_exited_changes_nothing() {
    let mut child = sh("exec sleep 100");
    let pid = child.id().unwrap();
    // On the paused clock the sleep ends as soon as nothing else can run: the child has
    // not exited, and the `exited` future is dropped unfinished.
    overlap::time::pause();
    match select(pin!(child.exited()), pin!(overlap::time::sleep(HANG))).await {
        Either::Left((status, _)) => panic!("the child exited early: {status:?}"),
        Either::Right(((), _)) => {}
    }
    overlap::time::resume();
    assert_eq!(child.id(), Some(pid));
    assert!(
        matches!(process_state(pid), Some(s) if s != 'Z'),
        "still running"
    );
    assert_eq!(child.try_wait().unwrap(), None);
    child.start_kill().unwrap();
    let status = exited(&mut child).await;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(
        within(HANG, child.wait(), "the wait").await.unwrap(),
        status
    );
}

/// The first line of the child's stdout, as a pid.
async fn first_pid(child: &mut Child) -> u32 {
    let mut out = overlap::io::BufReader::new(child.stdout.as_mut().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).await.unwrap();
    line.trim().parse().unwrap()
}

/// A group leader exits leaving a `sleep` in its group: after `exited` the group is
/// signalled (by the pidfd, or by `kill(-pid)`, right while the leader is a zombie), the
/// `sleep` dies, and `wait` reaps the leader with its own status.
async fn stragglers_of_an_exited_leader_are_killed() {
    let mut child = sh("sleep 100 >/dev/null 2>&1 & echo $!; exit 4");
    let pgid = child.id().unwrap();
    let sleep = first_pid(&mut child).await;
    let _guard = KillIfPanicking(sleep);
    let status = exited(&mut child).await;
    assert_eq!(status.code(), Some(4));
    assert_eq!(live_group_members(pgid), vec![sleep], "the sleep lives on");
    child.send_signal_to_group(libc::SIGKILL).unwrap();
    until(
        || live_group_members(pgid).is_empty(),
        "the sleep killed with its group",
    )
    .await;
    assert_eq!(
        within(HANG, child.wait(), "the wait").await.unwrap(),
        status
    );
}

#[overlap::test]
async fn an_exited_group_leader_keeps_its_group_signallable_until_reaped() {
    stragglers_of_an_exited_leader_are_killed().await;
}

/// The same through `SIGCHLD` and `waitid(P_PID)`, where `pidfd_open` is missing (Linux
/// before 5.3), with `kill(-pid)` for the group.
#[test]
fn without_pidfds_exited_works_through_sigchld() {
    run_in_child("without_pidfds_exited_works_through_sigchld", || {
        support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
        overlap::block_on(async {
            seen_then_reaped(sh("exit 3"), |s| s.code() == Some(3)).await;
            let mut later = sh("sleep 0.2; exit 6");
            assert_eq!(exited(&mut later).await.code(), Some(6));
            assert_eq!(later.try_wait().unwrap().unwrap().code(), Some(6));
            stragglers_of_an_exited_leader_are_killed().await;
        });
    });
}

/// Linux 5.3 has pidfds but no `waitid(P_PIDFD)` (5.4): that `EINVAL` falls back to the pid.
#[test]
fn without_waitid_on_pidfds_exited_looks_by_pid() {
    run_in_child("without_waitid_on_pidfds_exited_looks_by_pid", || {
        support::seccomp::install(&[support::seccomp::rule_arg0(
            libc::SYS_waitid,
            libc::P_PIDFD,
            libc::EINVAL,
        )]);
        overlap::block_on(async {
            seen_then_reaped(sh("exit 3"), |s| s.code() == Some(3)).await;
            stragglers_of_an_exited_leader_are_killed().await;
        });
    });
}

#[overlap::test]
async fn a_child_reaped_elsewhere_fails_with_echild() {
    let mut child = sh("exit 0");
    let pid = child.id().unwrap() as libc::pid_t;
    // Reaped behind the `Child`'s back, as a `waitpid(-1)` elsewhere would.
    let mut raw = 0;
    // SAFETY: waitpid writes an int through the pointer, which points at `raw`.
    assert_eq!(unsafe { libc::waitpid(pid, &mut raw, 0) }, pid);
    let err = within(HANG, child.exited(), "the exit").await.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ECHILD), "{err}");
}
