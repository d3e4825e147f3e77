//! Writes the kernel refuses: `/dev/full` (`ENOSPC`), `RLIMIT_FSIZE` (`EFBIG`), `fsync` and
//! `ftruncate` where they make no sense. Each refusal is reported once, with std's
//! `ErrorKind`, and bytes accepted after a refused one never land at the wrong offset.
//!
//! `RLIMIT_FSIZE` is lowered in a child process (this test binary re-executed), so the other
//! tests never hit it.

mod support;

use std::io::ErrorKind;
use std::sync::mpsc;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::AsyncWriteExt;
use overlap::Runtime;
use support::{within, TempDir};

const GUARD: Duration = Duration::from_secs(20);

/// The byte at which the child's file size limit stops writes.
const LIMIT: u64 = 300;

/// Ignores `SIGXFSZ` (so a write past the limit fails with `EFBIG` instead of killing the
/// process) and sets the soft file size limit to `soft`.
fn set_fsize(soft: libc::rlim_t) {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    support::set_soft_limit(libc::RLIMIT_FSIZE, soft);
}

/// Opens `path` for writing in 512-byte batches and queues two of them, `A`s then `B`s,
/// behind a job holding the pool's one thread; the first crosses the size limit. Then
/// releases the pool, with a job queued after the first batch that lifts the limit, so the
/// second batch would be written without error: returns the `File` once that job has run.
async fn two_batches_first_refused(path: &std::path::Path) -> File {
    let mut file = File::create(path).await.unwrap();
    file.set_max_buf_size(1024);
    let (release, held) = mpsc::channel::<()>();
    drop(overlap::spawn_blocking(move || held.recv()));
    assert_eq!(file.write(&[b'A'; 512]).await.unwrap(), 512);
    assert_eq!(file.write(&[b'B'; 512]).await.unwrap(), 512);
    let lift = overlap::spawn_blocking(|| set_fsize(libc::RLIM_INFINITY));
    release.send(()).unwrap();
    within(GUARD, lift, "the limit is lifted").await.unwrap();
    file
}

/// A runtime whose blocking pool has one thread: jobs run one by one, in order.
fn one_thread_pool() -> Runtime {
    Runtime::builder().max_blocking_threads(1).build().unwrap()
}

/// A batch refused part way: the error comes once, and the batch accepted after it is
/// dropped with it rather than written right after the refused batch's prefix (at byte
/// 300 instead of 512, where the caller put it).
#[test]
fn bytes_after_a_refused_batch_are_not_misplaced() {
    support::run_in_child("bytes_after_a_refused_batch_are_not_misplaced", || {
        let dir = TempDir::new("fsize-misplaced");
        let path = dir.join("f");
        set_fsize(LIMIT);
        one_thread_pool().block_on(async {
            let mut file = two_batches_first_refused(&path).await;
            let err = within(GUARD, file.flush(), "flush").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
            within(GUARD, file.flush(), "flush").await.unwrap();
        });
        assert_eq!(std::fs::read(&path).unwrap(), vec![b'A'; LIMIT as usize]);
    });
}

/// The same, with the `File` dropped before it saw the error: its unwritten batch is not
/// written after the refused one either.
#[test]
fn dropped_bytes_after_a_refused_batch_are_not_misplaced() {
    support::run_in_child(
        "dropped_bytes_after_a_refused_batch_are_not_misplaced",
        || {
            let dir = TempDir::new("fsize-misplaced-drop");
            let path = dir.join("f");
            set_fsize(LIMIT);
            one_thread_pool().block_on(async {
                drop(two_batches_first_refused(&path).await);
            });
            assert_eq!(std::fs::read(&path).unwrap(), vec![b'A'; LIMIT as usize]);
        },
    );
}
