//! The standard streams when their syscalls fail: `read(0)` with `EIO` (a terminal whose
//! session went away), `write(2)` with `EIO` or `ENOSPC` (stderr redirected to a full
//! disk), and `poll` failing while a non-blocking stream waits for room. Each error comes
//! back from the call that met it, once; the stream works again when the kernel does, and
//! the runtime goes on serving. (Only stdin and stderr are broken: the harness needs
//! stdout.) Each test installs a seccomp filter in a child process of its own.

mod support;

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::seccomp::{install, rule, rule_arg0};
use support::{a_new_pair_still_serves, expect_errno, run_in_child, within};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn stdin_read_fails() {
    run_in_child("stdin_read_fails", || {
        install(&[
            rule_arg0(libc::SYS_read, 0, libc::EIO),
            rule_arg0(libc::SYS_readv, 0, libc::EIO),
        ]);
        overlap::block_on(async {
            let mut stdin = overlap::io::stdin();
            let mut buf = [0; 16];
            for _ in 0..2 {
                let res = within(HANG, stdin.read(&mut buf), "stdin read").await;
                names_the_stream(&res, "failed to read standard input: ");
                expect_errno("stdin read", res, libc::EIO);
            }
            a_new_pair_still_serves().await;
        });
    });
}

fn stderr_write_fails(errno: i32) {
    install(&[
        rule_arg0(libc::SYS_write, 2, errno),
        rule_arg0(libc::SYS_writev, 2, errno),
    ]);
    overlap::block_on(async {
        let mut err = overlap::io::stderr();
        for _ in 0..2 {
            let wrote = within(HANG, err.write_all(b"lost\n"), "write").await;
            let flushed = within(HANG, err.flush(), "flush").await;
            let res = wrote.and(flushed);
            names_the_stream(&res, "failed to write standard error: ");
            expect_errno("stderr", res, errno);
            // Reported once: a flush with nothing new to write has nothing to fail.
            within(HANG, err.flush(), "flush again").await.unwrap();
        }
        a_new_pair_still_serves().await;
    });
}

#[test]
fn stderr_write_io_error() {
    run_in_child("stderr_write_io_error", || stderr_write_fails(libc::EIO));
}

#[test]
fn stderr_write_no_space() {
    run_in_child("stderr_write_no_space", || stderr_write_fails(libc::ENOSPC));
}

/// stderr full (`EAGAIN`, as a non-blocking pipe another process set up says) and `poll`
/// unable to wait for room (`ENOMEM`): the write fails with the `poll` error instead of
/// retrying in a loop, and never says `WouldBlock`.
#[test]
fn stderr_cannot_wait_for_room() {
    run_in_child("stderr_cannot_wait_for_room", || {
        install(&[
            rule_arg0(libc::SYS_write, 2, libc::EAGAIN),
            rule_arg0(libc::SYS_writev, 2, libc::EAGAIN),
            rule(libc::SYS_poll, libc::ENOMEM),
            rule(libc::SYS_ppoll, libc::ENOMEM),
        ]);
        overlap::block_on(async {
            let mut err = overlap::io::stderr();
            let wrote = within(HANG, err.write_all(b"waits\n"), "write").await;
            let flushed = within(HANG, err.flush(), "flush").await;
            expect_errno("stderr", wrote.and(flushed), libc::ENOMEM);
            a_new_pair_still_serves().await;
        });
    });
}

/// The error says which standard stream failed, and how, before the OS's words.
fn names_the_stream<T>(res: &std::io::Result<T>, prefix: &str) {
    if let Err(e) = res {
        assert!(e.to_string().starts_with(prefix), "{e}");
    }
}
