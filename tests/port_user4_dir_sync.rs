//! A user's one-way directory synchroniser (a small rsync), sketched as one would for tokio
//! (`fs::read_dir` down the tree with an explicit stack, `symlink_metadata` to compare size
//! and mtime, `fs::copy` or `File` + `io::copy` to a temporary name and `rename` over,
//! `set_permissions`, `create_dir_all`, `read_link` + `symlink` to recreate links without
//! following them, `remove_file`/`remove_dir_all` for what the source lost, a `Semaphore`
//! bounding the file operations in a `JoinSet`) and then written for overlap
//! (`port_user4_dir_sync/sync.rs`), against real trees in temp dirs.
//!
//! The tests check a tree of 2,000 small files in nested directories plus three 4 MiB files,
//! modes and links (a loop, a link to its own directory, a dangling one) synced exactly; a
//! second run that copies nothing; changes, renames, deletions and type changes picked up;
//! an unreadable file and directory named in the errors while the rest syncs (skipped as
//! root, where `chmod 000` denies nothing); a file and a directory deleted by another task
//! during the walk failing with `NotFound` naming them; and a run dropped midway leaving no
//! fd open and no job stuck, after which a fresh run completes.
//!
//! What the port changed, against tokio: nothing in the walk or the copies (the names and
//! signatures are tokio's, `ReadDir::next_entry` included). A `Semaphore` is `Rc`-shared
//! (`acquire_owned` on an `Rc`), the tasks being `!Send`. The copy's mtime is set with
//! `File::set_modified` (std's, which tokio's `File` lacks: there it takes `into_std` and
//! `spawn_blocking`); it writes out the bytes still buffered first, or they would move the
//! mtime on again when they land. `fs::copy`'s errors name both paths and which side
//! failed (`failed to copy a to b: failed to open a: Permission denied`), where an
//! unreadable source read the same as an unwritable destination.

mod support;

#[path = "port_user4_dir_sync/sync.rs"]
mod sync;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use overlap::sync::{mpsc, oneshot};
use support::{is_root, open_fds, pattern_seeded, run_in_child, within, TempDir};
use sync::{sync, Options, Report};

const HANG: Duration = Duration::from_secs(30);
const BIG: usize = 4 << 20;

fn opts() -> Options {
    Options {
        limit: 16,
        listed: None,
    }
}

