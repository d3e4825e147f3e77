//! An adversarial review of `overlap::fs`'s path functions: the names they are given. Paths
//! with an interior NUL, bytes that are not UTF-8, a trailing `/`, a name past NAME_MAX and
//! a path past PATH_MAX; `rename` and `copy` refusals (each compared with std's answer on a
//! twin tree, and the tree left as it was); and futures dropped at their first `Pending`,
//! whose jobs still run, in the order they were made (as the crate's docs say).
//!
//! Trees (create_dir_all races, remove_dir_all, read_dir) are in `fs_paths_review_trees.rs`.

mod support;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use overlap::fs;
use overlap::io::ErrorKind;
use support::{hold_pool, one_thread_pool, poll_once_then_drop, TempDir};

/// Every entry under `root` (relative path, and the file's bytes or `None` for a directory
/// or `Some(target)` prefixed `->` for a symlink): the tree compared before and after.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let value = if meta.file_type().is_symlink() {
                let mut v = b"->".to_vec();
                v.extend(std::fs::read_link(&path).unwrap().as_os_str().as_bytes());
                Some(v)
            } else if meta.is_dir() {
                todo.push(path);
                None
            } else {
                Some(std::fs::read(&path).unwrap())
            };
            out.insert(rel, value);
        }
    }
    out
}

/// Asserts that `err` has `kind` and reads `failed to {op} {path}...`.
fn assert_named(err: &std::io::Error, kind: ErrorKind, op: &str, path: &Path) {
    assert_eq!(err.kind(), kind, "{err}");
    let msg = err.to_string();
    let expected = format!("failed to {op} {}", path.display());
    assert!(
        msg.starts_with(&expected),
        "{msg:?} does not start {expected:?}"
    );
}

#[overlap::test]
async fn an_interior_nul_is_invalid_input_for_every_function_and_creates_nothing() {
    let dir = TempDir::new("paths-nul");
    let ok = dir.join("ok");
    std::fs::write(&ok, b"kept").unwrap();
    let nul = dir.path().join(OsStr::from_bytes(b"a\0b"));
    let before = snapshot(dir.path());
    let mode = std::fs::Permissions::from_mode(0o600);
    let results: Vec<(&str, std::io::Result<()>)> = vec![
        ("create directory", fs::create_dir(&nul).await),
        ("create directory", fs::create_dir_all(&nul).await),
        (
            "create directory",
            fs::DirBuilder::new().recursive(true).create(&nul).await,
        ),
        ("write", fs::write(&nul, b"x").await),
        ("read", fs::read(&nul).await.map(drop)),
        ("read", fs::read_to_string(&nul).await.map(drop)),
        ("copy", fs::copy(&nul, dir.join("c")).await.map(drop)),
        ("copy", fs::copy(&ok, &nul).await.map(drop)),
        ("rename", fs::rename(&nul, dir.join("r")).await),
        ("rename", fs::rename(&ok, &nul).await),
        ("remove file", fs::remove_file(&nul).await),
        ("remove directory", fs::remove_dir(&nul).await),
        ("remove directory", fs::remove_dir_all(&nul).await),
        ("stat", fs::metadata(&nul).await.map(drop)),
        ("lstat", fs::symlink_metadata(&nul).await.map(drop)),
        ("canonicalize", fs::canonicalize(&nul).await.map(drop)),
        ("link", fs::hard_link(&ok, &nul).await),
        ("symlink", fs::symlink(&ok, &nul).await),
        ("symlink", fs::symlink(&nul, dir.join("l")).await),
        ("read link", fs::read_link(&nul).await.map(drop)),
        ("set permissions of", fs::set_permissions(&nul, mode).await),
        ("stat", fs::try_exists(&nul).await.map(drop)),
        ("read directory", fs::read_dir(&nul).await.map(drop)),
    ];
    for (op, res) in results {
        let err = res.expect_err(op);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{op}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("failed to {op} ")), "{msg}");
        assert!(msg.contains("unexpected NUL byte"), "{msg}");
    }
    // Nothing was created, renamed, linked or removed: not `a` (the name cut at the NUL).
    assert_eq!(snapshot(dir.path()), before);
}

