//! `Sender::from_owned_fd` / `Receiver::from_owned_fd` that fail to register the fd (here:
//! called outside any runtime) must leave the pipe's open file description as it was.
//! `O_NONBLOCK` belongs to the description, which other fds and other processes share (a
//! shell's pipe handed down as stdin, a `dup` kept by the caller): left non-blocking by a
//! call that failed, their blocking reads and writes start failing with `EAGAIN`.

mod support;

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use overlap::pipe::{Receiver, Sender};

/// Whether `fd`'s open file description is non-blocking.
fn non_blocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "{}", io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// A blocking pipe, as a shell would hand one down: (read end, write end).
fn blocking_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let res = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(res, 0, "{}", io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn a_failed_adoption_outside_a_runtime_leaves_the_fd_blocking() {
    let (r, w) = blocking_pipe();
    let (r_kept, w_kept) = (r.try_clone().unwrap(), w.try_clone().unwrap());
    assert!(!non_blocking(r_kept.as_raw_fd()) && !non_blocking(w_kept.as_raw_fd()));

    let e = Receiver::from_owned_fd(r).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Other, "{e}");
    let e = Sender::from_owned_fd(w).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::Other, "{e}");

    assert!(
        !non_blocking(r_kept.as_raw_fd()),
        "a failed Receiver::from_owned_fd left the read end's description non-blocking"
    );
    assert!(
        !non_blocking(w_kept.as_raw_fd()),
        "a failed Sender::from_owned_fd left the write end's description non-blocking"
    );
    // The kept fds still work as blocking ones.
    let (mut r, mut w) = (std::fs::File::from(r_kept), std::fs::File::from(w_kept));
    w.write_all(b"still blocking").unwrap();
    drop(w);
    let mut got = String::new();
    r.read_to_string(&mut got).unwrap();
    assert_eq!(got, "still blocking");
}

/// Inside a runtime, adoption makes the shared description non-blocking, as documented.
#[test]
fn a_successful_adoption_makes_the_description_non_blocking() {
    overlap::block_on(async {
        let (r, w) = blocking_pipe();
        let (r_kept, w_kept) = (r.try_clone().unwrap(), w.try_clone().unwrap());
        let _rx = Receiver::from_owned_fd(r).unwrap();
        let _tx = Sender::from_owned_fd(w).unwrap();
        assert!(non_blocking(r_kept.as_raw_fd()) && non_blocking(w_kept.as_raw_fd()));
    });
}
