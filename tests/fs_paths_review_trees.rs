//! An adversarial review of `overlap::fs` on whole trees: `create_dir_all` racing with
//! itself and with a remover, `remove_dir_all` on a tree 2,000 levels deep (under the usual
//! limit of 1,024 open files), with a read-only subdirectory and with files added while it
//! works, `read_dir` of 20,000 entries of every type (no `stat` for any of them), and a
//! `ReadDir` dropped half-way or mid-fetch (no fd left open).
//!
//! Single names and paths are in `fs_paths_review.rs`.

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use overlap::fs;
use overlap::io::ErrorKind;
use support::{
    is_root, mkfifo, open_fds, poll_once_then_drop, run_in_child, set_soft_nofile, until, within,
    TempDir,
};

/// Gives up root for this (child) process, becoming uid and gid 65534; false if refused.
fn become_nobody() -> bool {
    // SAFETY: setgid and setuid take no pointers; glibc applies them to every thread.
    unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 }
}

/// A thread that runs `step` over and over until the returned flag is set; joined, it says
/// how many steps returned true.
fn in_a_loop(
    mut step: impl FnMut() -> bool + Send + 'static,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut n = 0;
        while !s.load(Ordering::Relaxed) {
            n += usize::from(step());
        }
        n
    });
    (stop, thread)
}

#[overlap::test]
async fn create_dir_all_from_twenty_tasks_at_once_succeeds_in_each() {
    let dir = TempDir::new("trees-create-race");
    // Twenty tasks make the same chain at once, ten times over: each one succeeds.
    for round in 0..10 {
        let target = dir.join(&format!("r{round}/a/b/c/d/e/f/g"));
        let tasks: Vec<_> = (0..20)
            .map(|_| overlap::spawn(fs::create_dir_all(target.clone())))
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert!(std::fs::metadata(&target).unwrap().is_dir());
    }
}

