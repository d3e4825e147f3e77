//! overlap's own pool work when no blocking thread exists and the kernel refuses a new one
//! (`clone3`/`clone` fail with `EAGAIN`, as under `RLIMIT_NPROC` or a pids cgroup limit):
//! `fs` calls, host name lookups, `Unblock` and standard input fail with an
//! `io::Error` that says so, without a panic on the way. They used to fail through a panic
//! of the job's relay task: the panic hook ran (printing "thread panicked at
//! runtime/src/blocking/mod.rs", reporting to whatever a program hooked in), and under
//! `panic = "abort"` the process died. `spawn_blocking` itself still yields a panic
//! `JoinError`, as documented. With one thread alive, jobs wait for it instead. Each test
//! denies thread creation with a seccomp filter in a child process of its own.

mod support;

use std::path::{Path, PathBuf};
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

/// Runs `body` as the test `name` in a child of its own (aborted if it hangs), with a
/// temporary directory and a file of three bytes in it.
fn in_child_with_file(name: &str, body: impl FnOnce(&Path, PathBuf)) {
    run_in_child(name, || {
        let done = watchdog(60);
        let dir = TempDir::new(name);
        let path = dir.join("f");
        std::fs::write(&path, b"abc").unwrap();
        body(dir.path(), path);
        done.store(true, Ordering::Relaxed);
    });
}

/// Makes `clone3` and `clone` fail with `EAGAIN`, so no thread can start any more.
fn deny_new_threads() {
    support::seccomp::deny(&[
        (libc::SYS_clone3, libc::EAGAIN),
        (libc::SYS_clone, libc::EAGAIN),
    ]);
}

#[test]
fn pool_work_fails_with_an_error_when_no_thread_can_start() {
    in_child_with_file(
        "pool_work_fails_with_an_error_when_no_thread_can_start",
        |dir, path| {
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
                let create = overlap::fs::File::create(dir.join("g"));
                assert_no_thread_error(within(HANG, create, "create").await);
                let lookup = overlap::net::lookup_host(("localhost", 80));
                assert_no_thread_error(within(HANG, lookup, "lookup").await.map(|_| ()));
                // An `Unblock` accepts the bytes, and its flush reports that they were not written.
                let file = std::fs::File::create(dir.join("u")).unwrap();
                let mut unblock = overlap::io::Unblock::new(file);
                unblock.write_all(b"lost").await.unwrap();
                assert_no_thread_error(within(HANG, unblock.flush(), "unblock flush").await);
                // Standard output's bytes must survive even the runtime's end: the job that
                // never ran writes them from its destructor (here inline, with no thread to
                // take them), so the flush reports no failure that would invite a retry.
                let mut stdout = overlap::io::stdout();
                stdout.write_all(b"kept\n").await.unwrap();
                within(HANG, stdout.flush(), "stdout flush").await.unwrap();
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
        },
    );
}

/// With one pool thread alive (busy) when new ones stop starting, jobs queue behind it and
/// run once it frees up: none fails, none is lost.
#[test]
fn jobs_wait_for_the_live_thread_when_no_other_can_start() {
    in_child_with_file(
        "jobs_wait_for_the_live_thread_when_no_other_can_start",
        |_, path| {
            overlap::block_on(async {
                let (release, held) = std::sync::mpsc::channel::<()>();
                let busy = overlap::spawn_blocking(move || held.recv().unwrap());
                deny_new_threads();
                let read = overlap::spawn({
                    let path = path.clone();
                    async move { overlap::fs::read(&path).await }
                });
                let sum = overlap::spawn_blocking(|| 2 + 2);
                overlap::task::yield_now().await;
                assert!(!read.is_finished() && !sum.is_finished());
                release.send(()).unwrap();
                within(HANG, busy, "busy").await.unwrap();
                assert_eq!(within(HANG, read, "read").await.unwrap().unwrap(), b"abc");
                assert_eq!(within(HANG, sum, "sum").await.unwrap(), 4);
            });
        },
    );
}
