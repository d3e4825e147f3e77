//! Passing descriptors over Unix sockets leaks none and loses none: descriptors already in
//! the caller's `Vec` through a receive with no room for the new ones; receives that
//! return no descriptors (`recv_with_cred`, a plain read or `recv`) close those that came;
//! a closed descriptor in a set is refused with nothing sent; receives polled once and
//! dropped take nothing; a pidfd the kernel adds to each message (`SO_PASSPIDFD`, which
//! no call returns) is closed, and leaves room for the most descriptors.
//!
//! Each test counts this process's open descriptors, so each runs alone in a child
//! process of its own: no other test opens or closes one meanwhile.

mod support;

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::{UnixDatagram, UnixStream};
use support::{borrow_all, distinct_files, inodes, open_fds, own_ucred, poll_once, within};

const HANG: Duration = Duration::from_secs(30);

/// on a stream and a datagram socket; no descriptor leaks, and a later receive appends.
#[test]
fn fds_already_in_the_vec_survive_a_receive_with_no_room() {
    support::run_in_child(
        "fds_already_in_the_vec_survive_a_receive_with_no_room",
        || {
            overlap::block_on(within(
                HANG,
                async {
                    let files = distinct_files(5);
                    let (s1, s2) = UnixStream::pair().unwrap();
                    let (d1, d2) = UnixDatagram::pair().unwrap();
                    d2.set_passcred(true).unwrap();
                    s1.send_with_fds(b"three", &borrow_all(&files[..3]))
                        .await
                        .unwrap();
                    s1.send_with_fds(b"one", &borrow_all(&files[3..4]))
                        .await
                        .unwrap();
                    d1.send_with_fds(b"three", &borrow_all(&files[..3]))
                        .await
                        .unwrap();
                    d1.send_with_fds(b"one", &borrow_all(&files[4..]))
                        .await
                        .unwrap();
                    let mut held: Vec<OwnedFd> = distinct_files(2);
                    let held_inodes = inodes(&held);
                    let before = open_fds();
                    // Room for exactly one more fd.
                    support::set_soft_nofile(support::lowest_free_fd() as u64 + 1);

                    let mut buf = [0u8; 8];
                    let err = s2.recv_with_fds(&mut buf, &mut held).await.unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
                    assert_eq!(inodes(&held), held_inodes, "the stream's receive");
                    assert_eq!(open_fds(), before, "the stream's receive");
                    let err = d2.recv_with_fds(&mut buf, &mut held).await.unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
                    assert_eq!(inodes(&held), held_inodes, "the datagram's receive");
                    assert_eq!(open_fds(), before, "the datagram's receive");

                    assert_eq!(s2.recv_with_fds(&mut buf, &mut held).await.unwrap(), 3);
                    assert_eq!(&buf[..3], b"one");
                    assert_eq!(inodes(&held[2..]), inodes(&files[3..4]));
                    held.truncate(2);
                    let (n, cred) = d2
                        .recv_with_fds_and_cred(&mut buf, &mut held)
                        .await
                        .unwrap();
                    assert_eq!((&buf[..n], cred), (&b"one"[..], Some(own_ucred())));
                    assert_eq!(inodes(&held[..2]), held_inodes);
                    assert_eq!(inodes(&held[2..]), inodes(&files[4..]));
                    held.truncate(2);
                    assert_eq!(open_fds(), before, "what was received and dropped");
                },
                "receives with no room",
            ));
        },
    );
}

/// socket; the data arrives whole.
#[test]
fn receives_that_return_no_fds_close_those_that_came() {
    support::run_in_child("receives_that_return_no_fds_close_those_that_came", || {
        overlap::block_on(within(
            HANG,
            async {
                let files = distinct_files(3);
                let fds = borrow_all(&files);
                let (d1, d2) = UnixDatagram::pair().unwrap();
                let (s1, mut s2) = UnixStream::pair().unwrap();
                d2.set_passcred(true).unwrap();
                s2.set_passcred(true).unwrap();
                for data in [b"cred", b"recv"] {
                    d1.send_with_fds(data, &fds).await.unwrap();
                }
                s1.send_with_fds(b"cred", &fds).await.unwrap();
                s1.send_with_fds(b"read", &fds).await.unwrap();
                let before = open_fds();
                let mut buf = [0u8; 8];
                let (n, cred) = d2.recv_with_cred(&mut buf).await.unwrap();
                assert_eq!((&buf[..n], cred), (&b"cred"[..], Some(own_ucred())));
                assert_eq!(open_fds(), before, "recv_with_cred on a datagram");
                assert_eq!(d2.recv(&mut buf).await.unwrap(), 4);
                assert_eq!((&buf[..4], open_fds()), (&b"recv"[..], before), "recv");
                let (n, cred) = s2.recv_with_cred(&mut buf).await.unwrap();
                assert_eq!((&buf[..n], cred), (&b"cred"[..], Some(own_ucred())));
                assert_eq!(open_fds(), before, "recv_with_cred on a stream");
                assert_eq!(s2.read(&mut buf).await.unwrap(), 4);
                assert_eq!((&buf[..4], open_fds()), (&b"read"[..], before), "read");
            },
            "receives without fds",
        ));
    });
}

