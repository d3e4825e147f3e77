//! `overlap::process::reap_orphans` and reused pids: once overlap has reaped a child, by
//! whichever path, its pid must leave overlap's registry of children, or a process that
//! takes the pid later would be taken for overlap's and never reaped (and the registry
//! would grow for ever); and a pid that a new overlap child took must stay overlap's even
//! when the old child's `Child` is asked again.
//!
//! Pids are reused on purpose here: each test runs as PID 1 of a pid namespace of its own
//! (through `unshare`, in a user namespace), where writing `/proc/sys/kernel/ns_last_pid`
//! chooses the next pid. Where the machine denies that, the tests say so and pass.

mod support;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use overlap::process::{reap_orphans, Command};

use support::{children, next_pid_is, process_state, run_in_pid_namespace, until, within};

/// A hang guard only: every wait here ends in milliseconds.
const HANG: Duration = Duration::from_secs(30);

/// `sh -c <script>`, spawned through overlap.
fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// Waits until process `pid` is gone: exited and reaped.
async fn gone(pid: u32) {
    until(|| process_state(pid).is_none(), &format!("{pid} reaped")).await;
}

/// Runs one overlap child through each way overlap reaps one, each exiting with `code`
/// (or killed), and returns their pids, each reaped by overlap by then.
async fn reaped_every_way(code: i32) -> Vec<u32> {
    let exit = format!("exit {code}");
    let mut pids = Vec::new();
    // `wait`.
    let mut child = sh(&exit).spawn().unwrap();
    pids.push(child.id().unwrap());
    assert_eq!(child.wait().await.unwrap().code(), Some(code));
    // `exited`, then `wait`.
    let mut child = sh(&exit).spawn().unwrap();
    pids.push(child.id().unwrap());
    let status = within(HANG, child.exited(), "exited").await.unwrap();
    assert_eq!(child.wait().await.unwrap(), status);
    // `try_wait`, polled.
    let mut child = sh(&exit).spawn().unwrap();
    pids.push(child.id().unwrap());
    until(|| child.try_wait().unwrap().is_some(), "try_wait").await;
    // `status`: the child tells its pid through a pipe of its own.
    let (reader, writer) = told_pid();
    let status = sh(&format!("echo $$; {exit}")).stdout(writer).status();
    assert_eq!(status.await.unwrap().code(), Some(code));
    pids.push(pid_told_by(reader));
    // `output`, and the free function.
    let out = sh(&format!("echo $$; {exit}")).output().await.unwrap();
    assert_eq!(out.status.code(), Some(code));
    pids.push(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    );
    let mut cmd = std::process::Command::new("sh");
    let out = overlap::process::output(cmd.args(["-c", &format!("echo $$; {exit}")]));
    let out = out.await.unwrap();
    assert_eq!(out.status.code(), Some(code));
    pids.push(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap(),
    );
    // `kill`, and `start_kill` then `wait`.
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    pids.push(child.id().unwrap());
    child.kill().await.unwrap();
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    pids.push(child.id().unwrap());
    child.start_kill().unwrap();
    assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGKILL));
    // Dropped: exited (reaped in the drop), running (a background task), with
    // `kill_on_drop`, with `kill_group_on_drop`.
    let mut child = sh(&exit).spawn().unwrap();
    pids.push(child.id().unwrap());
    within(HANG, child.exited(), "exited").await.unwrap();
    drop(child);
    let dropped = [
        sh(&format!("sleep 0.01; {exit}")).spawn().unwrap(),
        Command::new("sleep")
            .arg("1000")
            .kill_on_drop(true)
            .spawn()
            .unwrap(),
        Command::new("sleep")
            .arg("1000")
            .process_group(0)
            .kill_group_on_drop(true)
            .spawn()
            .unwrap(),
    ];
    pids.extend(dropped.iter().map(|c| c.id().unwrap()));
    drop(dropped);
    // A `status` future dropped before its first poll: its child, spawned already, is
    // handed to a background task.
    let (reader, writer) = told_pid();
    drop(
        sh(&format!("echo $$; sleep 0.01; {exit}"))
            .stdout(writer)
            .status(),
    );
    pids.push(pid_told_by(reader));
    for &pid in &pids {
        gone(pid).await;
    }
    pids
}

/// A blocking stream pair: what a child given the second as its stdout writes, the first
/// reads (end of file once the child and the `Command` holding it are gone).
fn told_pid() -> (UnixStream, Stdio) {
    let (reader, writer) = UnixStream::pair().unwrap();
    (reader, Stdio::from(OwnedFd::from(writer)))
}

/// The pid a child wrote as its first line to `reader`.
fn pid_told_by(reader: UnixStream) -> u32 {
    let mut line = String::new();
    std::io::BufReader::new(reader)
        .read_line(&mut line)
        .unwrap();
    line.trim().parse().unwrap()
}