/// A source tree: `d{0..dirs}/e{0..5}/f{0..10}` small files of varied sizes and modes,
/// `big{0..bigs}` of 4 MiB, and links: `loop -> .`, `a -> b`, `b -> a`, `dangling`.
fn source(root: &Path, dirs: usize, bigs: usize) {
    std::fs::create_dir_all(root).unwrap();
    for d in 0..dirs {
        for e in 0..5 {
            let dir = root.join(format!("d{d}/e{e}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..10 {
                let n = (d * 50 + e * 10 + f) as u32;
                // Modes within the usual umask (022), so `open` gives them.
                let mode = [0o644, 0o600, 0o755, 0o444][n as usize % 4];
                let mut file = std::fs::File::options()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(dir.join(format!("f{f}")))
                    .unwrap();
                file.write_all(&pattern_seeded((n as usize * 7) % 300, n))
                    .unwrap();
            }
        }
    }
    for b in 0..bigs {
        std::fs::write(root.join(format!("big{b}")), big_bytes(b)).unwrap();
    }
    std::os::unix::fs::symlink(".", root.join("loop")).unwrap();
    std::os::unix::fs::symlink("b", root.join("a")).unwrap();
    std::os::unix::fs::symlink("a", root.join("b")).unwrap();
    std::os::unix::fs::symlink("nowhere/at/all", root.join("dangling")).unwrap();
}

/// 4 MiB of test bytes, a different rotation of one pattern for each `n`.
fn big_bytes(n: usize) -> Vec<u8> {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    let mut bytes = PATTERN.get_or_init(|| pattern_seeded(BIG, 100)).clone();
    bytes.rotate_left(n * 4099);
    bytes
}

/// Every path under `root`, relative, sorted (links not followed).
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let rel = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                stack.push(rel.clone());
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

/// `dst` holds what `src` holds: names, types, bytes, modes, mtimes of files, link targets.
fn assert_same(src: &Path, dst: &Path) {
    let names = walk(src);
    assert_eq!(names, walk(dst), "the trees list different names");
    for rel in names {
        let (s, d) = (src.join(&rel), dst.join(&rel));
        let (sm, dm) = (s.symlink_metadata().unwrap(), d.symlink_metadata().unwrap());
        assert_eq!(sm.file_type(), dm.file_type(), "{}", rel.display());
        if sm.is_symlink() {
            assert_eq!(
                std::fs::read_link(&s).unwrap(),
                std::fs::read_link(&d).unwrap()
            );
            continue;
        }
        assert_eq!(sm.mode(), dm.mode(), "mode of {}", rel.display());
        if sm.is_file() {
            assert_eq!(
                sm.modified().unwrap(),
                dm.modified().unwrap(),
                "{}",
                rel.display()
            );
            let same = std::fs::read(&s).unwrap() == std::fs::read(&d).unwrap();
            assert!(same, "the bytes of {} differ", rel.display());
        }
    }
}

fn run(src: &Path, dst: &Path, opts: &Options) -> Report {
    overlap::block_on(within(HANG, sync(src, dst, opts), "the sync hung"))
}

fn assert_clean(report: &Report) {
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

fn sorted(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut v = paths.to_vec();
    v.sort();
    v
}

fn paths(names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(PathBuf::from).collect()
}

fn set_mtime(path: &Path, secs_ago: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    let when = SystemTime::now() - Duration::from_secs(secs_ago);
    file.set_modified(when).unwrap();
}

#[test]
fn a_tree_syncs_exactly_then_only_its_changes() {
    let tmp = TempDir::new("dir-sync-tree");
    let (src, dst) = (tmp.join("src"), tmp.join("dst"));
    source(&src, 40, 3);

    let first = run(&src, &dst, &opts());
    assert_clean(&first);
    assert_eq!(first.copied.len(), 2000 + 3);
    assert_eq!(
        sorted(&first.linked),
        paths(&["a", "b", "dangling", "loop"])
    );
    assert_same(&src, &dst);

    let again = run(&src, &dst, &opts());
    assert_clean(&again);
    assert!(
        again.copied.is_empty() && again.linked.is_empty(),
        "{again:?}"
    );
    assert!(again.deleted.is_empty(), "{again:?}");

    // Same size, new bytes and mtime; a rename; deletions; type changes; a mode change.
    std::fs::write(src.join("big1"), big_bytes(7)).unwrap();
    set_mtime(&src.join("big1"), 60);
    std::fs::rename(src.join("d0/e0/f1"), src.join("d0/e0/renamed")).unwrap();
    std::fs::remove_file(src.join("d1/e1/f1")).unwrap();
    std::fs::remove_dir_all(src.join("d2")).unwrap();
    std::fs::remove_file(src.join("d3/e0/f0")).unwrap();
    std::fs::create_dir(src.join("d3/e0/f0")).unwrap();
    std::fs::remove_dir_all(src.join("d4/e0")).unwrap();
    std::fs::write(src.join("d4/e0"), b"now a file").unwrap();
    std::fs::remove_file(src.join("dangling")).unwrap();
    std::os::unix::fs::symlink("d0", src.join("dangling")).unwrap();
    std::fs::set_permissions(src.join("d5/e0/f0"), PermissionsExt::from_mode(0o640)).unwrap();

    let third = run(&src, &dst, &opts());
    assert_clean(&third);
    assert_eq!(
        sorted(&third.copied),
        paths(&["big1", "d0/e0/renamed", "d4/e0"])
    );
    assert_eq!(third.linked, paths(&["dangling"]));
    assert_eq!(
        sorted(&third.deleted),
        paths(&["d0/e0/f1", "d1/e1/f1", "d2"])
    );
    assert_same(&src, &dst);
}

#[test]
fn an_unreadable_file_and_directory_are_named_while_the_rest_syncs() {
    run_in_child(
        "an_unreadable_file_and_directory_are_named_while_the_rest_syncs",
        || {
            // As root, `chmod 000` denies nothing: the child gives root up first.
            if is_root() && !become_nobody() {
                eprintln!("skipped: root, and cannot become another user");
                return;
            }
            let tmp = TempDir::new("dir-sync-unreadable");
            let (src, dst) = (tmp.join("src"), tmp.join("dst"));
            source(&src, 2, 0);
            let (file, dir) = (src.join("d0/e1/f2"), src.join("d1/e3"));
            std::fs::set_permissions(&file, PermissionsExt::from_mode(0o000)).unwrap();
            std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o000)).unwrap();

            let report = run(&src, &dst, &opts());
            std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
            let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
            assert_eq!(errors.len(), 2, "{errors:?}");
            for e in &report.errors {
                assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            }
            let opened = format!("failed to open {}", file.display());
            assert!(errors.iter().any(|e| e.contains(&opened)), "{errors:?}");
            for denied in [&file, &dir] {
                let named = errors
                    .iter()
                    .any(|e| e.contains(&*denied.to_string_lossy()));
                assert!(named, "no error names {}: {errors:?}", denied.display());
            }
            // Everything else arrived, and no temporary file stayed behind.
            assert_eq!(report.copied.len(), 100 - 1 - 10);
            let f3 = std::fs::read(dst.join("d0/e1/f3")).unwrap();
            assert_eq!(f3, std::fs::read(src.join("d0/e1/f3")).unwrap());
            assert!(!dst.join("d0/e1/f2").exists() && !dst.join("d0/e1/.f2.sync-tmp").exists());
            assert!(dst.join("d1/e2/f9").exists() && !dst.join("d1/e3").exists());
        },
    );
}

