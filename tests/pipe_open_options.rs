//! `overlap::pipe::OpenOptions`, tokio's `net::unix::pipe::OpenOptions`: a FIFO opened
//! read-write (`read_write(true)`) as a `Sender` that needs no reader, or as a `Receiver`
//! that never reads end of file between writers; the default options as `open`; and the
//! errors for paths that are no FIFO, each naming the path.

mod support;

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::{OpenOptions, Receiver, Sender};
use support::{mkfifo, settle, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

#[test]
fn a_read_write_sender_opens_with_no_reader_and_outlives_its_readers() {
    let dir = TempDir::new("pipe-oo-tx");
    let path = dir.join("fifo");
    mkfifo(&path);
    overlap::block_on(async {
        let err = OpenOptions::new().open_sender(&path).unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENXIO), "{err}");
        let mut tx = OpenOptions::new()
            .read_write(true)
            .open_sender(&path)
            .unwrap();
        // SAFETY: F_GETFL takes no pointer argument.
        let fl = unsafe { libc::fcntl(tx.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(fl & libc::O_ACCMODE, libc::O_RDWR);
        assert_ne!(fl & libc::O_NONBLOCK, 0);
        tx.write_all(b"before any reader").await.unwrap();
        let mut rx = Receiver::open(&path).unwrap();
        let mut got = [0u8; 17];
        within(HANG, rx.read_exact(&mut got), "read").await.unwrap();
        assert_eq!(&got, b"before any reader");
        drop(rx);
        // Its own read side keeps the FIFO open: no BrokenPipe.
        within(HANG, tx.write_all(b"still"), "write").await.unwrap();
    });
}

#[test]
fn a_read_write_receiver_waits_for_the_next_writer_instead_of_reading_eof() {
    let dir = TempDir::new("pipe-oo-rx");
    let path = dir.join("fifo");
    mkfifo(&path);
    overlap::block_on(async {
        let mut rx = OpenOptions::new()
            .read_write(true)
            .open_receiver(&path)
            .unwrap();
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(b"first\n").await.unwrap();
        drop(tx);
        let mut buf = [0u8; 16];
        assert_eq!(rx.read(&mut buf).await.unwrap(), 6);
        let polls_before = overlap::metrics().task_polls;
        let reader = overlap::spawn(async move {
            let mut buf = [0u8; 16];
            let n = rx.read(&mut buf).await.unwrap();
            buf[..n].to_vec()
        });
        overlap::time::sleep(Duration::from_millis(30)).await;
        settle().await;
        assert!(!reader.is_finished(), "end of file with no writer left");
        let polls = overlap::metrics().task_polls - polls_before;
        assert!(polls < 30, "the reader spun: {polls} polls");
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(b"second\n").await.unwrap();
        let got = within(HANG, reader, "second read").await.unwrap();
        assert_eq!(got, b"second\n");
    });
}

#[test]
fn the_default_options_open_as_open_does() {
    let dir = TempDir::new("pipe-oo-default");
    let path = dir.join("fifo");
    mkfifo(&path);
    overlap::block_on(async {
        let mut rx = OpenOptions::new().open_receiver(&path).unwrap();
        // SAFETY: F_GETFL takes no pointer argument.
        let fl = unsafe { libc::fcntl(rx.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(fl & libc::O_ACCMODE, libc::O_RDONLY);
        let mut tx = OpenOptions::new().open_sender(&path).unwrap();
        tx.write_all(b"x").await.unwrap();
        drop(tx);
        let mut got = Vec::new();
        within(HANG, rx.read_to_end(&mut got), "eof").await.unwrap();
        assert_eq!(got, b"x", "a plain receiver reads end of file");
    });
}

#[test]
fn paths_that_are_no_fifo_fail_clearly_and_name_the_path() {
    let dir = TempDir::new("pipe-oo-errors");
    let file = dir.join("file");
    std::fs::write(&file, b"data").unwrap();
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let missing = dir.join("missing");
    overlap::block_on(async {
        for rw in [false, true] {
            let mut opts = OpenOptions::new();
            opts.read_write(rw);
            for (path, kind) in [
                (&file, ErrorKind::InvalidInput),
                (&sock, ErrorKind::InvalidInput),
                (&missing, ErrorKind::NotFound),
            ] {
                let e = opts.open_receiver(path).unwrap_err();
                assert_eq!(e.kind(), kind, "receiver, rw {rw}, {}: {e}", path.display());
                assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
                let e = opts.open_sender(path).unwrap_err();
                assert_eq!(e.kind(), kind, "sender, rw {rw}, {}: {e}", path.display());
                assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
            }
            let e = opts.open_receiver(dir.path()).unwrap_err();
            let want = if rw {
                ErrorKind::IsADirectory
            } else {
                ErrorKind::InvalidInput
            };
            assert_eq!(e.kind(), want, "a directory, rw {rw}: {e}");
            assert!(e.to_string().contains(dir.path().to_str().unwrap()), "{e}");
        }
        // The regular file was never written.
        assert_eq!(std::fs::read(&file).unwrap(), b"data");
    });
}

#[test]
fn outside_a_runtime_nothing_is_opened() {
    let dir = TempDir::new("pipe-oo-outside");
    let path = dir.join("fifo");
    mkfifo(&path);
    let e = OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Other, "{e}");
}
