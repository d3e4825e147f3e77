//! overlap-fs's syscalls failing on the blocking pool: `openat` refused (`EACCES`, `EIO`),
//! `statx`/`newfstatat` failing (and `statx` missing, which std falls back from), `read`,
//! `write`, `fsync`, `fdatasync`, `ftruncate`, `lseek` and `getdents64` with `EIO` and
//! friends on one file, `mkdir`/`rename`/`unlink` refused, and `sendfile` denied or
//! refused. Each is an `io::Error` keeping the errno (read with `overlap::io::raw_os_error`;
//! the message names the path), reported once and at once (no hang), no fd is left open, and
//! other files and the runtime go on working. Each test installs a seccomp filter in a
//! child process of its own; the filter covers the pool's threads too.

mod support;

use std::io::{ErrorKind, SeekFrom};
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::fs::{self, File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use support::seccomp::{install, rule, rule_arg0};
use support::{expect_errno, open_fds_polled, run_in_child, tcp_pair, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A file that still works: written, then read back.
async fn another_file_works(dir: &TempDir) {
    let path = dir.join("other");
    let mut f = within(HANG, File::create(&path), "create").await.unwrap();
    f.write_all(b"fine").await.unwrap();
    f.flush().await.unwrap();
    drop(f);
    let got = within(HANG, fs::read(&path), "read").await.unwrap();
    assert_eq!(got, b"fine");
}

fn open_refused(errno: i32) {
    let dir = TempDir::new("faults-fs-open");
    let path = dir.join("f");
    std::fs::write(&path, b"data").unwrap();
    overlap::block_on(async {
        // Start a pool thread first, so its making is not what the filter meets.
        fs::metadata(&path).await.unwrap();
        let before = open_fds_polled();
        install(&[rule(libc::SYS_openat, errno), rule(libc::SYS_open, errno)]);
        let err = within(HANG, File::open(&path), "open").await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(errno), "{err}");
        assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
        let res = within(HANG, File::create(dir.join("new")), "create").await;
        expect_errno("create", res, errno);
        let mut opts = OpenOptions::new();
        let opened = opts.read(true).write(true).open(&path);
        expect_errno("options", within(HANG, opened, "options").await, errno);
        expect_errno("read", within(HANG, fs::read(&path), "read").await, errno);
        let res = within(HANG, fs::read_to_string(&path), "read_to_string").await;
        expect_errno("read_to_string", res, errno);
        let res = within(HANG, fs::write(&path, b"x"), "write").await;
        expect_errno("write", res, errno);
        let res = within(HANG, fs::read_dir(dir.path()), "read_dir").await;
        expect_errno("read_dir", res, errno);
        let res = within(HANG, fs::copy(&path, dir.join("copy")), "copy").await;
        expect_errno("copy", res, errno);
        assert_eq!(open_fds_polled(), before, "an fd leaked");
    });
}

#[test]
fn open_denied_by_a_security_module() {
    run_in_child("open_denied_by_a_security_module", || {
        open_refused(libc::EACCES)
    });
}

#[test]
fn open_io_error() {
    run_in_child("open_io_error", || open_refused(libc::EIO));
}

/// `statx` and `newfstatat` failing with `EIO`: every metadata call says so.
#[test]
fn metadata_fails() {
    run_in_child("metadata_fails", || {
        let dir = TempDir::new("faults-fs-stat");
        let path = dir.join("f");
        std::fs::write(&path, b"data").unwrap();
        overlap::block_on(async {
            let file = File::open(&path).await.unwrap();
            install(&[
                rule(libc::SYS_statx, libc::EIO),
                rule(libc::SYS_newfstatat, libc::EIO),
                rule(libc::SYS_fstat, libc::EIO),
            ]);
            let res = within(HANG, fs::metadata(&path), "metadata").await;
            expect_errno("metadata", res, libc::EIO);
            let res = within(HANG, fs::symlink_metadata(&path), "lstat").await;
            expect_errno("symlink_metadata", res, libc::EIO);
            let res = within(HANG, file.metadata(), "File::metadata").await;
            expect_errno("File::metadata", res, libc::EIO);
            let res = within(HANG, fs::try_exists(&path), "try_exists").await;
            expect_errno("try_exists", res, libc::EIO);
        });
    });
}

/// Without `statx` (`ENOSYS`: an old kernel, or a sandbox that does not know it) std
/// falls back to `stat`: metadata works.
#[test]
fn metadata_without_statx() {
    run_in_child("metadata_without_statx", || {
        let dir = TempDir::new("faults-fs-statx");
        let path = dir.join("f");
        std::fs::write(&path, b"data").unwrap();
        install(&[rule(libc::SYS_statx, libc::ENOSYS)]);
        overlap::block_on(async {
            let meta = within(HANG, fs::metadata(&path), "metadata").await.unwrap();
            assert_eq!(meta.len(), 4);
            let file = File::open(&path).await.unwrap();
            assert_eq!(file.metadata().await.unwrap().len(), 4);
        });
    });
}

/// Reads of one file failing with `EIO`: each read says so at once (the error is not
/// kept back, nor turned into end of file), and another file still reads.
#[test]
fn file_reads_fail() {
    run_in_child("file_reads_fail", || {
        let dir = TempDir::new("faults-fs-read");
        let path = dir.join("f");
        std::fs::write(&path, vec![7u8; 100_000]).unwrap();
        overlap::block_on(async {
            let mut file = File::open(&path).await.unwrap();
            let fd = file.as_raw_fd() as u32;
            install(&[
                rule_arg0(libc::SYS_read, fd, libc::EIO),
                rule_arg0(libc::SYS_pread64, fd, libc::EIO),
                rule_arg0(libc::SYS_readv, fd, libc::EIO),
            ]);
            let mut buf = [0; 16];
            for _ in 0..3 {
                let res = within(HANG, file.read(&mut buf), "read").await;
                expect_errno("read", res, libc::EIO);
            }
            let mut all = Vec::new();
            let res = within(HANG, file.read_to_end(&mut all), "read_to_end").await;
            expect_errno("read_to_end", res, libc::EIO);
            assert!(all.is_empty());
            // The offset did not move: nothing was read.
            assert_eq!(file.stream_position().await.unwrap(), 0);
            another_file_works(&dir).await;
        });
    });
}

/// Writes of one file failing with `EIO`: the error reaches `flush` (the write itself may
/// have been buffered), `sync_all` and a later write; nothing claims success.
#[test]
fn file_writes_fail() {
    run_in_child("file_writes_fail", || {
        let dir = TempDir::new("faults-fs-write");
        let path = dir.join("f");
        overlap::block_on(async {
            let mut file = File::create(&path).await.unwrap();
            let fd = file.as_raw_fd() as u32;
            install(&[
                rule_arg0(libc::SYS_write, fd, libc::EIO),
                rule_arg0(libc::SYS_pwrite64, fd, libc::EIO),
                rule_arg0(libc::SYS_writev, fd, libc::EIO),
            ]);
            let wrote = within(HANG, file.write_all(b"refused"), "write").await;
            let flushed = within(HANG, file.flush(), "flush").await;
            let err = wrote.and(flushed).unwrap_err();
            assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EIO), "{err}");
            // Reported once; the next write is tried again, and fails again.
            let wrote = within(HANG, file.write_all(b"again"), "write").await;
            let flushed = within(HANG, file.flush(), "flush").await;
            expect_errno("second write", wrote.and(flushed), libc::EIO);
            assert_eq!(std::fs::read(&path).unwrap(), b"");
            another_file_works(&dir).await;
        });
    });
}

