//! overlap's own pool work when no blocking thread exists and the kernel refuses a new one
//! (`clone3`/`clone` fail with `EAGAIN`, as under `RLIMIT_NPROC` or a pids cgroup limit):
//! `fs` calls, host name lookups, `Unblock` and the standard streams fail with an `io::Error` that says so, without a panic
//! on the way. They used to fail through a panic of the job's relay task: the panic hook
//! ran (printing "thread panicked at runtime/src/blocking/mod.rs", reporting to whatever
//! a program hooked in), and under `panic = "abort"` the process died. `spawn_blocking`
//! itself still yields a panic `JoinError`, as documented. The test denies thread creation
//! with a seccomp filter in a child process of its own.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{run_in_child, watchdog, within, TempDir};

const HANG: Duration = Duration::from_secs(30);

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn assert_no_thread_error(res: std::io::Result<impl std::fmt::Debug>) {
    let err = res.unwrap_err();
    assert!(
        err.to_string()
            .contains("could not start a blocking thread"),
        "{err}"
    );
    assert_ne!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
}

#[test]
fn pool_work_fails_with_an_error_when_no_thread_can_start() {
    run_in_child(
        "pool_work_fails_with_an_error_when_no_thread_can_start",
        || {
            let done = watchdog(60);
            let dir = TempDir::new("no_pool_thread");
            let path = dir.path().join("f");
            std::fs::write(&path, b"abc").unwrap();
            std::panic::set_hook(Box::new(|info| {
                PANICS.fetch_add(1, Ordering::SeqCst);
                eprintln!("panic: {info}");
            }));
            let rt = overlap::Runtime::new().unwrap();
            rt.block_on(async {
                support::seccomp::deny(&[
                    (libc::SYS_clone3, libc::EAGAIN),
                    (libc::SYS_clone, libc::EAGAIN),
                ]);
                assert_no_thread_error(within(HANG, overlap::fs::read(&path), "read").await);
                let create = overlap::fs::File::create(dir.path().join("g"));
                assert_no_thread_error(within(HANG, create, "create").await);
                let lookup = overlap::net::lookup_host(("localhost", 80));
                assert_no_thread_error(within(HANG, lookup, "lookup").await.map(|_| ()));
                // An `Unblock` accepts the bytes, and its flush reports that they were not written.
                let file = std::fs::File::create(dir.path().join("u")).unwrap();
                let mut unblock = overlap::io::Unblock::new(file);
                unblock.write_all(b"lost").await.unwrap();
                assert_no_thread_error(within(HANG, unblock.flush(), "unblock flush").await);
                let mut stdout = overlap::io::stdout();
                stdout.write_all(b"lost").await.unwrap();
                assert_no_thread_error(within(HANG, stdout.flush(), "stdout flush").await);
                let mut buf = [0; 4];
                let mut stdin = overlap::io::stdin();
                let read = stdin.read(&mut buf);
                assert_no_thread_error(within(HANG, read, "stdin read").await);
                assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic on the way");
                // Documented: a panic `JoinError` carrying the error.
                let err = within(HANG, overlap::spawn_blocking(|| 1), "spawn_blocking")
                    .await
                    .unwrap_err();
                assert!(err.is_panic(), "{err}");
                assert!(err
                    .to_string()
                    .contains("could not start a blocking thread"));
            });
            drop(rt);
            done.store(true, Ordering::Relaxed);
        },
    );
}
