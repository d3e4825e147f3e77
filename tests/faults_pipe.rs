//! overlap-pipe's syscalls failing: `pipe2` out of fds (for `pipe()`, the private pipe of
//! `splice_copy`, and a child's piped stdio), a FIFO's `open` refused, `fstat` and
//! `fcntl` failing when an fd is adopted, `splice` denied (a sandbox's `EPERM`, `ENOSYS`),
//! and `read`/`write` failing on one pipe (`EIO`). Each is an `io::Error` with the errno,
//! at once; no fd is left open, no byte taken from a source is lost, and the runtime goes
//! on serving. Each test installs a seccomp filter in a child process of its own.

mod support;

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::pipe::{pipe, splice_bidirectional, splice_copy, Receiver, Sender};
use support::seccomp::{install, rule, rule_arg0};
use support::{
    expect_errno, mkfifo, open_fds, open_fds_polled, run_in_child, still_serves, tcp_pair, within,
    TempDir,
};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn pipes_out_of_fds() {
    run_in_child("pipes_out_of_fds", || {
        overlap::block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let (mut client, proxy_in) = tcp_pair().await;
            let (proxy_out, _server) = tcp_pair().await;
            client.write_all(b"not taken").await.unwrap();
            let before = open_fds();
            install(&[rule(libc::SYS_pipe2, libc::EMFILE)]);
            expect_errno("pipe", pipe(), libc::EMFILE);
            let res = within(HANG, splice_copy(&proxy_in, &proxy_out), "splice_copy").await;
            expect_errno("splice_copy", res, libc::EMFILE);
            let both = splice_bidirectional(&proxy_in, &proxy_out);
            let res = within(HANG, both, "splice_bidirectional").await;
            expect_errno("splice_bidirectional", res, libc::EMFILE);
            let mut cmd = Command::new("true");
            cmd.stdout(Stdio::piped());
            expect_errno("spawn", overlap::process::spawn(&mut cmd), libc::EMFILE);
            assert_eq!(open_fds(), before, "an fd leaked");
            // The bytes are still in the source.
            let mut proxy_in = proxy_in;
            let mut buf = [0; 9];
            within(HANG, proxy_in.read_exact(&mut buf), "read")
                .await
                .unwrap();
            assert_eq!(&buf, b"not taken");
            still_serves(&mut a, &mut b).await;
        });
    });
}

/// A FIFO whose `open` is refused (`EACCES` from an LSM): the error names the path and
/// keeps the errno.
#[test]
fn fifo_open_refused() {
    run_in_child("fifo_open_refused", || {
        let dir = TempDir::new("faults-fifo");
        let path = dir.join("fifo");
        mkfifo(&path);
        overlap::block_on(async {
            let before = open_fds_polled();
            install(&[rule(libc::SYS_openat, libc::EACCES)]);
            let res = Receiver::open(&path);
            expect_errno("Receiver::open", res, libc::EACCES);
            let err = Sender::open(&path).unwrap_err();
            assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EACCES));
            assert!(err.to_string().contains("fifo"), "{err}");
            assert_eq!(open_fds_polled(), before, "an fd leaked");
        });
    });
}

/// Adopting an fd whose `fstat` or `fcntl` fails: the error, and the fd (owned by the
/// call) closed.
#[test]
fn adopting_a_pipe_fails() {
    run_in_child("adopting_a_pipe_fails", || {
        overlap::block_on(async {
            let before = open_fds_polled();
            let (r, w) = support::pipe();
            let (r2, w2) = support::pipe();
            let (rn, wn) = (r.as_raw_fd() as u32, w.as_raw_fd() as u32);
            let (rn2, wn2) = (r2.as_raw_fd() as u32, w2.as_raw_fd() as u32);
            install(&[
                rule_arg0(libc::SYS_fstat, rn, libc::EIO),
                rule_arg0(libc::SYS_newfstatat, rn, libc::EIO),
                rule_arg0(libc::SYS_fstat, wn, libc::EIO),
                rule_arg0(libc::SYS_newfstatat, wn, libc::EIO),
                rule_arg0(libc::SYS_fcntl, rn2, libc::EINVAL),
                rule_arg0(libc::SYS_fcntl, wn2, libc::EINVAL),
            ]);
            expect_errno("Receiver fstat", Receiver::from_owned_fd(r), libc::EIO);
            expect_errno("Sender fstat", Sender::from_owned_fd(w), libc::EIO);
            expect_errno("Receiver fcntl", Receiver::from_owned_fd(r2), libc::EINVAL);
            expect_errno("Sender fcntl", Sender::from_owned_fd(w2), libc::EINVAL);
            assert_eq!(open_fds_polled(), before, "an fd leaked");
        });
    });
}

