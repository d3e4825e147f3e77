//! Reading from a Unix stream socket that is not connected (an unconnected socket handed
//! over with `TryFrom<OwnedFd>`/`from_std`, which take it): the kernel says `EINVAL`, which
//! used to come out as "Invalid argument" (`InvalidInput`), as if the buffer were at fault.
//! Now every read, as a write already did, fails with `NotConnected` saying the socket has
//! no peer, as a TCP stream's do; a connected stream reads as before.

mod support;

use std::io::{self, ErrorKind, IoSliceMut};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::UnixStream;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// A Unix stream socket that is not connected, as code outside overlap may hand one over.
fn unconnected_stream() -> OwnedFd {
    // SAFETY: socket takes only integers.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: `fd` was just created and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `res` is `NotConnected`, in our words.
fn not_connected<T: std::fmt::Debug>(what: &str, res: io::Result<T>) {
    let err = res.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{what}: {err}");
    assert!(err.to_string().contains("not connected"), "{what}: {err}");
}

#[overlap::test]
async fn reads_of_a_unix_stream_with_no_peer_are_not_connected() {
    let mut lone = UnixStream::try_from(unconnected_stream()).unwrap();
    let mut buf = [0u8; 8];
    let read = within(HANG, lone.read(&mut buf), "read").await;
    not_connected("read", read);
    within(HANG, lone.readable(), "readable").await.unwrap();
    not_connected("try_read", lone.try_read(&mut buf));
    not_connected(
        "try_read_vectored",
        lone.try_read_vectored(&mut [IoSliceMut::new(&mut buf)]),
    );
    let peek = within(HANG, lone.peek(&mut buf), "peek").await;
    not_connected("peek", peek);
    let (mut rd, _wr) = UnixStream::split(&mut lone);
    let read = within(HANG, rd.read(&mut buf), "read half").await;
    not_connected("read of the read half", read);
    let write = within(HANG, lone.write(b"x"), "write").await;
    assert_eq!(write.unwrap_err().kind(), ErrorKind::NotConnected);

    // A connected stream still reads, and reads end of file as 0.
    let (mut a, b) = UnixStream::pair().unwrap();
    drop(b);
    assert_eq!(within(HANG, a.read(&mut buf), "eof").await.unwrap(), 0);
    assert_eq!(a.try_read(&mut buf).unwrap(), 0);
}
