//! An adversarial review of passing descriptors over Unix sockets (`SCM_RIGHTS`), adding
//! to `net_unix_fds` what it leaves out: every count from 1 to 253 (the control buffer's
//! size and alignment), in order and close-on-exec; the most descriptors together with
//! credentials; messages crafted with raw `sendmsg` (two rights parts in one message,
//! credentials before and after the rights, more than 253 in parts); a datagram cut by a
//! short buffer; stream reads cut short and stopping after the bytes that brought
//! descriptors; end of file after descriptors, and descriptors still queued for a
//! receiver that closes; senders with abstract and unnamed addresses. The tests that
//! count this process's descriptors are in `unix_fd_passing_leaks`.

mod support;

use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use overlap::net::{UnixDatagram, UnixStream};
use support::{
    borrow_all, distinct_files, inode, inodes, is_cloexec, own_cred, own_ucred, sendmsg_parts,
    within, Part,
};

const HANG: Duration = Duration::from_secs(30);

/// The most descriptors one message carries (the kernel's `SCM_MAX_FD`).
const MAX_FDS: usize = 253;

/// Every count of descriptors one message can carry crosses a datagram pair and a stream
/// whole, in the order sent, each one close-on-exec: the receive's control buffer is
/// big enough and aligned for all of them. The caller's `Vec` keeps what it held first.
#[test]
fn every_count_from_1_to_253_arrives_whole_in_order_and_close_on_exec() {
    overlap::block_on(within(
        HANG,
        async {
            let files = distinct_files(MAX_FDS);
            let sent = borrow_all(&files);
            let want: Vec<_> = files.iter().map(|f| inode(f.as_fd())).collect();
            let held = std::fs::File::open("/dev/null").unwrap();
            let held_inode = inode(held.as_fd());
            let mut fds = vec![OwnedFd::from(held)];

            let (a, b) = UnixDatagram::pair().unwrap();
            let mut buf = vec![0u8; MAX_FDS + 1];
            for n in 1..=MAX_FDS {
                let data = vec![n as u8; n];
                assert_eq!(a.send_with_fds(&data, &sent[..n]).await.unwrap(), n);
                assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), n);
                assert_eq!(&buf[..n], &data[..], "{n} fds");
                assert_eq!(inodes(&fds[1..]), want[..n], "{n} fds, in order");
                assert!(fds[1..].iter().all(is_cloexec), "{n} fds");
                fds.truncate(1);
            }

            let (c, d) = UnixStream::pair().unwrap();
            for n in [1, 2, 3, 4, 15, 16, 17, 63, 64, 65, 127, 128, 252, MAX_FDS] {
                assert_eq!(c.send_with_fds(b"s", &sent[..n]).await.unwrap(), 1);
                assert_eq!(d.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 1);
                assert_eq!(inodes(&fds[1..]), want[..n], "{n} fds on a stream");
                assert!(fds[1..].iter().all(is_cloexec), "{n} fds on a stream");
                fds.truncate(1);
            }
            assert_eq!(inodes(&fds), [held_inode], "what the Vec held first");
        },
        "every count of fds",
    ));
}

/// The most descriptors one message carries, with credentials asked for: both fit one
/// receive, the message is whole (a control buffer sized for the descriptors alone would
/// cut them and lose the message).
#[test]
fn the_most_fds_and_credentials_fit_one_receive() {
    overlap::block_on(within(
        HANG,
        async {
            let files = distinct_files(MAX_FDS);
            let want: Vec<_> = files.iter().map(|f| inode(f.as_fd())).collect();
            let (a, b) = UnixDatagram::pair().unwrap();
            b.set_passcred(true).unwrap();
            a.send_with_fds(b"FDSTORE=1", &borrow_all(&files))
                .await
                .unwrap();
            let (mut buf, mut fds) = ([0u8; 16], Vec::new());
            let (n, cred) = b.recv_with_fds_and_cred(&mut buf, &mut fds).await.unwrap();
            assert_eq!((&buf[..n], cred), (&b"FDSTORE=1"[..], Some(own_ucred())));
            assert_eq!(inodes(&fds), want);

            // The same on a stream, the plain receive skipping the credentials.
            let (c, d) = UnixStream::pair().unwrap();
            d.set_passcred(true).unwrap();
            c.send_with_fds(b"x", &borrow_all(&files)).await.unwrap();
            fds.clear();
            assert_eq!(d.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 1);
            assert_eq!(inodes(&fds), want);
        },
        "253 fds with credentials",
    ));
}

