//! A pipe end handed to another process: the conversion to `Stdio` puts it back in blocking
//! mode, so the child's reads and writes wait instead of failing with `EAGAIN`.

mod support;

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::process::spawn;
use overlap::{block_on, pipe};
use support::within;

const HANG: Duration = Duration::from_secs(30);

fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL takes no pointer argument.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "fcntl: {}", std::io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

#[test]
fn one_childs_stdout_feeds_the_next_childs_stdin() {
    block_on(async {
        // The producer writes only after a pause, so `cat` first finds its stdin empty: on a
        // non-blocking pipe that read fails with EAGAIN and cat gives up.
        let mut producer = spawn(
            Command::new("sh")
                .args(["-c", "sleep 0.2; echo hi"])
                .stdout(Stdio::piped()),
        )
        .unwrap();
        let out = producer.stdout.take().unwrap();
        let mut consumer = spawn(
            Command::new("cat")
                .stdin(Stdio::try_from(out).unwrap())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        .unwrap();
        let mut got = String::new();
        let mut stdout = consumer.stdout.take().unwrap();
        within(
            HANG,
            stdout.read_to_string(&mut got),
            "the pipeline stalled",
        )
        .await
        .unwrap();
        let mut err = String::new();
        let mut stderr = consumer.stderr.take().unwrap();
        stderr.read_to_string(&mut err).await.unwrap();
        assert_eq!(got, "hi\n", "cat's stderr: {err}");
        assert!(consumer.wait().await.unwrap().success());
        assert!(producer.wait().await.unwrap().success());
    });
}

#[test]
fn a_sender_as_stdout_lets_the_child_write_more_than_the_pipe_holds() {
    block_on(async {
        let (tx, mut rx) = pipe::pipe().unwrap();
        // 1 MiB into a 64 KiB pipe: a non-blocking stdout would make `head` fail with EAGAIN
        // (or write short) as soon as the pipe fills.
        let mut child = spawn(
            Command::new("head")
                .args(["-c", "1048576", "/dev/zero"])
                .stdout(Stdio::try_from(tx).unwrap()),
        )
        .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let read_all = async {
            loop {
                // Read slowly at first so the child finds the pipe full.
                if got.len() < 256 * 1024 {
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
                match rx.read(&mut buf).await.unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                }
            }
        };
        within(HANG, read_all, "the child's output stalled").await;
        assert_eq!(got.len(), 1 << 20);
        assert!(got.iter().all(|&b| b == 0));
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn into_blocking_fd_clears_nonblocking_on_both_ends() {
    block_on(async {
        let (tx, rx) = pipe::pipe().unwrap();
        assert!(is_nonblocking(&tx) && is_nonblocking(&rx));
        let (w, r) = (
            tx.into_blocking_fd().unwrap(),
            rx.into_blocking_fd().unwrap(),
        );
        assert!(!is_nonblocking(&w) && !is_nonblocking(&r));
        // And a blocking thread can use them as an ordinary pipe.
        let mut w = std::fs::File::from(w);
        let mut r = std::fs::File::from(r);
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut r, &mut s).unwrap();
            s
        });
        std::io::Write::write_all(&mut w, b"plain pipe").unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), "plain pipe");
    });
}
