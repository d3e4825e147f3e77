//! Every error keeps std's `io::ErrorKind` and names the path it is about.

mod support;

use std::io::ErrorKind;
use std::path::Path;

use futures_util::StreamExt;
use overlap::fs::{self, File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{is_root, TempDir};

/// Asserts the error's kind and that its message reads `failed to <op> <path>: ...`.
fn check(err: std::io::Error, kind: ErrorKind, op: &str, path: &Path) {
    assert_eq!(err.kind(), kind, "{err}");
    let prefix = format!("failed to {op} {}", path.display());
    assert!(
        err.to_string().starts_with(&prefix),
        "{err:?} should start with {prefix:?}"
    );
}

#[test]
fn missing_file() {
    let dir = TempDir::new("err-missing");
    let missing = dir.join("nope");
    overlap::block_on(async {
        check(
            File::open(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "open",
            &missing,
        );
        check(
            fs::read(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "read",
            &missing,
        );
        check(
            fs::read_to_string(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "read",
            &missing,
        );
        check(
            fs::metadata(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "stat",
            &missing,
        );
        check(
            fs::remove_file(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "remove file",
            &missing,
        );
        check(
            fs::read_dir(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "read directory",
            &missing,
        );
        check(
            fs::canonicalize(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "canonicalize",
            &missing,
        );
        check(
            fs::copy(&missing, dir.join("to")).await.unwrap_err(),
            ErrorKind::NotFound,
            "copy",
            &missing,
        );
        let err = fs::rename(&missing, dir.join("to")).await.unwrap_err();
        check(err, ErrorKind::NotFound, "rename", &missing);
        let deep = dir.join("no/such/dir/file");
        check(
            fs::write(&deep, b"x").await.unwrap_err(),
            ErrorKind::NotFound,
            "write",
            &deep,
        );
        assert!(!fs::try_exists(&missing).await.unwrap());
    });
}

/// A `DirEntry` whose file went away after the listing: its `metadata` (an `lstat`, as
/// std's, not following links) fails with `NotFound`, and the message says `lstat`, as
/// `fs::symlink_metadata`'s does.
#[test]
fn a_vanished_entry_names_its_lstat() {
    let dir = TempDir::new("err-vanished-entry");
    std::fs::write(dir.join("gone"), b"x").unwrap();
    overlap::block_on(async {
        let mut entries = fs::read_dir(dir.path()).await.unwrap();
        let entry = entries.next_entry().await.unwrap().unwrap();
        std::fs::remove_file(entry.path()).unwrap();
        let err = entry.metadata().await.unwrap_err();
        check(err, ErrorKind::NotFound, "lstat", &entry.path());
    });
}

#[test]
fn message_reads_like_the_issue_says() {
    let missing = Path::new("/x/y");
    let err = overlap::block_on(File::open(missing)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to open /x/y: No such file or directory (os error 2)"
    );
    // The std error is kept as the source.
    let source = std::error::Error::source(err.get_ref().unwrap()).unwrap();
    let io = source.downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn an_empty_path_is_named_as_empty() {
    // "failed to stat : No such file..." hides that the path given was empty.
    overlap::block_on(async {
        for err in [
            fs::metadata("").await.unwrap_err(),
            File::open("").await.unwrap_err(),
            fs::rename("", "x").await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
            let text = err.to_string();
            assert!(text.contains("the empty path \"\""), "{text}");
            assert!(!text.contains("  ") && !text.contains(" :"), "{text}");
        }
    });
}

#[test]
fn directory_where_a_file_is_expected() {
    let dir = TempDir::new("err-isdir");
    let d = dir.path().to_owned();
    overlap::block_on(async {
        check(
            fs::read(&d).await.unwrap_err(),
            ErrorKind::IsADirectory,
            "read",
            &d,
        );
        check(
            fs::write(&d, b"x").await.unwrap_err(),
            ErrorKind::IsADirectory,
            "write",
            &d,
        );
        check(
            File::create(&d).await.unwrap_err(),
            ErrorKind::IsADirectory,
            "open",
            &d,
        );
        check(
            fs::remove_file(&d).await.unwrap_err(),
            ErrorKind::IsADirectory,
            "remove file",
            &d,
        );
        // Opening a directory read-only works; reading it fails, naming the file.
        let mut file = File::open(&d).await.unwrap();
        let err = file.read(&mut [0; 16]).await.unwrap_err();
        check(err, ErrorKind::IsADirectory, "read", &d);
    });
}

#[test]
fn file_where_a_directory_is_expected() {
    let dir = TempDir::new("err-notdir");
    let f = dir.join("f");
    std::fs::write(&f, b"x").unwrap();
    overlap::block_on(async {
        check(
            fs::read_dir(&f).await.unwrap_err(),
            ErrorKind::NotADirectory,
            "read directory",
            &f,
        );
        check(
            fs::remove_dir(&f).await.unwrap_err(),
            ErrorKind::NotADirectory,
            "remove directory",
            &f,
        );
        let below = f.join("child");
        check(
            fs::create_dir(&below).await.unwrap_err(),
            ErrorKind::NotADirectory,
            "create directory",
            &below,
        );
    });
}

#[test]
fn already_exists_and_not_empty() {
    let dir = TempDir::new("err-exists");
    let f = dir.join("f");
    std::fs::write(&f, b"x").unwrap();
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/inner"), b"x").unwrap();
    overlap::block_on(async {
        check(
            File::create_new(&f).await.unwrap_err(),
            ErrorKind::AlreadyExists,
            "open",
            &f,
        );
        check(
            fs::create_dir(&f).await.unwrap_err(),
            ErrorKind::AlreadyExists,
            "create directory",
            &f,
        );
        let d = dir.join("d");
        check(
            fs::remove_dir(&d).await.unwrap_err(),
            ErrorKind::DirectoryNotEmpty,
            "remove directory",
            &d,
        );
    });
}

/// Permission denied that root cannot bypass: the kernel refuses hard links to directories
/// with `EPERM` for every user, root included. (The tests run as root, which ignores mode
/// bits, so `chmod 000` alone proves nothing there; see the next test.)
#[test]
fn permission_denied_even_for_root() {
    let dir = TempDir::new("err-perm");
    let d = dir.join("d");
    std::fs::create_dir(&d).unwrap();
    overlap::block_on(async {
        let err = fs::hard_link(&d, dir.join("link")).await.unwrap_err();
        check(err, ErrorKind::PermissionDenied, "link", &d);
    });
}

/// Mode bits: `EACCES` for an unprivileged user. Root bypasses them, so as root this only
/// checks that the open succeeds (there is no honest way to get `EACCES` from a plain file
/// as root without `chattr`, a read-only mount or dropping privileges).
#[test]
fn permission_denied_by_mode_bits() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("err-mode");
    let f = dir.join("locked");
    std::fs::write(&f, b"secret").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
    overlap::block_on(async {
        let res = File::open(&f).await;
        if is_root() {
            assert!(res.is_ok());
        } else {
            check(res.unwrap_err(), ErrorKind::PermissionDenied, "open", &f);
        }
    });
}

/// A write job fails after `write` returned `Ok`: the error comes back on the next operation
/// (here `flush`), names the file, and is reported once.
#[test]
fn write_error_surfaces_on_flush() {
    let dir = TempDir::new("err-write");
    let f = dir.join("read-only-handle");
    std::fs::write(&f, b"").unwrap();
    overlap::block_on(async {
        let mut file = File::open(&f).await.unwrap(); // opened read-only
        assert_eq!(file.write(b"accepted into the buffer").await.unwrap(), 24);
        let err = file.flush().await.unwrap_err();
        assert_eq!(err.raw_os_error(), None);
        assert!(
            err.to_string()
                .starts_with(&format!("failed to write {}", f.display())),
            "{err}"
        );
        assert!(err.to_string().contains("Bad file descriptor"), "{err}");
        file.flush().await.unwrap();
    });
}

#[test]
fn write_error_surfaces_on_next_write() {
    let dir = TempDir::new("err-write-next");
    let f = dir.join("f");
    std::fs::write(&f, b"").unwrap();
    overlap::block_on(async {
        let mut file = File::open(&f).await.unwrap();
        file.write_all(b"one").await.unwrap();
        // Give the job time to fail, then the next write reports it.
        overlap::time::sleep(std::time::Duration::from_millis(50)).await;
        let err = file.write_all(b"two").await.unwrap_err();
        assert!(err.to_string().contains("Bad file descriptor"), "{err}");
    });
}

/// An operation the file was not opened for says so: the kernel's bare "Bad file
/// descriptor" (a write to a file opened read-only, a read of one opened write-only) reads
/// as a closed fd, and `set_len`'s "Invalid argument" (`ftruncate` on a read-only fd) as a
/// bad length. The kind and the OS error code are the kernel's still.
#[test]
fn an_operation_the_file_was_not_opened_for_says_so() {
    let dir = TempDir::new("err-access");
    let f = dir.join("f");
    std::fs::write(&f, b"kept").unwrap();
    let not_for = |err: std::io::Error, op: &str, needs: &str, option: &str, errno: i32| {
        assert_eq!(overlap::io::raw_os_error(&err), Some(errno), "{err}");
        let kernels = std::io::Error::from_raw_os_error(errno).kind();
        assert_eq!(err.kind(), kernels, "{err}");
        let want = format!(
            "failed to {op} {}: the file is not open for {needs} (open it with {option}(true)): ",
            f.display()
        );
        assert!(err.to_string().starts_with(&want), "{err}\nwanted: {want}");
    };
    overlap::block_on(async {
        let mut ro = File::open(&f).await.unwrap();
        let err = ro.write_all_at(b"x", 0).await.unwrap_err();
        not_for(err, "write", "writing", "write", libc::EBADF);
        ro.write_all(b"buffered").await.unwrap();
        let err = ro.flush().await.unwrap_err();
        not_for(err, "write", "writing", "write", libc::EBADF);
        let err = ro.set_len(0).await.unwrap_err();
        not_for(err, "truncate", "writing", "write", libc::EINVAL);
        // Reading is what it was opened for.
        let mut back = [0u8; 4];
        ro.read_exact_at(&mut back, 0).await.unwrap();
        assert_eq!(&back, b"kept");

        let mut wo = OpenOptions::new().write(true).open(&f).await.unwrap();
        let err = wo.read(&mut back).await.unwrap_err();
        not_for(err, "read", "reading", "read", libc::EBADF);
        let err = wo.read_at(&mut back, 0).await.unwrap_err();
        not_for(err, "read", "reading", "read", libc::EBADF);

        // A file open for the operation gets the kernel's error alone.
        let mut rw = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&f)
            .await
            .unwrap();
        let err = rw.read_exact_at(&mut back, 2).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        assert!(!err.to_string().contains("not open for"), "{err}");
    });
    assert_eq!(std::fs::read(&f).unwrap(), b"kept");
}

#[test]
fn read_dir_stream_errors_name_the_dir() {
    let dir = TempDir::new("err-readdir");
    overlap::block_on(async {
        // A listing that works yields entries; this just checks the stream ends cleanly.
        let mut entries = fs::read_dir(dir.path()).await.unwrap();
        assert!(entries.next().await.is_none());
        let mut opts = OpenOptions::new();
        opts.write(true);
        let missing = dir.join("missing");
        check(
            opts.open(&missing).await.unwrap_err(),
            ErrorKind::NotFound,
            "open",
            &missing,
        );
    });
}

#[overlap::test]
async fn write_takes_borrowed_bytes_and_symlink_links_or_names_the_clash() {
    let dir = TempDir::new("fs_symlink");
    let data = vec![1u8, 2, 3];
    fs::write(dir.join("a"), &data).await.unwrap();
    fs::write(dir.join("b"), "text").await.unwrap();
    assert_eq!(fs::read(dir.join("a")).await.unwrap(), data);
    assert_eq!(fs::read_to_string(dir.join("b")).await.unwrap(), "text");

    fs::symlink("a", dir.join("link")).await.unwrap();
    assert_eq!(fs::read(dir.join("link")).await.unwrap(), data);
    let meta = fs::symlink_metadata(dir.join("link")).await.unwrap();
    assert!(meta.file_type().is_symlink());
    let err = fs::symlink("b", dir.join("link")).await.unwrap_err();
    check(err, ErrorKind::AlreadyExists, "symlink", Path::new("b"));
}

/// An error naming its path is no OS error itself (`raw_os_error()` is `None`), but
/// `overlap::io::raw_os_error` reads the same code std's error carries, for the codes that
/// have no stable `ErrorKind` too (`ELOOP` here).
#[test]
fn the_os_error_code_stays_readable() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = TempDir::new("err-errno");
    let missing = dir.join("nope");
    let link = dir.join("link");
    std::os::unix::fs::symlink("nope", &link).unwrap();
    std::fs::write(dir.join("file"), b"x").unwrap();
    overlap::block_on(async {
        let cases = [
            (
                fs::read(&missing).await.unwrap_err(),
                std::fs::read(&missing).unwrap_err(),
            ),
            (
                fs::remove_dir(dir.path()).await.unwrap_err(),
                std::fs::remove_dir(dir.path()).unwrap_err(),
            ),
            (
                OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&link)
                    .await
                    .unwrap_err(),
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&link)
                    .unwrap_err(),
            ),
        ];
        for (ours, std) in cases {
            assert!(std.raw_os_error().is_some());
            assert_eq!(
                overlap::io::raw_os_error(&ours),
                std.raw_os_error(),
                "{ours}"
            );
            assert_eq!(ours.kind(), std.kind());
        }
    });
}

/// Errors wrapped by the caller (`io::Error::new(kind, os_error)`) are looked into too:
/// std's `source()` skips the wrapped error itself.
#[test]
fn the_os_error_code_is_found_inside_a_plain_wrapper() {
    let os = std::io::Error::from_raw_os_error(libc::EMFILE);
    let wrapped = std::io::Error::new(os.kind(), os);
    assert_eq!(wrapped.raw_os_error(), None);
    assert_eq!(overlap::io::raw_os_error(&wrapped), Some(libc::EMFILE));
    let twice = std::io::Error::other(wrapped);
    assert_eq!(overlap::io::raw_os_error(&twice), Some(libc::EMFILE));
    assert_eq!(
        overlap::io::raw_os_error(&std::io::Error::other("no code")),
        None
    );
}

/// A size or offset past the largest a file can have (`i64::MAX`) is refused in our own
/// words, naming the file and the value, before anything happens: std's `set_len` says
/// only "out of range integral type conversion attempted", and its seek hands the kernel a
/// negative offset ("Invalid argument"). The file is left as it was.
#[test]
fn a_size_or_offset_past_i64_max_is_refused_by_name() {
    use overlap::io::AsyncSeekExt;
    use std::io::SeekFrom;
    let dir = TempDir::new("err-past-i64");
    let f = dir.join("f");
    overlap::block_on(async {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&f)
            .await
            .unwrap();
        file.write_all(b"0123456789").await.unwrap();
        for size in [i64::MAX as u64 + 1, u64::MAX] {
            let err = file.set_len(size).await.unwrap_err();
            check_past(err, "truncate", &f, size);
        }
        for pos in [i64::MAX as u64 + 1, u64::MAX] {
            let err = file.seek(SeekFrom::Start(pos)).await.unwrap_err();
            check_past(err, "seek", &f, pos);
            // Through the futures-io trait too.
            let err = AsyncSeekExt::seek(&mut file, SeekFrom::Start(pos))
                .await
                .unwrap_err();
            check_past(err, "seek", &f, pos);
        }
        // Nothing moved: the bytes are all there, and the offset is after them.
        assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 10);
        file.flush().await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 10);
    });
}

fn check_past(err: std::io::Error, op: &str, path: &Path, value: u64) {
    let text = err.to_string();
    assert!(text.contains(&value.to_string()), "{text}");
    assert!(!text.contains("integral"), "{text}");
    assert!(!text.contains("Invalid argument"), "{text}");
    check(err, ErrorKind::InvalidInput, op, path);
}

/// A seek the kernel refuses (`EINVAL`: the position would be negative) says so in our own
/// words, naming the file and the seek, keeps `InvalidInput` and the OS code, and leaves the
/// position where it was.
#[test]
fn a_seek_before_the_start_says_so() {
    use std::io::SeekFrom;
    let dir = TempDir::new("err-seek-negative");
    let f = dir.join("f");
    std::fs::write(&f, b"0123456789").unwrap();
    overlap::block_on(async {
        let mut file = File::open(&f).await.unwrap();
        let mut three = [0u8; 3];
        file.read_exact(&mut three).await.unwrap();
        for pos in [SeekFrom::End(-11), SeekFrom::Current(-4)] {
            let err = file.seek(pos).await.unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&format!("{pos:?} lands before the start of the file")),
                "{text}"
            );
            assert_eq!(
                overlap::io::raw_os_error(&err),
                Some(libc::EINVAL),
                "{text}"
            );
            check(err, ErrorKind::InvalidInput, "seek", &f);
            assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 3);
        }
    });
}

/// `fs::copy` names both paths and says which one failed: a `NotFound` (or a
/// `Permission denied`) about a missing source reads apart from one about the destination's
/// missing directory, where both said only "failed to copy A to B: No such file or
/// directory".
#[test]
fn a_copy_error_says_which_side_failed() {
    let dir = TempDir::new("err-copy-side");
    let (file, missing) = (dir.join("file"), dir.join("missing"));
    let into_missing_dir = dir.join("no-dir/copy");
    std::fs::write(&file, b"bytes").unwrap();
    overlap::block_on(async {
        let err = fs::copy(&missing, dir.join("to")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(msg.starts_with("failed to copy "), "{msg}");
        let side = format!(": failed to open {}: ", missing.display());
        assert!(msg.contains(&side), "{msg}");
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENOENT));

        let err = fs::copy(&file, &into_missing_dir).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = err.to_string();
        let side = format!(": failed to create {}: ", into_missing_dir.display());
        assert!(msg.contains(&side), "{msg}");
        assert!(!msg.contains("failed to open"), "{msg}");
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENOENT));
    });
}
