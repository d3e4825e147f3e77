//! Behaviours checked by tokio's `fs` integration tests, ported to `overlap::fs::File` and
//! `OpenOptions` in a temp dir. Errors name their path here, so codes are read with
//! `overlap::io::raw_os_error`. The free path functions are in `port_tokio_fs_paths.rs`.
//!
//! - `fs_file.rs`: `empty_read`, `rewind_seek_position`, `read_file_from_std`,
//!   `write_into_std`; and its spirit pushed to the edges: a seek while a write is still
//!   buffered, a read after a write on the same `File`, `set_len`/`sync_all`/`flush` in
//!   between writes, a directory opened as a file, a read on a write-only file.
//! - `fs_open_options.rs`: `open_options_write`, `open_options_append`,
//!   `open_options_truncate`, `open_options_create`, `open_options_create_new`,
//!   `open_options_mode`, `open_options_custom_flags_linux`; plus the flag combinations std
//!   refuses (truncate or create without write, no access mode at all).
//!
//! Skipped: `fs_file.rs` `coop` (the budget is covered by `fs_liveness.rs`),
//! `set_max_buf_size_*` (`fs_max_buf_size.rs`; a big read buffer gets up to 4 times the size
//! here, where tokio's read gets 1 byte: see `File::set_max_buf_size`), `file_debug_fmt`
//! (our `Debug` names `File`, not `tokio::fs::File`), and the Windows tests.

mod support;

use std::io::SeekFrom;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::task::Poll;

use overlap::fs::{self, File, OpenOptions};
use overlap::io::{raw_os_error, AsyncReadExt, AsyncSeekExt, AsyncWriteExt, ErrorKind};
use support::{open_fresh, TempDir};

const HELLO: &[u8] = b"hello world...";

/// Reads what is left of `file` from where its reader is.
async fn rest(file: &mut File) -> Vec<u8> {
    let mut out = Vec::new();
    file.read_to_end(&mut out).await.unwrap();
    out
}

#[overlap::test]
async fn an_empty_read_is_ready_at_once_and_does_not_end_the_file() {
    let dir = TempDir::new("port-fs-empty-read");
    std::fs::write(dir.join("f"), HELLO).unwrap();
    let mut file = File::open(dir.join("f")).await.unwrap();
    let polled = support::poll_once(file.read(&mut [])).await;
    assert!(matches!(polled, Poll::Ready(Ok(0))), "{polled:?}");
    let mut buf = [0; 1024];
    let n = file.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], HELLO);
}

#[overlap::test]
async fn seeking_past_the_end_then_rewinding_puts_the_position_back_at_zero() {
    let dir = TempDir::new("port-fs-rewind");
    let mut file = File::create(dir.join("f")).await.unwrap();
    assert_eq!(file.seek(SeekFrom::Current(10)).await.unwrap(), 10);
    assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
    assert_eq!(file.stream_position().await.unwrap(), 0);
    file.write_all(b"ab").await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"ab");
}

#[overlap::test]
async fn a_seek_counts_the_bytes_still_buffered_for_writing() {
    let dir = TempDir::new("port-fs-seek-buffered");
    let path = dir.join("f");
    let mut file = open_fresh(&path).await;
    file.write_all(b"hello").await.unwrap();
    // No flush: the end and the current position both include the buffered bytes.
    assert_eq!(file.stream_position().await.unwrap(), 5);
    file.write_all(b" world").await.unwrap();
    assert_eq!(file.seek(SeekFrom::End(0)).await.unwrap(), 11);
    assert_eq!(file.seek(SeekFrom::Current(-5)).await.unwrap(), 6);
    file.write_all(b"WORLD").await.unwrap();
    // Past the end: the gap reads as zeros once something is written there.
    assert_eq!(file.seek(SeekFrom::Start(13)).await.unwrap(), 13);
    file.write_all(b"!").await.unwrap();
    assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
    assert_eq!(rest(&mut file).await, b"hello WORLD\0\0!");
    // Before the start is refused, and the position stays where it was.
    let err = file.seek(SeekFrom::Current(-100)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(file.stream_position().await.unwrap(), 14);
}

#[overlap::test]
async fn a_read_after_a_write_goes_on_right_after_the_written_bytes() {
    let dir = TempDir::new("port-fs-read-after-write");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .await
        .unwrap();
    let mut three = [0; 3];
    file.read_exact(&mut three).await.unwrap();
    assert_eq!(&three, b"012");
    // The read fetched the whole file ahead; the write still lands at 3, and the next read
    // sees what follows it, not the read-ahead it threw away.
    file.write_all(b"ab").await.unwrap();
    let mut two = [0; 2];
    file.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"56");
    file.write_all(b"XY").await.unwrap();
    assert_eq!(rest(&mut file).await, b"9");
    assert_eq!(file.read(&mut two).await.unwrap(), 0, "at the end");
    // Writing at the end after a read said so appends.
    file.write_all(b"++").await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"012ab56XY9++");
}

