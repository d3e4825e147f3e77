//! `fs::File` on an fd in non-blocking mode: a pipe end wrapped with `from_std` that another
//! process (or the caller) made non-blocking, or a FIFO opened with
//! `custom_flags(O_NONBLOCK)`. Its pool jobs must wait out `EAGAIN` (with `poll(2)`), as the
//! standard streams do: a read returned `WouldBlock` to the caller, and a write job stopped
//! at the first full pipe and dropped the rest of the accepted bytes with a `WouldBlock`
//! error.

mod support;

use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use overlap::fs::{File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{mkfifo, pattern, pipe, read, within, write, TempDir};

const LIMIT: Duration = Duration::from_secs(30);

/// Reads `rx` (non-blocking) to its end on a thread that starts late, so that the pipe
/// fills first and the writer meets `EAGAIN`; returns the bytes.
fn late_reader(rx: OwnedFd) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            match read(rx.as_raw_fd(), &mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
}

#[overlap::test]
async fn writes_to_a_full_non_blocking_pipe_wait_and_lose_nothing() {
    let (rx, tx) = pipe(); // both ends O_NONBLOCK
    let reader = late_reader(rx);
    let data = pattern(3 << 20);
    let mut file = File::from_std(std::fs::File::from(tx));
    let res = within(
        LIMIT,
        async {
            file.write_all(&data).await?;
            file.flush().await
        },
        "writing into a slowly drained pipe",
    )
    .await;
    // Closing the write end ends the reader's input.
    drop(file);
    let got = reader.join().unwrap();
    res.unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes arrived out of order");
}

#[overlap::test]
async fn a_file_dropped_unflushed_on_a_full_non_blocking_pipe_still_writes_everything() {
    let (rx, tx) = pipe();
    let reader = late_reader(rx);
    let data = pattern(1 << 20);
    let mut file = File::from_std(std::fs::File::from(tx));
    file.write_all(&data).await.unwrap();
    // Bytes still buffered and in flight: the drop hands them to the job, which writes them
    // after its own, waiting for room as it goes.
    drop(file);
    let got = within(
        LIMIT,
        overlap::task::spawn_blocking(move || reader.join().unwrap()),
        "the reader never saw the end",
    )
    .await
    .unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes arrived out of order");
}

#[overlap::test]
async fn a_read_of_a_fifo_opened_non_blocking_waits_for_data() {
    let dir = TempDir::new("fs-nonblocking-fifo");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .await
        .unwrap();
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    // The data comes late, so the read finds the FIFO empty, with a writer: `EAGAIN`.
    let late = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        write(writer.as_raw_fd(), b"late data").unwrap();
        // Dropping the writer ends the input.
    });
    let mut got = Vec::new();
    let res = within(LIMIT, file.read_to_end(&mut got), "reading the FIFO").await;
    late.join().unwrap();
    res.unwrap();
    assert_eq!(got, b"late data");
}
