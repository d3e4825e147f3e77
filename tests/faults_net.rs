//! overlap-net's syscalls failing with the errors the kernel (or an LSM, or a sandbox's
//! seccomp profile) really gives: `socket`/`socketpair` out of fds or denied, `setsockopt`
//! `EPERM`, `bind`/`listen`/`connect` refused, `getsockname`/`getpeername`/`getsockopt`
//! failing, `accept4` with `ENOBUFS`/`ENOMEM`/`EPERM`, the send and receive calls
//! (`sendto`, `sendmsg`, `sendmmsg`, `recvfrom`, `recvmsg`, `recvmmsg`) out of memory, and
//! `ioctl(FIONBIO)` refused in `from_std`. Each is an `io::Error` with the errno, returned
//! at once (no hang, no retry loop), no fd is left open, and the runtime goes on serving
//! other sockets. Each test installs a seccomp filter in a child process of its own; rules
//! aimed at one fd (its number as the first argument) leave the rest of the process alone.

mod support;

use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use futures_util::StreamExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{
    RecvBatch, TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use support::seccomp::{install, rule, rule_arg0};
use support::{
    expect_errno, lowest_free_fd, open_fds, run_in_child, still_serves, tcp_pair, within, TempDir,
};

const HANG: Duration = Duration::from_secs(10);

/// Every constructor that makes a socket fails with `errno`, and leaves no fd (nor socket
/// file) behind.
fn no_sockets(name: &str, errno: i32) {
    run_in_child(name, || {
        let dir = TempDir::new("faults-net-socket");
        overlap::block_on(async {
            let (mut a, mut b) = tcp_pair().await;
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let before = open_fds();
            install(&[
                rule(libc::SYS_socket, errno),
                rule(libc::SYS_socketpair, errno),
            ]);
            expect_errno("tcp bind", TcpListener::bind("127.0.0.1:0").await, errno);
            expect_errno("tcp connect", TcpStream::connect(addr).await, errno);
            expect_errno("udp bind", UdpSocket::bind("127.0.0.1:0").await, errno);
            expect_errno("TcpSocket", TcpSocket::new_v4(), errno);
            let path = dir.join("s");
            expect_errno("unix bind", UnixListener::bind(&path), errno);
            assert!(!path.exists(), "a socket file was left behind");
            expect_errno("unix connect", UnixStream::connect(&path).await, errno);
            expect_errno("unix datagram", UnixDatagram::unbound(), errno);
            expect_errno("unix pair", UnixStream::pair(), errno);
            expect_errno("datagram pair", UnixDatagram::pair(), errno);
            assert_eq!(open_fds(), before, "an fd leaked");
            still_serves(&mut a, &mut b).await;
        });
    });
}

#[test]
fn socket_out_of_fds() {
    no_sockets("socket_out_of_fds", libc::EMFILE);
}

#[test]
fn socket_denied_by_a_security_module() {
    no_sockets("socket_denied_by_a_security_module", libc::EACCES);
}

/// A machine without IPv6 (`socket(AF_INET6)` says `EAFNOSUPPORT`): a list of addresses
/// with `::1` before `127.0.0.1` (a name resolving to both) still binds and connects over
/// IPv4, and an IPv6 literal fails with the kernel's error.
#[test]
fn no_ipv6() {
    run_in_child("no_ipv6", || {
        overlap::block_on(async {
            let before = open_fds();
            let inet6 = libc::AF_INET6 as u32;
            install(&[rule_arg0(libc::SYS_socket, inet6, libc::EAFNOSUPPORT)]);
            let res = TcpListener::bind("[::1]:0").await;
            expect_errno("bind ::1", res, libc::EAFNOSUPPORT);
            let res = UdpSocket::bind("[::1]:0").await;
            expect_errno("udp bind ::1", res, libc::EAFNOSUPPORT);
            expect_errno("TcpSocket::new_v6", TcpSocket::new_v6(), libc::EAFNOSUPPORT);
            assert_eq!(open_fds(), before, "an fd leaked");
            // What `localhost` resolves to where `/etc/hosts` lists both.
            let both: [SocketAddr; 2] =
                ["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()];
            let listener = TcpListener::bind(&both[..]).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let to: Vec<SocketAddr> = both.iter().map(|a| SocketAddr::new(a.ip(), port)).collect();
            let mut a = TcpStream::connect(&to[..]).await.unwrap();
            let (mut b, _) = within(HANG, listener.accept(), "accept").await.unwrap();
            still_serves(&mut a, &mut b).await;
            let udp = UdpSocket::bind(&both[..]).await.unwrap();
            assert!(udp.local_addr().unwrap().is_ipv4());
        });
    });
}

/// `SO_REUSEADDR` refused at `bind`: the listener is not made and its socket is closed;
/// option calls on live sockets fail without harming them.
#[test]
fn setsockopt_denied() {
    run_in_child("setsockopt_denied", || {
        overlap::block_on(async {
            let (mut a, mut b) = tcp_pair().await;
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let before = open_fds();
            install(&[rule(libc::SYS_setsockopt, libc::EPERM)]);
            let res = TcpListener::bind("127.0.0.1:0").await;
            expect_errno("listener", res, libc::EPERM);
            let sock = TcpSocket::new_v4().unwrap();
            expect_errno("set_reuseaddr", sock.set_reuseaddr(true), libc::EPERM);
            drop(sock);
            expect_errno("set_nodelay", a.set_nodelay(true), libc::EPERM);
            expect_errno("set_ttl", a.set_ttl(9), libc::EPERM);
            expect_errno("set_broadcast", udp.set_broadcast(true), libc::EPERM);
            assert_eq!(open_fds(), before, "an fd leaked");
            still_serves(&mut a, &mut b).await;
        });
    });
}

/// `bind`, `listen` and `connect` refused (an LSM's `EACCES`, a port taken under us, no
/// route): each constructor fails with that error, closes its socket, and removes the
/// socket file it may have made.
#[test]
fn bind_listen_connect_refused() {
    run_in_child("bind_listen_connect_refused", || {
        let dir = TempDir::new("faults-net-bind");
        overlap::block_on(async {
            let (mut a, mut b) = tcp_pair().await;
            let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = peer.local_addr().unwrap();
            let unix_peer = std::os::unix::net::UnixListener::bind(dir.join("peer")).unwrap();
            let before = open_fds();
            install(&[
                rule(libc::SYS_bind, libc::EACCES),
                rule(libc::SYS_listen, libc::EADDRINUSE),
                rule(libc::SYS_connect, libc::ENETUNREACH),
            ]);
            let res = TcpListener::bind("127.0.0.1:0").await;
            expect_errno("tcp bind", res, libc::EACCES);
            let res = UdpSocket::bind("127.0.0.1:0").await;
            expect_errno("udp bind", res, libc::EACCES);
            expect_errno("unix bind", UnixListener::bind(dir.join("l")), libc::EACCES);
            expect_errno(
                "datagram bind",
                UnixDatagram::bind(dir.join("d")),
                libc::EACCES,
            );
            let sock = TcpSocket::new_v4().unwrap();
            expect_errno("listen", sock.listen(16), libc::EADDRINUSE);
            let res = TcpStream::connect(addr).await;
            expect_errno("tcp connect", res, libc::ENETUNREACH);
            let res = UnixStream::connect(dir.join("peer")).await;
            expect_errno("unix connect", res, libc::ENETUNREACH);
            assert_eq!(open_fds(), before, "an fd leaked");
            assert!(!dir.join("l").exists() && !dir.join("d").exists());
            drop(unix_peer);
            still_serves(&mut a, &mut b).await;
        });
    });
}

/// The two-step builders and the datagram `connect`s when `connect`/`listen` fail: the
/// error, the consumed socket closed, and a datagram socket still usable unconnected.
#[test]
fn builders_and_datagram_connects_fail() {
    run_in_child("builders_and_datagram_connects_fail", || {
        let dir = TempDir::new("faults-net-builders");
        overlap::block_on(async {
            let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = peer.local_addr().unwrap().port();
            let _unix_peer = std::os::unix::net::UnixListener::bind(dir.join("p")).unwrap();
            let _dgram_peer = std::os::unix::net::UnixDatagram::bind(dir.join("d")).unwrap();
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let unix_dgram = UnixDatagram::unbound().unwrap();
            let unix_listener = UnixListener::bind(dir.join("l")).unwrap();
            let _client = std::os::unix::net::UnixStream::connect(dir.join("l")).unwrap();
            let before = open_fds();
            install(&[
                rule(libc::SYS_connect, libc::ENETUNREACH),
                rule(libc::SYS_listen, libc::ENOBUFS),
                rule_arg0(
                    libc::SYS_accept4,
                    unix_listener.as_raw_fd() as u32,
                    libc::ENOMEM,
                ),
            ]);
            let addr = peer.local_addr().unwrap();
            let res = TcpSocket::new_v4().unwrap().connect(addr).await;
            expect_errno("TcpSocket::connect", res, libc::ENETUNREACH);
            expect_errno(
                "TcpSocket::listen",
                TcpSocket::new_v4().unwrap().listen(8),
                libc::ENOBUFS,
            );
            let res = overlap::net::UnixSocket::new_stream()
                .unwrap()
                .connect(dir.join("p"))
                .await;
            expect_errno("UnixSocket::connect", res, libc::ENETUNREACH);
            let res = TcpStream::connect(format!("localhost:{port}")).await;
            expect_errno("connect by name", res, libc::ENETUNREACH);
            expect_errno("udp connect", udp.connect(addr).await, libc::ENETUNREACH);
            let res = unix_dgram.connect(dir.join("d"));
            expect_errno("unix datagram connect", res, libc::ENETUNREACH);
            let res = within(HANG, unix_listener.accept(), "unix accept").await;
            expect_errno("unix accept", res, libc::ENOMEM);
            assert_eq!(open_fds(), before, "an fd leaked");
            let to = rx.local_addr().unwrap();
            udp.send_to(b"unconnected", to).await.unwrap();
            let mut buf = [0; 16];
            let n = within(HANG, rx.recv(&mut buf), "recv").await.unwrap();
            assert_eq!(&buf[..n], b"unconnected");
        });
    });
}

/// `listen` refused after a successful `bind` of a Unix socket: the socket file `bind`
/// made is removed again, so a retry is not told `AddrInUse`.
#[test]
fn unix_listen_refused_removes_the_file() {
    run_in_child("unix_listen_refused_removes_the_file", || {
        let dir = TempDir::new("faults-net-listen");
        overlap::block_on(async {
            let before = open_fds();
            install(&[rule(libc::SYS_listen, libc::ENOBUFS)]);
            let path = dir.join("l");
            expect_errno("unix bind", UnixListener::bind(&path), libc::ENOBUFS);
            assert!(!path.exists(), "the socket file was left behind");
            assert_eq!(open_fds(), before, "an fd leaked");
        });
    });
}

/// Address queries failing: the error, and the sockets go on working.
#[test]
fn address_queries_fail() {
    run_in_child("address_queries_fail", || {
        overlap::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            install(&[
                rule(libc::SYS_getsockname, libc::ENOBUFS),
                rule(libc::SYS_getpeername, libc::ENOBUFS),
            ]);
            expect_errno("listener", listener.local_addr(), libc::ENOBUFS);
            expect_errno("udp", udp.local_addr(), libc::ENOBUFS);
            let mut a = TcpStream::connect(addr).await.unwrap();
            let (mut b, from) = within(HANG, listener.accept(), "accept").await.unwrap();
            assert_eq!(from.ip(), addr.ip(), "accept4 gives the address itself");
            expect_errno("peer_addr", a.peer_addr(), libc::ENOBUFS);
            expect_errno("local_addr", b.local_addr(), libc::ENOBUFS);
            still_serves(&mut a, &mut b).await;
        });
    });
}

