//! `fs::copy` given what a careless caller might give it, where `std::fs::copy` (and so
//! tokio's) does harm:
//!
//! - the source and destination are one file (the same path, a hard link, a symlink to
//!   it): std opens the destination with `O_TRUNC` first and copies the now empty source,
//!   leaving a file of 0 bytes. overlap refuses with `InvalidInput` and leaves the bytes.
//! - the source is a FIFO: std opens it for reading, which blocks until a writer comes
//!   (for ever, if none does), only to refuse it as no regular file afterwards. overlap
//!   refuses at once, without opening it, and creates no destination.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use overlap::fs;
use overlap::io::ErrorKind;
use support::{mkfifo, within, TempDir};

const LIMIT: Duration = Duration::from_secs(20);

/// Whether this process has an fd open on `path` (by `/proc/self/fd`'s links: unlike a
/// count of fds, not moved by the other tests running alongside).
fn open_on(path: &Path) -> bool {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|target| target == path)
}

#[overlap::test]
async fn a_copy_onto_the_same_file_is_refused_and_keeps_its_bytes() {
    let dir = TempDir::new("copy-onto-itself");
    let file = dir.join("file");
    std::fs::write(&file, b"precious bytes").unwrap();
    std::fs::hard_link(&file, dir.join("hard")).unwrap();
    symlink(&file, dir.join("soft")).unwrap();

    for to in [file.clone(), dir.join("hard"), dir.join("soft")] {
        let err = within(LIMIT, fs::copy(&file, &to), "a copy onto itself")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{to:?}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with("failed to copy "), "{msg}");
        assert!(msg.contains("same file"), "{msg}");
        assert_eq!(std::fs::read(&file).unwrap(), b"precious bytes", "{to:?}");
    }
    // The other way round: the link as the source, the file as the destination.
    let err = fs::copy(dir.join("soft"), &file).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious bytes");

    // A real copy still copies, over an existing destination too.
    std::fs::write(dir.join("other"), b"old, longer contents").unwrap();
    assert_eq!(fs::copy(&file, dir.join("other")).await.unwrap(), 14);
    assert_eq!(std::fs::read(dir.join("other")).unwrap(), b"precious bytes");
}

#[overlap::test]
async fn a_copy_from_a_fifo_fails_at_once_without_waiting_for_a_writer() {
    let dir = TempDir::new("copy-from-fifo");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let to = dir.join("to");

    // No writer ever comes: std's open of the source would wait for one for good.
    let err = within(
        LIMIT,
        fs::copy(&fifo, &to),
        "a copy from a FIFO with no writer",
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().starts_with("failed to copy "), "{err}");
    assert!(!to.exists(), "no destination is made for a refused source");
    assert!(!open_on(&fifo), "no fd is left open on the FIFO");

    // The pool is free for the next job.
    std::fs::write(dir.join("a"), b"a").unwrap();
    let n = within(LIMIT, fs::copy(dir.join("a"), &to), "a copy after it").await;
    assert_eq!(n.unwrap(), 1);
}
