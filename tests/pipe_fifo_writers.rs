//! A FIFO outlives its writers: after one leaves (the reader sees end of file) a new one may
//! open it. Its reader must then wait for the new writer's data, not spin on the old
//! hang-up.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::{Receiver, Sender};

#[test]
fn a_reader_waits_quietly_for_a_second_writer_after_end_of_file() {
    let dir = std::env::temp_dir().join(format!("overlap-fifo2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fifo");
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    overlap::block_on(async {
        let mut rx = Receiver::open(&path).unwrap();
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(b"one").await.unwrap();
        drop(tx);
        let mut buf = [0u8; 16];
        assert_eq!(rx.read(&mut buf).await.unwrap(), 3);
        assert_eq!(rx.read(&mut buf).await.unwrap(), 0, "end of file");
        assert_eq!(rx.read(&mut buf).await.unwrap(), 0, "and again");

        // A second writer opens the FIFO and stays silent for a while.
        let mut tx2 = Sender::open(&path).unwrap();
        let reader = overlap::spawn(async move {
            let mut buf = [0u8; 16];
            let n = rx.read(&mut buf).await.unwrap();
            buf[..n].to_vec()
        });
        let before = overlap::metrics().task_polls;
        overlap::time::sleep(Duration::from_millis(50)).await;
        let polls = overlap::metrics().task_polls - before;
        assert!(!reader.is_finished());
        // The reader is polled once to start waiting (plus a few wakes at most); a spinning
        // one is polled about once per budget-exhausted yield: thousands of times.
        assert!(
            polls < 10,
            "the reader spun: {polls} polls while the FIFO was silent"
        );
        tx2.write_all(b"two").await.unwrap();
        assert_eq!(reader.await.unwrap(), b"two");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
