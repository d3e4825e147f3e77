//! A terminal's path given to `Receiver::open` or `Sender::open` is refused (no FIFO), and
//! must leave no trace: opened without `O_NOCTTY` by a session leader that has no
//! controlling terminal (a daemon after `setsid`), a terminal becomes that session's
//! controlling terminal, and its hang-up or job-control signals then reach the process.

mod support;

use std::ffi::CStr;
use std::io;

use overlap::pipe::{Receiver, Sender};

/// The `tty_nr` field of `/proc/self/stat`: this process's controlling terminal, 0 if none.
fn controlling_tty() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // After "pid (comm) ": state, ppid, pgrp, session, tty_nr.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(4).unwrap().parse().unwrap()
}

#[test]
fn a_refused_terminal_does_not_become_the_controlling_terminal() {
    support::run_in_child(
        "a_refused_terminal_does_not_become_the_controlling_terminal",
        a_refused_terminal_does_not_become_the_controlling_terminal_alone,
    );
}

fn a_refused_terminal_does_not_become_the_controlling_terminal_alone() {
    // SAFETY: setsid takes no arguments; this process (a copy of the test binary run for
    // this test alone) leads no process group, so it may start a session.
    let sid = unsafe { libc::setsid() };
    assert!(sid > 0, "setsid: {}", io::Error::last_os_error());
    assert_eq!(controlling_tty(), 0, "a new session has no terminal");

    // SAFETY: posix_openpt takes flags only; the result is checked.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    if master < 0 {
        // A sandbox without /dev/ptmx: no terminal to try.
        eprintln!("skipped: posix_openpt: {}", io::Error::last_os_error());
        return;
    }
    // SAFETY: `master` is the pty master just opened.
    assert_eq!(unsafe { libc::grantpt(master) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::unlockpt(master) }, 0);
    // SAFETY: `master` is a pty master; ptsname returns a static NUL-terminated string,
    // copied out at once (no other thread calls it).
    let slave = unsafe { CStr::from_ptr(libc::ptsname(master)) }
        .to_str()
        .unwrap()
        .to_owned();

    overlap::block_on(async {
        let e = Receiver::open(&slave).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert_eq!(
            controlling_tty(),
            0,
            "Receiver::open made the terminal it refused the controlling terminal"
        );
        let e = Sender::open(&slave).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert_eq!(
            controlling_tty(),
            0,
            "Sender::open made the terminal it refused the controlling terminal"
        );
    });
    // SAFETY: `master` is open and owned here.
    unsafe { libc::close(master) };
}
