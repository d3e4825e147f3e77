//! Promises of `overlap::fs`'s rustdoc that no other test pinned, one test each, against
//! real files in a temp dir: the cooperative budget of reads and writes served at once
//! (`file/io_impls.rs`), futures-io's `poll_seek` taking a call with the `pos` in flight as
//! its retry, `close` being `flush`, a dropped `rewind` behaving as a dropped `seek`, an
//! `open_positional` dropped while queued opening nothing, a `PositionalFile`'s fd living
//! as long as its last clone, a `ReadDir` whose fetch cannot run twice failing and then
//! ending, and the path functions' smaller print (`hard_link` of a symlink,
//! `set_permissions` through one, `create_dir_all` of `""` or of a file, `DirEntry::path`,
//! errors of files made from std naming no path).
//! Each test says which sentence it pins.

mod support;

use std::cell::Cell;
use std::io::{ErrorKind, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::{self, File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use support::{abandon_slot, pattern, within, TempDir};

/// A hang guard only: every wait here ends in far less unless something is broken.
const HANG: Duration = Duration::from_secs(10);

/// How many one-byte operations, all ready at once, a task may make before another task
/// runs: the budget is 128 per poll, so this is generous, and far below the loops' limit.
const YIELD_WITHIN: u64 = 1_000;

/// A file of `len` pattern bytes in `dir`, and those bytes.
fn data_file(dir: &TempDir, len: usize) -> (PathBuf, Vec<u8>) {
    let path = dir.join("data");
    let data = pattern(len);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

/// `io_impls.rs`: "Each call spends one unit of the task's cooperative budget, so a loop
/// of small reads served from the buffer still lets other tasks run". After the first read
/// fetched 64 KiB, every one-byte read below is ready at once; without the budget the loop
/// would run all 10,000 before the other task got a turn.
#[overlap::test]
async fn small_reads_served_from_the_buffer_let_another_task_run() {
    let dir = TempDir::new("audit-coop-read");
    let (path, data) = data_file(&dir, 1 << 20);
    let looper = overlap::spawn(async move {
        let mut file = File::open(&path).await.unwrap();
        let mut byte = [0u8; 1];
        file.read_exact(&mut byte).await.unwrap(); // fetches the first chunk
        let other_ran = Rc::new(Cell::new(false));
        let flag = other_ran.clone();
        overlap::spawn(async move { flag.set(true) });
        let mut got = vec![byte[0]];
        while !other_ran.get() && got.len() < 10_000 {
            file.read_exact(&mut byte).await.unwrap();
            got.push(byte[0]);
        }
        got
    });
    let got = within(HANG, looper, "the reader").await.unwrap();
    assert_eq!(got[..], data[..got.len()], "the bytes read one by one");
    let steps = got.len() as u64 - 1;
    assert!(
        (1..YIELD_WITHIN).contains(&steps),
        "{steps} buffered reads ran before the other task"
    );
}

/// The same for writes: a one-byte `write` is accepted at once (handed to the write job in
/// flight, or starting one), so only the budget makes the loop give way. The bytes all land,
/// in order.
#[overlap::test]
async fn small_writes_accepted_at_once_let_another_task_run() {
    let dir = TempDir::new("audit-coop-write");
    let path = dir.join("out");
    let p = path.clone();
    let looper = overlap::spawn(async move {
        let mut file = File::create(&p).await.unwrap();
        file.write_all(&[0]).await.unwrap(); // starts the first write job
        let other_ran = Rc::new(Cell::new(false));
        let flag = other_ran.clone();
        overlap::spawn(async move { flag.set(true) });
        let mut n: u64 = 0;
        while !other_ran.get() && n < 10_000 {
            n += 1;
            file.write_all(&[n as u8]).await.unwrap();
        }
        file.flush().await.unwrap();
        n
    });
    let steps = within(HANG, looper, "the writer").await.unwrap();
    assert!(
        (1..YIELD_WITHIN).contains(&steps),
        "{steps} accepted writes ran before the other task"
    );
    let expected: Vec<u8> = (0..=steps).map(|i| i as u8).collect();
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

/// `AsyncSeek::poll_seek` (`io_impls.rs`): "a call with the `pos` of the seek in flight is
/// taken as that retry, so one dropped while pending and then asked for again counts
/// once" (where `File::seek` counts each call: `fs_abandoned_ops.rs`). A different `pos`
/// is a seek of its own, after the dropped one has landed.
#[overlap::test]
async fn a_poll_seek_dropped_and_asked_again_with_its_pos_counts_once() {
    let dir = TempDir::new("audit-poll-seek");
    let (path, data) = data_file(&dir, 1000);
    let mut file = File::open(&path).await.unwrap();
    abandon_slot(AsyncSeekExt::seek(&mut file, SeekFrom::Current(100)));
    let again = AsyncSeekExt::seek(&mut file, SeekFrom::Current(100));
    assert_eq!(within(HANG, again, "the retry").await.unwrap(), 100);
    let mut four = [0u8; 4];
    file.read_exact(&mut four).await.unwrap();
    assert_eq!(four, data[100..104]);

    abandon_slot(AsyncSeekExt::seek(&mut file, SeekFrom::Current(10)));
    let other = AsyncSeekExt::seek(&mut file, SeekFrom::Current(20));
    assert_eq!(within(HANG, other, "another seek").await.unwrap(), 134);
    file.read_exact(&mut four).await.unwrap();
    assert_eq!(four, data[134..138]);
}

/// `File`'s docs: "`close` is the same as `flush`" (every accepted byte written to the
/// kernel), and `poll_close`'s: "the fd itself closes when the `File` is dropped", so the
/// `File` goes on after a `close`, reading and writing at its position.
#[overlap::test]
async fn close_writes_everything_out_and_leaves_the_file_open() {
    let dir = TempDir::new("audit-close");
    let path = dir.join("f");
    let data = pattern(3 << 20);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .await
        .unwrap();
    for piece in data.chunks(256 * 1024) {
        file.write_all(piece).await.unwrap();
    }
    within(HANG, file.close(), "close").await.unwrap();
    assert!(
        std::fs::read(&path).unwrap() == data,
        "close left bytes unwritten"
    );

    file.write_all(b"after close").await.unwrap();
    assert_eq!(
        file.seek(SeekFrom::Start(data.len() as u64)).await.unwrap(),
        data.len() as u64
    );
    let mut tail = String::new();
    file.read_to_string(&mut tail).await.unwrap();
    assert_eq!(tail, "after close");
}

/// `File::rewind`: "Dropped before it completes, it behaves as a dropped `seek`: once its
/// job has started, the offset still moves, before anything the `File` does next."
#[overlap::test]
async fn a_dropped_rewind_still_moves_the_offset_once_its_job_started() {
    let dir = TempDir::new("audit-rewind-dropped");
    let (path, data) = data_file(&dir, 200_000);
    let mut file = File::open(&path).await.unwrap();
    let mut ten = [0u8; 10];
    file.read_exact(&mut ten).await.unwrap();
    abandon_slot(file.rewind()); // its seek job is submitted: it takes effect
    let pos = within(HANG, file.seek(SeekFrom::Current(0)), "the next seek").await;
    assert_eq!(pos.unwrap(), 0);
    file.read_exact(&mut ten).await.unwrap();
    assert_eq!(ten, data[..10]);
}

/// ... and, as a dropped `seek` "dropped while it still waited for an earlier operation's
/// job" does, a `rewind` dropped behind another seek's queued job never moves the offset.
/// (The pool is held busy, so the earlier job cannot be done when the rewind looks at it.)
#[test]
fn a_rewind_dropped_behind_another_operations_job_does_nothing() {
    let dir = TempDir::new("audit-rewind-behind");
    let (path, data) = data_file(&dir, 10_000);
    let std_file = std::fs::File::open(&path).unwrap();
    let (rt, gate) = support::runtime_with_a_busy_pool();
    rt.block_on(async {
        let mut file = File::from_std(std_file);
        abandon_slot(file.seek(SeekFrom::Start(100))); // queued behind the busy job
        abandon_slot(file.rewind()); // waits for that job: dropped before its own starts
        gate.wait();
        let pos = within(HANG, file.seek(SeekFrom::Current(0)), "the next seek").await;
        assert_eq!(pos.unwrap(), 100);
        let mut four = [0u8; 4];
        file.read_exact(&mut four).await.unwrap();
        assert_eq!(four, data[100..104]);
    });
}

/// `OpenOptions::open_positional`: "otherwise as `open`", whose docs say "Dropped while its
/// job still waits for a pool thread, the open never happens (no file is created)".
#[test]
fn an_open_positional_dropped_while_queued_creates_nothing() {
    let dir = TempDir::new("audit-open-positional-queued");
    let path = dir.join("pages");
    let (rt, gate) = support::runtime_with_a_busy_pool();
    rt.block_on(async {
        abandon_slot(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .open_positional(&path),
        );
        gate.wait();
        // The pool's one thread runs jobs in order: once this one ran, the open had its turn.
        within(HANG, overlap::spawn_blocking(|| ()), "the pool")
            .await
            .unwrap();
    });
    assert!(!path.exists(), "the dropped open created its file");
}

/// The target `/proc/self/fd/{fd}` names: the open file's path while `fd` is ours.
fn fd_target(fd: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// `PositionalFile`: "Cloning it is cheap and shares the fd and the queue"; "The fd closes
/// when the last clone is dropped and no job still holds it"; `try_into_std`: "The std
/// file back, if this is the last handle ... else `Err(self)`, unchanged". (A job lets go
/// of the fd before its caller learns it is done, so awaited requests hold nothing.)
#[overlap::test]
async fn a_positional_files_fd_lives_as_long_as_its_last_clone() {
    let dir = TempDir::new("audit-positional-clones");
    let path = dir.join("shared");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open_positional(&path)
        .await
        .unwrap();
    let fd = file.as_raw_fd();
    let clone = file.clone();
    assert_eq!(clone.as_raw_fd(), fd, "a clone shares the fd");
    file.write_all_at(b"written through the first", 0)
        .await
        .unwrap();
    let file = match file.try_into_std() {
        Ok(_) => panic!("try_into_std gave the fd away while a clone still uses it"),
        Err(file) => file,
    };
    drop(file);
    assert_eq!(fd_target(fd).as_deref(), Some(path.as_path()));
    assert_eq!(
        clone.read_vec_at(64, 0).await.unwrap(),
        b"written through the first"
    );
    let clone2 = clone.clone();
    drop(clone);
    clone2.write_all_at(b"second", 0).await.unwrap();
    assert_eq!(fd_target(fd).as_deref(), Some(path.as_path()));
    drop(clone2);
    // Closed: the number is free, or already another open file's (tests run in parallel).
    assert_ne!(fd_target(fd).as_deref(), Some(path.as_path()));
    assert_eq!(std::fs::read(&path).unwrap(), b"secondn through the first");
}

/// `fs::hard_link`: "A symlink `original` is not followed (as with std on Linux): `link`
/// becomes another name for the symlink itself, dangling or not."
#[overlap::test]
async fn a_hard_link_to_a_symlink_names_the_link_itself_dangling_or_not() {
    let dir = TempDir::new("audit-hard-link-symlink");
    fs::write(dir.join("target"), b"the target").await.unwrap();
    for (points_at, link) in [("target", "to-target"), ("nowhere", "dangling")] {
        let (link, second) = (dir.join(link), dir.join(&format!("{link}-too")));
        fs::symlink(points_at, &link).await.unwrap();
        fs::hard_link(&link, &second).await.unwrap();
        let (first, other) = (
            fs::symlink_metadata(&link).await.unwrap(),
            fs::symlink_metadata(&second).await.unwrap(),
        );
        assert!(
            other.file_type().is_symlink(),
            "{second:?} is not a symlink"
        );
        assert_eq!((other.ino(), other.nlink()), (first.ino(), 2));
        assert_eq!(fs::read_link(&second).await.unwrap(), Path::new(points_at));
    }
    let target = fs::metadata(dir.join("target")).await.unwrap();
    assert_eq!(target.nlink(), 1, "the target was linked, not the symlink");
    assert!(!fs::try_exists(dir.join("dangling-too")).await.unwrap());
}

/// `fs::set_permissions`: "Sets the permissions of `path` (following symlinks)": the mode
/// lands on the target; the link keeps its own.
#[overlap::test]
async fn set_permissions_through_a_symlink_changes_its_target() {
    let dir = TempDir::new("audit-chmod-link");
    let (target, link) = (dir.join("target"), dir.join("link"));
    fs::write(&target, b"x").await.unwrap();
    std::fs::set_permissions(&target, PermissionsExt::from_mode(0o644)).unwrap();
    fs::symlink("target", &link).await.unwrap();
    let link_mode = fs::symlink_metadata(&link).await.unwrap().mode();
    fs::set_permissions(&link, PermissionsExt::from_mode(0o600))
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&target).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(fs::symlink_metadata(&link).await.unwrap().mode(), link_mode);
}

/// `fs::create_dir_all`: "A directory that exists already is success; the empty path is
/// too, as with std". A file in the way is no race (`DirBuilder`'s retries are for
/// those): it comes back as std's `AlreadyExists`, naming the path, and a file as a parent
/// as `NotADirectory`; nothing is created.
#[overlap::test]
async fn create_dir_all_takes_the_empty_path_and_an_existing_directory_as_success() {
    let dir = TempDir::new("audit-create-dir-all");
    fs::create_dir_all("").await.unwrap();
    fs::create_dir_all(dir.join("a/b")).await.unwrap();
    fs::create_dir_all(dir.join("a/b")).await.unwrap();
    fs::create_dir_all(dir.join("a")).await.unwrap();
    assert!(std::fs::metadata(dir.join("a/b")).unwrap().is_dir());

    let file = dir.join("a/file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = fs::create_dir_all(&file).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let named = format!("failed to create directory {}: ", file.display());
    assert!(err.to_string().starts_with(&named), "{err}");
    let err = fs::create_dir_all(file.join("sub")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory, "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// `DirEntry::path`: "The full path: the directory given to `read_dir` joined with the file
/// name" — as given, not resolved (`..` and `.` stay, and a symlinked directory's entries
/// are named through the link).
#[overlap::test]
async fn entry_paths_join_the_directory_as_it_was_given() {
    let dir = TempDir::new("audit-entry-path");
    fs::create_dir(dir.join("sub")).await.unwrap();
    fs::write(dir.join("sub/a"), b"").await.unwrap();
    fs::symlink("sub", dir.join("via")).await.unwrap();
    for given in [dir.join("sub/../sub/."), dir.join("via")] {
        let mut entries = fs::read_dir(&given).await.unwrap();
        let entry = entries.next_entry().await.unwrap().expect("one entry");
        assert_eq!(entry.file_name(), "a");
        assert_eq!(entry.path().as_os_str(), given.join("a").as_os_str());
        assert!(entries.next_entry().await.unwrap().is_none());
    }
}

/// `File::from_std`: "error messages will not name a path" (`File`'s Errors: "a `File` made
/// by `from_std` does not know its path"), and `PositionalFile::from_std`: "its errors name
/// no path"; the reason a write is refused (`error.rs`: "says why") and the OS code stay.
/// The same refusals through a path-opened file name it.
#[overlap::test]
async fn files_made_from_std_name_no_path_but_still_say_why() {
    let dir = TempDir::new("audit-from-std-errors");
    let path = dir.join("read-only");
    std::fs::write(&path, b"kept").unwrap();
    let named = path.to_string_lossy().into_owned();
    let check = |err: std::io::Error, names_path: bool| {
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EBADF), "{err}");
        assert!(err.to_string().contains("not open for writing"), "{err}");
        assert_eq!(err.to_string().contains(&named), names_path, "{err}");
    };
    for from_std in [true, false] {
        let mut file = if from_std {
            File::from_std(std::fs::File::open(&path).unwrap())
        } else {
            File::open(&path).await.unwrap()
        };
        file.write_all(b"refused").await.unwrap(); // accepted; the job fails
        check(file.flush().await.unwrap_err(), !from_std);
        let file = if from_std {
            fs::PositionalFile::from_std(std::fs::File::open(&path).unwrap())
        } else {
            fs::PositionalFile::open(&path).await.unwrap()
        };
        check(file.write_all_at(b"no", 0).await.unwrap_err(), !from_std);
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"kept");
}

/// `ReadDir`: "A batch whose job never ran ... is fetched again by the next call ...; only
/// if that job cannot run either does the call fail, and the stream then ends", and the
/// crate docs: such an operation "fails instead with an `Other` error that says so, naming
/// no path". Thread creation is refused (as uid `nobody` under `RLIMIT_NPROC`, in a child
/// of the test) once the pool's threads have expired. (The call used to fetch the batch
/// again at every poll, spinning until a thread could start.)
#[test]
fn a_listing_whose_fetch_cannot_run_fails_once_and_then_ends() {
    if !support::is_root() {
        eprintln!("skipped: needs root to switch to an RLIMIT_NPROC-bound uid");
        return;
    }
    support::run_in_child(
        "a_listing_whose_fetch_cannot_run_fails_once_and_then_ends",
        listing_without_threads,
    );
}

fn listing_without_threads() {
    use futures_util::stream::FusedStream;
    let dir = TempDir::new("audit-read-dir-no-thread");
    for name in ["a", "b", "c"] {
        std::fs::write(dir.join(name), b"").unwrap();
    }
    let rt = overlap::Runtime::builder()
        .blocking_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    rt.block_on(async {
        let mut entries = fs::read_dir(dir.path()).await.unwrap();
        support::no_pool_threads().await;
        let next = entries.next_entry();
        let res = support::without_new_threads(|| within(HANG, next, "the failing fetch")).await;
        let err = res.map(drop).expect_err("the fetch job could not have run");
        assert_eq!(err.kind(), ErrorKind::Other, "{err}");
        let dir_name = dir.path().to_string_lossy().into_owned();
        assert!(!err.to_string().contains(&dir_name), "{err}");
        // Threads start again, but the listing has ended with its error.
        assert!(entries.next_entry().await.unwrap().is_none());
        assert!(entries.is_terminated());
    });
}
