//! `File::into_std` and `File::try_clone` with a write error pending: the error is what
//! they return, as their docs say, naming the file; `into_std` closes the fd, and
//! `try_clone` has reported the error once, so the next one hands a clone over. An
//! `into_std` that must duplicate the fd and cannot names the file too.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::AsyncWriteExt;
use support::{open_fds, run_in_child, within};

const GUARD: Duration = Duration::from_secs(10);

/// `/dev/full`, write-only: every write job fails with `ENOSPC`.
async fn open_full() -> File {
    let mut options = File::options();
    options.write(true);
    options.open("/dev/full").await.unwrap()
}

fn check(err: &std::io::Error) {
    assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
    assert!(
        err.to_string().starts_with("failed to write /dev/full"),
        "{err}"
    );
}

#[test]
fn into_std_returns_a_pending_write_error_and_closes_the_fd() {
    run_in_child(
        "into_std_returns_a_pending_write_error_and_closes_the_fd",
        || {
            overlap::block_on(async {
                let before = open_fds();
                let mut file = open_full().await;
                // Accepted at once; the job writing it fails.
                assert_eq!(file.write(b"refused").await.unwrap(), 7);
                let err = within(GUARD, file.into_std(), "into_std")
                    .await
                    .unwrap_err();
                check(&err);
                assert_eq!(open_fds(), before, "the fd is closed with the error");
            });
        },
    );
}

#[test]
fn try_clone_returns_a_pending_write_error_once() {
    overlap::block_on(async {
        let mut file = open_full().await;
        assert_eq!(file.write(b"refused").await.unwrap(), 7);
        let err = within(GUARD, file.try_clone(), "try_clone")
            .await
            .unwrap_err();
        check(&err);
        // Reported: the file goes on, and hands a clone over now.
        let mut clone = within(GUARD, file.try_clone(), "second try_clone")
            .await
            .unwrap();
        // The clone writes to the same device, and hears of its own refusal.
        assert_eq!(clone.write(b"again").await.unwrap(), 5);
        check(&within(GUARD, clone.flush(), "flush").await.unwrap_err());
        file.flush().await.unwrap();
    });
}

/// `into_std` on a `File` whose fd a dropped operation's job still holds hands on a
/// duplicate; when no fd is left for it (`EMFILE`), the error names the file, as
/// `try_clone`'s does, instead of the bare "Too many open files".
#[test]
fn into_std_that_cannot_duplicate_names_the_file() {
    run_in_child("into_std_that_cannot_duplicate_names_the_file", || {
        let dir = support::TempDir::new("into-std-emfile");
        let path = dir.join("f");
        std::fs::write(&path, b"x").unwrap();
        let file = overlap::block_on(File::open(&path)).unwrap();
        let (rt, gate) = support::runtime_with_a_busy_pool();
        let err = rt.block_on(async {
            // Queued behind the busy job, holding the fd, then dropped.
            {
                let meta = std::pin::pin!(file.metadata());
                assert!(futures_util::poll!(meta).is_pending());
            }
            let fds = support::exhaust_fds();
            let res = within(GUARD, file.into_std(), "into_std").await;
            drop(fds);
            res.unwrap_err()
        });
        gate.wait();
        drop(rt);
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EMFILE), "{err}");
        let named = format!("failed to duplicate {}", path.display());
        assert!(err.to_string().starts_with(&named), "{err}");
    });
}