/// A connect whose `SO_ERROR` cannot be read: the error, and the new socket closed.
#[test]
fn connect_result_unreadable() {
    run_in_child("connect_result_unreadable", || {
        overlap::block_on(async {
            let (mut a, mut b) = tcp_pair().await;
            let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let before = open_fds();
            // The connecting socket gets the lowest free number.
            let fd = lowest_free_fd() as u32;
            install(&[rule_arg0(libc::SYS_getsockopt, fd, libc::ENOBUFS)]);
            let res = TcpStream::connect(peer.local_addr().unwrap()).await;
            expect_errno("connect", res, libc::ENOBUFS);
            assert_eq!(open_fds(), before, "an fd leaked");
            still_serves(&mut a, &mut b).await;
        });
    });
}

/// `accept4` failing on one listener with `errno`: each `accept` returns the error at once
/// (the readiness is kept, so a second call does not sleep waiting for a new edge), the
/// `incoming` stream yields it and can be polled again, and another listener still accepts.
fn accept_fails(name: &str, errno: i32) {
    run_in_child(name, || {
        overlap::block_on(async {
            let sick = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let well = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let (sick_addr, well_addr) = (sick.local_addr().unwrap(), well.local_addr().unwrap());
            install(&[rule_arg0(libc::SYS_accept4, sick.as_raw_fd() as u32, errno)]);
            let _client = std::net::TcpStream::connect(sick_addr).unwrap();
            let before = open_fds();
            for _ in 0..3 {
                let res = within(HANG, sick.accept(), "accept hung after an error").await;
                expect_errno("accept", res, errno);
            }
            let mut incoming = sick.incoming();
            for _ in 0..2 {
                let item = within(HANG, incoming.next(), "incoming").await.unwrap();
                expect_errno("incoming", item, errno);
            }
            assert_eq!(open_fds(), before, "an fd leaked");
            let mut a = TcpStream::connect(well_addr).await.unwrap();
            let (mut b, _) = within(HANG, well.accept(), "the other listener")
                .await
                .unwrap();
            still_serves(&mut a, &mut b).await;
        });
    });
}