#[overlap::test]
async fn names_that_are_not_utf8_go_through_every_function_byte_exactly() {
    let dir = TempDir::new("paths-non-utf8");
    let name = |bytes: &[u8]| dir.path().join(OsStr::from_bytes(bytes));
    let (a, b, c) = (name(b"caf\xe9"), name(b"\xff\xfe"), name(b"\x80.lnk"));
    fs::write(&a, b"latin-1 \xe9").await.unwrap();
    assert_eq!(fs::read(&a).await.unwrap(), b"latin-1 \xe9");
    let err = fs::read_to_string(&a).await.map(drop).unwrap_err();
    assert_named(&err, ErrorKind::InvalidData, "read", &a);
    assert_eq!(fs::copy(&a, &b).await.unwrap(), 9);
    fs::rename(&b, name(b"\xc3\x28")).await.unwrap();
    fs::symlink(OsStr::from_bytes(b"caf\xe9"), &c)
        .await
        .unwrap();
    assert_eq!(
        fs::read_link(&c).await.unwrap().as_os_str().as_bytes(),
        b"caf\xe9"
    );
    assert_eq!(fs::read(&c).await.unwrap(), b"latin-1 \xe9");
    fs::create_dir_all(name(b"d\xfd/e\xfe")).await.unwrap();
    fs::hard_link(&a, name(b"d\xfd/e\xfe/\xf0")).await.unwrap();
    let canon = fs::canonicalize(&c).await.unwrap();
    assert_eq!(canon, std::fs::canonicalize(&a).unwrap());
    assert_eq!(canon.file_name().unwrap().as_bytes(), b"caf\xe9");

    let mut listing = fs::read_dir(dir.path()).await.unwrap();
    let mut names = Vec::new();
    while let Some(entry) = listing.next_entry().await.unwrap() {
        names.push(entry.file_name());
    }
    names.sort();
    let mut expected: Vec<OsString> = [&b"caf\xe9"[..], b"\xc3\x28", b"\x80.lnk", b"d\xfd"]
        .iter()
        .map(|b| OsStr::from_bytes(b).to_owned())
        .collect();
    expected.sort();
    assert_eq!(names, expected);

    // A missing name that is not UTF-8 is still named (lossily) in the message.
    let missing = name(b"gone\xff");
    let err = fs::remove_file(&missing).await.unwrap_err();
    assert_named(&err, ErrorKind::NotFound, "remove file", &missing);
    assert!(err.to_string().contains("gone\u{FFFD}"), "{err}");
    fs::remove_dir_all(name(b"d\xfd")).await.unwrap();
    fs::remove_file(&c).await.unwrap();
    assert!(fs::try_exists(&a).await.unwrap());
    assert!(!fs::try_exists(name(b"d\xfd")).await.unwrap());
}

/// The error kind std gives, `Ok` as `None`.
fn kind<T>(res: std::io::Result<T>) -> Option<ErrorKind> {
    res.err().map(|e| e.kind())
}

