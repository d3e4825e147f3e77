//! `TcpSocket`'s `IP_TOS`, `SO_BINDTODEVICE` and zero-linger options, the bytes a
//! `TcpStream`'s peer has not acknowledged, and (in `keepalive`) keep-alive timing and the
//! TCP user timeout.

mod support;

#[path = "net_tcp_socket_options/keepalive.rs"]
mod keepalive;

use std::io::ErrorKind;
use std::time::Duration;

use overlap::block_on;
use overlap::io::AsyncReadExt;
use overlap::net::{TcpListener, TcpSocket};
use support::within;

const HANG: Duration = Duration::from_secs(30);

#[test]
fn tos_round_trips_and_refuses_more_than_a_byte() {
    block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        assert_eq!(sock.tos().unwrap(), 0);
        sock.set_tos(0x28).unwrap();
        assert_eq!(sock.tos().unwrap(), 0x28);
        assert_eq!(
            sock.set_tos(256).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(sock.tos().unwrap(), 0x28, "a refused value changes nothing");
    });
}

/// tokio's newer names: `set_tos_v4`/`tos_v4` are `set_tos`/`tos`, and
/// `set_tclass_v6`/`tclass_v6` set IPv6's traffic class alone, on TCP and UDP sockets, a
/// byte at most, refused by an IPv4 socket; a TCP socket so marked connects over `::1`.
#[test]
fn tos_v4_and_tclass_v6_under_tokios_names() {
    block_on(async {
        let v4 = TcpSocket::new_v4().unwrap();
        v4.set_tos_v4(0x48).unwrap();
        assert_eq!((v4.tos().unwrap(), v4.tos_v4().unwrap()), (0x48, 0x48));
        assert!(v4.set_tclass_v6(0x20).is_err(), "IPv4 has no traffic class");

        let listener = TcpListener::bind("[::1]:0").await.unwrap();
        let v6 = TcpSocket::new_v6().unwrap();
        assert_eq!(v6.tclass_v6().unwrap(), 0);
        v6.set_tclass_v6(0xb8).unwrap();
        assert_eq!(v6.tclass_v6().unwrap(), 0xb8);
        let err = v6.set_tclass_v6(256).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("traffic class"), "{err}");
        assert_eq!(
            v6.tclass_v6().unwrap(),
            0xb8,
            "a refused value changes nothing"
        );
        let addr = listener.local_addr().unwrap();
        within(HANG, v6.connect(addr), "connect over ::1")
            .await
            .unwrap();

        let udp = overlap::net::UdpSocket::bind("[::1]:0").await.unwrap();
        udp.set_tclass_v6(0x28).unwrap();
        assert_eq!(udp.tclass_v6().unwrap(), 0x28);
        udp.set_tos_v4(0x10).unwrap();
        assert_eq!(udp.tos_v4().unwrap(), 0x10);
        let udp4 = overlap::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(
            udp4.set_tclass_v6(0x28).is_err(),
            "IPv4 has no traffic class"
        );
    });
}

#[test]
fn a_socket_bound_to_loopback_connects_over_it_and_unbinds() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        assert_eq!(sock.device().unwrap(), None);
        sock.bind_device(Some(b"lo")).unwrap();
        assert_eq!(sock.device().unwrap().as_deref(), Some(&b"lo"[..]));
        sock.bind_device(None).unwrap();
        assert_eq!(sock.device().unwrap(), None);
        sock.bind_device(Some(b"lo")).unwrap();
        let addr = listener.local_addr().unwrap();
        within(HANG, sock.connect(addr), "connect over lo")
            .await
            .unwrap();
        let err = TcpSocket::new_v4()
            .unwrap()
            .bind_device(Some(b"no-such-if0"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    });
}

