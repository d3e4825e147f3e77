//! IP options given a value the kernel refuses fail with `InvalidInput` in our own words,
//! naming what was wrong, instead of its bare "Invalid argument" or "Protocol not available":
//!
//! - a unicast TTL of 0 (`IP_TTL` takes 1 to 255; a multicast TTL of 0, which keeps
//!   datagrams on this host, is still taken);
//! - a multicast join or leave for an address that is no multicast group;
//! - an IPv6 multicast option (`join_multicast_v6`, `set_multicast_loop_v6`...) on an IPv4
//!   socket, which the kernel answers with `ENOPROTOOPT` ("Protocol not available");
//! - a type of service above 255, or an interface name the kernel would cut (and `set_tos`,
//!   `bind_device` round trips on a UDP socket that still talks over loopback);
//! - and `set_tos` and `set_ttl` on an IPv6 socket set the traffic class and hop limit its
//!   IPv6 packets carry, not only `IP_TOS` and `IP_TTL`, which the kernel takes there but
//!   applies to IPv4 traffic alone.

mod support;

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr};

use overlap::net::{TcpListener, UdpSocket};
use support::{in_our_words, int_option};

fn refused<T: std::fmt::Debug>(what: &str, res: io::Result<T>, words: &[&str]) {
    let err = res.expect_err(what);
    in_our_words(what, &err, ErrorKind::InvalidInput, words);
}

#[overlap::test]
async fn a_zero_ttl_is_refused_naming_the_range_and_a_zero_multicast_ttl_is_not() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.set_ttl(9).unwrap();
    refused("udp set_ttl(0)", udp.set_ttl(0), &["TTL", "0"]);
    assert_eq!(udp.ttl().unwrap(), 9, "unchanged");
    let v6 = UdpSocket::bind("[::1]:0").await.unwrap();
    refused("udp v6 set_ttl(0)", v6.set_ttl(0), &["TTL", "0"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    refused(
        "tcp listener set_ttl(0)",
        listener.set_ttl(0),
        &["TTL", "0"],
    );
    udp.set_ttl(1).unwrap();
    udp.set_ttl(255).unwrap();
    udp.set_multicast_ttl_v4(0).unwrap();
    assert_eq!(udp.multicast_ttl_v4().unwrap(), 0);
}

#[overlap::test]
async fn a_multicast_join_of_no_group_is_refused_naming_the_address() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let any = Ipv4Addr::UNSPECIFIED;
    for addr in [Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST, any] {
        let what = format!("join_multicast_v4({addr})");
        refused(
            &what,
            udp.join_multicast_v4(addr, any),
            &["multicast", &addr.to_string()],
        );
        let what = format!("leave_multicast_v4({addr})");
        refused(
            &what,
            udp.leave_multicast_v4(addr, any),
            &["multicast", &addr.to_string()],
        );
    }
    // A group is still joined and left: on `lo`, not the kernel's choice of interface,
    // whose membership reports (IGMP) would go out on the machine's network.
    let group = Ipv4Addr::new(239, 255, 10, 11);
    udp.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    udp.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();

    let v6 = UdpSocket::bind("[::1]:0").await.unwrap();
    for addr in [Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED] {
        let what = format!("join_multicast_v6({addr})");
        refused(
            &what,
            v6.join_multicast_v6(&addr, 0),
            &["multicast", &addr.to_string()],
        );
        let what = format!("leave_multicast_v6({addr})");
        refused(
            &what,
            v6.leave_multicast_v6(&addr, 0),
            &["multicast", &addr.to_string()],
        );
    }
}