/// Gives up root for this (child) process, becoming uid and gid 65534; false if refused.
fn become_nobody() -> bool {
    // SAFETY: setgid and setuid take no pointers; glibc applies them to every thread.
    unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 }
}

#[test]
fn entries_deleted_by_another_task_during_the_walk_are_not_found_naming_them() {
    let tmp = TempDir::new("dir-sync-vanish");
    let (src, dst) = (tmp.join("src"), tmp.join("dst"));
    source(&src, 2, 0);
    let report = overlap::block_on(async {
        let (tx, mut rx) = mpsc::channel::<(PathBuf, oneshot::Sender<()>)>(1);
        let src2 = src.clone();
        let deleter = overlap::spawn(async move {
            while let Some((rel, ack)) = rx.recv().await {
                if rel == Path::new("d0") {
                    overlap::fs::remove_dir_all(src2.join("d0/e2"))
                        .await
                        .unwrap();
                }
                if rel == Path::new("d1/e4") {
                    overlap::fs::remove_file(src2.join("d1/e4/f7"))
                        .await
                        .unwrap();
                }
                let _ = ack.send(());
            }
        });
        let opts = Options {
            limit: 4,
            listed: Some(tx),
        };
        let report = within(HANG, sync(&src, &dst, &opts), "the sync hung").await;
        drop(opts);
        deleter.await.unwrap();
        report
    });
    let errors: Vec<String> = report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for e in &report.errors {
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    }
    for gone in ["d0/e2", "d1/e4/f7"] {
        let named = errors
            .iter()
            .any(|e| e.contains(&*src.join(gone).to_string_lossy()));
        assert!(named, "no error names {gone}: {errors:?}");
    }
    assert_eq!(report.copied.len(), 100 - 10 - 1);
}

#[test]
fn a_sync_dropped_midway_leaks_no_fd_and_a_fresh_one_completes() {
    run_in_child(
        "a_sync_dropped_midway_leaks_no_fd_and_a_fresh_one_completes",
        || {
            let tmp = TempDir::new("dir-sync-drop");
            let (src, dst) = (tmp.join("src"), tmp.join("dst"));
            source(&src, 4, 2);
            let rt = overlap::Runtime::new().unwrap();
            rt.block_on(async {
                let before = open_fds();
                for cut_at in [2, 5, 9] {
                    let (tx, mut rx) = mpsc::channel::<(PathBuf, oneshot::Sender<()>)>(1);
                    let opts = Options {
                        limit: 8,
                        listed: Some(tx),
                    };
                    // The run is dropped as the last listing arrives, with the copies of the
                    // directories before still in flight.
                    let cut = async {
                        let mut held = None;
                        for i in 1..=cut_at {
                            let (_, ack) = rx.recv().await.unwrap();
                            if i < cut_at {
                                let _ = ack.send(());
                            } else {
                                held = Some(ack);
                            }
                        }
                        drop(held);
                    };
                    let cut_first = {
                        let (run, cut) =
                            (std::pin::pin!(sync(&src, &dst, &opts)), std::pin::pin!(cut));
                        let ran = overlap::future::select(run, cut).await;
                        matches!(ran, overlap::future::Either::Right(_))
                    }; // the run is dropped here
                    assert!(cut_first, "the run finished before it was cut");
                    // The jobs left running finish and close their fds.
                    within(
                        HANG,
                        async {
                            while open_fds() != before || overlap::metrics().blocking_queued != 0 {
                                overlap::time::sleep(Duration::from_millis(1)).await;
                            }
                        },
                        "fds stayed open after the drop",
                    )
                    .await;
                    let job = overlap::spawn_blocking(|| 7);
                    assert_eq!(within(HANG, job, "the pool is stuck").await.unwrap(), 7);
                }
                let report = within(HANG, sync(&src, &dst, &opts()), "the fresh sync hung").await;
                assert_clean(&report);
                assert_same(&src, &dst);
                assert_eq!(open_fds(), before);
            });
        },
    );
}
