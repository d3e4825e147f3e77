//! Passing file descriptors with `UnixStream::send_with_fds`/`recv_with_fds` and
//! `UnixDatagram`'s: real pipes and sockets handed over and used on the other side, the
//! kernel's message boundaries, close-on-exec, bad input refused in our words, and a
//! receiver with no room for the descriptors, which loses none of its own and leaks none;
//! and the sender's credentials with each message (`set_passcred`, `recv_with_cred`).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::unix::UCred;
use overlap::net::{UnixDatagram, UnixStream};
use support::within;

const HANG: Duration = Duration::from_secs(30);

fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD takes an fd and no pointer; the fd is open (owned).
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0);
    flags & libc::FD_CLOEXEC != 0
}

/// `received` is a working write end of the pipe whose read end is `read_end`.
fn assert_write_end_of(received: OwnedFd, read_end: OwnedFd) {
    std::fs::File::from(received).write_all(b"ok").unwrap();
    let mut got = [0u8; 2];
    std::fs::File::from(read_end).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok");
}

#[test]
fn a_pipe_end_and_a_socket_cross_a_stream_and_work_on_the_other_side() {
    overlap::block_on(within(
        HANG,
        async {
            let (a, b) = UnixStream::pair().unwrap();
            let (pipe_read, pipe_write) = support::pipe();
            let (mut kept, given) = std::os::unix::net::UnixStream::pair().unwrap();
            let n = a
                .send_with_fds(b"two fds", &[pipe_write.as_fd(), given.as_fd()])
                .await
                .unwrap();
            assert_eq!(n, 7);
            // The sender's copies go; the receiver's own stay open.
            drop((pipe_write, given));

            let (mut buf, mut fds) = ([0u8; 64], Vec::new());
            let n = b.recv_with_fds(&mut buf, &mut fds).await.unwrap();
            assert_eq!((&buf[..n], fds.len()), (&b"two fds"[..], 2));
            assert!(fds.iter().all(is_cloexec), "received fds are close-on-exec");

            let socket = fds.pop().unwrap();
            let mut through_pipe = std::fs::File::from(fds.pop().unwrap());
            through_pipe.write_all(b"via the pipe").unwrap();
            drop(through_pipe);
            let mut got = String::new();
            std::fs::File::from(pipe_read)
                .read_to_string(&mut got)
                .unwrap();
            assert_eq!(got, "via the pipe", "EOF too: the last write end was ours");

            // The socket, adopted by overlap's wrapper, talks to the kept end.
            let mut adopted = UnixStream::try_from(socket).unwrap();
            adopted.write_all(b"via the socket").await.unwrap();
            let mut got = [0u8; 14];
            kept.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"via the socket");
            kept.write_all(b"back").unwrap();
            let mut back = [0u8; 4];
            adopted.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"back");
        },
        "the handed-over pipe and socket",
    ));
}

#[test]
fn a_read_stops_after_the_bytes_that_brought_fds_and_plain_bytes_pass_too() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, b) = UnixStream::pair().unwrap();
            let null = std::fs::File::open("/dev/null").unwrap();
            a.write_all(b"plain ").await.unwrap();
            a.send_with_fds(b"first", &[null.as_fd()]).await.unwrap();
            a.send_with_fds(b"second", &[null.as_fd(), null.as_fd()])
                .await
                .unwrap();
            a.send_with_fds(b" tail", &[]).await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            // A read takes the fds of the bytes it reaches, and stops at the end of the
            // bytes they came with: one set per call.
            for _ in 0..3 {
                let mut fds = Vec::new();
                let n = b.recv_with_fds(&mut buf, &mut fds).await.unwrap();
                got.push((String::from_utf8_lossy(&buf[..n]).into_owned(), fds.len()));
            }
            assert_eq!(
                got,
                [
                    ("plain first".to_string(), 1),
                    ("second".to_string(), 2),
                    (" tail".to_string(), 0),
                ]
            );
            drop(a);
            let mut fds = Vec::new();
            assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 0, "EOF");
            assert!(fds.is_empty());
        },
        "messages with and without fds",
    ));
}