#[overlap::test]
async fn ipv6_multicast_options_on_an_ipv4_socket_say_so() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let group: Ipv6Addr = "ff02::114".parse().unwrap();
    let words = ["IPv6", "IPv4 socket"];
    refused(
        "join_multicast_v6",
        udp.join_multicast_v6(&group, 0),
        &words,
    );
    refused(
        "leave_multicast_v6",
        udp.leave_multicast_v6(&group, 0),
        &words,
    );
    refused(
        "set_multicast_loop_v6",
        udp.set_multicast_loop_v6(true),
        &words,
    );
    refused("multicast_loop_v6", udp.multicast_loop_v6(), &words);
    // An IPv6 socket takes them, and IPv4 ones too (it may carry IPv4 traffic).
    let v6 = UdpSocket::bind("[::1]:0").await.unwrap();
    v6.set_multicast_loop_v6(false).unwrap();
    assert!(!v6.multicast_loop_v6().unwrap());
    v6.set_multicast_loop_v4(true).unwrap();
}

#[overlap::test]
async fn udp_tos_round_trips_and_a_socket_bound_to_loopback_still_talks() {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(a.tos().unwrap(), 0);
    a.set_tos(0x28).unwrap();
    assert_eq!(a.tos().unwrap(), 0x28);
    refused("udp set_tos(256)", a.set_tos(256), &["255", "256"]);
    assert_eq!(a.tos().unwrap(), 0x28, "a refused value changes nothing");

    assert_eq!(a.device().unwrap(), None);
    a.bind_device(Some(b"lo")).unwrap();
    assert_eq!(a.device().unwrap().as_deref(), Some(&b"lo"[..]));
    refused(
        "udp bind_device(lo\\0x)",
        a.bind_device(Some(b"lo\0x")),
        &["interface"],
    );
    let err = b.bind_device(Some(b"no-such-if0")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV));
    a.send_to(b"over lo", b.local_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = b.recv_from(&mut buf).await.unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"over lo"[..], a.local_addr().unwrap())
    );
    a.bind_device(None).unwrap();
    assert_eq!(a.device().unwrap(), None);
}

#[overlap::test]
async fn set_tos_on_an_ipv6_socket_sets_the_traffic_class_its_datagrams_carry() {
    use std::os::fd::AsRawFd;
    // IP_TOS alone marks only IPv4 traffic: the kernel takes it on an IPv6 socket and reads
    // it back, while the socket's IPv6 datagrams go out with traffic class 0.
    let udp = UdpSocket::bind("[::1]:0").await.unwrap();
    udp.set_tos(0xb8).unwrap();
    assert_eq!(udp.tos().unwrap(), 0xb8);
    let fd = udp.as_raw_fd();
    assert_eq!(int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS), 0xb8);
    // A dual-stack socket marks its IPv4 datagrams too.
    let dual = UdpSocket::bind("[::]:0").await.unwrap();
    dual.set_tos(0x28).unwrap();
    let fd = dual.as_raw_fd();
    assert_eq!(int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS), 0x28);
    assert_eq!(int_option(fd, libc::IPPROTO_IP, libc::IP_TOS), 0x28);
    // And TcpSocket's, which shares it.
    let tcp = overlap::net::TcpSocket::new_v6().unwrap();
    tcp.set_tos(0x10).unwrap();
    let fd = tcp.as_raw_fd();
    assert_eq!(int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS), 0x10);
}

#[overlap::test]
async fn set_ttl_on_an_ipv6_socket_sets_the_hop_limit_its_packets_carry() {
    use std::os::fd::AsRawFd;
    // IP_TTL alone is taken and read back on an IPv6 socket, and IPv6 packets go out with
    // the default hop limit (64) all the same.
    let hops = |fd| int_option(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS);
    let udp = UdpSocket::bind("[::1]:0").await.unwrap();
    udp.set_ttl(7).unwrap();
    assert_eq!(udp.ttl().unwrap(), 7);
    assert_eq!(hops(udp.as_raw_fd()), 7);
    let listener = TcpListener::bind("[::1]:0").await.unwrap();
    listener.set_ttl(9).unwrap();
    assert_eq!(hops(listener.as_raw_fd()), 9);
    let stream = overlap::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    stream.set_ttl(11).unwrap();
    assert_eq!(hops(stream.as_raw_fd()), 11);
    // An IPv4 socket has no hop limit to set.
    let v4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    v4.set_ttl(5).unwrap();
    assert_eq!(v4.ttl().unwrap(), 5);
}
