//! After a standard-stream job fails to run (here: the runtime dropped while a write is in
//! flight), the error is reported once and the stream works again: later writes start new
//! jobs instead of waiting for ever on the spent one.

use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::Runtime;

#[test]
fn stderr_stays_usable_after_a_job_error() {
    let rt1 = Runtime::new().unwrap();
    let mut err = rt1.block_on(async {
        let mut err = overlap::io::stderr();
        err.write_all(b"io_stdio_errors: one line to stderr\n")
            .await
            .unwrap();
        err
    });
    drop(rt1); // cancels the task that waits for the write job

    let rt2 = Runtime::new().unwrap();
    rt2.block_on(async {
        let first = overlap::time::timeout(Duration::from_secs(2), err.flush())
            .await
            .expect("the first flush returns");
        eprintln!("io_stdio_errors: first flush after the runtime change: {first:?}");
        // The error was reported; the stream must now be idle again.
        let second = overlap::time::timeout(Duration::from_secs(2), err.flush()).await;
        assert!(
            second.is_ok(),
            "a second flush hangs: the state kept the spent JoinHandle"
        );
        let write = overlap::time::timeout(
            Duration::from_secs(2),
            err.write_all(b"io_stdio_errors: second line\n"),
        )
        .await;
        assert!(write.is_ok(), "a later write hangs too");
    });
}
