//! `overlap::process::Command::pre_exec`, tokio's (and std's) hook run in the child between
//! `fork` and `exec`: it runs there and not here, closures run in order, an error from one
//! fails the spawn with that error, and the other settings still
//! apply around it.

mod support;

use std::io;
use std::time::Duration;

use overlap::process::Command;
use support::within;

const HANG: Duration = Duration::from_secs(30);

/// The sixth field of `/proc/<pid>/stat` (the session id) of process `pid`, read by a shell
/// that prints its own pid and then that field.
const PID_AND_SID: &str = "echo $$ $(cut -d' ' -f6 /proc/$$/stat)";

fn pid_and_sid(out: &[u8]) -> (String, String) {
    let out = String::from_utf8(out.to_vec()).unwrap();
    let (pid, sid) = out.trim().split_once(' ').unwrap();
    (pid.to_owned(), sid.to_owned())
}

fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and is async-signal-safe.
    match unsafe { libc::setsid() } {
        -1 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

#[test]
fn a_closure_runs_in_the_child_before_exec() {
    overlap::block_on(within(
        HANG,
        async {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", PID_AND_SID]);
            // SAFETY: the closure only calls setsid, which is async-signal-safe.
            unsafe { cmd.pre_exec(setsid) };
            let out = cmd.output().await.unwrap();
            assert!(out.status.success());
            let (pid, sid) = pid_and_sid(&out.stdout);
            assert_eq!(pid, sid, "the child leads a new session");
            // And without it, the child stays in ours.
            let out = Command::new("sh").args(["-c", PID_AND_SID]).output().await;
            let (pid, sid) = pid_and_sid(&out.unwrap().stdout);
            assert_ne!(pid, sid, "no hook, no new session");
            // SAFETY: getsid(0) takes no pointers.
            assert_eq!(sid, unsafe { libc::getsid(0) }.to_string());
        },
        "the hook",
    ));
}

#[test]
fn closures_run_in_order_and_an_error_fails_the_spawn() {
    overlap::block_on(within(
        HANG,
        async {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "echo ran"]);
            // SAFETY: the closures allocate nothing and call only setsid (async-signal-safe).
            unsafe {
                cmd.pre_exec(setsid);
                // A second setsid fails (EPERM: the child leads a session already), which
                // shows the first ran before it.
                cmd.pre_exec(setsid);
            }
            let err = cmd.spawn().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
            let err = cmd.output().await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");

            // An error of the closure's own making comes back as it was.
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "echo ran"]);
            // SAFETY: the closure allocates nothing.
            unsafe { cmd.pre_exec(|| Err(io::Error::from_raw_os_error(libc::ENOTTY))) };
            let err = cmd.status().await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::ENOTTY), "{err}");
        },
        "the failing hook",
    ));
}

#[test]
fn the_other_settings_apply_around_the_hook() {
    overlap::block_on(within(
        HANG,
        async {
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "echo \"$V\"; pwd; exit 4"])
                .env("V", "set")
                .current_dir("/")
                .kill_on_drop(true);
            // SAFETY: the closure only calls setsid, which is async-signal-safe.
            unsafe { cmd.pre_exec(setsid) }.arg0("renamed");
            let out = cmd.output().await.unwrap();
            assert_eq!(out.stdout, b"set\n/\n");
            assert_eq!(out.status.code(), Some(4));
            assert!(cmd.get_kill_on_drop(), "the builder chains on");
        },
        "the settings",
    ));
}