#[overlap::test]
async fn create_dir_all_against_a_remover_never_fails() {
    let dir = TempDir::new("trees-create-remove-race");
    // A task removes the chain's top over and over (with overlap's own `remove_dir_all`)
    // while twenty tasks make the chain: a directory removed under `create_dir_all` is made
    // again, never an error (std gives `NotFound` when a parent it made vanishes before
    // the child is made, and `AlreadyExists` when the child it found existing vanishes
    // before its check).
    let top = dir.join("t");
    let done = Arc::new(AtomicBool::new(false));
    let (t, d) = (top.clone(), done.clone());
    let remover = overlap::spawn(async move {
        let mut removals = 0;
        while !d.load(Ordering::Relaxed) {
            // Not found (nothing made yet), or not empty (a task made a level meanwhile).
            removals += usize::from(fs::remove_dir_all(&t).await.is_ok());
        }
        removals
    });
    let failures = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (target, failures) = (top.join(format!("a/b/c/task{i}")), failures.clone());
            overlap::spawn(async move {
                for _ in 0..200 {
                    if let Err(e) = fs::create_dir_all(&target).await {
                        eprintln!("{e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        within(
            Duration::from_secs(60),
            task,
            "create_dir_all racing a remover",
        )
        .await
        .unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let removals = remover.await.unwrap();
    assert!(removals > 0, "the remover never removed the tree");
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "after {removals} removals"
    );
}

#[test]
fn remove_dir_all_takes_a_tree_2000_levels_deep_under_the_usual_fd_limit() {
    run_in_child(
        "remove_dir_all_takes_a_tree_2000_levels_deep_under_the_usual_fd_limit",
        || {
            // 1,024 open files: the soft limit most systems start a process with.
            set_soft_nofile(1024);
            let dir = TempDir::new("trees-deep");
            let top = dir.join("deep");
            let mut deep = top.clone();
            for _ in 0..2000 {
                deep.push("d");
            }
            std::fs::create_dir_all(&deep).unwrap();
            std::fs::write(deep.join("leaf"), b"leaf").unwrap();
            std::fs::write(top.join("d/d/side"), b"side").unwrap();
            // Links out of the tree, a FIFO and a socket on the way: removed, never followed.
            let outside = dir.join("outside");
            std::fs::create_dir(&outside).unwrap();
            std::fs::write(outside.join("kept"), b"kept").unwrap();
            std::os::unix::fs::symlink(&outside, deep.join("to-dir")).unwrap();
            std::os::unix::fs::symlink(outside.join("kept"), top.join("d/to-file")).unwrap();
            mkfifo(&top.join("d/d/d/fifo"));
            drop(std::os::unix::net::UnixListener::bind(top.join("d/d/sock")).unwrap());
            overlap::block_on(async {
                // Counted once the runtime has its own fds and a pool thread has run a job.
                fs::metadata(&top).await.unwrap();
                let fds = open_fds();
                fs::remove_dir_all(&top).await.unwrap();
                assert!(!fs::try_exists(&top).await.unwrap());
                assert_eq!(open_fds(), fds, "the walk left directories open");
            });
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "{left:?}");
            assert_eq!(std::fs::read(outside.join("kept")).unwrap(), b"kept");
        },
    );
}

/// A comb: a spine 40 levels deep with three branches at each level, each branch a chain
/// 20 deep with a file at every level. The walk keeps only the deepest levels open, so it
/// comes back up into levels it closed (opened again through `..`, listed again) and into
/// levels it kept open (listed on), many times over each: everything goes, each file once,
/// and the fds it opened are all closed.
#[overlap::test]
async fn remove_dir_all_of_a_deep_and_branching_tree_removes_every_level() {
    let dir = TempDir::new("trees-comb");
    let top = dir.join("comb");
    let mut spine = top.clone();
    let mut files = 0;
    for level in 0..40 {
        for branch in 0..3 {
            let mut chain = spine.join(format!("branch-{branch}"));
            for depth in 0..20 {
                chain.push(format!("c{depth}"));
                std::fs::create_dir_all(&chain).unwrap();
                std::fs::write(chain.join("file"), format!("{level}/{branch}/{depth}")).unwrap();
                files += 1;
            }
        }
        spine.push(format!("spine-{level}"));
        std::fs::create_dir(&spine).unwrap();
    }
    assert_eq!(files, 2400);
    let sibling = dir.join("sibling");
    std::fs::write(&sibling, b"kept").unwrap();
    fs::metadata(&top).await.unwrap();
    let fds = open_fds();
    within(
        Duration::from_secs(60),
        fs::remove_dir_all(&top),
        "the removal",
    )
    .await
    .unwrap();
    assert!(!fs::try_exists(&top).await.unwrap());
    assert_eq!(open_fds(), fds, "the walk left directories open");
    assert_eq!(std::fs::read(&sibling).unwrap(), b"kept");
}

#[test]
fn remove_dir_all_with_a_read_only_subdirectory_fails_and_keeps_what_it_holds() {
    run_in_child(
        "remove_dir_all_with_a_read_only_subdirectory_fails_and_keeps_what_it_holds",
        || {
            // As root, a read-only directory refuses nothing: the child gives root up.
            if is_root() && !become_nobody() {
                eprintln!("skipped: root, and cannot become another user");
                return;
            }
            let dir = TempDir::new("trees-read-only");
            let top = dir.join("top");
            std::fs::create_dir_all(top.join("ro/inner")).unwrap();
            std::fs::write(top.join("ro/kept"), b"kept").unwrap();
            std::fs::write(top.join("ro/inner/deeper"), b"deeper").unwrap();
            std::fs::write(top.join("loose"), b"loose").unwrap();
            std::fs::set_permissions(top.join("ro"), PermissionsExt::from_mode(0o555)).unwrap();
            overlap::block_on(async {
                let err = fs::remove_dir_all(&top).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
                let named = format!("failed to remove directory {}: ", top.display());
                assert!(err.to_string().starts_with(&named), "{err}");
                // The entries of the read-only directory stay (a writable subdirectory of
                // it may have been emptied first), and so do it and the top.
                assert_eq!(fs::read(top.join("ro/kept")).await.unwrap(), b"kept");
                assert!(fs::metadata(top.join("ro/inner")).await.unwrap().is_dir());
                let mode = fs::metadata(top.join("ro"))
                    .await
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o555);
                // Made writable again, the rest goes.
                let mode = PermissionsExt::from_mode(0o755);
                fs::set_permissions(top.join("ro"), mode).await.unwrap();
                fs::remove_dir_all(&top).await.unwrap();
                assert!(!fs::try_exists(&top).await.unwrap());
            });
        },
    );
}

#[overlap::test]
async fn remove_dir_all_with_files_added_meanwhile_ends_removed_or_not_empty() {
    let dir = TempDir::new("trees-growing");
    for round in 0..20 {
        let top = dir.join(&format!("top{round}"));
        for sub in 0..20 {
            std::fs::create_dir_all(top.join(format!("s{sub}"))).unwrap();
            for f in 0..20 {
                std::fs::write(top.join(format!("s{sub}/f{f}")), b"x").unwrap();
            }
        }
        // Another thread keeps adding files to the last subdirectories while the tree goes.
        let t = top.clone();
        let mut n = 0;
        let (stop, adder) = in_a_loop(move || {
            n += 1;
            std::fs::write(t.join(format!("s{}/new{n}", 10 + n % 10)), b"new").is_ok()
        });
        let res = fs::remove_dir_all(&top).await;
        stop.store(true, Ordering::Relaxed);
        let added = adder.join().unwrap();
        match res {
            Ok(()) => assert!(!top.exists(), "Ok with the top still there"),
            // An entry added after its directory was read: that directory (or the top,
            // which then still holds it) is not empty; the error names the top.
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::DirectoryNotEmpty, "{e}");
                let named = format!("failed to remove directory {}: ", top.display());
                assert!(e.to_string().starts_with(&named), "{e}");
                assert!(added > 0 && top.exists());
            }
        }
        // With the adder gone, a second call leaves nothing.
        if top.exists() {
            fs::remove_dir_all(&top).await.unwrap();
        }
        assert!(!fs::try_exists(&top).await.unwrap());
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The type of each kind of entry this test makes, as a one-word name.
fn type_name(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match () {
        _ if t.is_symlink() => "symlink",
        _ if t.is_dir() => "dir",
        _ if t.is_file() => "file",
        _ if t.is_fifo() => "fifo",
        _ if t.is_socket() => "socket",
        _ => "other",
    }
}

#[test]
fn read_dir_of_20_000_entries_lists_each_once_with_its_type_and_no_stat() {
    run_in_child(
        "read_dir_of_20_000_entries_lists_each_once_with_its_type_and_no_stat",
        || {
            let dir = TempDir::new("trees-20k");
            let mut expected = BTreeMap::new();
            let mut sockets = Vec::new();
            for i in 0..20_000 {
                let name = format!("e{i}");
                let path = dir.join(&name);
                let kind = match i % 100 {
                    0 => {
                        std::os::unix::fs::symlink("e1", &path).unwrap();
                        "symlink"
                    }
                    1 => {
                        std::fs::create_dir(&path).unwrap();
                        "dir"
                    }
                    2 => {
                        mkfifo(&path);
                        "fifo"
                    }
                    3 => {
                        sockets.push(std::os::unix::net::UnixListener::bind(&path).unwrap());
                        "socket"
                    }
                    _ => {
                        std::fs::File::create(&path).unwrap();
                        "file"
                    }
                };
                expected.insert(OsString::from(name), kind);
            }
            use support::seccomp::{install, trap, trapped};
            let listed = overlap::block_on(async {
                let mut listing = fs::read_dir(dir.path()).await.unwrap();
                // From here on (opendir checks its fd with a stat), a stat of any kind, the
                // fallback when a listing gives no type, is caught: counted, and answered
                // with nothing.
                install(&[
                    trap(libc::SYS_statx),
                    trap(libc::SYS_newfstatat),
                    trap(libc::SYS_lstat),
                    trap(libc::SYS_stat),
                ]);
                let mut listed = BTreeMap::new();
                while let Some(entry) = listing.next().await {
                    let entry = entry.unwrap();
                    let kind = type_name(entry.file_type().await.unwrap());
                    let previous = listed.insert(entry.file_name(), kind);
                    assert!(previous.is_none(), "{entry:?} listed twice");
                }
                listed
            });
            assert_eq!(trapped(), 0, "file types were asked with a stat");
            assert_eq!(listed.len(), 20_000);
            assert_eq!(listed, expected);
        },
    );
}

#[test]
fn a_read_dir_dropped_half_way_or_mid_fetch_closes_its_directory() {
    run_in_child(
        "a_read_dir_dropped_half_way_or_mid_fetch_closes_its_directory",
        || {
            let dir = TempDir::new("trees-read-dir-drop");
            for i in 0..1000 {
                std::fs::write(dir.join(&format!("f{i}")), b"").unwrap();
            }
            overlap::block_on(async {
                // Pool threads come and go; count after one has run a job, on a quiet pool.
                fs::metadata(dir.path()).await.unwrap();
                let before = open_fds();
                for taken in [0, 1, 255, 256, 257, 300, 999] {
                    let mut listing = fs::read_dir(dir.path()).await.unwrap();
                    for _ in 0..taken {
                        listing.next_entry().await.unwrap().unwrap();
                    }
                    assert_eq!(open_fds(), before + 1, "the listing holds one fd");
                    drop(listing);
                    assert_eq!(open_fds(), before, "dropped after {taken} entries");
                }
                // Dropped with a batch being fetched: the fetch job closes it when done.
                for taken in [0, 256, 768] {
                    let mut listing = fs::read_dir(dir.path()).await.unwrap();
                    for _ in 0..taken {
                        listing.next_entry().await.unwrap().unwrap();
                    }
                    poll_once_then_drop(listing.next_entry()).await;
                    drop(listing);
                    until(|| open_fds() == before, "the fetching job to close it").await;
                }
                // A removed directory's listing ends early but still closes.
                let gone = dir.join("gone");
                std::fs::create_dir(&gone).unwrap();
                let mut listing = fs::read_dir(&gone).await.unwrap();
                std::fs::remove_dir(&gone).unwrap();
                assert!(listing.next_entry().await.unwrap().is_none());
                drop(listing);
                assert_eq!(open_fds(), before);
            });
        },
    );
}
