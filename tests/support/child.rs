//! Running one test in a child process of its own, for process-wide changes (resource
//! limits, uids) that must not touch the other tests of the binary.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The variable that tells a copy of the test binary it is the child for a test.
const CHILD_ENV: &str = "OVERLAP_TEST_CHILD";

/// Called first thing by the test `test_name`: in the parent, runs this test binary again
/// with only `test_name`, as a child that runs `body`, and fails unless `body` returned
/// there; in that child, runs `body`.
pub fn run_in_child(test_name: &str, body: impl FnOnce()) {
    run_in_child_blocking(test_name, &[], body)
}

/// As [`run_in_child`], with `signals` blocked in the child from its start, in every thread
/// (as a parent that blocks them and then `exec`s leaves them).
pub fn run_in_child_blocking(test_name: &str, signals: &[i32], body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test_name) {
        body();
        println!("child ok: {test_name}");
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name);
    if !signals.is_empty() {
        // SAFETY: an all-zero sigset_t is a valid value to fill.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        for &signum in signals {
            // SAFETY: `set` is a valid sigset_t; a bad number is refused, not undefined.
            assert_eq!(unsafe { libc::sigaddset(&mut set, signum) }, 0);
        }
        // SAFETY: between fork and exec the closure only calls pthread_sigmask, which is
        // async-signal-safe, on a set copied into it; std has reset the mask just before.
        unsafe {
            cmd.pre_exec(move || {
                match libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) {
                    0 => Ok(()),
                    e => Err(std::io::Error::from_raw_os_error(e)),
                }
            });
        }
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    // A child whose filter refuses `openat` or `unlinkat` cannot remove its own temporary
    // directories: they go now, found by the child's pid in their names.
    super::files::remove_temp_dirs_of(pid);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("child ok: {test_name}")),
        "child failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}
