//! `close` on the standard output streams is a flush, as documented: the process's stream
//! stays open and later writes go on, in order after the earlier ones.
//!
//! Runs in a child process (this test binary re-executed, run alone) whose stdout and
//! stderr point at files for the test's span, as that would disturb the other tests.

mod support;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A copy of `fd`, to put it back with.
fn save(fd: RawFd) -> OwnedFd {
    // SAFETY: plain fd number.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    assert!(copy >= 0);
    // SAFETY: `copy` is a new fd owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(copy) }
}

/// Points `fd` at `to`'s open file.
fn redirect(fd: RawFd, to: RawFd) {
    // SAFETY: plain fd numbers; `fd` is one of the process's standard streams.
    assert_eq!(unsafe { libc::dup2(to, fd) }, fd);
}

#[test]
fn stdout_and_stderr_write_on_after_close() {
    support::run_in_child("stdout_and_stderr_write_on_after_close", || {
        let dir = TempDir::new("stdio-close");
        let (out_path, err_path) = (dir.join("out"), dir.join("err"));
        let out_file = std::fs::File::create(&out_path).unwrap();
        let err_file = std::fs::File::create(&err_path).unwrap();
        let (out_fd, err_fd) = (save(1), save(2));
        redirect(1, out_file.as_raw_fd());
        redirect(2, err_file.as_raw_fd());
        let res = overlap::block_on(async {
            let mut out = overlap::io::stdout();
            let mut err = overlap::io::stderr();
            out.write_all(b"out before close\n").await?;
            err.write_all(b"err before close\n").await?;
            within(HANG, out.close(), "stdout close").await?;
            within(HANG, err.close(), "stderr close").await?;
            out.write_all(b"out after close\n").await?;
            err.write_all(b"err after close\n").await?;
            within(HANG, out.flush(), "stdout flush").await?;
            within(HANG, err.flush(), "stderr flush").await
        });
        redirect(1, out_fd.as_raw_fd());
        redirect(2, err_fd.as_raw_fd());
        res.unwrap();
        assert_eq!(
            std::fs::read_to_string(&out_path).unwrap(),
            "out before close\nout after close\n"
        );
        assert_eq!(
            std::fs::read_to_string(&err_path).unwrap(),
            "err before close\nerr after close\n"
        );
    });
}
