//! Children when `pidfd_open` is denied: by an old kernel (`ENOSYS`) or by a seccomp filter
//! (`EPERM`, as container runtimes and systemd's `SystemCallFilter` answer). Their exits are
//! then noticed through `SIGCHLD`, and spawning works as before. Each test installs the
//! filter in a child process of its own.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::process::{output, spawn};
use support::{run_in_child, within};

const HANG: Duration = Duration::from_secs(30);

/// Makes `pidfd_open` fail with `errno` for this process from now on.
fn deny_pidfd_open(errno: u32) {
    // Load the syscall number; if it is pidfd_open, fail with `errno`; else allow.
    const LD_NR: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS, offset 0: seccomp_data.nr
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    let filter = [
        libc::sock_filter {
            code: LD_NR,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: JEQ,
            jt: 0,
            jf: 1,
            k: libc::SYS_pidfd_open as u32,
        },
        libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | errno,
        },
        libc::sock_filter {
            code: RET,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    // SAFETY: `prog` points at `filter`, both alive for the call; the kernel copies them.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    assert_eq!(rc, 0);
}

fn children_work() {
    overlap::block_on(async {
        let out = within(
            HANG,
            output(Command::new("sh").arg("-c").arg("echo hi; exit 3")),
            "output",
        )
        .await
        .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.status.code(), Some(3));
        let mut children: Vec<_> = (0..20)
            .map(|_| spawn(Command::new("sleep").arg("0.1").stdout(Stdio::null())).unwrap())
            .collect();
        let waits = futures_util::future::join_all(children.iter_mut().map(|c| c.wait()));
        for status in within(HANG, waits, "waits").await {
            assert!(status.unwrap().success());
        }
    });
}

#[test]
fn pidfd_open_missing() {
    run_in_child("pidfd_open_missing", || {
        deny_pidfd_open(libc::ENOSYS as u32);
        children_work();
    });
}

#[test]
fn pidfd_open_denied_by_seccomp() {
    run_in_child("pidfd_open_denied_by_seccomp", || {
        deny_pidfd_open(libc::EPERM as u32);
        children_work();
    });
}
