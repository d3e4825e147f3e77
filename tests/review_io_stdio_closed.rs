//! `io::stdout` and `io::stderr` in a process started with those streams closed (as by a
//! shell's `>&-`): both take every write, as std's and tokio's do, instead of stdout
//! failing with `EBADF` while stderr succeeds; `io::stdin` with fd 0 closed (`<&-`) reads
//! as end of file.
//!
//! The streams are closed in a child process (this test binary re-executed, run alone, as
//! closing them would disturb the other tests), and put back before it reports.

mod support;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use overlap::io::AsyncWriteExt;

/// A copy of `fd`, to put it back with.
fn save(fd: RawFd) -> OwnedFd {
    // SAFETY: plain fd number.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    assert!(copy >= 0);
    // SAFETY: `copy` is a new fd owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(copy) }
}

#[test]
fn closed_stdout_and_stderr_take_writes_alike() {
    support::run_in_child("closed_stdout_and_stderr_take_writes_alike", || {
        let rt = overlap::Runtime::new().unwrap();
        let (out_fd, err_fd) = (save(1), save(2));
        let (out, err) = rt.block_on(async {
            // The pool thread first: nothing opens an fd (which would take number 1 or 2)
            // while the streams are closed.
            overlap::spawn_blocking(|| ()).await.unwrap();
            // SAFETY: plain fd numbers; the process's own standard streams, saved above.
            unsafe { (libc::close(1), libc::close(2)) };
            let mut out = overlap::io::stdout();
            let wrote_out = out.write_all(b"nowhere\n").await;
            let out_res = wrote_out.and(out.flush().await);
            let mut err = overlap::io::stderr();
            let wrote_err = err.write_all(b"nowhere\n").await;
            (out_res, wrote_err.and(err.flush().await))
        });
        // SAFETY: plain fd numbers: the saved streams go back to 1 and 2.
        unsafe {
            assert!(libc::dup2(out_fd.as_raw_fd(), 1) == 1);
            assert!(libc::dup2(err_fd.as_raw_fd(), 2) == 2);
        }
        assert!(out.is_ok(), "stdout: {out:?}");
        assert!(err.is_ok(), "stderr: {err:?}");
    });
}

/// `io::stdin` in a process started with it closed (as by a shell's `<&-`): it reads as end
/// of file, as std's does, instead of failing with `EBADF`, and says so again if read again.
#[test]
fn closed_stdin_reads_as_end_of_file() {
    support::run_in_child("closed_stdin_reads_as_end_of_file", || {
        use overlap::io::AsyncReadExt;
        let rt = overlap::Runtime::new().unwrap();
        let in_fd = save(0);
        let reads = rt.block_on(async {
            // The pool thread first: nothing opens an fd (which would take number 0) while
            // the stream is closed.
            overlap::spawn_blocking(|| ()).await.unwrap();
            // SAFETY: plain fd number; the process's own standard input, saved above.
            unsafe { libc::close(0) };
            let mut input = overlap::io::stdin();
            let mut buf = [0u8; 16];
            let first = support::within(HANG, input.read(&mut buf), "read").await;
            let again = support::within(HANG, input.read(&mut buf), "read again").await;
            (first, again)
        });
        // SAFETY: plain fd numbers: the saved stream goes back to 0.
        unsafe { assert!(libc::dup2(in_fd.as_raw_fd(), 0) == 0) };
        assert!(matches!(reads.0, Ok(0)), "{:?}", reads.0);
        assert!(matches!(reads.1, Ok(0)), "{:?}", reads.1);
    });
}

const HANG: std::time::Duration = std::time::Duration::from_secs(10);