#[test]
fn bad_input_is_refused_in_our_words_and_nothing_is_sent() {
    overlap::block_on(within(
        HANG,
        async {
            let (a, b) = UnixStream::pair().unwrap();
            let null = std::fs::File::open("/dev/null").unwrap();
            let err = a.send_with_fds(b"", &[null.as_fd()]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("at least one byte"), "{err}");
            assert_eq!(a.send_with_fds(b"", &[]).await.unwrap(), 0);

            let too_many: Vec<BorrowedFd<'_>> = (0..254).map(|_| null.as_fd()).collect();
            let err = a.send_with_fds(b"x", &too_many).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("at most 253"), "{err}");
            let (d, _e) = UnixDatagram::pair().unwrap();
            let err = d.send_with_fds(b"x", &too_many).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);

            // The most one message carries goes, and arrives whole.
            a.send_with_fds(b"y", &too_many[..253]).await.unwrap();
            let mut fds = Vec::new();
            let mut buf = [0u8; 8];
            assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 1);
            assert_eq!(
                (buf[0], fds.len()),
                (b'y', 253),
                "nothing of the refused ones"
            );
            assert_eq!(b.recv_with_fds(&mut [], &mut fds).await.unwrap(), 0);
        },
        "refused sends",
    ));
}

#[test]
fn a_datagram_carries_fds_even_empty_and_an_unconnected_one_says_so() {
    overlap::block_on(within(
        HANG,
        async {
            let (a, b) = UnixDatagram::pair().unwrap();
            let (pipe_read, pipe_write) = support::pipe();
            a.send_with_fds(b"", &[pipe_write.as_fd()]).await.unwrap();
            a.send_with_fds(b"no fds", &[]).await.unwrap();
            drop(pipe_write);
            let mut fds = Vec::new();
            let mut buf = [0u8; 16];
            assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 0);
            assert_eq!(fds.len(), 1);
            assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 6);
            assert_eq!(fds.len(), 1, "the second datagram brought none");
            assert_write_end_of(fds.pop().unwrap(), pipe_read);

            let lone = UnixDatagram::unbound().unwrap();
            let null = std::fs::File::open("/dev/null").unwrap();
            let err = lone.send_with_fds(b"x", &[null.as_fd()]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
        },
        "datagrams with fds",
    ));
}

/// The receiver has room for one more descriptor and three come: the kernel installs what
/// fits and closes the rest. The call fails, closing the one it got, and the process has
/// the descriptors it had; the stream then goes on with the next message.
#[test]
fn a_receiver_out_of_descriptors_gets_an_error_and_leaks_none() {
    support::run_in_child(
        "a_receiver_out_of_descriptors_gets_an_error_and_leaks_none",
        || {
            overlap::block_on(within(
                HANG,
                async {
                    let (a, b) = UnixStream::pair().unwrap();
                    let null = std::fs::File::open("/dev/null").unwrap();
                    a.send_with_fds(b"three", &[null.as_fd(); 3]).await.unwrap();
                    a.send_with_fds(b"next", &[]).await.unwrap();
                    let before = support::open_fds();
                    // Room for exactly one more fd.
                    support::set_soft_nofile(support::lowest_free_fd() as u64 + 1);
                    let mut fds = Vec::new();
                    let mut buf = [0u8; 16];
                    let err = b.recv_with_fds(&mut buf, &mut fds).await.unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
                    assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
                    assert!(fds.is_empty());
                    assert_eq!(support::open_fds(), before, "none kept, none leaked");
                    let n = b.recv_with_fds(&mut buf, &mut fds).await.unwrap();
                    assert_eq!(&buf[..n], b"next");
                },
                "the receive with no room for fds",
            ));
        },
    );
}

/// A `UnixStream` adopted from a socket never connected: `recv_with_fds` says what `read`
/// says (not connected), not the kernel's bare "Invalid argument".
#[test]
fn recv_with_fds_on_an_unconnected_stream_says_not_connected() {
    overlap::block_on(within(
        HANG,
        async {
            // SAFETY: socket takes no pointer; a returned fd is new and ours alone.
            let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
            assert!(raw >= 0);
            // SAFETY: `raw` is an open fd owned by nothing else.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) };
            let Ok(mut s) = UnixStream::try_from(fd) else {
                return; // refused at adoption: nothing to check
            };
            let mut fds = Vec::new();
            let err = s.recv_with_fds(&mut [0u8; 4], &mut fds).await.unwrap_err();
            let read_err = s.read(&mut [0u8; 4]).await.unwrap_err();
            assert_eq!(read_err.kind(), ErrorKind::NotConnected, "{read_err}");
            assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
        },
        "the unconnected receive",
    ));
}