#[overlap::test]
async fn set_len_between_writes_keeps_the_offset_and_leaves_a_hole() {
    let dir = TempDir::new("port-fs-set-len");
    let path = dir.join("f");
    let mut file = open_fresh(&path).await;
    file.write_all(b"0123456789").await.unwrap();
    file.set_len(4).await.unwrap();
    assert_eq!(file.metadata().await.unwrap().len(), 4);
    // The offset is still 10: the next write leaves zeros from 4 to 10.
    file.write_all(b"XY").await.unwrap();
    file.sync_all().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123\0\0\0\0\0\0XY");
    // Growing the file adds zeros at the end without moving the offset either.
    file.set_len(14).await.unwrap();
    file.write_all(b"Z").await.unwrap();
    file.sync_data().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123\0\0\0\0\0\0XYZ\0");
    assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
    assert_eq!(rest(&mut file).await, b"0123\0\0\0\0\0\0XYZ\0");
    // A flush with nothing buffered is a no-op, also right after a truncation.
    file.set_len(0).await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(file.metadata().await.unwrap().len(), 0);
}

#[overlap::test]
async fn a_directory_opens_but_every_read_of_it_fails_naming_it() {
    let dir = TempDir::new("port-fs-read-dir-as-file");
    let mut file = File::open(dir.path()).await.unwrap();
    for _ in 0..2 {
        let err = file.read(&mut [0; 16]).await.unwrap_err();
        assert_eq!(raw_os_error(&err), Some(libc::EISDIR), "{err}");
        assert!(
            err.to_string().contains(&*dir.path().to_string_lossy()),
            "{err}"
        );
    }
    let err = fs::read(dir.path()).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EISDIR), "{err}");
    let err = fs::read_to_string(dir.path()).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EISDIR), "{err}");
    // Opened for writing, a directory is refused at once.
    let err = OpenOptions::new()
        .write(true)
        .open(dir.path())
        .await
        .unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EISDIR), "{err}");
}

#[overlap::test]
async fn the_wrong_direction_is_refused_and_the_file_stays_usable() {
    let dir = TempDir::new("port-fs-wrong-direction");
    let path = dir.join("f");
    let mut file = File::create(&path).await.unwrap();
    let err = file.read(&mut [0; 4]).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EBADF), "{err}");
    file.write_all(b"still fine").await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"still fine");

    // A write to a read-only file is taken into the buffer; its refusal comes with the
    // flush (as tokio's does), once, and the reader is where it was.
    let mut file = File::open(&path).await.unwrap();
    let mut five = [0; 5];
    file.read_exact(&mut five).await.unwrap();
    file.write_all(b"x").await.unwrap();
    let err = file.flush().await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EBADF), "{err}");
    file.flush().await.unwrap();
    assert_eq!(rest(&mut file).await, b" fine");
}

#[overlap::test]
async fn std_files_come_in_at_their_offset_and_go_out_at_the_readers() {
    let dir = TempDir::new("port-fs-std");
    let path = dir.join("f");
    std::fs::write(&path, HELLO).unwrap();
    let mut std_file = std::fs::File::open(&path).unwrap();
    std::io::Seek::seek(&mut std_file, SeekFrom::Start(6)).unwrap();
    let mut file = File::from(std_file);
    let mut five = [0; 5];
    file.read_exact(&mut five).await.unwrap();
    assert_eq!(&five, b"world");
    // The read fetched ahead; the std file starts where the reader is.
    let mut std_file = file.into_std().await.unwrap();
    let mut tail = String::new();
    std::io::Read::read_to_string(&mut std_file, &mut tail).unwrap();
    assert_eq!(tail, "...");

    let mut file = File::create(&path).await.unwrap();
    file.write_all(b"buffered").await.unwrap();
    let mut std_file = file.into_std().await.unwrap();
    std::io::Write::write_all(&mut std_file, b" then std").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"buffered then std");
}

