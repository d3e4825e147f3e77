//! `UdpSocket`'s socket options: buffer sizes, broadcast, TTL, type of service, the
//! interface bound to, and multicast.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::sock_errors::multicast_membership;
use crate::sys::Socket;
use crate::UdpSocket;

impl UdpSocket {
    /// Sets the type-of-service byte of outgoing datagrams (`IP_TOS`: DSCP and ECN bits),
    /// as [`TcpSocket::set_tos`](crate::TcpSocket::set_tos) does; values above 255 are
    /// refused with `InvalidInput`. On an IPv6 socket it sets the traffic class
    /// (`IPV6_TCLASS`) too, which IPv6 datagrams carry, where `IP_TOS` alone (what tokio's
    /// sets) marks only a dual-stack socket's IPv4 ones and leaves IPv6 ones at 0.
    ///
    /// ```
    /// use overlap::net::UdpSocket;
    ///
    /// overlap::block_on(async {
    ///     let sock = UdpSocket::bind("127.0.0.1:0").await?;
    ///     sock.set_tos(0xb8)?; // DSCP EF, for voice
    ///     assert_eq!(sock.tos()?, 0xb8);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        self.io.get_ref().set_tos(tos)
    }

    /// The `IP_TOS` setting.
    pub fn tos(&self) -> io::Result<u32> {
        self.io.get_ref().tos()
    }

    /// [`set_tos`](UdpSocket::set_tos) under tokio's newer name.
    pub fn set_tos_v4(&self, tos: u32) -> io::Result<()> {
        self.set_tos(tos)
    }

    /// [`tos`](UdpSocket::tos) under tokio's newer name.
    pub fn tos_v4(&self) -> io::Result<u32> {
        self.tos()
    }

    /// Sets the traffic class of outgoing IPv6 datagrams (`IPV6_TCLASS`), as
    /// [`TcpSocket::set_tclass_v6`](crate::TcpSocket::set_tclass_v6) does; an IPv4 socket
    /// refuses it with the kernel's error.
    pub fn set_tclass_v6(&self, tclass: u32) -> io::Result<()> {
        self.io.get_ref().set_tclass(tclass)
    }

    /// The `IPV6_TCLASS` setting.
    pub fn tclass_v6(&self) -> io::Result<u32> {
        self.io.get_ref().tclass()
    }

    /// Binds the socket to a network interface by name (`SO_BINDTODEVICE`), as
    /// [`TcpSocket::bind_device`](crate::TcpSocket::bind_device) does: its datagrams then
    /// go out through that interface only, and only datagrams from it are received. `None`
    /// undoes it; a name with a NUL inside or longer than 15 bytes is refused with
    /// `InvalidInput`, and one no interface has fails with the kernel's `ENODEV`.
    pub fn bind_device(&self, interface: Option<&[u8]>) -> io::Result<()> {
        self.io.get_ref().bind_device(interface)
    }

    /// The name of the interface the socket is bound to, if any (see
    /// [`bind_device`](Self::bind_device)).
    pub fn device(&self) -> io::Result<Option<Vec<u8>>> {
        self.io.get_ref().device()
    }

    /// Sets `SO_SNDBUF`, the most the kernel holds of datagrams not yet sent (it doubles
    /// the value for its bookkeeping, and caps it at `net.core.wmem_max`). A datagram that
    /// does not fit waits in `send` until room is freed.
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.io.get_ref().set_buffer_size(libc::SO_SNDBUF, size)
    }

    /// The `SO_SNDBUF` setting, as the kernel keeps it (twice what was set).
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.io.get_ref().buffer_size(libc::SO_SNDBUF)
    }

    /// Sets `SO_RCVBUF`, the most the kernel queues of datagrams not yet received (it
    /// doubles the value for its bookkeeping, and caps it at `net.core.rmem_max`). Each
    /// queued datagram counts with the kernel's overhead, so far fewer small datagrams fit
    /// than the size suggests; one arriving when the queue is full is dropped, and no one
    /// is told. A server taking bursts raises it; one that wants old datagrams dropped
    /// rather than late lowers it.
    ///
    /// ```
    /// use overlap::net::UdpSocket;
    ///
    /// overlap::block_on(async {
    ///     let sock = UdpSocket::bind("127.0.0.1:0").await?;
    ///     sock.set_recv_buffer_size(64 * 1024)?;
    ///     assert_eq!(sock.recv_buffer_size()?, 128 * 1024);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.io.get_ref().set_buffer_size(libc::SO_RCVBUF, size)
    }

    /// The `SO_RCVBUF` setting, as the kernel keeps it (twice what was set).
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.io.get_ref().buffer_size(libc::SO_RCVBUF)
    }

    /// Sets `SO_BROADCAST`: allow sending to a broadcast address. Without it, a send to
    /// one (or a [`connect`](Self::connect)) fails with `PermissionDenied` saying so, where
    /// the kernel's bare "Permission denied" reads as a missing privilege.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io
            .get_ref()
            .set_flag(libc::SOL_SOCKET, libc::SO_BROADCAST, on)
    }

    /// Whether `SO_BROADCAST` is on.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().flag(libc::SOL_SOCKET, libc::SO_BROADCAST)
    }

    /// Sets `IP_TTL`: 1 to 255, anything else is refused with `InvalidInput`. On an IPv6
    /// socket it sets the hop limit (`IPV6_UNICAST_HOPS`) too, which IPv6 datagrams carry,
    /// where `IP_TTL` alone (what tokio's and std's set) leaves them at the default.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl_option(libc::IP_TTL, ttl)
    }

    /// The `IP_TTL` setting.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl_option(libc::IP_TTL)
    }

    /// Joins an IPv4 multicast group on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED` lets the kernel choose). A `multiaddr` that is no multicast
    /// address (outside 224.0.0.0/4) is refused with `InvalidInput`, and so is an
    /// `interface` no interface has, naming it (the kernel says "No such device"). A group
    /// this socket has joined on that interface already fails with `AddrInUse` saying so
    /// (the kernel's "Address already in use" reads as a port taken).
    pub fn join_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        multicast_group(multiaddr.into())?;
        self.io
            .get_ref()
            .setsockopt(
                libc::IPPROTO_IP,
                libc::IP_ADD_MEMBERSHIP,
                mreq_v4(multiaddr, interface),
            )
            .map_err(|e| multicast_membership(e, true, multiaddr.into(), &on_v4(interface)))
    }

    /// Leaves an IPv4 multicast group joined with [`join_multicast_v4`](Self::join_multicast_v4).
    /// A `multiaddr` that is no multicast address is refused with `InvalidInput`; a group
    /// this socket has not joined on that interface fails with `AddrNotAvailable` saying so.
    pub fn leave_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        multicast_group(multiaddr.into())?;
        self.io
            .get_ref()
            .setsockopt(
                libc::IPPROTO_IP,
                libc::IP_DROP_MEMBERSHIP,
                mreq_v4(multiaddr, interface),
            )
            .map_err(|e| multicast_membership(e, false, multiaddr.into(), &on_v4(interface)))
    }

    /// Joins an IPv6 multicast group on interface index `interface` (0: any). A `multiaddr`
    /// that is no multicast address (outside ff00::/8), or an IPv4 socket, is refused with
    /// `InvalidInput`, and so is an index no interface has, naming it; a group joined
    /// already on that interface fails with `AddrInUse`, as
    /// [`join_multicast_v4`](Self::join_multicast_v4) says.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        multicast_group((*multiaddr).into())?;
        self.ipv6_option(|s| {
            s.setsockopt(
                libc::IPPROTO_IPV6,
                libc::IPV6_ADD_MEMBERSHIP,
                mreq_v6(multiaddr, interface),
            )
        })
        .map_err(|e| multicast_membership(e, true, (*multiaddr).into(), &on_v6(interface)))
    }

    /// Leaves an IPv6 multicast group; refuses what [`join_multicast_v6`](Self::join_multicast_v6)
    /// refuses, and a group not joined on that interface as
    /// [`leave_multicast_v4`](Self::leave_multicast_v4) does.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        multicast_group((*multiaddr).into())?;
        self.ipv6_option(|s| {
            s.setsockopt(
                libc::IPPROTO_IPV6,
                libc::IPV6_DROP_MEMBERSHIP,
                mreq_v6(multiaddr, interface),
            )
        })
        .map_err(|e| multicast_membership(e, false, (*multiaddr).into(), &on_v6(interface)))
    }

    /// Sets `IP_MULTICAST_LOOP`: whether this host's own multicast datagrams loop back.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io
            .get_ref()
            .set_flag(libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, on)
    }

    /// Whether `IP_MULTICAST_LOOP` is on.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io
            .get_ref()
            .flag(libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP)
    }

    /// Sets `IP_MULTICAST_TTL`: 0 (this host only) to 255; more is refused with
    /// `InvalidInput`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io
            .get_ref()
            .set_ttl_option(libc::IP_MULTICAST_TTL, ttl)
    }

    /// The `IP_MULTICAST_TTL` setting.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.get_ref().ttl_option(libc::IP_MULTICAST_TTL)
    }

    /// Sets `IPV6_MULTICAST_LOOP`. An IPv4 socket has no such option: `InvalidInput`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.ipv6_option(|s| s.set_flag(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, on))
    }

    /// Whether `IPV6_MULTICAST_LOOP` is on (`InvalidInput` on an IPv4 socket).
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.ipv6_option(|s| s.flag(libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP))
    }

    /// Runs `op`, an IPv6-level option call. An IPv4 socket has no such options, and the
    /// kernel says only "Protocol not available" (`ENOPROTOOPT`, setting one) or "Operation
    /// not supported" (`EOPNOTSUPP`, reading one): that becomes `InvalidInput` saying what
    /// is wrong.
    fn ipv6_option<T>(&self, op: impl FnOnce(&Socket) -> io::Result<T>) -> io::Result<T> {
        let sock = self.io.get_ref();
        match op(sock) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOPROTOOPT | libc::EOPNOTSUPP)) => {
                let domain = sock.getsockopt::<libc::c_int>(libc::SOL_SOCKET, libc::SO_DOMAIN);
                if domain.ok() != Some(libc::AF_INET) {
                    return Err(e);
                }
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an IPv6 multicast option cannot be used on an IPv4 socket",
                ))
            }
            res => res,
        }
    }
}

