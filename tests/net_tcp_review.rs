//! An adversarial review of TCP's connect, listen and accept edges: address lists tried in
//! order, IPv4-mapped addresses and IPv6-only sockets, backlogs of 0 and `u32::MAX`, an
//! accept that lost a `select!` before its listener went, and thousands of connects
//! abandoned mid-handshake. The stream edges are in `net_tcp_review_streams.rs`.
//! Loopback only.

mod support;

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpSocket, TcpStream};
use support::{open_fds, poll_once, set_int_option, within};

/// A hang guard only: every wait below ends at once when the code is right.
const HANG: Duration = Duration::from_secs(10);

/// A loopback port nothing listens on: bound by a socket that never listens, kept alive so
/// no other test can take the port meanwhile (a connect to it is reset: `ConnectionRefused`).
fn dead_port(ip: IpAddr) -> (std::net::TcpListener, SocketAddr) {
    let sock = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    };
    let sock = sock.unwrap();
    sock.bind((ip, 0).into()).unwrap();
    let addr = sock.local_addr().unwrap();
    // Kept bound, never listening; held as a std socket only to own the fd.
    let held = std::net::TcpListener::from(std::os::fd::OwnedFd::from(sock));
    (held, addr)
}

/// Held by every test here (each opens fds, and two count them), so that no other test of
/// this binary opens or closes any while one counts.
static FD_COUNT: Mutex<()> = Mutex::new(());

fn counting_fds() -> MutexGuard<'static, ()> {
    FD_COUNT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Whether a non-blocking std listener has a connection queued (it is taken and dropped).