/// `splice` denied by a sandbox (`EPERM`) or missing (`ENOSYS`, gVisor before it had
/// it): every splicing call fails with that error at once, and the bytes stay in the
/// source for a plain read.
fn splice_denied(errno: i32) {
    install(&[rule(libc::SYS_splice, errno)]);
    overlap::block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let (mut client, mut proxy_in) = tcp_pair().await;
        let (proxy_out, _server) = tcp_pair().await;
        client.write_all(b"kept").await.unwrap();
        let before = open_fds();
        let res = within(HANG, splice_copy(&proxy_in, &proxy_out), "splice_copy").await;
        expect_errno("splice_copy", res, errno);
        let both = splice_bidirectional(&proxy_in, &proxy_out);
        let res = within(HANG, both, "splice_bidirectional").await;
        expect_errno("splice_bidirectional", res, errno);
        let (mut tx, mut rx) = pipe().unwrap();
        let res = within(HANG, tx.splice_from(&proxy_in, 64), "splice_from").await;
        expect_errno("splice_from", res, errno);
        tx.write_all(b"p").await.unwrap();
        let res = within(HANG, rx.splice_to(&proxy_out, 64), "splice_to").await;
        expect_errno("splice_to", res, errno);
        drop((tx, rx));
        assert_eq!(open_fds(), before, "an fd leaked");
        let mut buf = [0; 4];
        within(HANG, proxy_in.read_exact(&mut buf), "read")
            .await
            .unwrap();
        assert_eq!(&buf, b"kept");
        still_serves(&mut a, &mut b).await;
    });
}

#[test]
fn splice_denied_by_seccomp() {
    run_in_child("splice_denied_by_seccomp", || splice_denied(libc::EPERM));
}

#[test]
fn splice_missing() {
    run_in_child("splice_missing", || splice_denied(libc::ENOSYS));
}

/// `splice` refusing an fd (`EINVAL`: a kind of file the kernel cannot splice): there is
/// no fallback to a copy through user memory; the error is `InvalidInput`, saying so, and
/// the bytes stay in the source.
#[test]
fn splice_refused() {
    run_in_child("splice_refused", || {
        install(&[rule(libc::SYS_splice, libc::EINVAL)]);
        overlap::block_on(async {
            let (mut client, mut proxy_in) = tcp_pair().await;
            let (proxy_out, _server) = tcp_pair().await;
            client.write_all(b"kept").await.unwrap();
            let res = within(HANG, splice_copy(&proxy_in, &proxy_out), "splice_copy").await;
            let err = res.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("splice"), "{err}");
            let mut buf = [0; 4];
            within(HANG, proxy_in.read_exact(&mut buf), "read")
                .await
                .unwrap();
            assert_eq!(&buf, b"kept");
        });
    });
}

/// `read` and `write` failing with `EIO` on one pipe: the error at once, on every call,
/// and another pipe unharmed.
#[test]
fn pipe_io_fails() {
    run_in_child("pipe_io_fails", || {
        overlap::block_on(async {
            let (mut tx, mut rx) = pipe().unwrap();
            let (mut sick_tx, mut sick_rx) = pipe().unwrap();
            sick_tx.write_all(b"queued").await.unwrap();
            let (w, r) = (sick_tx.as_raw_fd() as u32, sick_rx.as_raw_fd() as u32);
            install(&[
                rule_arg0(libc::SYS_write, w, libc::EIO),
                rule_arg0(libc::SYS_writev, w, libc::EIO),
                rule_arg0(libc::SYS_read, r, libc::EIO),
                rule_arg0(libc::SYS_readv, r, libc::EIO),
            ]);
            let mut buf = [0; 8];
            for _ in 0..2 {
                let res = within(HANG, sick_tx.write(b"x"), "write").await;
                expect_errno("write", res, libc::EIO);
                let res = within(HANG, sick_rx.read(&mut buf), "read").await;
                expect_errno("read", res, libc::EIO);
            }
            expect_errno("try_read", sick_rx.try_read(&mut buf), libc::EIO);
            expect_errno("try_write", sick_tx.try_write(b"y"), libc::EIO);
            tx.write_all(b"fine").await.unwrap();
            let mut got = [0; 4];
            within(HANG, rx.read_exact(&mut got), "read").await.unwrap();
            assert_eq!(&got, b"fine");
        });
    });
}
