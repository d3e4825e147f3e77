//! Promises of the pipe crate's rustdoc that no other test pinned, checked on real pipes:
//! - a `Sender` closed with `poll_close` hands no fd out: `into_blocking_fd` and
//!   `Stdio::try_from` fail with `BrokenPipe`, `as_raw_fd` is -1, and a splice into it
//!   fails with `BrokenPipe` at once instead of waiting;
//! - `Receiver::readable` and `Sender::writable` fail with an `Other` error, not a wait that
//!   never ends, under another runtime than the one the pipe was registered with; back in
//!   their own runtime they work.

mod support;

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use overlap::pipe::pipe;
use overlap::runtime::Runtime;
use support::within;

const HANG: Duration = Duration::from_secs(10);

#[overlap::test]
async fn a_closed_sender_gives_no_fd_out() {
    let (mut tx, _rx) = pipe().unwrap();
    tx.close().await.unwrap();
    assert_eq!(tx.as_raw_fd(), -1);
    // A second close, and a flush, are no errors.
    tx.close().await.unwrap();
    tx.flush().await.unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    b.write_all(b"for the pipe").await.unwrap();
    let err = within(HANG, tx.splice_from(&a, 64), "splice into a closed sender")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    let err = tx.into_blocking_fd().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

    let (mut tx, _rx) = pipe().unwrap();
    tx.close().await.unwrap();
    let err = Stdio::try_from(tx).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    // The bytes the splice did not take are still in the socket.
    let mut got = [0u8; 12];
    within(HANG, (&a).read_exact(&mut got), "read")
        .await
        .unwrap();
    assert_eq!(&got, b"for the pipe");
    drop(b);
}

#[test]
fn waits_under_another_runtime_fail_instead_of_hanging() {
    let first = Runtime::new().unwrap();
    let (mut tx, mut rx) = first.block_on(async {
        let (mut tx, rx) = pipe().unwrap();
        tx.write_all(b"x").await.unwrap();
        (tx, rx)
    });
    let second = Runtime::new().unwrap();
    let res = second.block_on(within(HANG, rx.readable(), "readable elsewhere"));
    assert_eq!(res.unwrap_err().kind(), ErrorKind::Other);
    let res = second.block_on(within(HANG, tx.writable(), "writable elsewhere"));
    assert_eq!(res.unwrap_err().kind(), ErrorKind::Other);
    // At home, both work.
    first.block_on(async {
        within(HANG, rx.readable(), "readable").await.unwrap();
        let mut one = [0u8; 1];
        rx.read_exact(&mut one).await.unwrap();
        within(HANG, tx.writable(), "writable").await.unwrap();
        tx.write_all(b"y").await.unwrap();
        rx.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"y");
    });
}
