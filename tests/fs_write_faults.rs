//! Writes the kernel refuses: `/dev/full` (`ENOSPC`), `RLIMIT_FSIZE` (`EFBIG`), `fsync` and
//! `ftruncate` where they make no sense. Each refusal is reported once, with std's
//! `ErrorKind`, and bytes accepted after a refused one never land at the wrong offset.
//!
//! `RLIMIT_FSIZE` is lowered in a child process (this test binary re-executed), so the other
//! tests never hit it.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::AsyncWriteExt;
use support::{hold_pool, one_thread_pool, within, TempDir};

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
/// behind a job holding the pool's one thread; the first crosses the size limit, and the
/// second is handed to the first's job. Then releases the pool, with a job queued after the
/// write job that lifts the limit: returns the `File` once that job has run. (The write job
/// finishes before the lift, so a `B` it tried would be refused too: that the handed bytes
/// are dropped, not tried, is `fs_write_handoff`'s seccomp test.)
async fn two_batches_first_refused(path: &std::path::Path) -> File {
    let mut file = File::create(path).await.unwrap();
    file.set_max_buf_size(1024);
    let release = hold_pool();
    assert_eq!(file.write(&[b'A'; 512]).await.unwrap(), 512);
    assert_eq!(file.write(&[b'B'; 512]).await.unwrap(), 512);
    let lift = overlap::spawn_blocking(|| set_fsize(libc::RLIM_INFINITY));
    release.send(()).unwrap();
    within(GUARD, lift, "the limit is lifted").await.unwrap();
    file
}

/// Runs `body` in a child (the test `name`), with a fresh file path in a temp dir and the
/// file size limit at [`LIMIT`]; returns when the child succeeded.
fn in_limited_child(name: &str, body: impl FnOnce(&std::path::Path)) {
    support::run_in_child(name, || {
        let dir = TempDir::new(name);
        set_fsize(LIMIT);
        body(&dir.join("f"));
    });
}

/// A batch refused part way: the error comes once, and the batch accepted after it is
/// dropped with it rather than written right after the refused batch's prefix (at byte
/// 300 instead of 512, where the caller put it).
#[test]
fn bytes_after_a_refused_batch_are_not_misplaced() {
    in_limited_child("bytes_after_a_refused_batch_are_not_misplaced", |path| {
        one_thread_pool().block_on(async {
            let mut file = two_batches_first_refused(path).await;
            let err = within(GUARD, file.flush(), "flush").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
            within(GUARD, file.flush(), "flush").await.unwrap();
        });
        assert_eq!(std::fs::read(path).unwrap(), vec![b'A'; LIMIT as usize]);
    });
}

/// The same, with the `File` dropped before it saw the error: its unwritten batch is not
/// written after the refused one either.
#[test]
fn dropped_bytes_after_a_refused_batch_are_not_misplaced() {
    in_limited_child(
        "dropped_bytes_after_a_refused_batch_are_not_misplaced",
        |path| {
            one_thread_pool().block_on(async {
                drop(two_batches_first_refused(path).await);
            });
            assert_eq!(std::fs::read(path).unwrap(), vec![b'A'; LIMIT as usize]);
        },
    );
}

/// A write crossing the limit: the file holds exactly the bytes before it, the error comes
/// once, and a later write past the limit fails again.
#[test]
fn a_write_crossing_the_size_limit_keeps_the_prefix() {
    in_limited_child("a_write_crossing_the_size_limit_keeps_the_prefix", |path| {
        let data = support::pattern(1000);
        overlap::block_on(async {
            let mut file = File::create(path).await.unwrap();
            file.write_all(&data).await.unwrap();
            let err = within(GUARD, file.flush(), "flush").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
            file.flush().await.unwrap();
            file.write_all(b"more").await.unwrap();
            let err = within(GUARD, file.close(), "close").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileTooLarge, "{err}");
        });
        assert_eq!(std::fs::read(path).unwrap(), &data[..LIMIT as usize]);
    });
}

async fn open_full() -> File {
    let mut options = File::options();
    options.write(true);
    options.open("/dev/full").await.unwrap()
}

/// `/dev/full`: every batch's error is reported once, by the next write, `flush`, `close`
/// or `sync_all`, and the `File` goes on reporting each new refusal.
#[test]
fn dev_full_reports_each_refusal_once() {
    overlap::block_on(async {
        let mut file = open_full().await;
        for op in ["flush", "close", "sync_all", "write"] {
            assert_eq!(file.write(b"abc").await.unwrap(), 3);
            let res = match op {
                "flush" => within(GUARD, file.flush(), op).await,
                "close" => within(GUARD, file.close(), op).await,
                "sync_all" => within(GUARD, file.sync_all(), op).await,
                // Reported by this write, or (if it was accepted while the refused batch
                // was still in flight: it then goes with it) by the flush.
                _ => match within(GUARD, file.write_all(b"def"), op).await {
                    Ok(()) => within(GUARD, file.flush(), op).await,
                    refused => refused,
                },
            };
            let err = res.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::StorageFull, "{op}: {err}");
            assert!(
                err.to_string().starts_with("failed to write /dev/full"),
                "{err}"
            );
            file.flush().await.unwrap();
        }
        // A write larger than a batch: accepted in batches until the first one's error.
        let big = vec![7u8; 3 << 20];
        let err = within(GUARD, file.write_all(&big), "write_all")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
        file.flush().await.unwrap();
        // `fsync` on a character device, `ftruncate` on one: refused, not hung.
        let err = file.sync_all().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = file.set_len(0).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

        let err = overlap::fs::write("/dev/full", b"abc").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
        let dir = TempDir::new("dev-full-copy");
        std::fs::write(dir.join("src"), support::pattern(100_000)).unwrap();
        let err = overlap::fs::copy(dir.join("src"), "/dev/full")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");

        // Dropped with a refused batch pending: no panic, no hang.
        let mut file = open_full().await;
        file.write_all(b"dropped").await.unwrap();
    });
}

/// `set_len` through a read-only fd, `sync_all` on a FIFO: `InvalidInput`, as std says.
#[test]
fn truncate_read_only_and_sync_a_fifo_are_refused() {
    let dir = TempDir::new("fs-refused-ops");
    let ro = dir.join("ro");
    std::fs::write(&ro, b"kept").unwrap();
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    overlap::block_on(async {
        let mut file = File::open(&ro).await.unwrap();
        let err = file.set_len(0).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        file.sync_all().await.unwrap();
        // Read-write, so opening does not wait for a peer.
        let mut fifo = support::open_read_write(&fifo).await;
        let err = fifo.sync_all().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        fifo.write_all(b"still usable").await.unwrap();
        fifo.flush().await.unwrap();
    });
    assert_eq!(std::fs::read(&ro).unwrap(), b"kept");
}