fn has_queued(listener: &std::net::TcpListener) -> bool {
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

#[test]
fn connect_stops_at_the_first_listening_address_of_a_list_in_its_order() {
    let _serial = counting_fds();
    overlap::block_on(async {
        let (_d1, dead1) = dead_port(Ipv4Addr::LOCALHOST.into());
        let (_d2, dead2) = dead_port(Ipv4Addr::LOCALHOST.into());
        let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());

        let conn = TcpStream::connect(&[dead1, dead2, a, b][..]).await.unwrap();
        assert_eq!(conn.peer_addr().unwrap(), a);
        let (accepted, peer) = within(HANG, first.accept(), "accept on the first")
            .await
            .unwrap();
        assert_eq!(peer, conn.local_addr().unwrap());
        drop(accepted);
        // The later address was never tried: nothing waits in its queue.
        let second = second.into_std().unwrap();
        assert!(!has_queued(&second), "connect went on past a success");

        // The other order goes to the other listener, which is the only one tried.
        let first = first.into_std().unwrap();
        let second = TcpListener::from_std(second).unwrap();
        let conn = TcpStream::connect(&[dead2, b, a][..]).await.unwrap();
        assert_eq!(conn.peer_addr().unwrap(), b);
        let (_, peer) = within(HANG, second.accept(), "accept on the second")
            .await
            .unwrap();
        assert_eq!(peer, conn.local_addr().unwrap());
        assert!(!has_queued(&first));

        // Every address refused, over both families: refused, no registration or fd left.
        let mut list = vec![dead1, dead2];
        let _d3 = has_ipv6_loopback().then(|| {
            let (held, dead3) = dead_port(Ipv6Addr::LOCALHOST.into());
            list.push(dead3);
            held
        });
        let (fds, regs) = (open_fds(), overlap::metrics().registered_fds);
        let err = TcpStream::connect(&list[..]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        assert_eq!((open_fds(), overlap::metrics().registered_fds), (fds, regs));
    });
}

#[test]
fn a_dual_stack_listener_takes_ipv4_peers_mapped_and_an_ipv6_only_one_does_not() {
    let _serial = counting_fds();
    overlap::block_on(async {
        if !has_ipv6_loopback() {
            return;
        }
        let mapped =
            |ip: Ipv4Addr, port| SocketAddr::V6(SocketAddrV6::new(ip.to_ipv6_mapped(), port, 0, 0));
        // IPv6-only off, as net.ipv6.bindv6only may have it on: bound to 127.0.0.1 IPv4-mapped.
        let dual = TcpSocket::new_v6().unwrap();
        set_int_option(dual.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0).unwrap();
        dual.bind(mapped(Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = dual.local_addr().unwrap().port();
        let listener = dual.listen(16).unwrap();

        // A plain IPv4 client, and an IPv6 socket connecting to the mapped address.
        let mut v4 = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        assert_eq!(
            v4.peer_addr().unwrap(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, port))
        );
        let (mut ours, peer) = within(HANG, listener.accept(), "accept v4").await.unwrap();
        assert_eq!(
            peer,
            mapped(Ipv4Addr::LOCALHOST, v4.local_addr().unwrap().port())
        );
        assert_eq!(
            ours.local_addr().unwrap(),
            mapped(Ipv4Addr::LOCALHOST, port)
        );
        v4.write_all(b"over v4").await.unwrap();
        let mut buf = [0u8; 7];
        within(HANG, ours.read_exact(&mut buf), "read")
            .await
            .unwrap();
        assert_eq!(&buf, b"over v4");

        let v6 = TcpStream::connect(mapped(Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        assert_eq!(v6.peer_addr().unwrap(), mapped(Ipv4Addr::LOCALHOST, port));
        let (_, peer) = within(HANG, listener.accept(), "accept mapped")
            .await
            .unwrap();
        assert_eq!(peer, v6.local_addr().unwrap());

        // IPv6-only on [::1]: the same port on 127.0.0.1 is another socket's (bound, not
        // listening), and a connect to it, mapped or not, is refused rather than reaching the
        // IPv6 listener.
        let only = TcpSocket::new_v6().unwrap();
        set_int_option(only.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1).unwrap();
        only.bind((Ipv6Addr::LOCALHOST, 0).into()).unwrap();
        let port = only.local_addr().unwrap().port();
        let only = only.listen(16).unwrap();
        let v4_side = TcpSocket::new_v4().unwrap();
        if v4_side.bind((Ipv4Addr::LOCALHOST, port).into()).is_err() {
            return; // the IPv4 side of that port is someone else's: nothing to check
        }
        let err = TcpStream::connect(mapped(Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let err = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let conn = TcpStream::connect((Ipv6Addr::LOCALHOST, port))
            .await
            .unwrap();
        let (_, peer) = within(HANG, only.accept(), "accept v6").await.unwrap();
        assert_eq!(peer, conn.local_addr().unwrap());
    });
}

/// An IPv6 socket set IPv6-only, or bound to an IPv6 address, carries no IPv4: the error
/// for an IPv4 address says so whether the address is plain or IPv4-mapped, and does not
/// send the caller to the mapped form, which the kernel then refuses with a bare "Network
/// is unreachable" (a connect) or "Invalid argument" (a bind).
#[test]
fn an_ipv6_socket_that_carries_no_ipv4_refuses_ipv4_addresses_mapped_or_not_saying_why() {
    let _serial = counting_fds();
    overlap::block_on(async {
        if !has_ipv6_loopback() {
            return;
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = listener.local_addr().unwrap();
        let mapped = |a: SocketAddr| match a {
            SocketAddr::V4(a) => SocketAddr::from((a.ip().to_ipv6_mapped(), a.port())),
            v6 => v6,
        };
        let ipv6_only = |v6only: libc::c_int| {
            let sock = TcpSocket::new_v6().unwrap();
            set_int_option(
                sock.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                v6only,
            )
            .unwrap();
            sock
        };
        let says_why = |what: &str, err: &std::io::Error| {
            let text = err.to_string();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
            assert!(text.contains("IPv6-only"), "{what}: {err}");
            assert!(text.contains("TcpSocket::new_v4"), "{what}: {err}");
            assert!(
                !text.contains("give the address IPv4-mapped"),
                "{what}: {err}"
            );
        };
        let any_v4: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();

        // IPv6-only: a bind to an IPv4 address, plain or mapped, binds nothing.
        let only = ipv6_only(1);
        for addr in [mapped(any_v4), any_v4] {
            says_why(&format!("bind {addr}"), &only.bind(addr).unwrap_err());
        }
        only.bind((Ipv6Addr::LOCALHOST, 0).into()).unwrap();
        // And a connect to the IPv4 listener, plain or mapped, from either kind of socket.
        for to in [mapped(live), live] {
            let err = ipv6_only(1).connect(to).await.unwrap_err();
            says_why(&format!("IPv6-only connect to {to}"), &err);
            let bound = TcpSocket::new_v6().unwrap();
            bound.bind((Ipv6Addr::LOCALHOST, 0).into()).unwrap();
            let err = bound.connect(to).await.unwrap_err();
            says_why(&format!("connect from [::1] to {to}"), &err);
        }

        // A socket that carries IPv4 takes the mapped form, and is told to use it.
        let conn = ipv6_only(0).connect(mapped(live)).await.unwrap();
        let (_, peer) = within(HANG, listener.accept(), "accept").await.unwrap();
        assert_eq!(mapped(peer), conn.local_addr().unwrap());
        let err = ipv6_only(0).connect(live).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("IPv4-mapped"), "{err}");
    });
}

#[test]
fn backlogs_of_zero_and_u32_max_both_listen_and_accept_what_they_hold() {
    let _serial = counting_fds();
    overlap::block_on(async {
        for backlog in [0, u32::MAX] {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = sock.listen(backlog).unwrap();
            let addr = listener.local_addr().unwrap();
            // Linux holds one more connection than the backlog, so even 0 queues one.
            let mut client = TcpStream::connect(addr).await.unwrap();
            let (mut server, peer) = within(HANG, listener.accept(), "accept").await.unwrap();
            assert_eq!(peer, client.local_addr().unwrap(), "backlog {backlog}");
            client.write_all(&backlog.to_le_bytes()).await.unwrap();
            let mut buf = [0u8; 4];
            within(HANG, server.read_exact(&mut buf), "read")
                .await
                .unwrap();
            assert_eq!(u32::from_le_bytes(buf), backlog);
        }
        // The huge one (capped at net.core.somaxconn) queues several at once.
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(u32::MAX).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..8 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        for client in &clients {
            let (_, peer) = within(HANG, listener.accept(), "accept").await.unwrap();
            assert_eq!(
                peer,
                client.local_addr().unwrap(),
                "accepted in connect order"
            );
        }
    });
}

#[test]
fn bind_to_a_port_in_use_is_addr_in_use_naming_it_and_the_socket_stays_usable() {
    let _serial = counting_fds();
    overlap::block_on(async {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        let err = sock.bind(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
        // SO_REUSEADDR does not let a second socket take a listening port either.
        let again = TcpSocket::new_v4().unwrap();
        again.set_reuseaddr(true).unwrap();
        assert_eq!(again.bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);
        // The refused socket was not bound: it binds elsewhere and connects.
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let conn = sock.connect(addr).await.unwrap();
        let (_, peer) = within(HANG, taken.accept(), "accept").await.unwrap();
        assert_eq!(peer, conn.local_addr().unwrap());
    });
}

#[test]
fn options_set_before_listen_read_back_and_nodelay_passes_to_accepted_streams() {
    let _serial = counting_fds();
    overlap::block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        for on in [true, false, true] {
            sock.set_reuseaddr(on).unwrap();
            sock.set_reuseport(on).unwrap();
            sock.set_keepalive(on).unwrap();
            sock.set_nodelay(on).unwrap();
            let got = (
                sock.reuseaddr().unwrap(),
                sock.reuseport().unwrap(),
                sock.keepalive().unwrap(),
                sock.nodelay().unwrap(),
            );
            assert_eq!(got, (on, on, on, on));
        }
        // The kernel doubles a buffer size for its bookkeeping, as documented.
        sock.set_recv_buffer_size(16 * 1024).unwrap();
        assert_eq!(sock.recv_buffer_size().unwrap(), 32 * 1024);
        sock.set_send_buffer_size(16 * 1024).unwrap();
        assert_eq!(sock.send_buffer_size().unwrap(), 32 * 1024);
        for linger in [Some(Duration::from_secs(7)), Some(Duration::ZERO), None] {
            sock.set_linger(linger).unwrap();
            assert_eq!(sock.linger().unwrap(), linger);
        }
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(8).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = within(HANG, listener.accept(), "accept").await.unwrap();
        assert!(
            accepted.nodelay().unwrap(),
            "nodelay is inherited, as documented"
        );
        assert!(!client.nodelay().unwrap(), "a plain connect has Nagle on");
    });
}

#[test]
fn an_accept_that_lost_a_select_then_the_listener_dropped_resets_the_queued_peer() {
    let _serial = counting_fds();
    overlap::block_on(async {
        let regs = overlap::metrics().registered_fds;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The accept waits (its waker stored), then loses to a branch that is ready.
        let lost = overlap::select! {
            biased;
            _ = listener.accept() => false,
            _ = async {} => true,
        };
        assert!(lost);
        let mut accept = Box::pin(listener.accept());
        assert!(poll_once(accept.as_mut()).await.is_pending());
        drop(accept);
        // Queued behind the dropped accepts, then the listener goes.
        let mut queued = TcpStream::connect(addr).await.unwrap();
        drop(listener);
        let mut buf = [0u8; 1];
        let err = within(HANG, queued.read(&mut buf), "read of the reset peer")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        assert_eq!(
            overlap::metrics().registered_fds,
            regs + 1,
            "only `queued` is left"
        );
        drop(queued);
        assert_eq!(overlap::metrics().registered_fds, regs);
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn two_thousand_connects_abandoned_mid_handshake_leave_no_fd_or_registration() {
    let _serial = counting_fds();
    let rt = overlap::Runtime::builder()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        // A full accept queue: backlog 0 holds one connection, and the kernel drops the SYNs
        // of any more, so their connects stay mid-handshake until given up.
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let _filler = TcpStream::connect(addr).await.unwrap();
        let (fds, regs) = (open_fds(), overlap::metrics().registered_fds);
        for i in 0..2000 {
            if i % 2 == 0 {
                // Given up by a timeout, on the paused clock's auto-advance.
                let res =
                    overlap::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await;
                assert!(
                    res.is_err(),
                    "connect {i} got through a full queue: {res:?}"
                );
            } else {
                // Given up after a single poll.
                let mut connect = Box::pin(TcpSocket::new_v4().unwrap().connect(addr));
                assert!(
                    poll_once(connect.as_mut()).await.is_pending(),
                    "connect {i}"
                );
            }
        }
        assert_eq!(open_fds(), fds, "an fd leaked");
        assert_eq!(
            overlap::metrics().registered_fds,
            regs,
            "a registration leaked"
        );
        // The listener still serves the one it holds.
        let (_, peer) = within(HANG, listener.accept(), "accept").await.unwrap();
        assert_eq!(peer, _filler.local_addr().unwrap());
    });
}