/// The non-waiting calls, for a `readable()`/`writable()` loop: `WouldBlock` with nothing
/// queued (and the fds untouched), then the message with its fds, on a stream and a
/// datagram socket; bad input refused as by the waiting calls.
#[test]
fn try_send_and_try_recv_with_fds_pass_fds_without_waiting() {
    overlap::block_on(within(
        HANG,
        async {
            let null = std::fs::File::open("/dev/null").unwrap();
            let (a, b) = UnixStream::pair().unwrap();
            let mut fds = Vec::new();
            let mut buf = [0u8; 8];
            let err = b.try_recv_with_fds(&mut buf, &mut fds).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            let err = a.try_send_with_fds(b"", &[null.as_fd()]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            a.writable().await.unwrap();
            assert_eq!(a.try_send_with_fds(b"fd", &[null.as_fd()]).unwrap(), 2);
            b.readable().await.unwrap();
            assert_eq!(b.try_recv_with_fds(&mut buf, &mut fds).unwrap(), 2);
            assert_eq!((&buf[..2], fds.len()), (&b"fd"[..], 1));
            assert!(is_cloexec(&fds[0]));

            let (c, d) = UnixDatagram::pair().unwrap();
            let err = d.try_recv_with_fds(&mut buf, &mut fds).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            c.writable().await.unwrap();
            assert_eq!(c.try_send_with_fds(b"", &[null.as_fd(); 2]).unwrap(), 0);
            d.readable().await.unwrap();
            assert_eq!(d.try_recv_with_fds(&mut buf, &mut fds).unwrap(), 0);
            assert_eq!(fds.len(), 3);
            let too_many = [null.as_fd(); 254];
            let err = c.try_send_with_fds(b"x", &too_many).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        },
        "the non-waiting fd calls",
    ));
}

/// An unconnected datagram socket (a broker answering several workers at their bound
/// paths) sends fds to a path; a path where nobody listens is refused as `send_to` does.
#[test]
fn send_to_with_fds_reaches_a_bound_datagram_socket() {
    overlap::block_on(within(
        HANG,
        async {
            let dir = support::TempDir::new("send-to-fds");
            let server = UnixDatagram::bind(dir.join("server")).unwrap();
            let client = UnixDatagram::bind(dir.join("client")).unwrap();
            let (pipe_read, pipe_write) = support::pipe();
            let n = client
                .send_to_with_fds(b"take", &[pipe_write.as_fd()], dir.join("server"))
                .await
                .unwrap();
            assert_eq!(n, 4);
            drop(pipe_write);
            let mut fds = Vec::new();
            let mut buf = [0u8; 8];
            assert_eq!(server.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 4);
            assert_eq!((&buf[..4], fds.len()), (&b"take"[..], 1));
            assert_write_end_of(fds.pop().unwrap(), pipe_read);

            // The server learns whom to answer, with fds too.
            let null = std::fs::File::open("/dev/null").unwrap();
            client
                .send_to_with_fds(b"who", &[null.as_fd()], dir.join("server"))
                .await
                .unwrap();
            let (n, from) = server.recv_from_with_fds(&mut buf, &mut fds).await.unwrap();
            assert_eq!((&buf[..n], fds.len()), (&b"who"[..], 1));
            let from = from.as_pathname().unwrap().to_path_buf();
            assert_eq!(from, dir.join("client"));
            server.send_to_with_fds(b"you", &[], &from).await.unwrap();
            assert_eq!(client.recv(&mut buf).await.unwrap(), 3);

            let err = server
                .send_to_with_fds(b"x", &[null.as_fd()], dir.join("nobody"))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
            let err = server
                .send_to_with_fds(b"x", &[null.as_fd(); 254], dir.join("client"))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        },
        "the send_to with fds",
    ));
}

/// A send too big for the socket's buffer goes in part, as a write does, its fds with the
/// first part: the rest written plainly arrives after them, byte-exact, with no fds.
#[test]
fn a_short_send_with_fds_carries_the_fds_with_its_first_part() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, b) = UnixStream::pair().unwrap();
            let data = support::pattern(4 << 20);
            let null = std::fs::File::open("/dev/null").unwrap();
            let sent = a.send_with_fds(&data, &[null.as_fd()]).await.unwrap();
            assert!(sent > 0 && sent < data.len(), "{sent}");
            let reader = overlap::spawn(async move {
                let (mut got, mut fds) = (Vec::new(), Vec::new());
                let mut buf = vec![0u8; 64 << 10];
                let mut fds_at = Vec::new();
                loop {
                    let n = b.recv_with_fds(&mut buf, &mut fds).await.unwrap();
                    if n == 0 {
                        return (got, fds.len(), fds_at);
                    }
                    if fds.len() > fds_at.len() {
                        fds_at.push(got.len());
                    }
                    got.extend_from_slice(&buf[..n]);
                }
            });
            a.write_all(&data[sent..]).await.unwrap();
            a.close().await.unwrap();
            let (got, nfds, fds_at) = reader.await.unwrap();
            assert_eq!(
                (nfds, fds_at),
                (1, vec![0]),
                "the fd came with the first bytes"
            );
            assert!(got == data, "byte-exact");
        },
        "the short send with fds",
    ));
}

