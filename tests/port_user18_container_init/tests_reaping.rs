//! The reaping of adopted orphans checked in a child process of the test binary's own
//! (`support::run_in_child`), since a subreaper flag and a `waitpid(-1)` are the whole
//! process's: `overlap::process::reap_orphans` leaves overlap's own zombie and its status
//! alone, where the naive `waitpid(-1)` steals it.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use overlap::io::{AsyncBufReadExt, BufReader};
use overlap::process::Command;
use overlap::stream::StreamExt;

use crate::adopted::{adopted, reap_adopted, Reaped};
use crate::rig::HANG;
use crate::support::{process_state, run_in_child, until, within, KillIfPanicking};
use crate::sys;

#[test]
fn reap_orphans_leaves_our_zombie_and_its_status_alone() {
    run_in_child(
        "tests_reaping::reap_orphans_leaves_our_zombie_and_its_status_alone",
        || overlap::block_on(reaping_orphans()),
    );
}

async fn reaping_orphans() {
    sys::set_child_subreaper().unwrap();
    assert!(sys::is_child_subreaper().unwrap());
    let mut child = Command::new("sh")
        .args(["-c", "(sleep 1000 & echo $!); exit 5"])
        .stdout(Stdio::piped())
        .process_group(0)
        .kill_group_on_drop(true) // a failing test leaves no `sleep` behind
        .spawn()
        .unwrap();
    let main = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let orphan: u32 = lines.next().await.unwrap().unwrap().parse().unwrap();
    // Once reaped as the orphan it is, the main command's group no longer holds it.
    let _orphan_guard = KillIfPanicking(orphan);
    let status = within(HANG, child.exited(), "the main command exits")
        .await
        .unwrap();
    assert_eq!(status.code(), Some(5));
    // Both are this process's children now: the main command a zombie kept on purpose,
    // the orphan reparented to the subreaper.
    until(
        || adopted(&[main]).unwrap() == [orphan],
        "the orphan adopted",
    )
    .await;
    assert_eq!(process_state(main), Some('Z'));
    assert_eq!(
        reap_adopted(&[main]).unwrap(),
        (vec![], 1),
        "the orphan still runs"
    );
    sys::kill(orphan, libc::SIGKILL).unwrap();
    let mut reaped = Vec::new();
    until(
        || {
            reaped.extend(reap_adopted(&[main]).unwrap().0);
            !reaped.is_empty()
        },
        "the orphan reaped",
    )
    .await;
    assert_eq!(reaped.len(), 1);
    let Reaped { pid, status: how } = reaped[0];
    assert_eq!((pid, how.signal()), (orphan, Some(libc::SIGKILL)));
    // Ours untouched: still a zombie, its status still overlap's to give.
    assert_eq!(process_state(main), Some('Z'));
    assert_eq!(child.id(), Some(main));
    assert_eq!(child.wait().await.unwrap(), status);
    assert_eq!(
        adopted(&[]).unwrap(),
        Vec::<u32>::new(),
        "no child left at all"
    );
}

#[test]
fn a_naive_waitpid_any_steals_the_status_of_overlaps_child() {
    run_in_child(
        "tests_reaping::a_naive_waitpid_any_steals_the_status_of_overlaps_child",
        || overlap::block_on(naive_reap()),
    );
}

async fn naive_reap() {
    let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let pid = child.id().unwrap();
    until(|| process_state(pid) == Some('Z'), "the child a zombie").await;
    let (stolen, status) = sys::reap_any_exited().unwrap().expect("an exited child");
    assert_eq!((stolen, status.code()), (pid, Some(3)));
    let lost = child.wait().await.unwrap_err();
    assert_eq!(lost.raw_os_error(), Some(libc::ECHILD), "{lost}");
}