#[overlap::test]
async fn a_trailing_slash_is_taken_as_std_takes_it() {
    // Each case runs on two identical trees: std on one, overlap on the other.
    let (ours, theirs) = (TempDir::new("paths-slash"), TempDir::new("paths-slash-std"));
    for root in [ours.path(), theirs.path()] {
        std::fs::write(root.join("f"), b"file").unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/inner"), b"in").unwrap();
        std::fs::create_dir(root.join("e")).unwrap();
    }
    let (o, t) = (ours.path(), theirs.path());
    let cases: Vec<(&str, Option<ErrorKind>, Option<ErrorKind>)> = vec![
        (
            "remove_file f/",
            kind(fs::remove_file(o.join("f/")).await),
            kind(std::fs::remove_file(t.join("f/"))),
        ),
        (
            "remove_file d/",
            kind(fs::remove_file(o.join("d/")).await),
            kind(std::fs::remove_file(t.join("d/"))),
        ),
        (
            "read f/",
            kind(fs::read(o.join("f/")).await),
            kind(std::fs::read(t.join("f/"))),
        ),
        (
            "write new/",
            kind(fs::write(o.join("new/"), b"x").await),
            kind(std::fs::write(t.join("new/"), b"x")),
        ),
        (
            "create_dir n/",
            kind(fs::create_dir(o.join("n/")).await),
            kind(std::fs::create_dir(t.join("n/"))),
        ),
        (
            "create_dir_all m/m//",
            kind(fs::create_dir_all(o.join("m/m//")).await),
            kind(std::fs::create_dir_all(t.join("m/m//"))),
        ),
        (
            "rename f to g/",
            kind(fs::rename(o.join("f"), o.join("g/")).await),
            kind(std::fs::rename(t.join("f"), t.join("g/"))),
        ),
        (
            "rename e/ to e2/",
            kind(fs::rename(o.join("e/"), o.join("e2/")).await),
            kind(std::fs::rename(t.join("e/"), t.join("e2/"))),
        ),
        (
            "metadata f/",
            kind(fs::metadata(o.join("f/")).await),
            kind(std::fs::metadata(t.join("f/"))),
        ),
        (
            "remove_dir_all f/",
            kind(fs::remove_dir_all(o.join("f/")).await),
            kind(std::fs::remove_dir_all(t.join("f/"))),
        ),
        (
            "remove_dir_all d/",
            kind(fs::remove_dir_all(o.join("d/")).await),
            kind(std::fs::remove_dir_all(t.join("d/"))),
        ),
    ];
    for (what, got, std_got) in &cases {
        assert_eq!(got, std_got, "{what}: overlap and std differ");
    }
    let kinds: Vec<_> = cases.iter().map(|c| c.1).collect();
    let not_dir = Some(ErrorKind::NotADirectory);
    let expected = [
        not_dir,                       // unlink("f/"): f is not a directory
        Some(ErrorKind::IsADirectory), // unlink of a directory
        not_dir,                       // open("f/")
        Some(ErrorKind::IsADirectory), // open("new/", O_CREAT)
        None,                          // mkdir("n/")
        None,                          // every parent, slashes and all
        not_dir,                       // a file renamed to a name with a slash
        None,                          // directories may be renamed with slashes
        not_dir,                       // stat("f/")
        not_dir,                       // remove_dir_all("f/")
        None,                          // a real directory, slash or not
    ];
    assert_eq!(kinds, expected);
    // Both trees ended the same, and the file named with a slash was never touched.
    assert_eq!(snapshot(o), snapshot(t));
    assert_eq!(std::fs::read(o.join("f")).unwrap(), b"file");
    assert!(o.join("n").is_dir() && o.join("m/m").is_dir() && o.join("e2").is_dir());
}

