//! A user's privilege-separated file and socket broker, in the style of OpenSSH's privsep
//! monitor or systemd-socket-proxyd: the first real user of `UnixStream::send_with_fds` /
//! `recv_with_fds`. The broker (`port_user8_fd_broker/broker.rs`, a thread with its own
//! runtime) owns a directory and a TCP listener; a worker (`worker.rs`) asks over a Unix
//! stream with request lines — `OPEN path r|w|a`, `ACCEPT`, `PIPE`, `NULLS n`, several
//! joined by `;` as a batch — and gets `OK n` with the n fds attached to that line, or
//! `ERR reason` with none. The broker refuses paths leaving its directory (absolute, `..`,
//! a symlink as the last component or on the way), closes fds a worker sends unasked, and
//! ends a connection on garbage too long for a line or a close mid-line.
//!
//! The tokio version: tokio has no fd-passing API, so the same loop would wrap
//! `libc::sendmsg`/`recvmsg` with a hand-built `SCM_RIGHTS` control buffer in
//! `stream.async_io(Interest::WRITABLE, || ..)` (or use the `sendfd`/`passfd` crates,
//! which do the same on a blocking-or-readiness basis), remember `MSG_CMSG_CLOEXEC` and
//! `MSG_CTRUNC` itself, and adopt an accepted socket with
//! `TcpStream::from_std(std::net::TcpStream::from(fd))` after `set_nonblocking(true)`.
//!
//! The tests check, with exact bytes: the worker reads and writes files only inside the
//! directory, with a clear refusal otherwise; ten TCP clients echo byte-exact through
//! connections accepted by the broker and served by the worker; the fds arrive
//! close-on-exec and a child the worker spawns has none of them; fds sent unasked, answers
//! read with a plain `read` (the kernel closes their fds), 253 fds in one answer and 254
//! refused, garbage and a close mid-line leave both sides with exactly the fds they had;
//! a broker out of fds (`RLIMIT_NOFILE`) answers `ACCEPT` with a clear error and the
//! pending connection is served by the next `ACCEPT`.
//!
//! What the port changed, against tokio: the sendmsg/recvmsg code goes (overlap's calls
//! set close-on-exec, refuse more than 253 fds with `InvalidInput` before sending, and
//! turn `MSG_CTRUNC` into an error that closes the partial set). `TcpStream::try_from`
//! makes the adopted fd non-blocking itself. An unconnected stream's `recv_with_fds`
//! said "Invalid argument" where its `read` said not connected: fixed in overlap-net
//! (`tests/net_unix_fds.rs`), which also checks the new `try_send_with_fds` /
//! `try_recv_with_fds` (a `readable()`/`try_*` loop had no fd calls) and an unconnected
//! `UnixDatagram`'s `send_to_with_fds` / `recv_from_with_fds` (a datagram broker answering
//! several workers had neither). The halves of a
//! split stream have no fd calls of their own; `half.as_ref()` lends the stream for them
//! (now said in `UnixStream`'s docs), which this port did not need (both calls take
//! `&self`). A received pipe end goes to `overlap::pipe::{Receiver, Sender}::from_owned_fd`
//! and a file to `overlap::fs::File::from_std`, as with any fd. As in tokio, a broker
//! closing its end with request bytes still unread makes the worker's next read fail with
//! `ConnectionReset` (the kernel's way for Unix streams), so the test's too-long line is
//! one byte over the limit, read whole by the time the broker refuses it.

mod support;

#[path = "port_user8_fd_broker/broker.rs"]
mod broker;
#[path = "port_user8_fd_broker/worker.rs"]
mod worker;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use broker::Stats;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use support::{open_fds, run_in_child, within, TempDir};
use worker::ask;

const HANG: Duration = Duration::from_secs(20);

/// Starts a broker thread for `root`; returns the worker's end, the TCP address and the
/// thread, which ends with the broker's stats when the worker closes its end.
fn start(
    root: PathBuf,
) -> (
    std::os::unix::net::UnixStream,
    SocketAddr,
    JoinHandle<Stats>,
) {
    let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        overlap::block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let conn = UnixStream::from_std(theirs).unwrap();
            broker::serve(&root, &listener, conn).await
        })
    });
    (mine, rx.recv().unwrap(), thread)
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD takes an fd and no pointer; the fd is open (owned).
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0);
    flags & libc::FD_CLOEXEC != 0
}

fn one_fd(answer: worker::Answer) -> OwnedFd {
    let mut fds = answer.unwrap();
    assert_eq!(fds.len(), 1);
    fds.pop().unwrap()
}