fn own_cred() -> UCred {
    // SAFETY: getpid, geteuid and getegid take nothing and cannot fail.
    let (pid, uid, gid) = unsafe { (libc::getpid(), libc::geteuid(), libc::getegid()) };
    UCred { pid, uid, gid }
}

#[test]
fn datagrams_carry_their_senders_credentials_once_asked() {
    overlap::block_on(within(
        HANG,
        async {
            let (a, b) = UnixDatagram::pair().unwrap();
            assert!(!b.passcred().unwrap());
            a.send(b"before").await.unwrap();
            let mut buf = [0u8; 16];
            let (n, cred) = b.recv_with_cred(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], cred), (&b"before"[..], None), "not asked for");

            // Queued before it was asked for: the kernel attached none (it says so as pid
            // 0 with the overflow ids, which must not read as a sender's).
            a.send(b"queued").await.unwrap();
            b.set_passcred(true).unwrap();
            assert!(b.passcred().unwrap());
            let (n, cred) = b.recv_with_cred(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], cred), (&b"queued"[..], None));
            a.send(b"READY=1").await.unwrap();
            let (n, cred) = b.recv_with_cred(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], cred), (&b"READY=1"[..], Some(own_cred())));

            // A plain receive still works and the fd-passing one skips the credentials.
            a.send(b"plain").await.unwrap();
            let mut fds = Vec::new();
            assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 5);
            assert!(fds.is_empty());
            b.set_passcred(false).unwrap();
            assert!(!b.passcred().unwrap());
        },
        "credentials",
    ));
}

#[test]
fn credentials_name_the_process_that_sent_not_the_receiver() {
    overlap::block_on(within(
        HANG,
        async {
            let (tx, rx) = UnixDatagram::pair().unwrap();
            rx.set_passcred(true).unwrap();
            // SAFETY: the child only calls send(2) and _exit(2), both async-signal-safe, on
            // a socket it inherited; it touches no lock or allocator of the parent's.
            let child = unsafe { libc::fork() };
            assert!(child >= 0, "fork failed");
            if child == 0 {
                // SAFETY: a valid socket fd and a static buffer; _exit never returns.
                unsafe {
                    libc::send(tx.as_raw_fd(), b"child".as_ptr().cast(), 5, 0);
                    libc::_exit(0);
                }
            }
            let mut status = 0;
            // SAFETY: waits for our own child, writing its status into a local.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            let mut buf = [0u8; 8];
            let (n, cred) = rx.recv_with_cred(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"child");
            let cred = cred.expect("credentials asked for before the send");
            assert_eq!(cred.pid, child, "the sender's pid, not ours");
            assert_eq!((cred.uid, cred.gid), (own_cred().uid, own_cred().gid));
        },
        "child's datagram",
    ));
}