/// The kernel reads the name as a C string cut to 15 bytes: `b"lo\0junk"` would bind to
/// `lo`, and a 16-byte name to the interface its first 15 bytes name. Both are refused before
/// the syscall, leaving the socket unbound; a single trailing NUL (a C string) is fine.
#[test]
fn bind_device_refuses_names_the_kernel_would_cut() {
    block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        for bad in [
            &b"lo\0junk"[..],
            b"\0lo",
            b"lo\0\0",
            &[b'l'; 16],
            &[b'l'; 40],
        ] {
            let err = sock.bind_device(Some(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
            assert_eq!(sock.device().unwrap(), None, "{bad:?}");
        }
        // Fifteen bytes is an interface name's most: passed to the kernel, which knows none.
        let err = sock.bind_device(Some(&[b'l'; 15])).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
        sock.bind_device(Some(b"lo\0")).unwrap();
        assert_eq!(sock.device().unwrap().as_deref(), Some(&b"lo"[..]));
    });
}

#[test]
fn zero_linger_resets_the_connection_on_close() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_zero_linger().unwrap();
        assert_eq!(sock.linger().unwrap(), Some(Duration::ZERO));
        let client = sock.connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        drop(client);
        let mut buf = [0u8; 8];
        let err = within(HANG, server.read(&mut buf), "reset")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);

        let (a, _b) = support::tcp_pair().await;
        a.set_zero_linger().unwrap();
        assert_eq!(a.linger().unwrap(), Some(Duration::ZERO));
    });
}

/// Bytes stuck in the sender's socket while the peer does not read count as
/// unacknowledged; once the peer has read them all, none do.
#[test]
fn unacknowledged_counts_what_the_peer_has_not_taken() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) =
            overlap::join!(overlap::net::TcpStream::connect(addr), listener.accept());
        let (mut client, (server, _)) = (client.unwrap(), accepted.unwrap());
        assert_eq!(server.unacknowledged().unwrap(), 0);
        // The client reads nothing: on loopback, the send buffer is full only once the
        // client's window is closed, and what it holds then is unacknowledged.
        let chunk = vec![7u8; 64 << 10];
        let mut written = 0;
        within(HANG, server.writable(), "writable").await.unwrap();
        loop {
            match server.try_write(&chunk) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let stuck = server.unacknowledged().unwrap();
        assert!(stuck > 0 && stuck <= written, "{stuck} of {written}");
        let mut all = vec![0; written];
        within(HANG, client.read_exact(&mut all), "the bytes written")
            .await
            .unwrap();
        within(
            HANG,
            async {
                while server.unacknowledged().unwrap() > 0 {
                    overlap::time::sleep(Duration::from_millis(10)).await;
                }
            },
            "the last acknowledgement",
        )
        .await;
    });
}

/// An address of the other family is refused with `InvalidInput` saying which way round,
/// where the kernel said "Address family not supported by protocol" (no `ErrorKind` to
/// match) for an IPv6 address on an IPv4 socket, and a bare "Invalid argument" for an IPv4
/// address on an IPv6 socket; the kernel's code stays findable through `raw_os_error`.
#[test]
fn an_address_of_the_other_family_is_invalid_input_saying_which_way_round() {
    block_on(async {
        let v4_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let v4_addr = v4_listener.local_addr().unwrap();
        let v6_addr: std::net::SocketAddr = "[::1]:9".parse().unwrap();
        let cases = [
            (
                TcpSocket::new_v4().unwrap(),
                v6_addr,
                "IPv4 socket",
                libc::EAFNOSUPPORT,
            ),
            (
                TcpSocket::new_v6().unwrap(),
                v4_addr,
                "IPv6 socket",
                libc::EINVAL,
            ),
        ];
        for (sock, addr, says, code) in cases {
            let err = sock.bind(addr).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "bind: {err}");
            assert!(err.to_string().contains(says), "bind: {err}");
            assert_eq!(overlap::io::raw_os_error(&err), Some(code), "bind: {err}");
            let err = within(HANG, sock.connect(addr), "connect hung")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "connect: {err}");
            assert!(err.to_string().contains(says), "connect: {err}");
            assert_eq!(
                overlap::io::raw_os_error(&err),
                Some(code),
                "connect: {err}"
            );
        }
        // The IPv4-mapped form is the IPv6 socket's way to an IPv4 peer.
        let mapped = std::net::SocketAddr::new(
            std::net::IpAddr::V6(match v4_addr.ip() {
                std::net::IpAddr::V4(ip) => ip.to_ipv6_mapped(),
                std::net::IpAddr::V6(ip) => ip,
            }),
            v4_addr.port(),
        );
        let stream = within(HANG, TcpSocket::new_v6().unwrap().connect(mapped), "hung")
            .await
            .unwrap();
        let (_accepted, from) = v4_listener.accept().await.unwrap();
        assert_eq!(stream.local_addr().unwrap().port(), from.port());
    });
}

