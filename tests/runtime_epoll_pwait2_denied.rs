//! The event loop where `epoll_pwait2` is unusable: missing (`ENOSYS`, Linux before 5.11)
//! or denied by a seccomp filter, which container runtimes and sandboxes set to answer
//! `EPERM` (older Docker, systemd's `SystemCallFilter`) or `ENOSYS` for syscalls they do not
//! know. The loop falls back to `epoll_wait` with millisecond timeouts rounded up: timers
//! still fire, never early, and I/O still wakes it. (`EPERM` used to panic the loop: "epoll_wait
//! failed on the runtime's own epoll fd".) Each test installs the filter in a child process
//! of its own.

mod support;

use std::time::{Duration, Instant};

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use support::{run_in_child, within};

const HANG: Duration = Duration::from_secs(30);

fn timers_and_io(errno: i32) {
    support::seccomp::deny(&[(libc::SYS_epoll_pwait2, errno)]);
    overlap::block_on(async {
        // A registered fd, so the loop sleeps in epoll (with none it sleeps on a futex).
        let (mut a, mut b) = UnixStream::pair().unwrap();
        for us in [300, 1_000, 2_500, 10_000] {
            let d = Duration::from_micros(us);
            let start = Instant::now();
            within(HANG, overlap::time::sleep(d), "sleep").await;
            assert!(start.elapsed() >= d, "a {d:?} sleep ended early");
        }
        let reader = overlap::spawn(async move {
            let mut buf = [0; 5];
            b.read_exact(&mut buf).await.unwrap();
            buf
        });
        // The reader sleeps in the loop's wait (with a timer pending) until the bytes come.
        overlap::time::sleep(Duration::from_millis(2)).await;
        a.write_all(b"hello").await.unwrap();
        assert_eq!(&within(HANG, reader, "reader").await.unwrap(), b"hello");
    });
}

#[test]
fn epoll_pwait2_missing() {
    run_in_child("epoll_pwait2_missing", || timers_and_io(libc::ENOSYS));
}

#[test]
fn epoll_pwait2_denied_by_seccomp() {
    run_in_child("epoll_pwait2_denied_by_seccomp", || {
        timers_and_io(libc::EPERM)
    });
}
