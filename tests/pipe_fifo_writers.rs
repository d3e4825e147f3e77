//! A FIFO outlives its writers: after one leaves (the reader sees end of file) a new one may
//! open it. Its reader must then wait for the new writer's data, not spin on the old
//! hang-up.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::pipe::{Receiver, Sender};

/// A fresh FIFO in a fresh directory (removed by the caller).
fn fifo(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("overlap-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fifo");
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    (dir, path)
}

/// Reads `rx` to its first end of file after a writer wrote `one` and left.
async fn drain_first_writer(path: &Path, rx: &mut Receiver) {
    let mut tx = Sender::open(path).unwrap();
    tx.write_all(b"one").await.unwrap();
    drop(tx);
    let mut buf = [0u8; 16];
    assert_eq!(rx.read(&mut buf).await.unwrap(), 3);
    assert_eq!(rx.read(&mut buf).await.unwrap(), 0, "end of file");
}

/// Polls of every task while `wait` passes: a task spinning on a stale hang-up is polled
/// once per budget-exhausted yield, thousands of times.
async fn polls_during(wait: Duration) -> u64 {
    let before = overlap::metrics().task_polls;
    overlap::time::sleep(wait).await;
    overlap::metrics().task_polls - before
}

#[test]
fn a_splice_out_of_a_fifo_waits_quietly_for_a_second_writer() {
    let (dir, path) = fifo("fifo-splice");
    overlap::block_on(async {
        let mut rx = Receiver::open(&path).unwrap();
        drain_first_writer(&path, &mut rx).await;
        let mut tx2 = Sender::open(&path).unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        let splicer = overlap::spawn(async move { rx.splice_to(&a, 1024).await.unwrap() });
        let polls = polls_during(Duration::from_millis(50)).await;
        assert!(!splicer.is_finished());
        assert!(
            polls < 10,
            "the splice spun: {polls} polls while the FIFO was silent"
        );
        tx2.write_all(b"two").await.unwrap();
        assert_eq!(splicer.await.unwrap(), 3);
        let mut got = [0u8; 3];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"two");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reader_waits_quietly_for_a_second_writer_after_end_of_file() {
    let (dir, path) = fifo("fifo2");
    overlap::block_on(async {
        let mut rx = Receiver::open(&path).unwrap();
        drain_first_writer(&path, &mut rx).await;
        let mut buf = [0u8; 16];
        assert_eq!(rx.read(&mut buf).await.unwrap(), 0, "and again");

        // A second writer opens the FIFO and stays silent for a while.
        let mut tx2 = Sender::open(&path).unwrap();
        let reader = overlap::spawn(async move {
            let mut buf = [0u8; 16];
            let n = rx.read(&mut buf).await.unwrap();
            buf[..n].to_vec()
        });
        let polls = polls_during(Duration::from_millis(50)).await;
        assert!(!reader.is_finished());
        assert!(
            polls < 10,
            "the reader spun: {polls} polls while the FIFO was silent"
        );
        tx2.write_all(b"two").await.unwrap();
        assert_eq!(reader.await.unwrap(), b"two");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
