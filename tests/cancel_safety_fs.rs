//! Cancel safety of `fs::File` and `io::Unblock` operations dropped after their pool job
//! started: the job finishes in the background, and the next operation sees the file as if
//! the dropped one had completed (a seek or `set_len` takes effect, read-ahead bytes are
//! kept for the next read, accepted bytes are written), in the order of the calls, with
//! reads and writes sharing one offset as `std::fs::File`'s do.

mod support;

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use overlap::fs::File;
use overlap::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, Unblock};
use support::{abandon_slot, open_read_write, pattern, within, ManualTask, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A file of `len` pattern bytes in `dir`, and those bytes.
fn data_file(dir: &TempDir, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("data");
    let data = pattern(len);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

/// The whole file, read with std once everything is written.
fn contents(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[overlap::test]
async fn write_after_a_dropped_read_lands_at_the_reader_position() {
    let dir = TempDir::new("cancel-fs-write");
    let (path, mut data) = data_file(&dir, 300_000);
    let mut file = open_read_write(&path).await;
    let mut buf = [0u8; 10];
    abandon_slot(file.read(&mut buf)); // nothing returned: the position stays 0
    file.write_all(b"XX").await.unwrap();
    file.flush().await.unwrap();
    let pos = within(HANG, file.seek(SeekFrom::Current(0)), "stalled").await;
    assert_eq!(
        pos.unwrap(),
        2,
        "the write did not start at the reader's position"
    );
    data[..2].copy_from_slice(b"XX");
    assert!(contents(&path) == data, "the write landed elsewhere");
    let mut next = [0u8; 3];
    file.read_exact(&mut next).await.unwrap();
    assert_eq!(next, data[2..5]);
}

#[overlap::test]
async fn read_after_partial_reads_and_a_dropped_one_goes_on_in_order() {
    let dir = TempDir::new("cancel-fs-read");
    let (path, data) = data_file(&dir, 3 << 20); // more than one read-ahead job
    let mut file = File::open(&path).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 100_000];
    while got.len() < data.len() {
        // Drop a read whenever one waits for a job; keep what the next one returns.
        let task = ManualTask::default();
        let mut read = Box::pin(file.read(&mut buf));
        let n = match task.poll(read.as_mut()) {
            std::task::Poll::Ready(n) => n.unwrap(),
            std::task::Poll::Pending => {
                drop(read);
                within(HANG, file.read(&mut buf), "stalled").await.unwrap()
            }
        };
        assert!(n > 0, "early end of file at {}", got.len());
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got == data, "bytes lost, repeated or reordered");
    assert_eq!(file.read(&mut buf).await.unwrap(), 0);
}

#[overlap::test]
async fn dropped_seeks_take_effect_once_started() {
    let dir = TempDir::new("cancel-fs-seek");
    let (path, data) = data_file(&dir, 10_000);
    let mut file = File::open(&path).await.unwrap();
    let mut two = [0u8; 2];
    file.read_exact(&mut two).await.unwrap();
    abandon_slot(file.seek(SeekFrom::Current(3))); // its job starts: it takes effect
    let pos = within(HANG, file.seek(SeekFrom::Current(0)), "stalled").await;
    assert_eq!(pos.unwrap(), 5);
    let mut next = [0u8; 4];
    file.read_exact(&mut next).await.unwrap();
    assert_eq!(next, data[5..9]);
}

/// One seek dropped while another one's job is still to run does nothing. (The pool is
/// held busy, so that the first job cannot finish before the second seek looks at it: a
/// seek that finds the previous job done goes on to start its own, which then takes effect
/// as any started seek does.)
#[test]
fn a_seek_dropped_behind_another_ones_job_does_nothing() {
    let dir = TempDir::new("cancel-fs-seek-behind");
    let (path, _) = data_file(&dir, 10_000);
    let std_file = std::fs::File::open(&path).unwrap();
    let (rt, gate) = support::runtime_with_a_busy_pool();
    rt.block_on(async {
        let mut file = File::from_std(std_file);
        abandon_slot(file.seek(SeekFrom::Start(100))); // its job queues behind the busy one
        abandon_slot(file.seek(SeekFrom::Current(50))); // waits for that job: dropped unrun
        gate.wait(); // the pool runs the queued job now
        let pos = within(HANG, file.seek(SeekFrom::Current(0)), "stalled").await;
        assert_eq!(pos.unwrap(), 100);
    });
}

#[overlap::test]
async fn dropped_set_len_and_flush_still_happen() {
    let dir = TempDir::new("cancel-fs-len");
    let (path, data) = data_file(&dir, 10_000);
    let mut file = open_read_write(&path).await;
    abandon_slot(file.set_len(10));
    // `metadata` (`&self`) does not wait for the job in flight; `flush` does.
    within(HANG, file.flush(), "stalled").await.unwrap();
    let meta = file.metadata().await.unwrap();
    assert_eq!(meta.len(), 10, "the dropped set_len did not truncate");
    let mut all = Vec::new();
    file.read_to_end(&mut all).await.unwrap();
    assert_eq!(all, data[..10]);

    file.write_all(b"more").await.unwrap();
    abandon_slot(file.flush());
    abandon_slot(file.sync_all());
    file.seek(SeekFrom::Start(0)).await.unwrap();
    let mut all = Vec::new();
    file.read_to_end(&mut all).await.unwrap();
    assert_eq!(&all[10..], b"more");
    assert_eq!(contents(&path).len(), 14);
}

#[overlap::test]
async fn unblock_dropped_seek_counts_once_and_reads_follow_it() {
    let dir = TempDir::new("cancel-unblock-seek");
    let (path, data) = data_file(&dir, 10_000);
    let mut file = Unblock::new(std::fs::File::open(&path).unwrap());
    abandon_slot(file.seek(SeekFrom::Current(5)));
    // The same seek asked again is taken as the retry of the dropped one (documented).
    let pos = within(HANG, file.seek(SeekFrom::Current(5)), "stalled").await;
    assert_eq!(pos.unwrap(), 5);
    abandon_slot(file.seek(SeekFrom::Start(100)));
    let mut four = [0u8; 4];
    within(HANG, file.read_exact(&mut four), "stalled")
        .await
        .unwrap();
    assert_eq!(
        four,
        data[100..104],
        "the read did not follow the dropped seek"
    );

    // A dropped read's job keeps its bytes for the next read; a seek after it counts from
    // what was returned.
    file.seek(SeekFrom::Start(104)).await.unwrap(); // drops the read-ahead
    let mut buf = [0u8; 10];
    abandon_slot(file.read(&mut buf));
    let pos = within(HANG, file.seek(SeekFrom::Current(0)), "stalled").await;
    assert_eq!(pos.unwrap(), 104);
    let mut rest = Vec::new();
    file.read_to_end(&mut rest).await.unwrap();
    assert!(rest == data[104..], "bytes lost after the dropped read");
}

/// A `File::create_new` dropped once its job started still creates the file (the job runs
/// on; the `File` it made is closed with the discarded result): a spool that names a draft
/// only once the create returned must sweep such files, or remove the path itself. On a
/// pool of one thread, a job queued after the create and awaited proves it started.
#[test]
fn a_dropped_create_new_still_creates_its_file() {
    let dir = TempDir::new("cancel-fs-create");
    let path = dir.join("draft");
    let rt = overlap::Runtime::builder()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    rt.block_on(async {
        let task = ManualTask::default();
        let mut create = Box::pin(File::create_new(path.clone()));
        assert!(task.poll(create.as_mut()).is_pending());
        within(HANG, overlap::spawn_blocking(|| ()), "the pool")
            .await
            .unwrap();
        drop(create);
        assert!(path.exists(), "the started create made no file");
        let again = File::create_new(&path).await.unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists, "{again}");
    });
}

/// A `File::create` dropped while its job still waits in the pool's queue never runs: a
/// guard that removes the path it named when a timeout drops the create leaves nothing,
/// where the create ran after the guard's removal and left its file behind.
#[test]
fn a_create_dropped_while_queued_never_creates_its_file() {
    let dir = TempDir::new("cancel-fs-create-queued");
    let path = dir.join("upload.part");
    let (rt, gate) = support::runtime_with_a_busy_pool();
    rt.block_on(async {
        let cut = overlap::time::timeout(Duration::from_millis(1), File::create(&path)).await;
        assert!(cut.is_err(), "the create ran on a busy pool");
        // The guard's removal: nothing there yet.
        assert!(std::fs::remove_file(&path).is_err());
        gate.wait();
        // The pool's one thread runs jobs in order: once this one ran, the create had its turn.
        overlap::spawn_blocking(|| ()).await.unwrap();
    });
    assert!(!path.exists(), "the dropped create made its file after all");
}
