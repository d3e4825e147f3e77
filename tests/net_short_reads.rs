//! A short read usually means the receive queue is drained, and overlap then waits for the
//! next edge instead of paying for an `EAGAIN`. These are the cases where the kernel stops a
//! read early with data still queued, and no new edge would come: the next read must still
//! get that data. (TCP urgent data, a Unix stream message that carried fds, packet pipes.)

mod support;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::UnixStream;
use support::{conn_with_urgent_mark, within};

const HANG: Duration = Duration::from_secs(10);

/// The peer sends "hello", one urgent byte, then "world", all before the first read. `recv`
/// stops at the urgent mark, so the first read returns "hello" with "world" queued.
#[test]
fn tcp_data_after_an_urgent_mark_is_read() {
    overlap::block_on(async {
        let (mut peer, mut conn) = conn_with_urgent_mark(b"hello", b"world").await;

        let mut buf = [0u8; 1024];
        let n = conn.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello", "the read stops at the urgent mark");
        let n = within(
            HANG,
            conn.read(&mut buf),
            "the data after the mark was never read",
        )
        .await
        .unwrap();
        assert_eq!(&buf[..n], b"world", "the urgent byte itself is not inline");
        // Later messages still arrive (each now read until EAGAIN).
        peer.write_all(b"more").unwrap();
        let n = within(HANG, conn.read(&mut buf), "a later message")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"more");
    });
}

/// `sendmsg` of `data` with `fd` attached (`SCM_RIGHTS`), all of it.
fn send_with_fd(sock: &std::os::unix::net::UnixStream, data: &[u8], fd: i32) {
    let n = support::sendmsg_fd(sock.as_raw_fd(), data, fd).unwrap();
    assert_eq!(n, data.len());
}

/// A peer passes an fd with "ab", then writes "cd". The kernel ends a stream read after a
/// message that carried fds, so the first read returns "ab" with "cd" queued.
#[test]
fn unix_stream_data_after_a_passed_fd_is_read() {
    overlap::block_on(async {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ours = UnixStream::from_std(ours).unwrap();
        let devnull = std::fs::File::open("/dev/null").unwrap();
        send_with_fd(&theirs, b"ab", devnull.as_raw_fd());
        (&theirs).write_all(b"cd").unwrap();

        let mut buf = [0u8; 64];
        let n = ours.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ab");
        let n = within(
            HANG,
            ours.read(&mut buf),
            "the data after the fd was never read",
        )
        .await
        .unwrap();
        assert_eq!(&buf[..n], b"cd");
    });
}

/// A packet-mode pipe (`O_DIRECT` on the write end): each read returns one packet. The read
/// end cannot see the mode, so the receiver is told.
/// What the `UnixStream` docs say of fds passed to a plain read: the bytes are read and the
/// fds closed by the kernel, not left open in this process. Here the write end of a pipe
/// comes with "ab"; once the read has taken it and the sender closed its own copy, the read
/// end sees end of file, so no copy was kept.
#[test]
fn unix_stream_read_closes_the_fds_that_came_with_the_bytes() {
    overlap::block_on(async {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut ours = UnixStream::from_std(ours).unwrap();
        let (r, w) = support::pipe();
        send_with_fd(&theirs, b"ab", w.as_raw_fd());
        drop(w);
        let mut buf = [0u8; 8];
        let n = within(HANG, ours.read(&mut buf), "read").await.unwrap();
        assert_eq!(&buf[..n], b"ab");
        let mut byte = [0u8; 1];
        assert_eq!(
            support::read(r.as_raw_fd(), &mut byte).unwrap(),
            0,
            "a copy was kept"
        );
    });
}

#[test]
fn every_packet_of_a_packet_pipe_is_read() {
    overlap::block_on(async {
        let mut fds = [0; 2];
        // SAFETY: room for two fds.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_DIRECT | libc::O_CLOEXEC) };
        assert_eq!(rc, 0);
        // SAFETY: fresh fds, owned by nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        support::write(w.as_raw_fd(), b"one").unwrap();
        support::write(w.as_raw_fd(), b"two").unwrap();
        let mut rx = overlap::pipe::Receiver::from_owned_fd(r).unwrap();
        rx.set_packet_mode(true);
        let mut buf = [0u8; 64];
        let n = rx.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one");
        let n = within(HANG, rx.read(&mut buf), "the second packet was never read")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"two");
    });
}