#[test]
fn the_worker_opens_files_only_inside_the_dir() {
    let dir = TempDir::new("broker-files");
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("out-link")).unwrap();
    std::os::unix::fs::symlink("/tmp", dir.join("out-dir")).unwrap();
    let (conn, _, thread) = start(dir.path().to_path_buf());
    overlap::block_on(within(
        HANG,
        async {
            let conn = UnixStream::from_std(conn).unwrap();
            let w = one_fd(ask(&conn, "OPEN sub/note w").await.unwrap());
            std::fs::File::from(w).write_all(b"inside").unwrap();
            let r = one_fd(ask(&conn, "OPEN sub/note r").await.unwrap());
            let mut got = String::new();
            let mut r = overlap::fs::File::from_std(std::fs::File::from(r));
            r.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "inside");
            // A batch: both files in one answer.
            let fds = ask(&conn, "OPEN sub/note r; OPEN sub/note a")
                .await
                .unwrap();
            assert_eq!(fds.unwrap().len(), 2);
            for (req, why) in [
                ("OPEN ../escape w", "outside the allowed dir"),
                ("OPEN /etc/hostname r", "outside the allowed dir"),
                ("OPEN sub/../../escape w", "outside the allowed dir"),
                ("OPEN out-dir/x w", "outside the allowed dir"),
                ("OPEN out-link r", "Too many levels of symbolic links"),
                ("OPEN sub/note x", "mode is r, w or a"),
                (
                    "OPEN sub/note r; OPEN ../x r",
                    "OPEN ../x r: outside the allowed dir",
                ),
                ("HELLO", "unknown request"),
            ] {
                let err = ask(&conn, req).await.unwrap().unwrap_err();
                assert!(err.contains(why), "{req}: {err}");
            }
            assert!(!dir.path().parent().unwrap().join("escape").exists());
        },
        "the file requests",
    ));
    let stats = thread.join().unwrap();
    assert_eq!(
        stats,
        Stats {
            answered: 11,
            unsolicited_fds: 0
        }
    );
}

#[test]
fn ten_tcp_clients_echo_through_connections_handed_over() {
    let dir = TempDir::new("broker-tcp");
    let (conn, addr, thread) = start(dir.path().to_path_buf());
    let clients = std::thread::spawn(move || {
        (0..10u8)
            .map(|i| {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                let msg = support::pattern_seeded(1000 + i as usize * 777, i as u32);
                c.write_all(&msg).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
                let mut back = Vec::new();
                c.read_to_end(&mut back).unwrap();
                back == msg
            })
            .collect::<Vec<bool>>()
    });
    overlap::block_on(within(
        HANG,
        async {
            let conn = UnixStream::from_std(conn).unwrap();
            for _ in 0..10 {
                let fd = one_fd(ask(&conn, "ACCEPT").await.unwrap());
                assert!(is_cloexec(&fd));
                let mut tcp = TcpStream::try_from(fd).unwrap();
                let mut all = Vec::new();
                tcp.read_to_end(&mut all).await.unwrap();
                tcp.write_all(&all).await.unwrap();
            }
        },
        "the served connections",
    ));
    assert_eq!(clients.join().unwrap(), [true; 10]);
    thread.join().unwrap();
}

#[test]
fn fds_arrive_close_on_exec_and_a_spawned_child_inherits_none() {
    let dir = TempDir::new("broker-cloexec");
    let (conn, _, thread) = start(dir.path().to_path_buf());
    overlap::block_on(within(
        HANG,
        async {
            let conn = UnixStream::from_std(conn).unwrap();
            let fds = ask(&conn, "PIPE; OPEN f w").await.unwrap().unwrap();
            assert_eq!(fds.len(), 3);
            assert!(fds.iter().all(is_cloexec));
            // Compare what the fds point at, not their numbers: `ls` opens /proc/self/fd
            // itself, and that descriptor may take the number one of ours has here.
            let ours: Vec<String> = fds
                .iter()
                .map(|fd| {
                    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
                    std::fs::read_link(link).unwrap().display().to_string()
                })
                .collect();
            let out = std::process::Command::new("ls")
                .args(["-l", "/proc/self/fd"])
                .output()
                .unwrap();
            let listing = String::from_utf8(out.stdout).unwrap();
            let child: Vec<&str> = listing
                .lines()
                .filter_map(|l| l.split_once(" -> ").map(|(_, target)| target))
                .collect();
            assert!(child.len() >= 3, "{listing}");
            for target in &ours {
                assert!(!child.contains(&target.as_str()), "{target} in {listing}");
            }
            // The pipe's ends, adopted by overlap's pipe types, carry bytes to each other.
            let mut fds = fds.into_iter();
            let mut rx = overlap::pipe::Receiver::from_owned_fd(fds.next().unwrap()).unwrap();
            let mut tx = overlap::pipe::Sender::from_owned_fd(fds.next().unwrap()).unwrap();
            tx.write_all(b"through the broker's pipe").await.unwrap();
            drop(tx);
            let mut got = String::new();
            rx.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "through the broker's pipe");
        },
        "the close-on-exec check",
    ));
    thread.join().unwrap();
}