/// `Ok` if `group` is a multicast address; `InvalidInput` naming it otherwise (the kernel's
/// words are "Invalid argument", or for a leave, "Cannot assign requested address").
fn multicast_group(group: std::net::IpAddr) -> io::Result<()> {
    if group.is_multicast() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{group} is not a multicast address (IPv4 groups are 224.0.0.0/4, IPv6 ones ff00::/8)"
        ),
    ))
}

/// The interface of an IPv4 membership, in words for an error.
fn on_v4(interface: Ipv4Addr) -> String {
    if interface.is_unspecified() {
        "the interface the kernel would choose (the one its route goes through)".to_string()
    } else {
        format!("the interface with address {interface}")
    }
}

/// The interface of an IPv6 membership, in words for an error.
fn on_v6(interface: u32) -> String {
    if interface == 0 {
        "the interface the kernel would choose (the one its route goes through)".to_string()
    } else {
        format!("interface index {interface}")
    }
}

fn mreq_v4(multiaddr: Ipv4Addr, interface: Ipv4Addr) -> libc::ip_mreq {
    libc::ip_mreq {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(multiaddr).to_be(),
        },
        imr_interface: libc::in_addr {
            s_addr: u32::from(interface).to_be(),
        },
    }
}

fn mreq_v6(multiaddr: &Ipv6Addr, interface: u32) -> libc::ipv6_mreq {
    libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: multiaddr.octets(),
        },
        ipv6mr_interface: interface as libc::c_uint,
    }
}