/// A peer that writes its own control data: two rights parts in one message arrive as one
/// set, in order; credentials before or after the rights arrive with them either way; more
/// than 253 in parts is refused by the kernel, and nothing arrives.
#[test]
fn crafted_control_data_arrives_as_one_set_with_its_credentials() {
    overlap::block_on(within(
        HANG,
        async {
            let files = distinct_files(5);
            let raw: Vec<RawFd> = files.iter().map(AsRawFd::as_raw_fd).collect();
            let want = inodes(&files);
            let (a, b) = UnixDatagram::pair().unwrap();
            b.set_passcred(true).unwrap();
            let parts = [Part::Rights(&raw[..2]), Part::Rights(&raw[2..])];
            assert_eq!(sendmsg_parts(a.as_raw_fd(), b"two", &parts).unwrap(), 3);
            let cred = Part::Cred(own_cred());
            let rights = Part::Rights(&raw[..3]);
            sendmsg_parts(a.as_raw_fd(), b"cred first", &[cred, rights]).unwrap();
            let cred = Part::Cred(own_cred());
            let rights = Part::Rights(&raw[3..]);
            sendmsg_parts(a.as_raw_fd(), b"cred last", &[rights, cred]).unwrap();

            let mut buf = [0u8; 16];
            for (data, range) in [("two", 0..5), ("cred first", 0..3), ("cred last", 3..5)] {
                let mut fds = Vec::new();
                let (n, cred) = b.recv_with_fds_and_cred(&mut buf, &mut fds).await.unwrap();
                assert_eq!((&buf[..n], cred), (data.as_bytes(), Some(own_ucred())));
                assert_eq!(inodes(&fds), want[range], "{data}");
            }

            let many = vec![raw[0]; 200];
            let more = vec![raw[1]; 54];
            let parts = [Part::Rights(&many), Part::Rights(&more)];
            let err = sendmsg_parts(a.as_raw_fd(), b"254", &parts).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
            let mut fds = Vec::new();
            let err = b.try_recv_with_fds(&mut buf, &mut fds).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "nothing was queued");
            assert!(fds.is_empty());
        },
        "crafted control data",
    ));
}

/// A datagram longer than the buffer is cut, as `recv` cuts it, and still hands over all
/// its descriptors; an empty buffer takes the datagram and its descriptors too. The next
/// datagram is whole.
#[test]
fn a_cut_datagram_still_hands_over_its_fds() {
    overlap::block_on(within(
        HANG,
        async {
            let files = distinct_files(3);
            let want = inodes(&files);
            let dir = support::TempDir::new("cut-datagram-fds");
            let server = UnixDatagram::bind(dir.join("server")).unwrap();
            let client = UnixDatagram::bind(dir.join("client")).unwrap();
            client.connect(dir.join("server")).unwrap();
            client
                .send_with_fds(b"abcdefghij", &borrow_all(&files))
                .await
                .unwrap();
            client
                .send_with_fds(b"klmnop", &borrow_all(&files[..1]))
                .await
                .unwrap();
            client
                .send_with_fds(b"qrs", &borrow_all(&files[1..]))
                .await
                .unwrap();
            client.send(b"whole").await.unwrap();

            let (mut small, mut fds) = ([0u8; 4], Vec::new());
            assert_eq!(server.recv_with_fds(&mut small, &mut fds).await.unwrap(), 4);
            assert_eq!((&small, inodes(&fds)), (b"abcd", want.clone()));
            fds.clear();
            let (n, from) = server
                .recv_from_with_fds(&mut small[..2], &mut fds)
                .await
                .unwrap();
            assert_eq!(
                (n, &small[..2], inodes(&fds)),
                (2, &b"kl"[..], want[..1].to_vec())
            );
            assert_eq!(from.as_pathname(), Some(dir.join("client").as_path()));
            fds.clear();
            assert_eq!(server.recv_with_fds(&mut [], &mut fds).await.unwrap(), 0);
            assert_eq!(inodes(&fds), want[1..], "the empty buffer's datagram");
            let mut buf = [0u8; 16];
            assert_eq!(server.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 5);
            assert_eq!((&buf[..5], fds.len()), (&b"whole"[..], 2));
        },
        "cut datagrams",
    ));
}

/// A stream read shorter than the bytes that brought descriptors takes them all with its
/// first part; the rest of those bytes bring none again (and are read on the way to the
/// next set, as plain bytes are). A read that took descriptors stops after their bytes,
/// before plain bytes and before the next set: one set per read, each taken once.
#[test]
fn stream_reads_take_each_set_once_and_stop_after_its_bytes() {
    overlap::block_on(within(
        HANG,
        async {
            let files = distinct_files(3);
            let want = inodes(&files);
            let (a, b) = UnixStream::pair().unwrap();
            a.send_with_fds(b"0123456789", &borrow_all(&files[..2]))
                .await
                .unwrap();
            a.send_with_fds(b"ab", &borrow_all(&files[2..]))
                .await
                .unwrap();
            a.send_with_fds(b"cd", &borrow_all(&files[..1]))
                .await
                .unwrap();
            a.send_with_fds(b"plain", &[]).await.unwrap();
            a.send_with_fds(b"ef", &borrow_all(&files[1..]))
                .await
                .unwrap();
            a.send_with_fds(b"tail", &[]).await.unwrap();
            drop(a);

            let mut reads = Vec::new();
            let mut buf = [0u8; 64];
            let mut limit = 4;
            loop {
                let mut fds = Vec::new();
                let n = b.recv_with_fds(&mut buf[..limit], &mut fds).await.unwrap();
                if n == 0 {
                    assert!(fds.is_empty(), "end of file brings no fds");
                    break;
                }
                reads.push((
                    String::from_utf8_lossy(&buf[..n]).into_owned(),
                    inodes(&fds),
                ));
                limit = buf.len();
            }
            let s = |s: &str| s.to_string();
            assert_eq!(
                reads,
                [
                    (s("0123"), want[..2].to_vec()),
                    (s("456789ab"), want[2..].to_vec()),
                    (s("cd"), want[..1].to_vec()),
                    (s("plainef"), want[1..].to_vec()),
                    (s("tail"), vec![]),
                ]
            );
        },
        "stream reads with fds",
    ));
}