/// `fsync`/`fdatasync` failing with `EIO` (a write-back error), `ftruncate` with `EPERM`
/// (an append-only or immutable file), `lseek` with `EINVAL`.
#[test]
fn sync_truncate_seek_fail() {
    run_in_child("sync_truncate_seek_fail", || {
        let dir = TempDir::new("faults-fs-sync");
        let path = dir.join("f");
        overlap::block_on(async {
            let mut file = File::create(&path).await.unwrap();
            let fd = file.as_raw_fd() as u32;
            install(&[
                rule_arg0(libc::SYS_fsync, fd, libc::EIO),
                rule_arg0(libc::SYS_fdatasync, fd, libc::EIO),
                rule_arg0(libc::SYS_ftruncate, fd, libc::EPERM),
                rule_arg0(libc::SYS_lseek, fd, libc::EINVAL),
            ]);
            file.write_all(b"bytes").await.unwrap();
            let res = within(HANG, file.sync_all(), "sync_all").await;
            expect_errno("sync_all", res, libc::EIO);
            // The bytes themselves were written before the fsync.
            assert_eq!(std::fs::read(&path).unwrap(), b"bytes");
            let res = within(HANG, file.sync_data(), "sync_data").await;
            expect_errno("sync_data", res, libc::EIO);
            let res = within(HANG, file.set_len(2), "set_len").await;
            expect_errno("set_len", res, libc::EPERM);
            let res = within(HANG, file.seek(SeekFrom::Start(1)), "seek").await;
            expect_errno("seek", res, libc::EINVAL);
            // The file still takes writes at its offset (no seek needed for that).
            file.write_all(b"!").await.unwrap();
            file.flush().await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"bytes!");
            another_file_works(&dir).await;
        });
    });
}

/// `getdents64` failing with `EIO`: `next_entry` says so, and does not hang after.
#[test]
fn directory_listing_fails() {
    run_in_child("directory_listing_fails", || {
        let dir = TempDir::new("faults-fs-dir");
        std::fs::write(dir.join("a"), b"").unwrap();
        overlap::block_on(async {
            let mut entries = fs::read_dir(dir.path()).await.unwrap();
            install(&[rule(libc::SYS_getdents64, libc::EIO)]);
            let res = within(HANG, entries.next_entry(), "next_entry").await;
            expect_errno("next_entry", res, libc::EIO);
            // After an error, the listing ends or fails again; it never hangs.
            let _ = within(HANG, entries.next_entry(), "next_entry again").await;
        });
    });
}