#[test]
fn a_bound_receiver_gets_credentials_and_the_senders_path() {
    overlap::block_on(within(
        HANG,
        async {
            let dir = support::TempDir::new("unix-cred");
            let rx_path = dir.path().join("notify.sock");
            let tx_path = dir.path().join("service.sock");
            let rx = UnixDatagram::bind(&rx_path).unwrap();
            rx.set_passcred(true).unwrap();
            let tx = UnixDatagram::bind(&tx_path).unwrap();
            tx.send_to(b"WATCHDOG=1", &rx_path).await.unwrap();
            let mut buf = [0u8; 32];
            let (n, from, cred) = rx.recv_from_with_cred(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"WATCHDOG=1");
            assert_eq!(from.as_pathname(), Some(tx_path.as_path()));
            assert_eq!(cred, Some(own_cred()));
        },
        "bound credentials",
    ));
}

#[test]
fn stream_bytes_carry_their_writers_credentials() {
    overlap::block_on(within(
        HANG,
        async {
            let (mut a, b) = UnixStream::pair().unwrap();
            b.set_passcred(true).unwrap();
            assert!(b.passcred().unwrap() && !a.passcred().unwrap());
            a.write_all(b"hello").await.unwrap();
            let mut buf = [0u8; 16];
            let (n, cred) = b.recv_with_cred(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], cred), (&b"hello"[..], Some(own_cred())));
            assert_eq!(b.recv_with_cred(&mut []).await.unwrap(), (0, None));
            drop(a);
            assert_eq!(
                b.recv_with_cred(&mut buf).await.unwrap().0,
                0,
                "end of file"
            );
        },
        "stream credentials",
    ));
}

#[test]
fn one_receive_gets_a_childs_descriptors_and_its_credentials() {
    overlap::block_on(within(
        HANG,
        async {
            let (tx, rx) = UnixDatagram::pair().unwrap();
            rx.set_passcred(true).unwrap();
            let (read_end, write_end) = support::pipe();
            // The message is built before the fork: the child must not allocate.
            let data = b"FDSTORE=1";
            let mut iov = libc::iovec {
                iov_base: data.as_ptr() as *mut _,
                iov_len: data.len(),
            };
            let mut control = [0u64; 4];
            // SAFETY: an all-zero msghdr is valid; it is filled in below.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes; 32 bytes of control hold one
            // header and one fd, so CMSG_FIRSTHDR is non-null and its data holds a RawFd.
            unsafe {
                msg.msg_controllen = libc::CMSG_SPACE(4) as _;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(4) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), write_end.as_raw_fd());
            }
            // SAFETY: the child only calls sendmsg(2) on a message built above and
            // _exit(2), both async-signal-safe; it touches no lock of the parent's.
            let child = unsafe { libc::fork() };
            assert!(child >= 0, "fork failed");
            if child == 0 {
                // SAFETY: `msg` points at live buffers; _exit never returns.
                unsafe {
                    let sent = libc::sendmsg(tx.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
                    libc::_exit(i32::from(sent != data.len() as isize));
                }
            }
            drop(write_end);
            let mut status = 0;
            // SAFETY: waits for our own child, writing its status into a local.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            assert_eq!(status, 0, "the child's sendmsg failed");
            let (mut buf, mut fds) = ([0u8; 32], Vec::new());
            let (n, cred) = rx.recv_with_fds_and_cred(&mut buf, &mut fds).await.unwrap();
            assert_eq!(&buf[..n], b"FDSTORE=1");
            let cred = cred.expect("credentials asked for before the send");
            assert_eq!(cred.pid, child, "the sender's pid, not ours");
            assert_eq!(fds.len(), 1, "the descriptor was kept, not closed");
            assert!(is_cloexec(&fds[0]));
            assert_write_end_of(fds.pop().unwrap(), read_end);

            // Without descriptors, and without credentials once no longer asked for.
            tx.send(b"READY=1").await.unwrap();
            let (n, cred) = rx.recv_with_fds_and_cred(&mut buf, &mut fds).await.unwrap();
            assert_eq!(
                (&buf[..n], cred, fds.len()),
                (&b"READY=1"[..], Some(own_cred()), 0)
            );
            rx.set_passcred(false).unwrap();
            tx.send(b"STATUS=x").await.unwrap();
            let (n, cred) = rx.recv_with_fds_and_cred(&mut buf, &mut fds).await.unwrap();
            assert_eq!((&buf[..n], cred), (&b"STATUS=x"[..], None));
        },
        "descriptors with credentials",
    ));
}
