//! `Interest::PRIORITY` on a procfs file: `/proc/self/mounts` signals each change of the
//! mount table with `EPOLLPRI` (and `EPOLLERR`), while it is always readable. A priority
//! wait must sleep through that readability, end on a mount, and sleep again once its
//! readiness is cleared. The mounts happen in a private mount namespace of a child process.

mod support;

use std::ffi::CString;
use std::fs::File;
use std::time::Duration;

use overlap::io::Interest;
use overlap::AsyncFd;
use support::{run_in_child, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// Gives this thread a private mount namespace, so its mounts touch nothing else; false if
/// the machine denies it (not root, or a container without the capability).
fn private_mount_namespace() -> bool {
    // SAFETY: `unshare` takes flags only.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "unshare: {err}");
        return false;
    }
    let root = CString::new("/").unwrap();
    // SAFETY: a valid C string, null source, type and data, as MS_PRIVATE takes them.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "make / private: {}", std::io::Error::last_os_error());
    true
}

/// Mounts a tmpfs at `dir`, or unmounts it.
fn tmpfs(dir: &std::path::Path, mount: bool) {
    let target = CString::new(dir.to_str().unwrap()).unwrap();
    let rc = if mount {
        let fs = CString::new("tmpfs").unwrap();
        // SAFETY: valid C strings; no data.
        unsafe {
            libc::mount(
                fs.as_ptr(),
                target.as_ptr(),
                fs.as_ptr(),
                0,
                std::ptr::null(),
            )
        }
    } else {
        // SAFETY: a valid C string.
        unsafe { libc::umount(target.as_ptr()) }
    };
    assert_eq!(rc, 0, "(u)mount: {}", std::io::Error::last_os_error());
}

#[test]
fn a_priority_wait_on_proc_mounts_ends_on_each_mount_change_only() {
    run_in_child(
        "a_priority_wait_on_proc_mounts_ends_on_each_mount_change_only",
        || {
            if !private_mount_namespace() {
                eprintln!("skipped: this machine denies a private mount namespace (EPERM)");
                return;
            }
            let dir = TempDir::new("async-fd-mounts");
            overlap::block_on(async {
                // The test runs on a thread of its own, and `unshare` moved only that
                // thread: `/proc/self` would show the main thread's namespace.
                let mounts = File::open("/proc/thread-self/mounts").unwrap();
                let fd = AsyncFd::with_interest(mounts, Interest::PRIORITY).unwrap();
                for mount in [true, false, true, false] {
                    // Readable all along, but no change yet: the wait sleeps.
                    let early = overlap::time::timeout(
                        Duration::from_millis(100),
                        fd.ready(Interest::PRIORITY),
                    )
                    .await;
                    assert!(early.is_err(), "ended with no mount change");
                    tmpfs(dir.path(), mount);
                    let mut guard = within(HANG, fd.ready(Interest::PRIORITY), "mount change")
                        .await
                        .unwrap();
                    assert!(guard.ready().is_priority(), "{:?}", guard.ready());
                    guard.clear_ready();
                }
            });
        },
    );
}
