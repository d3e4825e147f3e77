//! A contract audit of the socket options' rustdoc, for the promises no other test pinned
//! (the UDP multicast and broadcast ones are in `net_options_audit_udp.rs`), on loopback:
//!
//! - a fresh socket's getters read what the kernel reports: the system's keep-alive timing
//!   (`net.ipv4.tcp_keepalive_*`) and default TTL, and every flag off but
//!   `IP_MULTICAST_LOOP`;
//! - `set_tos` keeps the ECN bits of a UDP socket's value, where TCP's kernel keeps its own;
//! - an IPv6 listener's `set_ttl` reaches the streams it accepts, hop limit included;
//! - a `TcpSocket`'s user timeout bounds its connect's SYN retransmissions;
//! - options survive `into_split`/`reunite` and `into_std`/`from_std`, a zero linger (which
//!   overlap tracks itself, for the write half's drop) included, as do a UDP socket's and a
//!   Unix socket's;
//! - `TcpListener::bind` turns `SO_REUSEADDR` on;
//! - `bind_device(Some(b""))` unbinds a socket from its interface, as `None` does.

mod support;

use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::{TcpKeepalive, TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram};
use support::{int_option, settle, tcp_pair, within};

const HANG: Duration = Duration::from_secs(30);

/// A number from `/proc/sys/<name>`.
fn sysctl(name: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/sys/{name}")).unwrap();
    text.trim().parse().unwrap()
}

/// The keep-alive timing `TcpKeepalive`'s rustdoc says a socket keeps unless set, and the
/// defaults of the other getters, as the kernel reports them.
#[overlap::test]
async fn fresh_sockets_read_the_systems_defaults() {
    let (stream, _peer) = tcp_pair().await;
    let secs = |name| Duration::from_secs(sysctl(name));
    assert_eq!(
        (
            stream.keepalive_time().unwrap(),
            stream.keepalive_interval().unwrap(),
            u64::from(stream.keepalive_retries().unwrap()),
        ),
        (
            secs("net/ipv4/tcp_keepalive_time"),
            secs("net/ipv4/tcp_keepalive_intvl"),
            sysctl("net/ipv4/tcp_keepalive_probes"),
        )
    );
    // Setting only the retries leaves the times at the system's.
    stream
        .set_tcp_keepalive(&TcpKeepalive::new().with_retries(3))
        .unwrap();
    assert_eq!(
        stream.keepalive_time().unwrap(),
        secs("net/ipv4/tcp_keepalive_time")
    );
    assert_eq!(stream.keepalive_retries().unwrap(), 3);
    let default_ttl = sysctl("net/ipv4/ip_default_ttl") as u32;
    assert_eq!(stream.ttl().unwrap(), default_ttl);
    assert_eq!(
        (
            stream.nodelay().unwrap(),
            stream.linger().unwrap(),
            stream.tcp_user_timeout().unwrap()
        ),
        (false, None, None)
    );

    let sock = TcpSocket::new_v4().unwrap();
    assert_eq!(
        (
            sock.tos().unwrap(),
            sock.device().unwrap(),
            sock.reuseaddr().unwrap(),
            sock.reuseport().unwrap(),
            sock.bind_address_no_port().unwrap(),
        ),
        (0, None, false, false, false)
    );

    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        (
            udp.broadcast().unwrap(),
            udp.multicast_loop_v4().unwrap(),
            udp.multicast_ttl_v4().unwrap(),
            udp.ttl().unwrap(),
        ),
        (false, true, 1, default_ttl)
    );
    let udp6 = UdpSocket::bind("[::1]:0").await.unwrap();
    assert!(udp6.multicast_loop_v6().unwrap());
    assert_eq!(udp6.tclass_v6().unwrap(), 0);
    let (dgram, _) = UnixDatagram::pair().unwrap();
    assert!(!dgram.passcred().unwrap());
}