/// non-waiting calls; nothing was sent, and the socket still works.
#[test]
fn a_closed_fd_is_refused_and_nothing_is_sent() {
    support::run_in_child("a_closed_fd_is_refused_and_nothing_is_sent", || {
        overlap::block_on(within(
            HANG,
            async {
                let dir = support::TempDir::new("closed-fd");
                let null = std::fs::File::open("/dev/null").unwrap();
                // The highest number the limit allows: the kernel hands out the lowest
                // free one, so it stays closed while the test opens others.
                let closed = (support::raise_nofile().min(1 << 20) - 1) as RawFd;
                // SAFETY: `closed` is no open fd; the kernel only checks it and refuses it.
                let gone = unsafe { BorrowedFd::borrow_raw(closed) };
                let set = [null.as_fd(), gone];
                let ebadf = |e: std::io::Error| assert_eq!(e.raw_os_error(), Some(libc::EBADF));
                let (a, b) = UnixStream::pair().unwrap();
                ebadf(a.send_with_fds(b"x", &set).await.unwrap_err());
                ebadf(a.try_send_with_fds(b"x", &set).unwrap_err());
                let (c, d) = UnixDatagram::pair().unwrap();
                ebadf(c.send_with_fds(b"x", &set).await.unwrap_err());
                ebadf(c.try_send_with_fds(b"", &set).unwrap_err());
                let server = UnixDatagram::bind(dir.join("server")).unwrap();
                let lone = UnixDatagram::unbound().unwrap();
                let to = dir.join("server");
                ebadf(lone.send_to_with_fds(b"x", &set, &to).await.unwrap_err());

                let mut fds = Vec::new();
                let mut buf = [0u8; 8];
                let err = b.try_recv_with_fds(&mut buf, &mut fds).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "nothing on the stream");
                let err = d.try_recv_with_fds(&mut buf, &mut fds).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "nothing on the pair");
                let err = server.try_recv_with_fds(&mut buf, &mut fds).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::WouldBlock, "nothing at the path");

                a.send_with_fds(b"ok", &set[..1]).await.unwrap();
                assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 2);
                c.send_with_fds(b"", &[]).await.unwrap();
                assert_eq!(d.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 0);
                assert_eq!(fds.len(), 1, "the empty datagram brought none");
            },
            "closed fds",
        ));
    });
}

/// and leaks nothing: the next receive gets the message with all its descriptors.
#[test]
fn dropped_receives_lose_no_fds() {
    support::run_in_child("dropped_receives_lose_no_fds", || {
        overlap::block_on(within(
            HANG,
            async {
                let files = distinct_files(4);
                let want = inodes(&files);
                let (a, b) = UnixStream::pair().unwrap();
                let (c, d) = UnixDatagram::pair().unwrap();
                d.set_passcred(true).unwrap();
                let (mut buf, mut fds) = ([0u8; 8], Vec::new());
                let before = open_fds();
                {
                    let mut recv = Box::pin(b.recv_with_fds(&mut buf, &mut fds));
                    assert!(poll_once(recv.as_mut()).await.is_pending());
                    a.send_with_fds(b"s", &borrow_all(&files)).await.unwrap();
                }
                for _ in 0..2 {
                    let mut recv = Box::pin(d.recv_with_fds(&mut buf, &mut fds));
                    assert!(poll_once(recv.as_mut()).await.is_pending());
                    drop(recv);
                    let mut recv = Box::pin(d.recv_from_with_fds(&mut buf, &mut fds));
                    assert!(poll_once(recv.as_mut()).await.is_pending());
                    drop(recv);
                    let mut recv = Box::pin(d.recv_with_fds_and_cred(&mut buf, &mut fds));
                    assert!(poll_once(recv.as_mut()).await.is_pending());
                }
                c.send_with_fds(b"d", &borrow_all(&files)).await.unwrap();
                assert!(fds.is_empty(), "the dropped receives took nothing");
                assert_eq!(open_fds(), before, "nothing received yet");

                assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 1);
                assert_eq!((buf[0], inodes(&fds)), (b's', want.clone()));
                fds.clear();
                let (n, cred) = d.recv_with_fds_and_cred(&mut buf, &mut fds).await.unwrap();
                assert_eq!((&buf[..n], cred), (&b"d"[..], Some(own_ucred())));
                assert_eq!(inodes(&fds), want);
                fds.clear();
                assert_eq!(open_fds(), before, "all received, all closed");
            },
            "dropped receives",
        ));
    });
}