#[overlap::test]
async fn a_name_past_name_max_or_a_path_past_path_max_is_refused_naming_it() {
    let dir = TempDir::new("paths-too-long");
    let longest = dir.join(&"n".repeat(255));
    fs::write(&longest, b"fits").await.unwrap();
    assert_eq!(fs::read(&longest).await.unwrap(), b"fits");
    let too_long = dir.join(&"n".repeat(256));
    let err = fs::write(&too_long, b"x").await.unwrap_err();
    assert_named(&err, ErrorKind::InvalidFilename, "write", &too_long);
    assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENAMETOOLONG));
    let err = fs::create_dir_all(too_long.join("below"))
        .await
        .unwrap_err();
    assert_named(
        &err,
        ErrorKind::InvalidFilename,
        "create directory",
        &too_long.join("below"),
    );
    let err = fs::rename(&longest, &too_long).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidFilename, "{err}");
    assert!(
        err.to_string().contains(&*too_long.to_string_lossy()),
        "{err}"
    );

    // 8-byte names under the temp dir, past 4096 bytes in all: no prefix of it is made
    // either, since the kernel refuses the whole path before looking at its parents.
    let mut deep = dir.path().to_path_buf();
    while deep.as_os_str().len() <= libc::PATH_MAX as usize {
        deep.push("abcdefgh");
    }
    let err = fs::create_dir_all(&deep).await.unwrap_err();
    assert_named(&err, ErrorKind::InvalidFilename, "create directory", &deep);
    let err = fs::metadata(&deep).await.unwrap_err();
    assert_named(&err, ErrorKind::InvalidFilename, "stat", &deep);
    assert_eq!(
        fs::try_exists(&deep).await.map_err(|e| e.kind()),
        Err(ErrorKind::InvalidFilename)
    );
    let names: Vec<_> = snapshot(dir.path()).into_keys().collect();
    assert_eq!(names, [PathBuf::from("n".repeat(255))]);
}

#[overlap::test]
async fn rename_refusals_match_std_name_both_paths_and_change_nothing() {
    let dir = TempDir::new("paths-rename");
    let p = |s: &str| dir.join(s);
    std::fs::create_dir_all(p("full/sub")).unwrap();
    std::fs::write(p("full/sub/x"), b"x").unwrap();
    std::fs::create_dir(p("empty")).unwrap();
    std::fs::write(p("f"), b"file").unwrap();
    let before = snapshot(dir.path());
    let cases = [
        ("empty", "full", ErrorKind::DirectoryNotEmpty),
        ("f", "empty", ErrorKind::IsADirectory),
        ("empty", "f", ErrorKind::NotADirectory),
        ("full", "full/sub/inside", ErrorKind::InvalidInput),
        ("missing", "m2", ErrorKind::NotFound),
        ("f", "missing/f", ErrorKind::NotFound),
    ];
    for (from, to, expected) in cases {
        let err = fs::rename(p(from), p(to)).await.unwrap_err();
        let std_err = std::fs::rename(p(from), p(to)).unwrap_err();
        assert_eq!(err.kind(), std_err.kind(), "{from} -> {to}: {err}");
        assert_eq!(err.kind(), expected, "{from} -> {to}: {err}");
        let named = format!(
            "failed to rename {} to {}: ",
            p(from).display(),
            p(to).display()
        );
        assert!(err.to_string().starts_with(&named), "{err}");
    }
    assert_eq!(snapshot(dir.path()), before);
    // What is allowed: a name onto itself (nothing happens), a directory over an empty one.
    fs::rename(p("f"), p("f")).await.unwrap();
    assert_eq!(snapshot(dir.path()), before);
    fs::rename(p("full/sub"), p("empty")).await.unwrap();
    assert_eq!(std::fs::read(p("empty/x")).unwrap(), b"x");
    assert!(!p("full/sub").exists());
}

