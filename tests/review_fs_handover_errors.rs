//! `File::into_std` and `File::try_clone` with a write error pending: the error is what
//! they return, as their docs say, naming the file; `into_std` closes the fd, and
//! `try_clone` has reported the error once, so the next one hands a clone over.

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
