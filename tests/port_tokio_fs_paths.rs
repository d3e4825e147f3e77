//! Behaviours checked by tokio's `fs` integration tests on paths, ported to overlap's free
//! functions and `read_dir` in a temp dir. `File` and `OpenOptions` are in
//! `port_tokio_fs.rs`; the error messages and codes of each function in `fs_errors.rs`.
//!
//! - `fs_dir.rs`: `create_dir`, `create_all`, `remove`, `read_inherent`,
//!   `read_dir_entry_info`; plus `next_entry` asked again after the end, and the stream and
//!   `next_entry` forms mixed on one listing.
//! - `fs_copy.rs`: `copy`, `copy_permissions`; plus a file copied onto itself (refused,
//!   where std truncates it) and a copy over a read-only destination.
//! - `fs_link.rs`: `test_hard_link`, `test_symlink`; `fs_symlink_dir_windows.rs` and
//!   `fs_symlink_file_windows.rs` in their Unix form: a link to a directory and to a file,
//!   and a dangling one.
//! - `fs_remove_dir_all.rs`: `remove_dir_all` on a nested tree, which must not follow a
//!   symlink out of it.
//! - `fs_remove_file.rs`: `remove_file`, also of a symlink (the target stays).
//! - `fs_rename.rs`: `rename_file`, plus a rename over an existing file, which an open
//!   handle on the replaced file outlives.
//! - `fs_canonicalize_dir.rs`: `canonicalize` with `.`, `..` and symlinks.
//! - `fs_try_exists.rs`: `try_exists` for a file, a missing path, a dangling symlink and,
//!   unless running as root, a directory that cannot be searched.

mod support;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use futures_util::StreamExt;
use overlap::fs;
use overlap::io::{raw_os_error, AsyncReadExt, AsyncWriteExt, ErrorKind};
use support::{is_root, TempDir};

#[overlap::test]
async fn create_dir_and_create_dir_all_then_remove_dir() {
    let dir = TempDir::new("port-fs-create-dir");
    let one = dir.join("one");
    fs::create_dir(&one).await.unwrap();
    assert!(std::fs::metadata(&one).unwrap().is_dir());
    let deep = dir.join("a/b/c");
    fs::create_dir_all(&deep).await.unwrap();
    assert!(std::fs::metadata(&deep).unwrap().is_dir());
    // Again: create_dir_all takes an existing directory, create_dir does not.
    fs::create_dir_all(&deep).await.unwrap();
    let err = fs::create_dir(&one).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    fs::remove_dir(&one).await.unwrap();
    assert!(!one.exists());
    let err = fs::remove_dir(dir.join("a")).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::ENOTEMPTY), "{err}");
}

#[overlap::test]
async fn read_dir_lists_each_entry_once_and_stays_ended() {
    let dir = TempDir::new("port-fs-read-dir");
    let mut expected = BTreeSet::new();
    for i in 0..600 {
        let name = format!("f{i}");
        std::fs::write(dir.join(&name), b"").unwrap();
        expected.insert(OsString::from(name));
    }
    std::fs::create_dir(dir.join("sub")).unwrap();
    expected.insert("sub".into());
    let mut listing = fs::read_dir(dir.path()).await.unwrap();
    let mut seen = BTreeSet::new();
    // The two forms share one listing: alternate them across batch boundaries.
    loop {
        let entry = if seen.len() % 2 == 0 {
            listing.next_entry().await.unwrap()
        } else {
            listing.next().await.transpose().unwrap()
        };
        let Some(entry) = entry else { break };
        assert!(seen.insert(entry.file_name()), "{entry:?} listed twice");
    }
    assert_eq!(seen, expected);
    // No "." or "..", and the end is sticky for both forms.
    for _ in 0..3 {
        assert!(listing.next_entry().await.unwrap().is_none());
        assert!(listing.next().await.is_none());
    }
    assert!(futures_util::stream::FusedStream::is_terminated(&listing));
}

#[overlap::test]
async fn read_dir_entries_know_their_type_without_following_links() {
    let dir = TempDir::new("port-fs-entry-info");
    std::fs::write(dir.join("file"), b"12345").unwrap();
    std::fs::create_dir(dir.join("dir")).unwrap();
    std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
    let mut listing = fs::read_dir(dir.path()).await.unwrap();
    let mut kinds = Vec::new();
    while let Some(entry) = listing.next_entry().await.unwrap() {
        let file_type = entry.file_type().await.unwrap();
        let meta = entry.metadata().await.unwrap();
        // As std's: neither looks through a symlink.
        assert_eq!(meta.file_type(), file_type, "{entry:?}");
        assert_eq!(entry.ino(), meta.ino(), "{entry:?}");
        let kind = if file_type.is_symlink() {
            "symlink"
        } else if file_type.is_dir() {
            "dir"
        } else {
            assert_eq!(meta.len(), 5);
            "file"
        };
        kinds.push((entry.file_name().into_string().unwrap(), kind));
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("dir".into(), "dir"),
            ("file".into(), "file"),
            ("link".into(), "symlink")
        ]
    );
}

