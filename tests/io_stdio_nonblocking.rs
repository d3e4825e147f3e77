//! Standard streams left non-blocking by another process (a shell's job, a parent that set
//! `O_NONBLOCK` on a shared pipe): `stdin` and `stdout` wait out `EAGAIN` on their pool
//! thread instead of returning it, and lose no byte. Each test runs in a child process of
//! its own, since it replaces fd 0 or 1.

mod support;

use std::os::fd::{AsRawFd, OwnedFd};
use std::thread;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use support::{pipe, read, run_in_child, write};

/// Makes `fd` a copy of `with` (`dup2`), returning a copy of what `fd` was.
fn replace_fd(fd: i32, with: &OwnedFd) -> i32 {
    // SAFETY: dup and dup2 take plain fd numbers; `with` is open for the whole call.
    unsafe {
        let saved = libc::dup(fd);
        assert!(saved >= 0);
        assert_eq!(libc::dup2(with.as_raw_fd(), fd), fd);
        saved
    }
}

/// Puts back what [`replace_fd`] saved.
fn restore_fd(fd: i32, saved: i32) {
    // SAFETY: as above; `saved` is a dup this test owns, closed once here.
    unsafe {
        assert_eq!(libc::dup2(saved, fd), fd);
        libc::close(saved);
    }
}

#[test]
fn stdin_on_a_non_blocking_pipe_waits_for_input() {
    run_in_child("stdin_on_a_non_blocking_pipe_waits_for_input", || {
        let (rx, tx) = pipe(); // both ends O_NONBLOCK
        let saved = replace_fd(0, &rx);
        drop(rx);
        let writer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            write(tx.as_raw_fd(), b"hello\n").unwrap();
            // Dropping `tx` ends the input.
        });
        let got = overlap::block_on(async {
            let mut input = overlap::io::stdin();
            let mut got = Vec::new();
            input.read_to_end(&mut got).await.map(|_| got)
        });
        writer.join().unwrap();
        restore_fd(0, saved);
        assert_eq!(got.unwrap(), b"hello\n");
    });
}

#[test]
fn stdout_on_a_full_non_blocking_pipe_waits_and_loses_nothing() {
    run_in_child(
        "stdout_on_a_full_non_blocking_pipe_waits_and_loses_nothing",
        || {
            const LEN: usize = 1_000_000;
            let (rx, tx) = pipe();
            let saved = replace_fd(1, &tx);
            drop(tx);
            // Starts reading late, so the pipe fills and writes meet EAGAIN.
            let reader = thread::spawn(move || {
                thread::sleep(Duration::from_millis(100));
                let mut total = 0;
                let mut buf = vec![0u8; 65536];
                loop {
                    match read(rx.as_raw_fd(), &mut buf) {
                        Ok(0) => return total,
                        Ok(n) => total += n,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(1))
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            });
            let res = overlap::block_on(async {
                let mut out = overlap::io::stdout();
                out.write_all(&vec![b'x'; LEN]).await?;
                out.flush().await
            });
            // Closing every write end lets the reader see the end.
            restore_fd(1, saved);
            let total = reader.join().unwrap();
            res.unwrap();
            assert_eq!(total, LEN);
        },
    );
}
