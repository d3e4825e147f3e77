//! `Sender::open` and `Receiver::open` outside a runtime fail (the end could not be
//! registered), and must fail before they open the FIFO: opening and closing an end is
//! seen by the processes at the other end. A writer that comes and goes is end of file to
//! a FIFO's readers; a reader that comes and goes releases a writer blocked in `open`,
//! whose writes then break (`EPIPE`, or death by `SIGPIPE` in a C program).

mod support;

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::pipe::{Receiver, Sender};
use support::{wait_until, TempDir};

/// A FIFO named `name` in `dir`.
fn fifo(dir: &TempDir, name: &str) -> PathBuf {
    let path = dir.join(name);
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    path
}

/// `poll(2)` bits of `fd` for reading, now.
fn poll_in(fd: &OwnedFd) -> libc::c_short {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one valid pollfd for the whole call.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    assert!(n >= 0, "{}", io::Error::last_os_error());
    p.revents
}

fn open_std(path: &Path, write: bool, flags: libc::c_int) -> io::Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(flags)
        .open(path)
        .map(OwnedFd::from)
}

/// A reader waits on the FIFO; a `Sender::open` outside a runtime fails, and the reader
/// sees no writer come and go (no hang-up, which it would read as end of file).
#[test]
fn a_sender_opened_outside_a_runtime_is_no_end_of_file_to_the_reader() {
    let dir = TempDir::new("review-open-outside-tx");
    let path = fifo(&dir, "fifo");
    let reader = open_std(&path, false, libc::O_NONBLOCK).unwrap();
    assert_eq!(poll_in(&reader), 0, "no writer yet: nothing to report");

    let e = Sender::open(&path).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Other, "{e}");
    assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");

    assert_eq!(
        poll_in(&reader) & libc::POLLHUP,
        0,
        "the failed Sender::open opened and closed the FIFO: its reader sees end of file"
    );
}

/// A writer blocks in `open` until a reader comes; a `Receiver::open` outside a runtime
/// fails and must not release it (it would then write to a FIFO with no reader).
#[test]
fn a_receiver_opened_outside_a_runtime_does_not_release_a_waiting_writer() {
    let dir = TempDir::new("review-open-outside-rx");
    let path = fifo(&dir, "fifo");
    let opened = Arc::new(AtomicBool::new(false));
    let writer = {
        let (path, opened) = (path.clone(), opened.clone());
        std::thread::spawn(move || {
            // Blocking: waits for a reader.
            let fd = open_std(&path, true, 0);
            opened.store(true, Ordering::SeqCst);
            fd
        })
    };
    // Let the writer get into its `open` (it cannot get out of it on its own).
    std::thread::sleep(Duration::from_millis(50));

    let e = Receiver::open(&path).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Other, "{e}");
    assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");

    assert!(
        !wait_until(Duration::from_millis(200), || opened.load(Ordering::SeqCst)),
        "the failed Receiver::open released the writer blocked in open"
    );
    // Release it for real.
    let _reader = open_std(&path, false, libc::O_NONBLOCK).unwrap();
    assert!(wait_until(Duration::from_secs(10), || opened.load(Ordering::SeqCst)));
    writer.join().unwrap().unwrap();
}