#[test]
fn quickack_turns_on_and_off_on_both_ends_of_a_working_stream() {
    block_on(within(
        HANG,
        async {
            use overlap::io::AsyncWriteExt;
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut client = overlap::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            for s in [&client, &server] {
                s.set_quickack(true).unwrap();
                assert!(s.quickack().unwrap());
            }
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(b"pong").await.unwrap();
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");
            for s in [&client, &server] {
                s.set_quickack(false).unwrap();
                assert!(!s.quickack().unwrap());
            }
        },
        "the ping-pong with quick ACKs",
    ));
}

/// A second `bind` gets the kernel's bare "Invalid argument": it says which address the
/// socket already has instead, and leaves the socket bound there.
#[test]
fn a_second_bind_is_refused_naming_the_address_the_socket_has() {
    block_on(async {
        for (sock, first, second) in [
            (TcpSocket::new_v4().unwrap(), "127.0.0.1:0", "127.0.0.1:0"),
            (TcpSocket::new_v6().unwrap(), "[::1]:0", "[::]:0"),
        ] {
            if sock.bind(first.parse().unwrap()).is_err() {
                continue; // no IPv6 loopback on this machine
            }
            let bound = sock.local_addr().unwrap();
            let err = sock.bind(second.parse().unwrap()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains(&bound.to_string()), "{err}");
            assert!(err.to_string().contains("already bound"), "{err}");
            assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EINVAL));
            assert_eq!(sock.local_addr().unwrap(), bound);
            let listener = sock.listen(8).unwrap();
            assert_eq!(listener.local_addr().unwrap(), bound);
        }
    });
}

/// A connect from an address and port already connected to the same destination (two
/// sockets sharing a fixed source port through `SO_REUSEADDR`, as a load generator pinning
/// its source ports does) gets the kernel's bare "Cannot assign requested address": it
/// names the pair in use instead, keeps `AddrNotAvailable` and the errno, and closes the
/// socket.
#[test]
fn a_connect_from_a_pair_in_use_names_it() {
    support::run_in_child("a_connect_from_a_pair_in_use_names_it", || {
        block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let to = listener.local_addr().unwrap();
            let first = TcpSocket::new_v4().unwrap();
            first.set_reuseaddr(true).unwrap();
            first.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let from = first.local_addr().unwrap();
            let _held = first.connect(to).await.unwrap();

            let fds = support::open_fds();
            let second = TcpSocket::new_v4().unwrap();
            second.set_reuseaddr(true).unwrap();
            second.bind(from).unwrap();
            let err = second.connect(to).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err}");
            assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EADDRNOTAVAIL));
            let msg = err.to_string();
            assert!(msg.contains(&from.to_string()), "{msg}");
            assert!(msg.contains(&to.to_string()), "{msg}");
            assert!(msg.contains("already connected"), "{msg}");
            assert_eq!(support::open_fds(), fds, "the refused socket is closed");
        })
    });
}

