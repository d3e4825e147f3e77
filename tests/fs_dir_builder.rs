//! `fs::DirBuilder` against the kernel: recursive or not, what fails and how, and the mode
//! bits it asks for, less the umask.

mod support;

use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use overlap::fs::{self, DirBuilder};
use support::TempDir;

/// The process's umask, read without changing it (`umask(2)` can only set it, and a set
/// and restore would race with the other tests' file creations).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(line.trim(), 8).unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[overlap::test]
async fn not_recursive_needs_the_parent_and_refuses_an_existing_dir() {
    let dir = TempDir::new("dirb-flat");
    let deep = dir.join("missing/child");
    let err = DirBuilder::new().create(&deep).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing/child"), "{err}");
    assert!(!dir.join("missing").exists(), "no parent was made");

    let one = dir.join("one");
    DirBuilder::new().create(&one).await.unwrap();
    assert!(std::fs::metadata(&one).unwrap().is_dir());
    let err = DirBuilder::new().create(&one).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    // `recursive(false)` after `recursive(true)` is not recursive again.
    let err = DirBuilder::new()
        .recursive(true)
        .recursive(false)
        .create(&deep)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[overlap::test]
async fn recursive_makes_parents_and_takes_an_existing_dir() {
    let dir = TempDir::new("dirb-deep");
    let deep = dir.join("a/b/c");
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    builder.create(&deep).await.unwrap();
    assert!(std::fs::metadata(&deep).unwrap().is_dir());
    builder.create(&deep).await.unwrap();
    builder.create(dir.path()).await.unwrap();

    // A file in the way is still an error, recursive or not.
    std::fs::write(dir.join("file"), b"x").unwrap();
    let cases = [
        ("file", ErrorKind::AlreadyExists),
        ("file/below", ErrorKind::NotADirectory),
    ];
    for recursive in [false, true] {
        for (name, kind) in cases {
            let err = DirBuilder::new()
                .recursive(recursive)
                .create(dir.join(name))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), kind, "{name}, recursive {recursive}");
        }
    }
}

#[overlap::test]
async fn mode_is_honoured_less_the_umask() {
    let dir = TempDir::new("dirb-mode");
    let mask = umask();
    for (i, mode) in [0o700, 0o755, 0o777, 0o711, 0o750].into_iter().enumerate() {
        let path = dir.join(&format!("m{i}"));
        DirBuilder::new().mode(mode).create(&path).await.unwrap();
        assert_eq!(
            mode_of(&path),
            mode & !mask,
            "mode {mode:o}, umask {mask:o}"
        );
    }
    // Recursive: every directory made gets the mode; one that existed keeps its own.
    std::fs::create_dir(dir.join("old")).unwrap();
    std::fs::set_permissions(dir.join("old"), PermissionsExt::from_mode(0o755)).unwrap();
    let deep = dir.join("old/x/y");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&deep)
        .await
        .unwrap();
    assert_eq!(mode_of(&dir.join("old/x")), 0o700 & !mask);
    assert_eq!(mode_of(&deep), 0o700 & !mask);
    assert_eq!(mode_of(&dir.join("old")), 0o755);
    // No mode: `0o777` less the umask, as `fs::create_dir`.
    DirBuilder::new().create(dir.join("plain")).await.unwrap();
    fs::create_dir(dir.join("free")).await.unwrap();
    assert_eq!(mode_of(&dir.join("plain")), 0o777 & !mask);
    assert_eq!(mode_of(&dir.join("plain")), mode_of(&dir.join("free")));
}
