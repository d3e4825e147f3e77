//! A child test process whose stdout is a pipe nobody reads until it says so.

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

/// What [`run_with_unread_stdout`] saw of the child.
pub struct UnreadStdout {
    /// The report lines, in order.
    pub reports: Vec<String>,
    /// Everything the child wrote to stdout.
    pub stdout: String,
    /// The capacity of the stdout pipe.
    pub pipe_size: usize,
}

/// Runs this test binary's test `name` as a child (with `env` set to `name`, which the
/// child side checks), its stdout a pipe that is read only once `reports` lines of its
/// stderr satisfied `is_report`; then reads the rest of both and checks the child
/// succeeded.
pub fn run_with_unread_stdout(
    name: &str,
    env: &str,
    reports: usize,
    is_report: impl Fn(&str) -> bool,
) -> UnreadStdout {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // SAFETY: `F_GETPIPE_SZ` reads a property of an fd we own; no memory is passed.
    let pipe_size = unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_GETPIPE_SZ) };
    assert!(
        pipe_size > 0,
        "F_GETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    // The reports, read before a byte of the child's stdout is.
    let mut got = Vec::new();
    let mut seen = String::new();
    while got.len() < reports {
        let mut l = String::new();
        if stderr.read_line(&mut l).unwrap() == 0 {
            panic!("the child ended without every report: {got:?} {seen}");
        }
        if is_report(&l) {
            got.push(l);
        } else {
            seen.push_str(&l);
        }
    }
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let stdout = reader.join().unwrap();
    assert!(status.success(), "child failed: {got:?}{seen}{rest}");
    UnreadStdout {
        reports: got,
        stdout,
        pipe_size: pipe_size as usize,
    }
}