#[overlap::test]
async fn copy_refuses_device_files_and_itself_by_any_name_and_sets_the_source_mode() {
    let dir = TempDir::new("paths-copy");
    let src = dir.join("src");
    std::fs::write(&src, b"source bytes").unwrap();
    std::fs::set_permissions(&src, PermissionsExt::from_mode(0o640)).unwrap();
    // A character device that never ends: refused before anything is opened or created
    // (std would fill the disk), as is a directory.
    for special in [
        Path::new("/dev/zero"),
        Path::new("/dev/urandom"),
        dir.path(),
    ] {
        let dst = dir.join("from-special");
        let err = fs::copy(special, &dst).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let named = format!(
            "failed to copy {} to {}: ",
            special.display(),
            dst.display()
        );
        assert!(err.to_string().starts_with(&named), "{err}");
        assert!(!dst.exists(), "{special:?} created its destination");
    }
    // The same file under another spelling: `./`, `..`, a doubled slash.
    let doubled = PathBuf::from(format!("{}//src", dir.path().display()));
    let spellings = [dir.join("./src"), dir.join("sub/../src"), doubled];
    std::fs::create_dir(dir.join("sub")).unwrap();
    for same in spellings {
        let err = fs::copy(&src, &same).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{same:?}: {err}");
        assert_eq!(std::fs::read(&src).unwrap(), b"source bytes");
    }
    // Over a more open, longer destination: truncated, and given the source's mode, as std.
    let dst = dir.join("dst");
    std::fs::write(&dst, b"a much longer older content").unwrap();
    std::fs::set_permissions(&dst, PermissionsExt::from_mode(0o666)).unwrap();
    assert_eq!(fs::copy(&src, &dst).await.unwrap(), 12);
    assert_eq!(std::fs::read(&dst).unwrap(), b"source bytes");
    let mode = std::fs::metadata(&dst).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
}

#[test]
fn path_futures_dropped_at_their_first_pending_still_run_in_order() {
    let dir = TempDir::new("paths-dropped");
    let p = |s: &str| dir.join(s);
    let rt = one_thread_pool();
    rt.block_on(async {
        // The pool's one thread is held: each job below is queued when its future is
        // dropped, and runs once the thread is let go, in the order they were made.
        let release = hold_pool();
        poll_once_then_drop(fs::create_dir(p("a"))).await;
        poll_once_then_drop(fs::write(p("a/f"), b"first")).await;
        poll_once_then_drop(fs::copy(p("a/f"), p("a/g"))).await;
        poll_once_then_drop(fs::rename(p("a/g"), p("a/h"))).await;
        poll_once_then_drop(fs::hard_link(p("a/h"), p("a/hl"))).await;
        poll_once_then_drop(fs::symlink("h", p("a/sl"))).await;
        let mode = std::fs::Permissions::from_mode(0o600);
        poll_once_then_drop(fs::set_permissions(p("a/h"), mode)).await;
        poll_once_then_drop(fs::create_dir_all(p("a/x/y/z"))).await;
        poll_once_then_drop(fs::remove_dir_all(p("a/x/y"))).await;
        poll_once_then_drop(fs::remove_file(p("a/f"))).await;
        // Queued too, not yet run: nothing has happened.
        assert!(!p("a").exists());
        drop(release);
        // The last job queued, awaited: every dropped one ran before it.
        assert!(fs::try_exists(p("a/x")).await.unwrap());
    });
    let mut expected = BTreeMap::new();
    for (name, bytes) in [("a", None), ("a/x", None)] {
        expected.insert(PathBuf::from(name), bytes);
    }
    for name in ["a/h", "a/hl"] {
        expected.insert(PathBuf::from(name), Some(b"first".to_vec()));
    }
    expected.insert(PathBuf::from("a/sl"), Some(b"->h".to_vec()));
    assert_eq!(snapshot(dir.path()), expected);
    let mode = std::fs::metadata(p("a/hl")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn path_futures_dropped_while_queued_when_the_runtime_goes_never_run() {
    let dir = TempDir::new("paths-dropped-shutdown");
    let p = |s: &str| dir.join(s);
    std::fs::write(p("kept"), b"kept").unwrap();
    let rt = one_thread_pool();
    let release = rt.block_on(async {
        let release = hold_pool();
        poll_once_then_drop(fs::create_dir(p("a"))).await;
        poll_once_then_drop(fs::write(p("w"), b"x")).await;
        poll_once_then_drop(fs::remove_file(p("kept"))).await;
        poll_once_then_drop(fs::rename(p("kept"), p("moved"))).await;
        release
    });
    // The runtime's drop drops the queued jobs; the held one is let go after.
    drop(rt);
    drop(release);
    let names: Vec<_> = snapshot(dir.path()).into_keys().collect();
    assert_eq!(names, [PathBuf::from("kept")]);
}