/// Descriptors the caller's `Vec` held stay, open and first, when a receive fails for lack
/// of room (the kernel closes what it could not install; the call closes what it could),
/// The receives that return no descriptors (`recv_with_cred`, a plain read or `recv`)
/// close those that came: none is left open in this process, on a stream or a datagram
/// A peer that sends descriptors and closes: they arrive, then end of file, again and
/// again, with the `Vec` untouched. A receiver closed with descriptors still queued for
/// it lets them go: the pipe whose write end was in flight reads end of file.
#[test]
fn fds_before_end_of_file_arrive_and_queued_ones_go_with_the_receiver() {
    overlap::block_on(within(
        HANG,
        async {
            let (a, b) = UnixStream::pair().unwrap();
            let (read_end, write_end) = support::pipe();
            a.send_with_fds(b"bye", &[write_end.as_fd()]).await.unwrap();
            drop(a);
            let mut fds = distinct_files(1);
            let mut buf = [0u8; 8];
            assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 3);
            assert_eq!((&buf[..3], fds.len()), (&b"bye"[..], 2));
            assert_eq!(inode(fds[1].as_fd()), inode(write_end.as_fd()));
            for _ in 0..3 {
                assert_eq!(b.recv_with_fds(&mut buf, &mut fds).await.unwrap(), 0);
                assert_eq!(b.try_recv_with_fds(&mut buf, &mut fds).unwrap(), 0);
                assert_eq!(fds.len(), 2, "end of file brings none");
            }
            drop((fds, b));

            let (c, d) = UnixStream::pair().unwrap();
            c.send_with_fds(b"never read", &[write_end.as_fd()])
                .await
                .unwrap();
            drop(write_end);
            let (e, f) = UnixDatagram::pair().unwrap();
            let (read_end2, write_end2) = support::pipe();
            e.send_with_fds(b"never read", &[write_end2.as_fd()])
                .await
                .unwrap();
            drop(write_end2);
            let mut byte = [0u8; 1];
            let err = support::read(read_end.as_raw_fd(), &mut byte).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::WouldBlock,
                "the copy in flight is open"
            );
            drop(d);
            drop(f);
            assert_eq!(support::read(read_end.as_raw_fd(), &mut byte).unwrap(), 0);
            assert_eq!(support::read(read_end2.as_raw_fd(), &mut byte).unwrap(), 0);
            drop((c, e));
        },
        "fds and end of file",
    ));
}

/// A closed descriptor in the set is refused by the kernel (`EBADF`, never a panic), on a
/// stream, a connected and an unconnected datagram socket, and the waiting and the
/// A receive polled once, then dropped, before and after its message came, takes nothing
/// An abstract-named or unnamed sender: `recv_from_with_fds` names it and keeps the
/// descriptors (an address it could not name would cost them).
#[test]
fn recv_from_with_fds_names_abstract_and_unnamed_senders() {
    use std::os::linux::net::SocketAddrExt;
    overlap::block_on(within(
        HANG,
        async {
            let dir = support::TempDir::new("abstract-fds");
            let server = UnixDatagram::bind(dir.join("server")).unwrap();
            let name = format!("overlap-fd-review-{}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
            let abstract_sender = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
            let abstract_sender = UnixDatagram::from_std(abstract_sender).unwrap();
            let unnamed = UnixDatagram::unbound().unwrap();
            let files = distinct_files(2);
            let to = dir.join("server");
            abstract_sender
                .send_to_with_fds(b"abs", &borrow_all(&files), &to)
                .await
                .unwrap();
            unnamed
                .send_to_with_fds(b"anon", &borrow_all(&files[1..]), &to)
                .await
                .unwrap();
            let (mut buf, mut fds) = ([0u8; 8], Vec::new());
            let (n, from) = server.recv_from_with_fds(&mut buf, &mut fds).await.unwrap();
            assert_eq!((&buf[..n], inodes(&fds)), (&b"abs"[..], inodes(&files)));
            assert_eq!(from.as_abstract_name(), Some(name.as_bytes()));
            fds.clear();
            let (n, from) = server.recv_from_with_fds(&mut buf, &mut fds).await.unwrap();
            assert_eq!(
                (&buf[..n], inodes(&fds)),
                (&b"anon"[..], inodes(&files[1..]))
            );
            assert!(from.is_unnamed(), "{from:?}");
        },
        "senders' addresses with fds",
    ));
}
