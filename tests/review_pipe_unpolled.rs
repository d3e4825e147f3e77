//! `Command::status()` and `Command::output()` spawn the child when they are called; a
//! future dropped before its first poll hands the running child to the orphan reaper. The
//! child's piped stdio must close with it, as it does for a dropped `Child` (and for std's):
//! a child reading its stdin then sees end of file, and one writing its stdout sees
//! `EPIPE`, so both end, are reaped, and leave no pipe end open in the parent.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use overlap::process::Command;
use support::{gone, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A `sh` that writes its pid to `pid_file`, then becomes `program`.
fn reporting(pid_file: &Path, program: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "echo $$ > '{}'; exec {program}",
        pid_file.display()
    ));
    cmd
}

/// The pid `reporting` wrote, once it is there.
async fn pid_in(pid_file: &Path) -> u32 {
    within(
        HANG,
        async {
            loop {
                let text = std::fs::read_to_string(pid_file).unwrap_or_default();
                if text.ends_with('\n') {
                    return text.trim().parse().unwrap();
                }
                overlap::time::sleep(Duration::from_millis(5)).await;
            }
        },
        "the child never wrote its pid",
    )
    .await
}

/// Drops `unpolled` once its child has written its pid, then waits for the child to be
/// gone (`what` says what kept it alive otherwise).
async fn ends_when_dropped<F>(pid_file: &Path, unpolled: F, what: &str) {
    let pid = pid_in(pid_file).await;
    drop(unpolled);
    gone(pid, what).await;
}

/// `cat` on a piped stdin ends only when its stdin closes: the unpolled `status()` future
/// must not leave that write end open with the orphan reaper.
#[test]
fn an_unpolled_status_closes_the_childs_stdin() {
    let dir = TempDir::new("review-unpolled-stdin");
    let pid_file = dir.join("pid");
    overlap::block_on(async {
        let mut cmd = reporting(&pid_file, "cat");
        cmd.stdin(Stdio::piped()).stdout(Stdio::null());
        let unpolled = cmd.status();
        ends_when_dropped(
            &pid_file,
            unpolled,
            "cat never saw its stdin close: the write end stayed open",
        )
        .await;
    });
}

/// `yes` on a piped stdout ends only when the pipe breaks: the unpolled `output()` future
/// must not leave the read end open with the orphan reaper (the child would block on the
/// full pipe for ever).
#[test]
fn an_unpolled_output_closes_the_childs_stdout() {
    let dir = TempDir::new("review-unpolled-stdout");
    let pid_file = dir.join("pid");
    overlap::block_on(async {
        let mut cmd = reporting(&pid_file, "yes");
        let unpolled = cmd.output();
        ends_when_dropped(
            &pid_file,
            unpolled,
            "yes never saw its stdout break: the read end stayed open",
        )
        .await;
    });
}

/// The same for a future dropped outside any runtime (made there too): nothing watches the
/// child but the orphan reaper, and its pipes still close.
#[test]
fn an_unpolled_status_made_outside_a_runtime_closes_the_childs_stdin() {
    let dir = TempDir::new("review-unpolled-outside");
    let pid_file = dir.join("pid");
    let mut cmd = reporting(&pid_file, "cat");
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let unpolled = cmd.status();
    overlap::block_on(async {
        ends_when_dropped(
            &pid_file,
            unpolled,
            "cat never saw its stdin close: the write end stayed open",
        )
        .await;
    });
}