#[overlap::test]
async fn copy_returns_the_length_and_carries_the_permission_bits() {
    let dir = TempDir::new("port-fs-copy");
    let (from, to) = (dir.join("from"), dir.join("to"));
    std::fs::write(&from, b"Hello, World!").unwrap();
    std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o741)).unwrap();
    std::fs::write(&to, b"a longer file that the copy truncates").unwrap();
    assert_eq!(fs::copy(&from, &to).await.unwrap(), 13);
    assert_eq!(std::fs::read(&to).unwrap(), b"Hello, World!");
    let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o741);

    // Onto itself: std (and so tokio) truncates the file to nothing; overlap refuses and
    // keeps it (more cases in `review_fs_copy_hazards.rs`).
    let ours = dir.join("ours");
    std::fs::write(&ours, b"self").unwrap();
    let err = fs::copy(&ours, &ours).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(std::fs::read(&ours).unwrap(), b"self");

    // A directory is not a file to copy, and nothing is created for it.
    let err = fs::copy(dir.path(), dir.join("dir-copy"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!dir.join("dir-copy").exists());
}

#[overlap::test]
async fn a_hard_link_is_the_same_file_under_two_names() {
    let dir = TempDir::new("port-fs-hard-link");
    let (original, link) = (dir.join("original"), dir.join("link"));
    fs::write(&original, b"one").await.unwrap();
    fs::hard_link(&original, &link).await.unwrap();
    let (a, b) = (
        fs::metadata(&original).await.unwrap(),
        fs::metadata(&link).await.unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    // A write through one name is read through the other.
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&link)
        .await
        .unwrap();
    file.write_all(b" two").await.unwrap();
    file.flush().await.unwrap();
    assert_eq!(fs::read(&original).await.unwrap(), b"one two");
    // Removing one name leaves the other.
    fs::remove_file(&original).await.unwrap();
    assert_eq!(fs::read(&link).await.unwrap(), b"one two");
    assert_eq!(fs::metadata(&link).await.unwrap().nlink(), 1);
    // Over an existing name: refused, nothing replaced.
    fs::write(&original, b"other").await.unwrap();
    let err = fs::hard_link(&link, &original).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(fs::read(&original).await.unwrap(), b"other");
}

#[overlap::test]
async fn symlinks_to_a_file_a_directory_and_nothing() {
    let dir = TempDir::new("port-fs-symlink");
    fs::write(dir.join("file"), b"through the link")
        .await
        .unwrap();
    fs::create_dir(dir.join("dir")).await.unwrap();
    fs::write(dir.join("dir/inner"), b"inner").await.unwrap();

    fs::symlink(dir.join("file"), dir.join("to-file"))
        .await
        .unwrap();
    let mut s = String::new();
    fs::File::open(dir.join("to-file"))
        .await
        .unwrap()
        .read_to_string(&mut s)
        .await
        .unwrap();
    assert_eq!(s, "through the link");
    assert_eq!(
        fs::read_link(dir.join("to-file")).await.unwrap(),
        dir.join("file")
    );
    assert!(fs::symlink_metadata(dir.join("to-file"))
        .await
        .unwrap()
        .is_symlink());
    assert!(fs::metadata(dir.join("to-file")).await.unwrap().is_file());

    // A relative link to a directory, listed through the link.
    fs::symlink("dir", dir.join("to-dir")).await.unwrap();
    let mut listing = fs::read_dir(dir.join("to-dir")).await.unwrap();
    let entry = listing.next_entry().await.unwrap().unwrap();
    assert_eq!(entry.file_name(), "inner");
    assert_eq!(entry.path(), dir.join("to-dir/inner"));
    assert!(listing.next_entry().await.unwrap().is_none());

    // A dangling link exists as a link only.
    fs::symlink("nowhere", dir.join("dangling")).await.unwrap();
    assert!(!fs::try_exists(dir.join("dangling")).await.unwrap());
    assert!(fs::symlink_metadata(dir.join("dangling")).await.is_ok());
    let err = fs::metadata(dir.join("dangling")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // read_link on something that is not a link.
    let err = fs::read_link(dir.join("file")).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EINVAL), "{err}");
}