/// `SO_PASSPIDFD` (Linux 6.5), set on a socket by hand: the kernel adds to each message a
/// pidfd of its sender, in a control part of its own (`SCM_PIDFD`), already installed in
/// this process. No call returns it, so each receive must close it, leaving the message
/// and its descriptors alone; and the receive's control buffer must have room for it
/// beside the most descriptors and the credentials, or the whole message is lost.
#[test]
fn a_pidfd_the_kernel_adds_is_closed_and_costs_no_message() {
    support::run_in_child(
        "a_pidfd_the_kernel_adds_is_closed_and_costs_no_message",
        || {
            overlap::block_on(within(
                HANG,
                async {
                    const SO_PASSPIDFD: libc::c_int = 76;
                    let (a, b) = UnixDatagram::pair().unwrap();
                    let (c, d) = UnixStream::pair().unwrap();
                    for fd in [b.as_raw_fd(), d.as_raw_fd()] {
                        let on = support::set_int_option(fd, libc::SOL_SOCKET, SO_PASSPIDFD, 1);
                        match on {
                            Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => return,
                            on => on.unwrap(),
                        }
                    }
                    b.set_passcred(true).unwrap();
                    d.set_passcred(true).unwrap();
                    let files = distinct_files(253);
                    let one = borrow_all(&files[..1]);
                    let (mut buf, mut fds) = ([0u8; 16], Vec::new());
                    let before = open_fds();

                    a.send_with_fds(b"fds", &one).await.unwrap();
                    assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 3);
                    assert_eq!(inodes(&fds), inodes(&files[..1]), "recv_with_fds");
                    fds.clear();
                    assert_eq!(open_fds(), before, "recv_with_fds on a datagram");
                    a.send_with_fds(b"from", &one).await.unwrap();
                    let (n, _) = b.recv_from_with_fds(&mut buf, &mut fds).await.unwrap();
                    assert_eq!((n, fds.len()), (4, 1), "recv_from_with_fds");
                    fds.clear();
                    assert_eq!(open_fds(), before, "recv_from_with_fds");
                    a.send_with_fds(b"cred", &one).await.unwrap();
                    let (n, cred) = b.recv_with_cred(&mut buf).await.unwrap();
                    assert_eq!((n, cred), (4, Some(own_ucred())));
                    assert_eq!(open_fds(), before, "recv_with_cred on a datagram");
                    c.send_with_fds(b"stream", &one).await.unwrap();
                    assert_eq!(d.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 6);
                    assert_eq!(inodes(&fds), inodes(&files[..1]), "on a stream");
                    fds.clear();
                    assert_eq!(open_fds(), before, "recv_with_fds on a stream");

                    a.send_with_fds(b"FDSTORE=1", &borrow_all(&files))
                        .await
                        .unwrap();
                    let (n, cred) = b.recv_with_fds_and_cred(&mut buf, &mut fds).await.unwrap();
                    assert_eq!((&buf[..n], cred), (&b"FDSTORE=1"[..], Some(own_ucred())));
                    assert_eq!(
                        inodes(&fds),
                        inodes(&files),
                        "253 fds, credentials, a pidfd"
                    );
                    fds.clear();
                    assert_eq!(open_fds(), before, "recv_with_fds_and_cred");
                },
                "pidfds added by the kernel",
            ));
        },
    );
}
