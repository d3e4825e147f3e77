//! The UDP half of the socket options' contract audit (the TCP half, and what survives
//! `into_std`, is in `net_options_audit.rs`), on the loopback interface only:
//!
//! - a group joined on `lo` (by its address, 127.0.0.1) receives the datagrams sent to it
//!   with a multicast TTL of 0 ("this host only") through `lo`, and stops once left;
//! - IPv6 groups join and leave on `lo` by its index (this kernel's `lo` has no
//!   `MULTICAST` flag, so IPv6 multicast cannot be sent over it: only membership is
//!   checked);
//! - a join on an interface that does not exist, a second join of a group and a leave of a
//!   group not joined are refused saying so, where the kernel's words ("No such device",
//!   "Address already in use", "Cannot assign requested address") name neither;
//! - `SO_BROADCAST` is what lets a datagram reach `lo`'s broadcast address;
//! - buffer sizes past the system's maximum are capped at twice it.
//!
//! Nothing here can leave the machine: senders are bound to `lo` (`SO_BINDTODEVICE`) and
//! to 127.0.0.1, multicast goes out with a TTL of 0, broadcast to 127.255.255.255, and no
//! join lets the kernel choose the interface.

mod support;

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use overlap::net::{TcpSocket, UdpSocket};
use support::{in_our_words, set_int_option, within};

const HANG: Duration = Duration::from_secs(30);

/// The loopback interface's index.
fn lo_index() -> u32 {
    let text = std::fs::read_to_string("/sys/class/net/lo/ifindex").unwrap();
    text.trim().parse().unwrap()
}

/// A number from `/proc/sys/<name>`.
fn sysctl(name: &str) -> u32 {
    let text = std::fs::read_to_string(format!("/proc/sys/{name}")).unwrap();
    text.trim().parse().unwrap()
}

/// A socket bound to `group` (so it takes only that group's datagrams) that joined it on
/// `lo`. With `IP_MULTICAST_ALL` off, it takes them only while it is a member itself: by
/// default Linux delivers a group's datagrams to every socket bound to their port while any
/// socket on the host is a member, so another process that joined the same group (this
/// test running twice at once) would keep a group this socket left arriving.
async fn member_of(group: Ipv4Addr) -> UdpSocket {
    let sock = UdpSocket::bind(SocketAddr::from((group, 0))).await.unwrap();
    let fd = sock.as_raw_fd();
    set_int_option(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0).unwrap();
    sock.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    sock
}

/// A sender that cannot reach past `lo`: bound to it and to 127.0.0.1, with a multicast TTL
/// of 0, which keeps its multicast datagrams on this host.
async fn loopback_sender() -> UdpSocket {
    let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    tx.bind_device(Some(b"lo")).unwrap();
    tx.set_multicast_ttl_v4(0).unwrap();
    tx
}

async fn recv_one(sock: &UdpSocket, what: &str) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 64];
    let (n, from) = within(HANG, sock.recv_from(&mut buf), what).await.unwrap();
    (buf[..n].to_vec(), from)
}

#[overlap::test]
async fn a_group_joined_on_loopback_receives_until_it_is_left() {
    let group = Ipv4Addr::new(239, 255, 141, 1);
    let marker_group = Ipv4Addr::new(239, 255, 141, 2);
    let rx = member_of(group).await;
    let marker = member_of(marker_group).await;
    let tx = loopback_sender().await;
    let to = SocketAddr::from((group, rx.local_addr().unwrap().port()));
    let marker_to = SocketAddr::from((marker_group, marker.local_addr().unwrap().port()));

    tx.send_to(b"joined", to).await.unwrap();
    let from = tx.local_addr().unwrap();
    assert_eq!(recv_one(&rx, "joined").await, (b"joined".to_vec(), from));

    rx.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    tx.send_to(b"left", to).await.unwrap();
    // The marker went out after it through the same interface: once it is in, so would
    // the datagram sent before it be, had the group still been joined.
    tx.send_to(b"marker", marker_to).await.unwrap();
    assert_eq!(recv_one(&marker, "marker").await.0, b"marker");
    let err = rx.try_recv(&mut [0u8; 64]).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::WouldBlock,
        "a group left still received"
    );

    rx.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    tx.send_to(b"again", to).await.unwrap();
    assert_eq!(recv_one(&rx, "joined again").await.0, b"again");
}