#[test]
fn accept_out_of_buffers() {
    accept_fails("accept_out_of_buffers", libc::ENOBUFS);
}

#[test]
fn accept_out_of_memory() {
    accept_fails("accept_out_of_memory", libc::ENOMEM);
}

#[test]
fn accept_denied_by_a_firewall() {
    accept_fails("accept_denied_by_a_firewall", libc::EPERM);
}

#[test]
fn accept_protocol_error() {
    accept_fails("accept_protocol_error", libc::EPROTO);
}

/// Sends failing on one UDP socket (`ENOBUFS`, `ENOMEM`: the kernel's memory for socket
/// buffers): each send returns the error at once, none waits for a writable edge that
/// will not come, and the receiver still gets what another socket sends.
#[test]
fn datagram_sends_fail() {
    run_in_child("datagram_sends_fail", || {
        overlap::block_on(async {
            let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let to = rx.local_addr().unwrap();
            let sick = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let well = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let fd = sick.as_raw_fd() as u32;
            install(&[
                rule_arg0(libc::SYS_sendto, fd, libc::ENOBUFS),
                rule_arg0(libc::SYS_sendmsg, fd, libc::ENOBUFS),
                rule_arg0(libc::SYS_sendmmsg, fd, libc::ENOMEM),
            ]);
            for _ in 0..2 {
                let res = within(HANG, sick.send_to(b"x", to), "send_to").await;
                expect_errno("send_to", res, libc::ENOBUFS);
                let res = within(HANG, sick.send_batch(&[(b"y", to)]), "send_batch").await;
                expect_errno("send_batch", res, libc::ENOMEM);
            }
            expect_errno("try_send_to", sick.try_send_to(b"z", to), libc::ENOBUFS);
            sick.connect(to).await.unwrap();
            let res = within(HANG, sick.send(b"w"), "send").await;
            expect_errno("send", res, libc::ENOBUFS);
            well.send_to(b"ok", to).await.unwrap();
            let mut buf = [0; 8];
            let (n, from) = within(HANG, rx.recv_from(&mut buf), "recv").await.unwrap();
            assert_eq!((&buf[..n], from), (&b"ok"[..], well.local_addr().unwrap()));
        });
    });
}