#[overlap::test]
async fn open_options_write_append_and_truncate() {
    let dir = TempDir::new("port-fs-open-options");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();

    // write alone: overwrites from the start, keeps the rest.
    let mut file = OpenOptions::new().write(true).open(&path).await.unwrap();
    file.write_all(b"ab").await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"ab23456789");

    // append: every write goes to the end, even after a seek or a read.
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(&path)
        .await
        .unwrap();
    file.write_all(b"X").await.unwrap();
    assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
    let mut two = [0; 2];
    file.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"ab");
    file.write_all(b"Y").await.unwrap();
    assert_eq!(file.stream_position().await.unwrap(), 12);
    assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
    assert_eq!(rest(&mut file).await, b"ab23456789XY");

    // truncate with write: empty before the first write.
    let mut file = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    file.write_all(b"new").await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
}

#[overlap::test]
async fn open_options_create_and_create_new() {
    let dir = TempDir::new("port-fs-create");
    let path = dir.join("f");
    let err = OpenOptions::new()
        .write(true)
        .open(&path)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");

    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .open(&path)
        .await
        .unwrap();
    file.write_all(b"first").await.unwrap();
    file.flush().await.unwrap();
    // create on an existing file opens it as it is.
    drop(
        OpenOptions::new()
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap(),
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"first");

    // create_new refuses it, even with truncate and create also set, and touches nothing.
    for truncate in [false, true] {
        let err = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(truncate)
            .create_new(true)
            .open(&path)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        assert_eq!(raw_os_error(&err), Some(libc::EEXIST), "{err}");
    }
    let err = File::create_new(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"first");

    // A fresh create_new file is readable and writable.
    let mut file = File::create_new(dir.join("g")).await.unwrap();
    file.write_all(b"rw").await.unwrap();
    assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap(), 0);
    assert_eq!(rest(&mut file).await, b"rw");
}

#[overlap::test]
async fn flag_combinations_std_refuses_are_invalid_input_and_touch_nothing() {
    let dir = TempDir::new("port-fs-bad-flags");
    let path = dir.join("f");
    std::fs::write(&path, b"keep").unwrap();
    let mut truncate_read_only = OpenOptions::new();
    truncate_read_only.read(true).truncate(true);
    let mut create_read_only = OpenOptions::new();
    create_read_only.read(true).create(true);
    let mut create_new_read_only = OpenOptions::new();
    create_new_read_only.read(true).create_new(true);
    let mut truncate_append = OpenOptions::new();
    truncate_append.append(true).truncate(true);
    let nothing = OpenOptions::new();
    for opts in [
        &truncate_read_only,
        &create_read_only,
        &create_new_read_only,
        &truncate_append,
        &nothing,
    ] {
        let err = opts.open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{opts:?}: {err}");
        let missing = dir.join("missing");
        let err = opts.open(&missing).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{opts:?}: {err}");
        assert!(!missing.exists());
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"keep");
}

#[overlap::test]
async fn open_options_mode_and_custom_flags() {
    let dir = TempDir::new("port-fs-mode");
    // SAFETY: umask only swaps the process's file-creation mask; it is set straight back.
    let umask = unsafe {
        let old = libc::umask(0);
        libc::umask(old);
        old
    };
    let path = dir.join("f");
    drop(
        OpenOptions::new()
            .write(true)
            .create(true)
            .mode(0o640)
            .open(&path)
            .await
            .unwrap(),
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640 & !umask);

    // O_NOFOLLOW: a symlink as the last component is refused with ELOOP.
    std::os::unix::fs::symlink(&path, dir.join("link")).unwrap();
    let err = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join("link"))
        .await
        .unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::ELOOP), "{err}");
    // Options built with std's type work the same.
    let mut std_opts = std::fs::OpenOptions::new();
    std_opts.read(true).custom_flags(libc::O_NOFOLLOW);
    let err = OpenOptions::from(std_opts)
        .open(dir.join("link"))
        .await
        .unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::ELOOP), "{err}");
    assert!(File::open(dir.join("link")).await.is_ok());
}