/// `UdpSocket::set_tos` sets "DSCP and ECN bits", and TCP's "kernel keeps the ECN bits its
/// own": the same byte reads back whole from a UDP socket and without its ECN bits (the
/// low two) from a TCP one.
#[overlap::test]
async fn udp_keeps_the_ecn_bits_of_its_tos_where_tcp_keeps_its_own() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.set_tos(0xb9).unwrap();
    assert_eq!(udp.tos().unwrap(), 0xb9);
    assert_eq!(
        int_option(udp.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS),
        0xb9
    );
    let tcp = TcpSocket::new_v4().unwrap();
    tcp.set_tos(0xb9).unwrap();
    assert_eq!(tcp.tos().unwrap(), 0xb8, "TCP's ECN bits are the kernel's");
    let udp6 = UdpSocket::bind("[::1]:0").await.unwrap();
    udp6.set_tos(0x29).unwrap();
    assert_eq!(
        int_option(udp6.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_TCLASS),
        0x29,
        "the traffic class keeps them too"
    );
}

/// `TcpListener::set_ttl` is "for the connections' packets": on an IPv6 listener the
/// hop limit it sets too reaches each accepted stream, which carries it.
#[overlap::test]
async fn an_ipv6_listener_passes_its_ttl_and_hop_limit_to_accepted_streams() {
    let listener = TcpListener::bind("[::1]:0").await.unwrap();
    listener.set_ttl(33).unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (accepted, _) = within(HANG, listener.accept(), "accept").await.unwrap();
    assert_eq!(accepted.ttl().unwrap(), 33);
    assert_eq!(
        int_option(
            accepted.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS
        ),
        33
    );
}

/// `TcpSocket::set_tcp_user_timeout`: "it then bounds the connect's own retransmissions of
/// the SYN too". Past a full backlog the kernel drops the SYN, and a connect would retry for
/// about two minutes; with a user timeout it fails with `TimedOut` at its first retry.
#[overlap::test]
async fn a_user_timeout_set_before_connect_ends_a_connect_whose_syn_goes_unanswered() {
    // Backlog 0: the accept queue holds one connection, then SYNs are dropped.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..8 {
        let client = TcpSocket::new_v4().unwrap();
        client
            .set_tcp_user_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        match within(HANG, client.connect(addr), "a connect past the backlog").await {
            Ok(stream) => queued.push(stream),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                assert!(!queued.is_empty(), "the first connect fits the queue");
                return;
            }
        }
    }
    panic!("{} connects went through a backlog of 0", queued.len());
}