#[overlap::test]
async fn ipv6_groups_join_and_leave_on_the_loopback_interface() {
    let lo = lo_index();
    let sock = UdpSocket::bind("[::1]:0").await.unwrap();
    for group in ["ff01::141:1", "ff02::141:1", "ff05::141:1"] {
        let group: Ipv6Addr = group.parse().unwrap();
        sock.join_multicast_v6(&group, lo).unwrap();
        sock.leave_multicast_v6(&group, lo).unwrap();
        sock.join_multicast_v6(&group, lo).unwrap();
    }
    for on in [false, true] {
        sock.set_multicast_loop_v6(on).unwrap();
        assert_eq!(sock.multicast_loop_v6().unwrap(), on);
    }
    // A dual-stack socket joins IPv4 groups too.
    let dual = UdpSocket::bind("[::]:0").await.unwrap();
    let group = Ipv4Addr::new(239, 255, 141, 3);
    dual.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
    dual.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
}

/// `err` is `kind` in our words, which say each of `words`, with the kernel's `code` kept
/// as its source.
fn said(what: &str, err: io::Error, kind: ErrorKind, code: i32, words: &[&str]) {
    in_our_words(what, &err, kind, words);
    assert_eq!(
        overlap::io::raw_os_error(&err),
        Some(code),
        "{what}: the kernel's code is kept"
    );
}

#[overlap::test]
async fn a_join_on_an_interface_that_does_not_exist_says_so() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let group = Ipv4Addr::new(239, 255, 141, 4);
    // TEST-NET-2: documentation's addresses, no interface's.
    let nowhere = Ipv4Addr::new(198, 51, 100, 7);
    let err = udp.join_multicast_v4(group, nowhere).unwrap_err();
    said(
        "join on 198.51.100.7",
        err,
        ErrorKind::InvalidInput,
        libc::ENODEV,
        &["interface", "198.51.100.7"],
    );
    let udp6 = UdpSocket::bind("[::1]:0").await.unwrap();
    let group6: Ipv6Addr = "ff02::141:4".parse().unwrap();
    let err = udp6.join_multicast_v6(&group6, 999_999).unwrap_err();
    said(
        "join on index 999999",
        err,
        ErrorKind::InvalidInput,
        libc::ENODEV,
        &["interface", "999999"],
    );
}

#[overlap::test]
async fn joining_twice_or_leaving_a_group_not_joined_says_so() {
    let lo = Ipv4Addr::LOCALHOST;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let group = Ipv4Addr::new(239, 255, 141, 5);
    let err = udp.leave_multicast_v4(group, lo).unwrap_err();
    let words = ["not joined", "239.255.141.5"];
    said(
        "leave first",
        err,
        ErrorKind::AddrNotAvailable,
        libc::EADDRNOTAVAIL,
        &words,
    );
    udp.join_multicast_v4(group, lo).unwrap();
    let err = udp.join_multicast_v4(group, lo).unwrap_err();
    let words = ["already joined", "239.255.141.5"];
    said(
        "join twice",
        err,
        ErrorKind::AddrInUse,
        libc::EADDRINUSE,
        &words,
    );
    udp.leave_multicast_v4(group, lo).unwrap();

    let lo6 = lo_index();
    let udp6 = UdpSocket::bind("[::1]:0").await.unwrap();
    let group6: Ipv6Addr = "ff02::141:5".parse().unwrap();
    let err = udp6.leave_multicast_v6(&group6, lo6).unwrap_err();
    let words = ["not joined", "ff02::141:5"];
    said(
        "leave6 first",
        err,
        ErrorKind::AddrNotAvailable,
        libc::EADDRNOTAVAIL,
        &words,
    );
    udp6.join_multicast_v6(&group6, lo6).unwrap();
    let err = udp6.join_multicast_v6(&group6, lo6).unwrap_err();
    let words = ["already joined", "ff02::141:5"];
    said(
        "join6 twice",
        err,
        ErrorKind::AddrInUse,
        libc::EADDRINUSE,
        &words,
    );
}