/// Receives failing with `ENOMEM` on one UDP socket: each receive returns the error at once
/// and none hangs; another socket still receives.
#[test]
fn datagram_receives_fail() {
    run_in_child("datagram_receives_fail", || {
        overlap::block_on(async {
            let sick = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let well = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let fd = sick.as_raw_fd() as u32;
            install(&[
                rule_arg0(libc::SYS_recvfrom, fd, libc::ENOMEM),
                rule_arg0(libc::SYS_recvmsg, fd, libc::ENOMEM),
                rule_arg0(libc::SYS_recvmmsg, fd, libc::ENOMEM),
            ]);
            tx.send_to(b"queued", sick.local_addr().unwrap())
                .await
                .unwrap();
            let mut buf = [0; 16];
            let mut batch = RecvBatch::new(4, 16);
            for _ in 0..2 {
                let res = within(HANG, sick.recv_from(&mut buf), "recv_from").await;
                expect_errno("recv_from", res, libc::ENOMEM);
                let res = within(HANG, sick.recv_batch(&mut batch), "recv_batch").await;
                expect_errno("recv_batch", res, libc::ENOMEM);
                let res = within(HANG, sick.peek_from(&mut buf), "peek_from").await;
                expect_errno("peek_from", res, libc::ENOMEM);
            }
            tx.send_to(b"ok", well.local_addr().unwrap()).await.unwrap();
            let n = within(HANG, well.recv(&mut buf), "recv").await.unwrap();
            assert_eq!(&buf[..n], b"ok");
        });
    });
}

