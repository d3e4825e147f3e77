//! Checking which errno an operation failed with, and which fd number the kernel will
//! hand out next (for seccomp rules aimed at one fd).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Asserts that `res` failed with `errno` (read through [`overlap::io::raw_os_error`], so
/// that `fs` errors naming a path count too); `what` names the call in the message.
pub fn expect_errno<T>(what: &str, res: io::Result<T>, errno: i32) {
    match res {
        Err(e) => assert_eq!(
            overlap::io::raw_os_error(&e),
            Some(errno),
            "{what}: wrong error {e:?}"
        ),
        Ok(_) => panic!("{what}: succeeded although the syscall fails"),
    }
}

/// The number the next new fd will get: the lowest one not open (the kernel always hands
/// out the lowest free number).
pub fn lowest_free_fd() -> RawFd {
    std::fs::File::open("/dev/null").unwrap().as_raw_fd()
}

/// How many fds are open (among the first 4096), found with one `poll` (a closed one
/// reports `POLLNVAL`): for filters that deny what `open_fds` needs (`openat`, `fstat`).
pub fn open_fds_polled() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    // poll refuses more entries than the fd limit (EINVAL).
    let count = lim.rlim_cur.min(4096) as libc::c_int;
    let mut fds: Vec<libc::pollfd> = (0..count)
        .map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is a valid, writable array of as many pollfds as passed.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    assert!(n >= 0, "{}", io::Error::last_os_error());
    fds.iter()
        .filter(|p| p.revents & libc::POLLNVAL == 0)
        .count()
}

/// `err` is `kind` in overlap's words (no raw OS error of its own), saying each of `words`.
pub fn in_our_words(what: &str, err: &io::Error, kind: io::ErrorKind, words: &[&str]) {
    assert_eq!(err.kind(), kind, "{what}: {err}");
    assert_eq!(
        err.raw_os_error(),
        None,
        "{what}: the kernel's words, {err}"
    );
    let msg = err.to_string();
    for w in words {
        assert!(msg.contains(w), "{what}: {msg:?} does not say {w:?}");
    }
}