/// `set_broadcast`: "allow sending to a broadcast address". Without it the kernel refuses
/// the send (and sends nothing); with it the datagram reaches a socket bound to `lo`'s
/// broadcast address, 127.255.255.255, which no packet leaves.
#[overlap::test]
async fn broadcast_reaches_the_loopback_broadcast_address_only_once_allowed() {
    let rx = UdpSocket::bind("127.255.255.255:0").await.unwrap();
    let to = rx.local_addr().unwrap();
    let tx = loopback_sender().await;
    let err = tx.send_to(b"refused", to).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    tx.set_broadcast(true).unwrap();
    tx.send_to(b"allowed", to).await.unwrap();
    let from = tx.local_addr().unwrap();
    assert_eq!(
        recv_one(&rx, "broadcast").await,
        (b"allowed".to_vec(), from)
    );
    tx.set_broadcast(false).unwrap();
    let err = tx.send_to(b"refused", to).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
}

/// Without `SO_BROADCAST` the kernel refuses a send or connect to a broadcast address with
/// a bare "Permission denied", which reads as a missing privilege: every call says what to
/// do instead, the kernel's code kept.
#[overlap::test]
async fn a_broadcast_refused_for_want_of_so_broadcast_says_so() {
    let rx = UdpSocket::bind("127.255.255.255:0").await.unwrap();
    let to = rx.local_addr().unwrap();
    let tx = loopback_sender().await;
    let words = ["set_broadcast(true)", "127.255.255.255"];
    let (kind, code) = (ErrorKind::PermissionDenied, libc::EACCES);
    let err = tx.send_to(b"refused", to).await.unwrap_err();
    said("send_to", err, kind, code, &words);
    let err = tx.try_send_to(b"refused", to).unwrap_err();
    said("try_send_to", err, kind, code, &words);
    let err = tx.connect(to).await.unwrap_err();
    said("connect", err, kind, code, &words);
    // Allowed, the same calls go through.
    tx.set_broadcast(true).unwrap();
    tx.connect(to).await.unwrap();
    tx.send(b"connected").await.unwrap();
    assert_eq!(recv_one(&rx, "connected").await.0, b"connected");
}

/// `set_recv_buffer_size`/`set_send_buffer_size`: the kernel "doubles the value ... and
/// caps it at `net.core.rmem_max`" (`wmem_max`): the getters read twice the cap, for UDP
/// and TCP sockets alike, even for a size past `i32::MAX`.
#[overlap::test]
async fn buffer_sizes_past_the_system_maximum_are_capped_at_twice_it() {
    let rmem_max = sysctl("net/core/rmem_max");
    let wmem_max = sysctl("net/core/wmem_max");
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.set_recv_buffer_size(u32::MAX).unwrap();
    udp.set_send_buffer_size(u32::MAX).unwrap();
    assert_eq!(udp.recv_buffer_size().unwrap(), 2 * rmem_max);
    assert_eq!(udp.send_buffer_size().unwrap(), 2 * wmem_max);
    udp.set_recv_buffer_size(rmem_max + 1).unwrap();
    assert_eq!(udp.recv_buffer_size().unwrap(), 2 * rmem_max);
    udp.set_send_buffer_size(20_000).unwrap();
    assert_eq!(udp.send_buffer_size().unwrap(), 40_000);
    let tcp = TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(u32::MAX).unwrap();
    tcp.set_send_buffer_size(u32::MAX).unwrap();
    assert_eq!(tcp.recv_buffer_size().unwrap(), 2 * rmem_max);
    assert_eq!(tcp.send_buffer_size().unwrap(), 2 * wmem_max);
}
