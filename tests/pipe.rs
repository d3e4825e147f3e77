//! Pipes and FIFOs: bytes, EOF, broken pipe, named FIFOs, bad fds.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::ENXIO), "{err}");
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
fn the_wrong_end_of_a_pipe_is_refused_not_waited_on_for_ever() {
    block_on(async {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 just made both fds, and nothing else owns them.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let w_again = w.try_clone().unwrap(); // shares the open file description
        let err = Receiver::from_owned_fd(w).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("write end"), "{err}");
        assert!(err.to_string().contains("not open for reading"), "{err}");
        let err = Sender::from_owned_fd(r).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("read end"), "{err}");
        // The message is read by people: spelled right.
        assert!(err.to_string().contains("not open for writing"), "{err}");
        // Refused before anything changed: the description was left blocking.
        // SAFETY: F_GETFL takes no pointer argument; the fd is open.
        let flags = unsafe { libc::fcntl(w_again.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    });
    // A FIFO opened for both directions is taken either way.
    let dir = std::env::temp_dir().join(format!("overlap-fifo-rdwr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fifo");
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    block_on(async {
        let both = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let mut tx = Sender::from_owned_fd(both().into()).unwrap();
        let mut rx = Receiver::from_owned_fd(both().into()).unwrap();
        tx.write_all(b"rw").await.unwrap();
        let mut buf = [0u8; 2];
        rx.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"rw");
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

#[test]
fn opening_a_path_that_is_no_fifo_names_it() {
    let dir = std::env::temp_dir().join(format!("overlap-pipe-notfifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("plain-file");
    std::fs::write(&path, b"x").unwrap();
    block_on(async {
        let e = Receiver::open(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("plain-file"), "no path: {e}");
        let e = Sender::open(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("plain-file"), "no path: {e}");
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
