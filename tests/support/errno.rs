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