/// `mkdir` out of space, `rename` across file systems, `unlink` on a read-only one.
#[test]
fn directory_changes_refused() {
    run_in_child("directory_changes_refused", || {
        let dir = TempDir::new("faults-fs-mkdir");
        let file = dir.join("f");
        std::fs::write(&file, b"").unwrap();
        overlap::block_on(async {
            install(&[
                rule(libc::SYS_mkdir, libc::ENOSPC),
                rule(libc::SYS_mkdirat, libc::ENOSPC),
                rule(libc::SYS_rename, libc::EXDEV),
                rule(libc::SYS_renameat, libc::EXDEV),
                rule(libc::SYS_renameat2, libc::EXDEV),
                rule(libc::SYS_unlink, libc::EROFS),
                rule(libc::SYS_unlinkat, libc::EROFS),
            ]);
            let sub = dir.join("sub");
            expect_errno("create_dir", fs::create_dir(&sub).await, libc::ENOSPC);
            let deep = sub.join("a/b");
            expect_errno(
                "create_dir_all",
                fs::create_dir_all(&deep).await,
                libc::ENOSPC,
            );
            let res = fs::DirBuilder::new().recursive(true).create(&deep).await;
            expect_errno("DirBuilder", res, libc::ENOSPC);
            let res = fs::rename(&file, dir.join("g")).await;
            expect_errno("rename", res, libc::EXDEV);
            expect_errno("remove_file", fs::remove_file(&file).await, libc::EROFS);
            assert!(file.exists() && !sub.exists());
        });
    });
}

/// `File::send_to` when `sendfile` is missing (`ENOSYS`) or refused (`EINVAL`): the error
/// (`InvalidInput` for the latter, with a message saying why), and nothing reached the
/// socket; `fs::copy` falls back to a plain copy without `copy_file_range` and `sendfile`.
#[test]
fn sendfile_denied() {
    run_in_child("sendfile_denied", || {
        let dir = TempDir::new("faults-fs-sendfile");
        let path = dir.join("f");
        std::fs::write(&path, b"file bytes").unwrap();
        overlap::block_on(async {
            let (a, mut b) = tcp_pair().await;
            let mut file = File::open(&path).await.unwrap();
            let before = open_fds_polled();
            install(&[
                rule(libc::SYS_sendfile, libc::ENOSYS),
                rule(libc::SYS_copy_file_range, libc::ENOSYS),
            ]);
            let res = within(HANG, file.send_to(&a, 0, 10), "send_to").await;
            expect_errno("send_to", res, libc::ENOSYS);
            assert_eq!(open_fds_polled(), before, "an fd leaked");
            let copied = within(HANG, fs::copy(&path, dir.join("c")), "copy").await;
            assert_eq!(copied.unwrap(), 10);
            assert_eq!(std::fs::read(dir.join("c")).unwrap(), b"file bytes");
            a.shutdown(std::net::Shutdown::Write).unwrap();
            let mut got = Vec::new();
            within(HANG, b.read_to_end(&mut got), "read").await.unwrap();
            assert!(got.is_empty(), "bytes went although sendfile failed");
        });
    });
}

#[test]
fn sendfile_refused() {
    run_in_child("sendfile_refused", || {
        let dir = TempDir::new("faults-fs-sendfile-inval");
        let path = dir.join("f");
        std::fs::write(&path, b"file bytes").unwrap();
        overlap::block_on(async {
            let (a, _b) = tcp_pair().await;
            let mut file = File::open(&path).await.unwrap();
            install(&[rule(libc::SYS_sendfile, libc::EINVAL)]);
            let err = within(HANG, file.send_to(&a, 0, 10), "send_to")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("sendfile"), "{err}");
        });
    });
}

/// `Unblock` over a std file whose reads and writes fail with `EIO`: the read says so, the
/// write's error comes back by `flush` at the latest, and neither hangs.
#[test]
fn unblock_io_fails() {
    run_in_child("unblock_io_fails", || {
        let dir = TempDir::new("faults-fs-unblock");
        let path = dir.join("f");
        std::fs::write(&path, b"data").unwrap();
        overlap::block_on(async {
            let reader = std::fs::File::open(&path).unwrap();
            let writer = std::fs::File::create(dir.join("w")).unwrap();
            let (r, w) = (reader.as_raw_fd() as u32, writer.as_raw_fd() as u32);
            install(&[
                rule_arg0(libc::SYS_read, r, libc::EIO),
                rule_arg0(libc::SYS_write, w, libc::EIO),
                rule_arg0(libc::SYS_writev, w, libc::EIO),
            ]);
            let mut reader = overlap::io::Unblock::new(reader);
            let mut writer = overlap::io::Unblock::new(writer);
            let mut buf = [0; 4];
            for _ in 0..2 {
                let res = within(HANG, reader.read(&mut buf), "read").await;
                expect_errno("Unblock read", res, libc::EIO);
            }
            let wrote = within(HANG, writer.write_all(b"lost"), "write").await;
            let flushed = within(HANG, writer.flush(), "flush").await;
            expect_errno("Unblock write", wrote.and(flushed), libc::EIO);
            another_file_works(&dir).await;
        });
    });
}
