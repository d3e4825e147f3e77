//! `fs::remove_dir_all` given a symlink to a directory with a trailing `/` (or `/.`), as a
//! path built by string formatting easily has: `link/` resolves to the directory the link
//! points at, so `std::fs::remove_dir_all` (and tokio's) empties that directory, then fails
//! to remove `link/` itself (`ENOTDIR`): everything is gone and the caller is told that the
//! removal failed. overlap refuses such a path before removing anything. The plain `link`
//! still removes only the link, as in std.

mod support;

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use overlap::fs;
use overlap::io::ErrorKind;
use support::TempDir;

/// A directory `target` with a file and a subdirectory in it, and `link` pointing at it.
fn target_and_link(dir: &TempDir) -> (PathBuf, PathBuf) {
    let target = dir.join("target");
    std::fs::create_dir_all(target.join("inner")).unwrap();
    std::fs::write(target.join("inner/keep"), b"keep").unwrap();
    std::fs::write(target.join("keep2"), b"keep").unwrap();
    let link = dir.join("link");
    symlink(&target, &link).unwrap();
    (target, link)
}

fn untouched(target: &std::path::Path) -> bool {
    target.join("inner/keep").exists() && target.join("keep2").exists()
}

#[overlap::test]
async fn a_link_to_a_directory_with_a_trailing_slash_is_refused_and_its_target_kept() {
    let dir = TempDir::new("remove-dir-all-link-slash");
    let (target, link) = target_and_link(&dir);
    for suffix in ["/", "//", "/.", "/./"] {
        let mut path = link.clone().into_os_string();
        path.push(suffix);
        let res = fs::remove_dir_all(&path).await;
        assert!(
            untouched(&target),
            "{path:?} emptied the link's target: {res:?}"
        );
        assert!(std::fs::symlink_metadata(&link).is_ok(), "{path:?}");
        let err = res.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory, "{path:?}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with("failed to remove directory "), "{msg}");
        assert!(msg.contains("symlink"), "{msg}");
    }
    // Deeper in the path, a link is an ordinary step: `link/inner/` is the target's
    // subdirectory, by the caller's own choice.
    fs::remove_dir_all(link.join("inner/")).await.unwrap();
    assert!(!target.join("inner").exists());
    assert!(target.join("keep2").exists());
}

#[overlap::test]
async fn the_link_itself_and_real_directories_with_a_slash_are_still_removed() {
    let dir = TempDir::new("remove-dir-all-link-plain");
    let (target, link) = target_and_link(&dir);
    // The link without a slash: only the link goes (as in std).
    fs::remove_dir_all(&link).await.unwrap();
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(untouched(&target));
    // A link to a file or to nothing, with a slash: std's own error, and nothing removed.
    std::fs::write(dir.join("file"), b"file").unwrap();
    symlink(dir.join("file"), dir.join("to-file")).unwrap();
    symlink(dir.join("nothing"), dir.join("dangling")).unwrap();
    for (name, kind) in [
        ("to-file/", ErrorKind::NotADirectory),
        ("dangling/", ErrorKind::NotFound),
    ] {
        let err = fs::remove_dir_all(dir.join(name)).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{name}: {err}");
    }
    assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"file");
    // A real directory with a trailing slash goes, whole.
    let mut path = target.clone().into_os_string();
    path.push("/");
    fs::remove_dir_all(&path).await.unwrap();
    assert!(!target.exists());
}