/// Fds sent unasked, answers read with a plain `read`, the most fds one answer carries and
/// one more, garbage and a close mid-line: both sides end with exactly the fds they had.
#[test]
fn unasked_fds_plain_reads_and_garbage_leak_nothing() {
    run_in_child("unasked_fds_plain_reads_and_garbage_leak_nothing", || {
        let dir = TempDir::new("broker-leaks");
        let before = open_fds();
        let (conn, _, thread) = start(dir.path().to_path_buf());
        overlap::block_on(within(
            HANG,
            async {
                let mut conn = UnixStream::from_std(conn).unwrap();
                let null = std::fs::File::open("/dev/null").unwrap();
                let unasked = [std::os::fd::AsFd::as_fd(&null); 5];
                conn.send_with_fds(b"PIPE\n", &unasked).await.unwrap();
                drop(null);
                let pipe = worker::read_answer(&conn).await.unwrap().unwrap();
                assert_eq!(pipe.len(), 2);
                drop(pipe);

                // A plain read takes the line; the kernel closes the two fds with it.
                conn.write_all(b"PIPE\n").await.unwrap();
                let mut buf = [0u8; 16];
                let n = conn.read(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"OK 2\n");

                let fds = ask(&conn, "NULLS 253").await.unwrap().unwrap();
                assert_eq!(fds.len(), 253);
                assert!(fds.iter().all(is_cloexec));
                drop(fds);
                let err = ask(&conn, "NULLS 254").await.unwrap().unwrap_err();
                assert!(err.contains("at most 253"), "{err}");
                let err = ask(&conn, "\u{1}\u{2}\u{ff}").await.unwrap().unwrap_err();
                assert!(err.contains("unknown request"), "{err}");

                // Half a request, then gone: the broker ends without answering.
                conn.write_all(b"OPEN half").await.unwrap();
            },
            "the leak checks",
        ));
        let stats = thread.join().unwrap();
        assert_eq!(
            stats,
            Stats {
                answered: 5,
                unsolicited_fds: 5
            }
        );
        assert_eq!(open_fds(), before, "no fd left on either side");

        // A line longer than the broker reads: a clear refusal, then the end.
        let (conn, _, thread) = start(dir.path().to_path_buf());
        overlap::block_on(within(
            HANG,
            async {
                let mut conn = UnixStream::from_std(conn).unwrap();
                conn.write_all(&[b'x'; broker::MAX_LINE + 1]).await.unwrap();
                let err = worker::read_answer(&conn).await.unwrap().unwrap_err();
                assert_eq!(err, "request line too long");
                let mut rest = Vec::new();
                conn.read_to_end(&mut rest).await.unwrap();
                assert!(rest.is_empty());
            },
            "the long line",
        ));
        assert_eq!(thread.join().unwrap(), Stats::default());
        assert_eq!(open_fds(), before, "no fd left on either side");
    });
}

/// The broker at its `RLIMIT_NOFILE` cannot accept: the worker gets a clear error, the
/// connection stays queued, and the next `ACCEPT` hands it over whole.
#[test]
fn a_broker_out_of_fds_refuses_accept_clearly_and_keeps_the_connection() {
    run_in_child(
        "a_broker_out_of_fds_refuses_accept_clearly_and_keeps_the_connection",
        || {
            let dir = TempDir::new("broker-nofile");
            let before = open_fds();
            let (conn, addr, thread) = start(dir.path().to_path_buf());
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            client.write_all(b"queued").unwrap();
            client.shutdown(std::net::Shutdown::Write).unwrap();
            overlap::block_on(within(
                HANG,
                async {
                    let conn = UnixStream::from_std(conn).unwrap();
                    let limit = support::raise_nofile();
                    support::set_soft_nofile(support::lowest_free_fd() as u64);
                    let err = ask(&conn, "ACCEPT").await.unwrap().unwrap_err();
                    assert!(err.contains("ACCEPT: Too many open files"), "{err}");
                    support::set_soft_nofile(limit);
                    let fd = one_fd(ask(&conn, "ACCEPT").await.unwrap());
                    let mut tcp = TcpStream::try_from(fd).unwrap();
                    let mut got = Vec::new();
                    tcp.read_to_end(&mut got).await.unwrap();
                    assert_eq!(got, b"queued");
                    tcp.write_all(b"served").await.unwrap();
                },
                "the accept at the fd limit",
            ));
            let mut back = Vec::new();
            client.read_to_end(&mut back).unwrap();
            assert_eq!(back, b"served");
            thread.join().unwrap();
            drop(client);
            assert_eq!(open_fds(), before, "the refused accept left nothing open");
        },
    );
}
