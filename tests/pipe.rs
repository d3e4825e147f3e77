//! Pipes and FIFOs: bytes, EOF, broken pipe, named FIFOs, bad fds.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::pipe::{pipe, Receiver, Sender};
use overlap::{block_on, spawn};

#[test]
fn four_mib_through_a_pipe_in_order() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        const TOTAL: usize = 4 << 20;
        let writer = spawn(async move {
            let data: Vec<u8> = (0..TOTAL).map(|i| (i % 249) as u8).collect();
            tx.write_all(&data).await.unwrap();
        });
        let mut got = Vec::new();
        rx.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), TOTAL);
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 249) as u8));
        // EOF stays EOF.
        assert_eq!(rx.read(&mut [0u8; 16]).await.unwrap(), 0);
    });
}

#[test]
fn a_vectored_write_past_a_long_run_of_empty_slices_writes_the_data() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        // More empty slices than one writev takes (1024), then data: not a write of 0.
        let mut bufs = vec![io::IoSlice::new(b""); 2000];
        bufs.push(io::IoSlice::new(b"late"));
        assert_eq!(tx.write_vectored(&bufs).await.unwrap(), 4);
        let mut got = [0u8; 4];
        rx.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"late");
    });
}

#[test]
fn writing_with_no_reader_is_broken_pipe() {
    block_on(async {
        let (mut tx, rx) = pipe().unwrap();
        drop(rx);
        let err = tx.write_all(b"nobody listens").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn close_gives_eof_and_later_writes_fail() {
    block_on(async {
        let (mut tx, mut rx) = pipe().unwrap();
        tx.write_all(b"last words").await.unwrap();
        tx.close().await.unwrap();
        let mut s = String::new();
        rx.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "last words");
        assert_eq!(
            tx.write(b"x").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    });
}

#[test]
fn named_fifo_round_trip_and_enxio_without_reader() {
    let dir = std::env::temp_dir().join(format!("overlap-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fifo");
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    block_on(async {
        let err = Sender::open(&path).unwrap_err();
        assert_eq!(err.raw_os_error(), None, "message-wrapped error");
        assert!(err.to_string().contains("failed to open"), "{err}");
        assert!(err.to_string().contains(path.to_str().unwrap()));
        let mut rx = Receiver::open(&path).unwrap();
        let mut tx = Sender::open(&path).unwrap();
        tx.write_all(b"via fifo").await.unwrap();
        drop(tx);
        let mut s = String::new();
        rx.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "via fifo");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn non_pipe_fd_is_invalid_input() {
    block_on(async {
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        let err = Receiver::from_owned_fd(f.into()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    });
}
