//! `fs::remove_dir_all` given a path whose last component is `.` or `..` (`dir/.`,
//! `dir/sub/..`, `.`, with or without trailing slashes), as a path built by joining or
//! formatting easily is. `std::fs::remove_dir_all` (and tokio's) opens what the path
//! names, removes everything in it, and only then finds that `rmdir` refuses such a name:
//! `dir/.` came back as `InvalidInput` with the directory already emptied, and
//! `dir/sub/..` as *success*, with `dir` emptied and still there. POSIX `rm -r` (and
//! systemd's `rm_rf`) refuse such an operand before removing anything; so does overlap,
//! with `InvalidInput` naming the path.

mod support;

use std::ffi::OsString;
use std::path::Path;

use overlap::fs;
use overlap::io::ErrorKind;
use support::TempDir;

/// `dir/file` and `dir/sub/inner`.
fn fill(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/inner"), b"keep").unwrap();
    std::fs::write(dir.join("file"), b"keep").unwrap();
}

fn untouched(dir: &Path) -> bool {
    dir.join("sub/inner").exists() && dir.join("file").exists()
}

async fn expect_refused(path: &Path, dir: &Path) {
    let res = fs::remove_dir_all(path).await;
    assert!(untouched(dir), "{path:?} emptied {dir:?}: {res:?}");
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path:?}: {err}");
    let msg = err.to_string();
    let named = format!("failed to remove directory {}", path.display());
    assert!(msg.starts_with(&named), "{msg}");
    assert!(msg.contains("`.` or `..`"), "{msg}");
}

#[overlap::test]
async fn a_path_ending_in_a_dot_or_two_is_refused_and_nothing_removed() {
    let tmp = TempDir::new("remove-dir-all-dots");
    let dir = tmp.join("dir");
    fill(&dir);
    for suffix in [
        "/.",
        "/./",
        "/.//",
        "/sub/..",
        "/sub/../",
        "/./.",
        "/sub/../.",
    ] {
        let mut path = OsString::from(&dir);
        path.push(suffix);
        expect_refused(Path::new(&path), &dir).await;
    }
    // `..` of the directory itself names its parent, the temp dir: kept as well.
    let mut path = OsString::from(&dir);
    path.push("/..");
    let err = fs::remove_dir_all(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(untouched(&dir));
    // `.` inside the path is an ordinary step, and a name that only starts with dots is
    // an ordinary name.
    std::fs::create_dir_all(dir.join("..hidden/x")).unwrap();
    fs::remove_dir_all(dir.join("./..hidden")).await.unwrap();
    assert!(!dir.join("..hidden").exists());
    fs::remove_dir_all(dir.join("sub/../sub")).await.unwrap();
    assert!(!dir.join("sub").exists());
    fs::remove_dir_all(&dir).await.unwrap();
    assert!(!dir.exists());
}

/// The working directory as `.` (or `./`): the commonest form, and the most harmful.
#[test]
fn the_working_directory_as_a_dot_is_refused() {
    support::run_in_child(
        "the_working_directory_as_a_dot_is_refused",
        the_working_directory_as_a_dot_is_refused_alone,
    );
}

fn the_working_directory_as_a_dot_is_refused_alone() {
    let tmp = TempDir::new("remove-dir-all-cwd");
    let dir = tmp.join("cwd");
    fill(&dir);
    std::env::set_current_dir(&dir).unwrap();
    overlap::block_on(async {
        for path in [".", "./", "sub/..", ".."] {
            let err = fs::remove_dir_all(path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path}: {err}");
            assert!(untouched(&dir), "{path} removed files");
        }
    });
    std::env::set_current_dir("/").unwrap();
}