#[overlap::test]
async fn remove_dir_all_takes_a_nested_tree_but_not_what_its_links_point_at() {
    let dir = TempDir::new("port-fs-remove-dir-all");
    let outside = dir.join("outside");
    fs::create_dir(&outside).await.unwrap();
    fs::write(outside.join("keep"), b"keep").await.unwrap();
    let tree = dir.join("tree");
    for sub in ["a/b/c", "a/d", "e"] {
        fs::create_dir_all(tree.join(sub)).await.unwrap();
    }
    for (i, file) in ["a/1", "a/b/2", "a/b/c/3", "a/d/4", "e/5", "6"]
        .iter()
        .enumerate()
    {
        fs::write(tree.join(file), vec![b'x'; i * 1000])
            .await
            .unwrap();
    }
    fs::symlink(&outside, tree.join("a/b/out")).await.unwrap();
    fs::symlink(outside.join("keep"), tree.join("e/keep"))
        .await
        .unwrap();
    // An empty directory that cannot be written into by its mode still goes.
    std::fs::set_permissions(tree.join("a/d"), std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::remove_file(tree.join("a/d/4")).unwrap();

    fs::remove_dir_all(&tree).await.unwrap();
    assert!(!fs::try_exists(&tree).await.unwrap());
    assert_eq!(fs::read(outside.join("keep")).await.unwrap(), b"keep");
    let err = fs::remove_dir_all(&tree).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = fs::remove_dir_all(outside.join("keep")).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::ENOTDIR), "{err}");
}

#[overlap::test]
async fn remove_file_removes_a_link_but_not_its_target() {
    let dir = TempDir::new("port-fs-remove-file");
    let (file, link) = (dir.join("file"), dir.join("link"));
    fs::write(&file, b"x").await.unwrap();
    fs::symlink(&file, &link).await.unwrap();
    fs::remove_file(&link).await.unwrap();
    assert!(fs::symlink_metadata(&link).await.is_err());
    assert!(fs::try_exists(&file).await.unwrap());
    fs::remove_file(&file).await.unwrap();
    assert!(!fs::try_exists(&file).await.unwrap());
    let err = fs::remove_file(&file).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = fs::remove_file(dir.path()).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EISDIR), "{err}");
}

#[overlap::test]
async fn rename_replaces_an_existing_file_that_an_open_handle_outlives() {
    let dir = TempDir::new("port-fs-rename");
    let (old, new) = (dir.join("old"), dir.join("new"));
    fs::write(&old, b"moved").await.unwrap();
    fs::write(&new, b"replaced").await.unwrap();
    let mut replaced = fs::File::open(&new).await.unwrap();
    fs::rename(&old, &new).await.unwrap();
    assert!(!fs::try_exists(&old).await.unwrap());
    assert_eq!(fs::read(&new).await.unwrap(), b"moved");
    let mut s = String::new();
    replaced.read_to_string(&mut s).await.unwrap();
    assert_eq!(s, "replaced");

    // A directory over a non-empty one, a file over a directory: refused, nothing moved.
    fs::create_dir_all(dir.join("d1")).await.unwrap();
    fs::create_dir_all(dir.join("d2/full")).await.unwrap();
    let err = fs::rename(dir.join("d1"), dir.join("d2"))
        .await
        .unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::ENOTEMPTY), "{err}");
    let err = fs::rename(&new, dir.join("d1")).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::EISDIR), "{err}");
    assert_eq!(fs::read(&new).await.unwrap(), b"moved");
    // Onto itself: nothing happens.
    fs::rename(&new, &new).await.unwrap();
    assert_eq!(fs::read(&new).await.unwrap(), b"moved");
}

#[overlap::test]
async fn canonicalize_resolves_dots_and_links_as_std_does() {
    let dir = TempDir::new("port-fs-canonicalize");
    fs::create_dir_all(dir.join("a/b")).await.unwrap();
    fs::symlink(dir.join("a/b"), dir.join("l")).await.unwrap();
    for p in [".", "a/./b/..", "l/..", "l"] {
        let path = dir.join(p);
        let ours = fs::canonicalize(&path).await.unwrap();
        assert_eq!(ours, std::fs::canonicalize(&path).unwrap(), "{p}");
        assert!(ours.is_absolute());
    }
    let err = fs::canonicalize(dir.join("a/missing/.."))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[overlap::test]
async fn try_exists_tells_missing_from_undecidable() {
    let dir = TempDir::new("port-fs-try-exists");
    fs::write(dir.join("file"), b"").await.unwrap();
    assert!(fs::try_exists(dir.join("file")).await.unwrap());
    assert!(fs::try_exists(dir.path()).await.unwrap());
    assert!(!fs::try_exists(dir.join("missing")).await.unwrap());
    // Through a file as if it were a directory: ENOTDIR is an error to std, not "missing".
    let err = fs::try_exists(dir.join("file/x")).await.unwrap_err();
    assert_eq!(raw_os_error(&err), Some(libc::ENOTDIR), "{err}");
    assert!(dir.join("file/x").try_exists().is_err());
    if is_root() {
        return; // root searches any directory
    }
    let locked = dir.join("locked");
    fs::create_dir(&locked).await.unwrap();
    fs::write(locked.join("inside"), b"").await.unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let res = fs::try_exists(locked.join("inside")).await;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}