/// Stream sends and receives failing with `ENOMEM` on one connection (TCP, and Unix with
/// its `recvmsg` reads): the error at once, and the other connection unharmed.
#[test]
fn stream_io_fails() {
    run_in_child("stream_io_fails", || {
        overlap::block_on(async {
            let (mut sick_tx, mut sick_rx) = tcp_pair().await;
            let (mut unix_tx, mut unix_rx) = UnixStream::pair().unwrap();
            let (mut a, mut b) = tcp_pair().await;
            let (tx, rx) = (sick_tx.as_raw_fd() as u32, sick_rx.as_raw_fd() as u32);
            let unix = unix_rx.as_raw_fd() as u32;
            // Bytes for the receivers, queued before their reads are made to fail.
            sick_tx.write_all(b"for rx").await.unwrap();
            unix_tx.write_all(b"unix").await.unwrap();
            install(&[
                rule_arg0(libc::SYS_sendto, tx, libc::ENOMEM),
                rule_arg0(libc::SYS_sendmsg, tx, libc::ENOMEM),
                rule_arg0(libc::SYS_recvfrom, rx, libc::ENOMEM),
                rule_arg0(libc::SYS_recvmsg, unix, libc::ENOMEM),
            ]);
            let res = within(HANG, sick_tx.write_all(b"lost"), "write").await;
            expect_errno("write", res, libc::ENOMEM);
            let bufs = [IoSlice::new(b"a"), IoSlice::new(b"b")];
            let res = within(HANG, sick_tx.write_vectored(&bufs), "writev").await;
            expect_errno("write_vectored", res, libc::ENOMEM);
            let mut buf = [0; 8];
            b.write_all(b"x").await.unwrap();
            let res = within(HANG, sick_rx.read(&mut buf), "read").await;
            expect_errno("read", res, libc::ENOMEM);
            let res = within(HANG, unix_rx.read(&mut buf), "unix read").await;
            expect_errno("unix read", res, libc::ENOMEM);
            let mut x = [0; 1];
            a.read_exact(&mut x).await.unwrap();
            still_serves(&mut a, &mut b).await;
        });
    });
}

/// `from_std` when `ioctl(FIONBIO)` is refused: the error, and the descriptor it was given
/// is closed (it took ownership), not leaked.
#[test]
fn from_std_cannot_switch_to_non_blocking() {
    run_in_child("from_std_cannot_switch_to_non_blocking", || {
        overlap::block_on(async {
            let before = open_fds();
            install(&[rule(libc::SYS_ioctl, libc::EPERM)]);
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = std_listener.local_addr().unwrap();
            let res = TcpListener::from_std(std_listener);
            expect_errno("TcpListener::from_std", res, libc::EPERM);
            let std_udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            expect_errno(
                "UdpSocket::from_std",
                UdpSocket::from_std(std_udp),
                libc::EPERM,
            );
            let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let stream = std::net::TcpStream::connect(peer.local_addr().unwrap()).unwrap();
            let res = TcpStream::from_std(stream);
            expect_errno("TcpStream::from_std", res, libc::EPERM);
            drop(peer);
            let (x, _y) = std::os::unix::net::UnixStream::pair().unwrap();
            expect_errno("UnixStream::from_std", UnixStream::from_std(x), libc::EPERM);
            drop(_y);
            assert_eq!(open_fds(), before, "an fd leaked");
            // The failed listener's port is free again: its socket was closed.
            drop(std::net::TcpListener::bind(addr).unwrap());
        });
    });
}
