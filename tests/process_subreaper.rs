//! `overlap::process::set_child_subreaper` and `is_child_subreaper`: with the flag on, the
//! orphans of a killed or exited child are reparented to this process, and
//! `reap_orphans` reaps them with their statuses; with it off again, they go elsewhere.
//!
//! Each test runs in a child process of its own (`run_in_child`): the flag is the whole
//! process's, and `reap_orphans` reaps any child of it that overlap did not spawn.

mod support;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, BufReader};
use overlap::process::{is_child_subreaper, reap_orphans, set_child_subreaper, Command};
use overlap::stream::StreamExt;

use support::{parent_pid, process_state, run_in_child, until, within, KillIfPanicking};

/// A hang guard only: every wait here ends in milliseconds.
const HANG: Duration = Duration::from_secs(30);

/// Spawns a shell that starts `grandchildren` (shell snippets) in the background, prints
/// each one's pid on a line, and then sleeps until killed; returns the shell and the pids.
/// The shell's stdin, piped, is the grandchildren's fd 3 (a background job's own stdin is
/// `/dev/null`): one can wait for its end with `read x <&3`.
async fn service_with_grandchildren(
    grandchildren: &[String],
) -> (overlap::process::Child, Vec<u32>) {
    let mut script = String::from("exec 3<&0; ");
    for g in grandchildren {
        script.push_str(&format!("sh -c '{g}' & echo $!; "));
    }
    script.push_str("exec sleep 1000 3<&-");
    let mut service = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(service.stdout.take().unwrap()).lines();
    let mut pids = Vec::new();
    while pids.len() < grandchildren.len() {
        let line = lines.next().await.unwrap().unwrap();
        pids.push(line.trim().parse().unwrap());
    }
    (service, pids)
}

/// Sends `sig` to `pid`, a process started by the test and not reaped yet.
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill takes integers only; the pid is a running process the test started
    // (reaped only by us or its new parent after this signal), so not a reused one.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

#[test]
fn the_flag_reads_back_as_set_and_cleared() {
    run_in_child("the_flag_reads_back_as_set_and_cleared", || {
        // Not inherited through the fork that started this test process.
        assert!(!is_child_subreaper().unwrap());
        set_child_subreaper(true).unwrap();
        assert!(is_child_subreaper().unwrap());
        // Setting it twice is no error.
        set_child_subreaper(true).unwrap();
        assert!(is_child_subreaper().unwrap());
        set_child_subreaper(false).unwrap();
        assert!(!is_child_subreaper().unwrap());
    });
}

#[test]
fn a_killed_services_grandchild_is_adopted_and_reaped_with_its_signal() {
    run_in_child(
        "a_killed_services_grandchild_is_adopted_and_reaped_with_its_signal",
        || {
            overlap::block_on(within(
                HANG,
                killed_service_grandchild_adopted(),
                "the test",
            ))
        },
    );
}

async fn killed_service_grandchild_adopted() {
    set_child_subreaper(true).unwrap();
    let me = std::process::id();
    let (mut service, pids) = service_with_grandchildren(&["exec sleep 1000".into()]).await;
    let grandchild = pids[0];
    let _cleanup = KillIfPanicking(grandchild);
    assert_eq!(parent_pid(grandchild), service.id());
    service.start_kill().unwrap();
    assert_eq!(service.wait().await.unwrap().signal(), Some(libc::SIGKILL));
    until(
        || parent_pid(grandchild) == Some(me),
        "the grandchild reparented to us",
    )
    .await;
    // Still running: nothing to reap yet.
    assert!(reap_orphans().unwrap().is_empty());
    signal(grandchild, libc::SIGTERM);
    let mut reaped = Vec::new();
    until(
        || {
            reaped.extend(reap_orphans().unwrap());
            !reaped.is_empty()
        },
        "the adopted grandchild reaped",
    )
    .await;
    assert_eq!(reaped.len(), 1);
    assert_eq!(reaped[0].0, grandchild);
    assert_eq!(reaped[0].1.signal(), Some(libc::SIGTERM));
    assert_eq!(process_state(grandchild), None, "reaped, not a zombie");
}

#[test]
fn twenty_daemons_of_an_exited_service_are_each_reaped_once_with_their_codes() {
    run_in_child(
        "twenty_daemons_of_an_exited_service_are_each_reaped_once_with_their_codes",
        || overlap::block_on(within(HANG, twenty_daemons_reaped(), "the test")),
    );
}

async fn twenty_daemons_reaped() {
    set_child_subreaper(true).unwrap();
    // Each daemon waits for the end of the service's stdin, then exits with its code.
    let daemons: Vec<String> = (10..30)
        .map(|code| format!("read line <&3; exit {code}"))
        .collect();
    let (mut service, pids) = service_with_grandchildren(&daemons).await;
    let expected: BTreeMap<u32, i32> = pids.iter().copied().zip(10..30).collect();
    service.start_kill().unwrap();
    // The end of input comes right after the kill: some daemons may exit before their
    // parent is gone, some after, and each is adopted either way, as a zombie or alive.
    drop(service.stdin.take());
    // The service's own status is wait's, not reap_orphans's, even with all the reaping.
    let mut reaped = BTreeMap::new();
    let status = service.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    until(
        || {
            for (pid, status) in reap_orphans().unwrap() {
                let code = status.code().expect("exited, not signalled");
                assert!(reaped.insert(pid, code).is_none(), "{pid} reaped twice");
            }
            reaped.len() == expected.len()
        },
        "all twenty daemons reaped",
    )
    .await;
    assert_eq!(reaped, expected);
    assert!(reap_orphans().unwrap().is_empty());
    for pid in pids {
        assert_eq!(process_state(pid), None, "{pid} left as a zombie");
    }
}

#[test]
fn with_the_flag_cleared_orphans_go_past_this_process() {
    run_in_child("with_the_flag_cleared_orphans_go_past_this_process", || {
        overlap::block_on(within(HANG, cleared_flag_orphans_go_past(), "the test"))
    });
}

async fn cleared_flag_orphans_go_past() {
    set_child_subreaper(true).unwrap();
    set_child_subreaper(false).unwrap();
    let me = std::process::id();
    let (mut service, pids) = service_with_grandchildren(&["exec sleep 1000".into()]).await;
    let grandchild = pids[0];
    let _cleanup = KillIfPanicking(grandchild);
    let service_pid = service.id();
    service.start_kill().unwrap();
    service.wait().await.unwrap();
    until(
        || parent_pid(grandchild) != service_pid,
        "the grandchild reparented",
    )
    .await;
    let adopter = parent_pid(grandchild).expect("still running");
    assert_ne!(adopter, me, "adopted by a process that is no subreaper");
    signal(grandchild, libc::SIGKILL);
    assert!(reap_orphans().unwrap().is_empty());
}