/// The options a stream carries read the same through its owned halves, after `reunite`,
/// and after `into_std` and `from_std`; a zero linger still keeps the write half's drop
/// from sending a FIN there (the one option overlap tracks itself, not the kernel).
#[overlap::test]
async fn tcp_options_survive_into_split_reunite_and_into_std_from_std() {
    let (stream, mut peer) = tcp_pair().await;
    stream.set_nodelay(true).unwrap();
    stream.set_ttl(42).unwrap();
    let ka = TcpKeepalive::new()
        .with_time(Duration::from_secs(21))
        .with_interval(Duration::from_secs(4))
        .with_retries(5);
    stream.set_tcp_keepalive(&ka).unwrap();
    stream
        .set_tcp_user_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    stream.set_zero_linger().unwrap();
    let options = |s: &TcpStream| {
        (
            s.nodelay().unwrap(),
            s.ttl().unwrap(),
            s.keepalive().unwrap(),
            s.keepalive_time().unwrap(),
            s.keepalive_interval().unwrap(),
            s.keepalive_retries().unwrap(),
            s.tcp_user_timeout().unwrap(),
            s.linger().unwrap(),
        )
    };
    let want = (
        true,
        42,
        true,
        Duration::from_secs(21),
        Duration::from_secs(4),
        5,
        Some(Duration::from_millis(2500)),
        Some(Duration::ZERO),
    );
    assert_eq!(options(&stream), want);
    let (rd, wr) = stream.into_split();
    assert_eq!(options(rd.as_ref()), want);
    assert_eq!(options(wr.as_ref()), want);
    let stream = rd.reunite(wr).unwrap();
    assert_eq!(options(&stream), want);

    let std_stream = stream.into_std().unwrap();
    let stream = TcpStream::from_std(std_stream).unwrap();
    assert_eq!(options(&stream), want);
    // The zero linger came back with it: the write half's drop sends no FIN, and the
    // read half's resets the connection.
    let (rd, wr) = stream.into_split();
    drop(wr);
    settle().await;
    let mut buf = [0u8; 8];
    let early = peer.try_read(&mut buf).map_err(|e| e.kind());
    assert_eq!(early, Err(ErrorKind::WouldBlock), "a FIN came");
    drop(rd);
    let err = within(HANG, peer.read(&mut buf), "the reset")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

/// A UDP socket's options and a Unix datagram socket's `SO_PASSCRED` read the same after
/// `into_std` and `from_std`, and the credentials still come with each datagram.
#[overlap::test]
async fn udp_and_unix_options_survive_into_std_and_from_std() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.set_broadcast(true).unwrap();
    udp.set_ttl(17).unwrap();
    udp.set_tos(0x48).unwrap();
    udp.set_multicast_ttl_v4(0).unwrap();
    udp.set_multicast_loop_v4(false).unwrap();
    udp.set_recv_buffer_size(48 * 1024).unwrap();
    udp.bind_device(Some(b"lo")).unwrap();
    let options = |s: &UdpSocket| {
        (
            s.broadcast().unwrap(),
            s.ttl().unwrap(),
            s.tos().unwrap(),
            s.multicast_ttl_v4().unwrap(),
            s.multicast_loop_v4().unwrap(),
            s.recv_buffer_size().unwrap(),
            s.device().unwrap(),
        )
    };
    let want = (true, 17, 0x48, 0, false, 96 * 1024, Some(b"lo".to_vec()));
    assert_eq!(options(&udp), want);
    let udp = UdpSocket::from_std(udp.into_std().unwrap()).unwrap();
    assert_eq!(options(&udp), want);

    let (a, b) = UnixDatagram::pair().unwrap();
    b.set_passcred(true).unwrap();
    let b = UnixDatagram::from_std(b.into_std().unwrap()).unwrap();
    assert!(b.passcred().unwrap());
    a.send(b"after").await.unwrap();
    let mut buf = [0u8; 16];
    let (n, cred) = within(HANG, b.recv_with_cred(&mut buf), "recv")
        .await
        .unwrap();
    assert_eq!(&buf[..n], b"after");
    assert_eq!(cred.map(|c| c.pid), Some(std::process::id() as i32));
}

/// `TcpListener::bind`: "with `SO_REUSEADDR` on", on IPv4 and IPv6 alike (`TcpListener`
/// has no getter: the option is read off the fd).
#[overlap::test]
async fn a_listener_made_by_bind_has_reuseaddr_on() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let listener = TcpListener::bind(addr).await.unwrap();
        let on = int_option(listener.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR);
        assert_eq!(on, 1, "{addr}");
    }
}

/// `TcpSocket::bind_device`: "`None` (or an empty name) undoes it"; `UdpSocket`'s is the
/// same call.
#[overlap::test]
async fn an_empty_interface_name_unbinds_a_socket_as_none_does() {
    let tcp = TcpSocket::new_v4().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for empty in [&b""[..], b"\0"] {
        tcp.bind_device(Some(b"lo")).unwrap();
        assert_eq!(tcp.device().unwrap().as_deref(), Some(&b"lo"[..]));
        tcp.bind_device(Some(empty)).unwrap();
        assert_eq!(tcp.device().unwrap(), None, "{empty:?}");
        udp.bind_device(Some(b"lo")).unwrap();
        udp.bind_device(Some(empty)).unwrap();
        assert_eq!(udp.device().unwrap(), None, "{empty:?}");
    }
}