/// A `Child`, and a `status` future never polled, made in a runtime and dropped outside
/// any, while their children run: the orphan reaper thread reaps them. Returns their pids.
fn dropped_outside_a_runtime() -> [u32; 2] {
    let (reader, writer) = told_pid();
    let (child, status) = overlap::block_on(async {
        let child = sh("read x").stdin(Stdio::piped()).spawn().unwrap();
        let status = sh("echo $$; read x")
            .stdout(writer)
            .stdin(Stdio::piped())
            .status();
        (child, status)
    });
    let pids = [child.id().unwrap(), pid_told_by(reader)];
    drop((child, status)); // their stdins close: they exit
    pids
}

/// Every way overlap reaps a child, twice; then, for each of their pids, a std child
/// made to take it, each exiting with its own code: one `reap_orphans`, once all are
/// zombies, must reap every one of them, none left behind as overlap's.
// The std children here are `reap_orphans`'s to reap, not std's `wait`'s.
#[allow(clippy::zombie_processes)]
fn every_way_lets_go_of_the_pid() {
    let mut pids = overlap::block_on(async {
        let mut pids = reaped_every_way(3).await;
        pids.extend(reaped_every_way(4).await);
        pids
    });
    let outside = dropped_outside_a_runtime();
    pids.extend(outside);
    overlap::block_on(async {
        for pid in outside {
            gone(pid).await;
        }
        assert_eq!(
            reap_orphans().unwrap(),
            vec![],
            "nothing but overlap's so far"
        );
        let mut want = BTreeMap::new();
        for (i, &pid) in pids.iter().enumerate() {
            next_pid_is(pid);
            let code = 100 + i as i32;
            let stray = std::process::Command::new("sh")
                .args(["-c", &format!("exit {code}")])
                .spawn()
                .unwrap();
            assert_eq!(stray.id(), pid, "the pid reused");
            want.insert(pid, code);
        }
        let all_exited = || want.keys().all(|&p| process_state(p) == Some('Z'));
        until(all_exited, "every stray exits").await;
        let reaped: BTreeMap<u32, i32> = reap_orphans()
            .unwrap()
            .into_iter()
            .map(|(pid, status)| (pid, status.code().unwrap()))
            .collect();
        assert_eq!(
            reaped, want,
            "a pid overlap had reaped was still taken for its"
        );
        assert_eq!(children(), "", "no child left");
    });
}

#[test]
fn every_way_overlap_reaps_a_child_lets_go_of_its_pid() {
    run_in_pid_namespace(
        "every_way_overlap_reaps_a_child_lets_go_of_its_pid",
        every_way_lets_go_of_the_pid,
    );
}

#[test]
fn every_way_overlap_reaps_a_child_lets_go_of_its_pid_on_the_sigchld_fallback() {
    run_in_pid_namespace(
        "every_way_overlap_reaps_a_child_lets_go_of_its_pid_on_the_sigchld_fallback",
        || {
            // No pidfds: every exit is watched through `SIGCHLD` and `waitid(P_PID)`.
            support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
            every_way_lets_go_of_the_pid()
        },
    );
}

#[test]
fn a_pid_a_new_overlap_child_took_stays_overlaps() {
    run_in_pid_namespace("a_pid_a_new_overlap_child_took_stays_overlaps", || {
        overlap::block_on(pid_taken_by_a_new_child())
    });
}

/// Child `old` is reaped; `new` takes its pid and exits. Asking `old` again (its status is
/// kept, a kill of it does nothing) or dropping it must not take the pid out of the
/// registry: `reap_orphans` leaves `new` alone, and `new`'s `wait` gets its status.
async fn pid_taken_by_a_new_child() {
    let mut old = sh("exit 1").spawn().unwrap();
    let pid = old.id().unwrap();
    let old_status = old.wait().await.unwrap();
    assert_eq!(old_status.code(), Some(1));
    next_pid_is(pid);
    let mut new = sh("exit 2").spawn().unwrap();
    assert_eq!(new.id(), Some(pid), "the pid reused");
    let new_status = within(HANG, new.exited(), "new exits").await.unwrap();
    assert_eq!(new_status.code(), Some(2));
    assert_eq!(old.try_wait().unwrap(), Some(old_status));
    old.start_kill().unwrap();
    assert_eq!(reap_orphans().unwrap(), vec![]);
    drop(old);
    assert_eq!(reap_orphans().unwrap(), vec![]);
    assert_eq!(process_state(pid), Some('Z'), "new still a zombie");
    assert_eq!(new.wait().await.unwrap(), new_status);
    assert_eq!(reap_orphans().unwrap(), Vec::<(u32, ExitStatus)>::new());
    assert_eq!(children(), "", "no child left");
}