/// With no ephemeral port left, a `bind` to port 0 gets the kernel's "Address already in
/// use", though it asked for no port in use, and a connect from an unbound socket "Cannot
/// assign requested address": both now say no port is free, naming the address (the
/// kernel's codes and kinds kept), and a bind to a named port in use names it. The range is narrowed to one port taken already, per
/// socket (`IP_LOCAL_PORT_RANGE`, Linux 6.3), instead of exhausting the system's.
#[test]
fn no_ephemeral_port_left_is_said_so_on_bind_and_connect() {
    const IP_LOCAL_PORT_RANGE: libc::c_int = 51;
    /// Narrows `sock`'s ephemeral ports to `port` alone; false if the kernel cannot.
    fn only_port(sock: &TcpSocket, port: u16) -> bool {
        use std::os::fd::AsRawFd;
        let range = (i32::from(port) << 16) | i32::from(port);
        support::set_int_option(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            IP_LOCAL_PORT_RANGE,
            range,
        )
        .is_ok()
    }
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let to = listener.local_addr().unwrap();
        let held = TcpSocket::new_v4().unwrap();
        held.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let port = held.local_addr().unwrap().port();

        let sock = TcpSocket::new_v4().unwrap();
        if !only_port(&sock, port) {
            return; // a kernel before 6.3
        }
        let err = sock.bind("127.0.0.2:0".parse().unwrap()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EADDRINUSE));
        let msg = err.to_string();
        assert!(
            msg.contains("no free port") && msg.contains("127.0.0.2"),
            "{msg}"
        );

        // A connection from 127.0.0.1, then a connect limited to its port: no port left
        // toward `to`.
        let first = TcpSocket::new_v4().unwrap().connect(to).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let sock = TcpSocket::new_v4().unwrap();
        assert!(only_port(&sock, port));
        let err = sock.connect(to).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err}");
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EADDRNOTAVAIL));
        let msg = err.to_string();
        assert!(
            msg.contains("no local port is free") && msg.contains(&to.to_string()),
            "{msg}"
        );

        // A named port in use is named, by the listener's and UDP's binds too.
        let err = TcpListener::bind(to).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
        assert!(
            err.to_string().contains(&format!("{to} is in use")),
            "{err}"
        );
        let udp = overlap::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let taken = udp.local_addr().unwrap();
        let err = overlap::net::UdpSocket::bind(taken).await.unwrap_err();
        assert_eq!(overlap::io::raw_os_error(&err), Some(libc::EADDRINUSE));
        assert!(
            err.to_string().contains(&format!("{taken} is in use")),
            "{err}"
        );
    });
}

/// With `IP_BIND_ADDRESS_NO_PORT`, a bind to port 0 takes the address only: the port is
/// chosen at connect (so it can be shared among destinations), and the connection leaves
/// from the bound address.
#[test]
fn bind_address_no_port_defers_the_port_to_connect() {
    block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sock = TcpSocket::new_v4().unwrap();
        assert!(!sock.bind_address_no_port().unwrap());
        sock.set_bind_address_no_port(true).unwrap();
        assert!(sock.bind_address_no_port().unwrap());
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let bound = sock.local_addr().unwrap();
        assert_eq!(
            (bound.ip().to_string(), bound.port()),
            ("127.0.0.2".into(), 0)
        );
        let stream = within(
            HANG,
            sock.connect(listener.local_addr().unwrap()),
            "connect",
        )
        .await
        .unwrap();
        let (accepted, from) = listener.accept().await.unwrap();
        let local = stream.local_addr().unwrap();
        assert_eq!(local.ip().to_string(), "127.0.0.2");
        assert_ne!(local.port(), 0, "the port was chosen at connect");
        assert_eq!((from, accepted.peer_addr().unwrap()), (local, local));

        // Without it, the bind takes a port at once.
        let plain = TcpSocket::new_v4().unwrap();
        plain.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        assert_ne!(plain.local_addr().unwrap().port(), 0);
    });
}
