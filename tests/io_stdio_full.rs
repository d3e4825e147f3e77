//! `io::stdout`/`io::stderr` on a stream that refuses every write (`/dev/full`): each
//! refused chunk is reported once, by the next `write` or `flush`, as `StorageFull`, and is
//! not written later, once the stream works again, behind the caller's back. A runtime
//! ended with refused bytes unflushed neither hangs nor panics.
//!
//! The streams are redirected in a child process (this test binary re-executed), and put
//! back before the test harness prints its verdict.

mod support;

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Command;

use overlap::io::AsyncWriteExt;

const CHILD_ENV: &str = "OVERLAP_STDIO_FULL_CHILD";
const NAME: &str = "refused_stdio_chunks_are_reported_once_and_never_written_later";

/// Points `fd` at `to`'s open file.
fn redirect(fd: RawFd, to: RawFd) {
    // SAFETY: plain fd numbers; `fd` is a standard stream this process owns.
    assert!(unsafe { libc::dup2(to, fd) } >= 0);
}

/// A copy of `fd`, to put it back with.
fn save(fd: RawFd) -> OwnedFd {
    // SAFETY: plain fd number.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    assert!(copy >= 0);
    // SAFETY: `copy` is a new fd owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(copy) }
}

fn storage_full(res: std::io::Result<()>) {
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
}

fn child() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (out_fd, err_fd) = (save(1), save(2));
    redirect(1, full.as_raw_fd());
    redirect(2, full.as_raw_fd());
    overlap::block_on(async {
        let mut out = overlap::io::stdout();
        assert_eq!(out.write(b"one\n").await.unwrap(), 4);
        storage_full(out.flush().await);
        // No newline: std's line buffer would keep it.
        assert_eq!(out.write(b"two").await.unwrap(), 3);
        storage_full(out.flush().await);
        out.flush().await.unwrap();
        assert_eq!(out.write(b"three\n").await.unwrap(), 6);
        // Reported by the next write.
        storage_full(out.write(b"four").await.map(drop));

        let mut err = overlap::io::stderr();
        assert_eq!(err.write(b"five").await.unwrap(), 4);
        storage_full(err.flush().await);

        // Left unflushed as the runtime ends.
        out.write_all(b"six").await.unwrap();
        err.write_all(b"seven").await.unwrap();
    });
    redirect(1, out_fd.as_raw_fd());
    redirect(2, err_fd.as_raw_fd());
    overlap::block_on(async {
        let mut out = overlap::io::stdout();
        out.write_all(b"<eight>\n").await.unwrap();
        out.flush().await.unwrap();
    });
}

#[test]
fn refused_stdio_chunks_are_reported_once_and_never_written_later() {
    if std::env::var(CHILD_ENV).is_ok() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed\n{stdout}\n{stderr}");
    // Only the bytes written once the stream worked again, nothing refused before.
    assert!(
        stdout.contains(&format!("{NAME} ... <eight>\nok")),
        "{stdout}"
    );
    for refused in ["one", "two", "three", "four", "six"] {
        assert!(!stdout.contains(refused), "{refused:?} came out: {stdout}");
    }
    for refused in ["five", "seven"] {
        assert!(!stderr.contains(refused), "{refused:?} came out: {stderr}");
    }
}
