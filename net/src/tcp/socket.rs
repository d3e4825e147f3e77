//! `TcpSocket`: a TCP socket to configure before it connects or listens.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{TcpListener, TcpStream};
use crate::sock_errors::{already_bound, bind_in_use, tcp_no_local_port, tcp_wrong_family};
use crate::sys::{SockAddr, Socket};

/// A TCP socket that has not connected or listened yet: set options (`SO_REUSEPORT`, buffer
/// sizes...), bind, then [`listen`](Self::listen) or [`connect`](Self::connect).
///
/// A thread-per-core server binds one listener per thread to the same port with
/// `SO_REUSEPORT`, and the kernel spreads connections across them:
///
/// ```
/// use overlap::net::TcpSocket;
///
/// overlap::block_on(async {
///     let first = TcpSocket::new_v4()?;
///     first.set_reuseport(true)?;
///     first.bind("127.0.0.1:0".parse().unwrap())?;
///     let addr = first.local_addr()?;
///     let a = first.listen(128)?;
///
///     let second = TcpSocket::new_v4()?;
///     second.set_reuseport(true)?;
///     second.bind(addr)?;
///     let b = second.listen(128)?;
///     assert_eq!(a.local_addr()?, b.local_addr()?);
///
///     let client = TcpSocket::new_v4()?;
///     client.set_nodelay(true)?;
///     let stream = client.connect(addr).await?;
///     assert_eq!(stream.peer_addr()?, addr);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    pub(super) sock: Socket,
    /// Made from an fd, which may be any socket: `listen` and `connect` check its kind (see
    /// `crate::adopt`) as `from_std` would.
    from_fd: bool,
}

impl TcpSocket {
    /// A new IPv4 TCP socket (non-blocking, close-on-exec).
    pub fn new_v4() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            sock: Socket::new(libc::AF_INET, libc::SOCK_STREAM)?,
            from_fd: false,
        })
    }

    /// A new IPv6 TCP socket (non-blocking, close-on-exec).
    pub fn new_v6() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            sock: Socket::new(libc::AF_INET6, libc::SOCK_STREAM)?,
            from_fd: false,
        })
    }

    /// Sets `SO_KEEPALIVE`: the kernel probes an idle connection and fails it if the peer is
    /// gone.
    pub fn set_keepalive(&self, on: bool) -> io::Result<()> {
        self.sock.set_flag(libc::SOL_SOCKET, libc::SO_KEEPALIVE, on)
    }

    /// Whether `SO_KEEPALIVE` is set.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.sock.flag(libc::SOL_SOCKET, libc::SO_KEEPALIVE)
    }

    /// Sets `SO_LINGER` (see [`TcpStream::set_linger`](crate::TcpStream::set_linger)).
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_linger(dur)
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.sock.linger()
    }

    /// Sets `SO_LINGER` to zero: closing the socket (or a stream made from it) then resets
    /// the connection (RST) at once instead of closing it gracefully. The same as
    /// `set_linger(Some(Duration::ZERO))`.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.sock.set_linger(Some(Duration::ZERO))
    }

    /// Sets the type-of-service byte of outgoing packets (`IP_TOS`: DSCP and ECN bits; for
    /// TCP the kernel keeps the ECN bits its own). Values above 255 are refused with
    /// `InvalidInput`. On an IPv6 socket it sets the traffic class (`IPV6_TCLASS`) too,
    /// which IPv6 packets carry, where `IP_TOS` alone marks only IPv4 traffic.
    ///
    /// ```
    /// use overlap::net::TcpSocket;
    ///
    /// overlap::block_on(async {
    ///     let sock = TcpSocket::new_v4()?;
    ///     sock.set_tos(0x10)?; // low delay
    ///     assert_eq!(sock.tos()?, 0x10);
    ///     assert!(sock.set_tos(256).is_err());
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_tos(&self, tos: u32) -> io::Result<()> {
        self.sock.set_tos(tos)
    }

    /// The `IP_TOS` setting.
    pub fn tos(&self) -> io::Result<u32> {
        self.sock.tos()
    }

    /// [`set_tos`](TcpSocket::set_tos) under tokio's newer name.
    pub fn set_tos_v4(&self, tos: u32) -> io::Result<()> {
        self.set_tos(tos)
    }

    /// [`tos`](TcpSocket::tos) under tokio's newer name.
    pub fn tos_v4(&self) -> io::Result<u32> {
        self.tos()
    }

    /// Sets the traffic class of outgoing IPv6 packets (`IPV6_TCLASS`, IPv6's
    /// type-of-service byte), as tokio's `set_tclass_v6`; values above 255 are refused with
    /// `InvalidInput`, and an IPv4 socket refuses it with the kernel's error.
    ///
    /// ```
    /// use overlap::net::TcpSocket;
    ///
    /// let sock = TcpSocket::new_v6()?;
    /// sock.set_tclass_v6(0x20)?;
    /// assert_eq!(sock.tclass_v6()?, 0x20);
    /// assert!(TcpSocket::new_v4()?.set_tclass_v6(0x20).is_err(), "not on IPv4");
    /// # std::io::Result::Ok(())
    /// ```
    pub fn set_tclass_v6(&self, tclass: u32) -> io::Result<()> {
        self.sock.set_tclass(tclass)
    }

    /// The `IPV6_TCLASS` setting.
    pub fn tclass_v6(&self) -> io::Result<u32> {
        self.sock.tclass()
    }

    /// Binds the socket to a network interface by name (`SO_BINDTODEVICE`): its packets
    /// then go out through that interface only, and only packets from it reach the socket.
    /// `None` (or an empty name) undoes it. Older kernels (before 5.7) ask for
    /// `CAP_NET_RAW`. A name with a NUL inside, or longer than 15 bytes (`IFNAMSIZ - 1`), is
    /// refused with `InvalidInput` (the kernel would bind to the interface its start names).
    ///
    /// ```
    /// use overlap::net::TcpSocket;
    ///
    /// overlap::block_on(async {
    ///     let sock = TcpSocket::new_v4()?;
    ///     if sock.bind_device(Some(b"lo")).is_ok() {
    ///         assert_eq!(sock.device()?.as_deref(), Some(&b"lo"[..]));
    ///     }
    ///     sock.bind_device(None)?;
    ///     assert_eq!(sock.device()?, None);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn bind_device(&self, interface: Option<&[u8]>) -> io::Result<()> {
        self.sock.bind_device(interface)
    }

    /// The name of the interface the socket is bound to, if any (see
    /// [`bind_device`](Self::bind_device)).
    pub fn device(&self) -> io::Result<Option<Vec<u8>>> {
        self.sock.device()
    }

    /// Sets `SO_REUSEADDR`: bind to a port with connections still in `TIME_WAIT`. Sockets
    /// that all set it, none listening, may also bind one address and port together, so a
    /// client can pin its source port; their connects must then go to different
    /// destinations (a second one to the same fails with `AddrNotAvailable`, see
    /// [`connect`](Self::connect)).
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        self.sock.set_flag(libc::SOL_SOCKET, libc::SO_REUSEADDR, on)
    }

    /// Whether `SO_REUSEADDR` is on.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.sock.flag(libc::SOL_SOCKET, libc::SO_REUSEADDR)
    }

    /// Sets `IP_BIND_ADDRESS_NO_PORT`: a [`bind`](Self::bind) to port 0 takes the address
    /// only, and the port is chosen at [`connect`](Self::connect), knowing the destination.
    /// A client that picks its source address (spreading connections over several) then
    /// shares each port among destinations, as an unbound connect does, where a bind to port
    /// 0 holds a port of its own whatever the destination and runs out of them far sooner
    /// (about 28,000 per address). Until the connect, [`local_addr`](Self::local_addr)
    /// shows port 0.
    ///
    /// ```
    /// use overlap::net::{TcpListener, TcpSocket};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let sock = TcpSocket::new_v4()?;
    ///     sock.set_bind_address_no_port(true)?;
    ///     sock.bind("127.0.0.2:0".parse().unwrap())?;
    ///     assert_eq!(sock.local_addr()?.port(), 0); // not chosen yet
    ///     let stream = sock.connect(listener.local_addr()?).await?;
    ///     assert_ne!(stream.local_addr()?.port(), 0);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_bind_address_no_port(&self, on: bool) -> io::Result<()> {
        self.sock
            .set_flag(libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, on)
    }

    /// Whether `IP_BIND_ADDRESS_NO_PORT` is on (see
    /// [`set_bind_address_no_port`](Self::set_bind_address_no_port)).
    pub fn bind_address_no_port(&self) -> io::Result<bool> {
        self.sock
            .flag(libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT)
    }

    /// Sets `SO_REUSEPORT`: several sockets of the same user may bind the same address, and
    /// the kernel balances incoming connections between their listeners.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.sock.set_flag(libc::SOL_SOCKET, libc::SO_REUSEPORT, on)
    }

    /// Whether `SO_REUSEPORT` is on.
    pub fn reuseport(&self) -> io::Result<bool> {
        self.sock.flag(libc::SOL_SOCKET, libc::SO_REUSEPORT)
    }

    /// Sets `TCP_NODELAY` (see [`TcpStream::set_nodelay`]); connections accepted by a
    /// listener made from this socket inherit it.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.sock.set_flag(libc::IPPROTO_TCP, libc::TCP_NODELAY, on)
    }

    /// Whether `TCP_NODELAY` is on.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.flag(libc::IPPROTO_TCP, libc::TCP_NODELAY)
    }

    /// Sets `SO_SNDBUF` (the kernel doubles the value for its bookkeeping).
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.sock.set_buffer_size(libc::SO_SNDBUF, size)
    }

    /// The `SO_SNDBUF` setting.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.sock.buffer_size(libc::SO_SNDBUF)
    }

    /// Sets `SO_RCVBUF` (the kernel doubles the value for its bookkeeping).
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.sock.set_buffer_size(libc::SO_RCVBUF, size)
    }

    /// The `SO_RCVBUF` setting.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.sock.buffer_size(libc::SO_RCVBUF)
    }

    /// Binds to a local address (port 0 picks a free port). An address of the other family
    /// than the socket's ([`new_v4`](Self::new_v4) or [`new_v6`](Self::new_v6)) is refused
    /// with `InvalidInput`; an IPv6 socket takes an IPv4 address written IPv4-mapped
    /// (`::ffff:a.b.c.d`), unless it is IPv6-only (`IPV6_V6ONLY`, or new sockets under
    /// `net.ipv6.bindv6only`), which refuses both forms with `InvalidInput` saying so. A
    /// socket binds once: a second `bind` is refused with `InvalidInput` naming the address
    /// it has. An address in use fails with `AddrInUse` naming it, and port 0 with no
    /// ephemeral port left on that address says so.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.sock
            .bind(&SockAddr::from(addr))
            .map_err(|e| tcp_wrong_family(&self.sock, addr, e))
            .map_err(|e| bind_in_use(addr, e))
            .map_err(|e| {
                let bound = self.local_addr().ok().filter(|a| a.port() != 0);
                already_bound(e, bound.map(|a| a.to_string()))
            })
    }

    /// The bound local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()?.to_inet()
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.take_error()
    }

    /// Starts listening with the given backlog and registers the listener with the
    /// runtime. Must be called inside a runtime.
    ///
    /// The backlog is how many handshaken connections wait for `accept` (Linux holds one
    /// more; `net.core.somaxconn` caps it). A connection past it is not refused: the kernel
    /// drops its SYN, and its connect waits for the client's retransmit, a second later
    /// (then 3 s, 7 s...), so a burst of connects against a small backlog shows up as
    /// connects that stall, or time out under a short timeout, never `ConnectionRefused`.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        if self.from_fd {
            crate::adopt::TCP_LISTENER.check_before_listen(&self.sock)?;
        }
        self.sock
            .listen(backlog.min(libc::c_int::MAX as u32) as libc::c_int)?;
        if self.from_fd {
            crate::adopt::TCP_LISTENER.check(&self.sock)?;
        }
        // A socket made from an fd may be in blocking mode: its accepts would stall the loop.
        TcpListener::adopt(self.sock)
    }

    /// Connects to `addr` without blocking (see [`TcpStream::connect`]). Dropping the
    /// future closes the socket. An address of the other family is refused with
    /// `InvalidInput`, as by [`bind`](Self::bind), and so is an IPv4 one, plain or
    /// IPv4-mapped, for an IPv6 socket that carries no IPv4 (IPv6-only, or bound to an IPv6
    /// address), where the kernel's "Network is unreachable" names neither. A socket bound
    /// to an address and port already connected to `addr` (several sockets may share a port
    /// through [`set_reuseaddr`](Self::set_reuseaddr)) fails with `AddrNotAvailable` naming
    /// both; the socket is closed whatever the error.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        if self.from_fd {
            crate::adopt::TCP_STREAM.check(&self.sock)?;
        }
        // As in `listen`: a blocking connect would stall the loop for the whole handshake.
        let io = crate::io::register_nonblocking(self.sock)?;
        crate::connect::connect_registered(&io, &SockAddr::from(addr))
            .await
            .map_err(|e| tcp_wrong_family(io.get_ref(), addr, e))
            .map_err(|e| tcp_no_local_port(io.get_ref(), addr, e))?;
        Ok(TcpStream { io })
    }
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl From<OwnedFd> for TcpSocket {
    /// Takes a TCP socket fd as it is; [`listen`](Self::listen) and
    /// [`connect`](Self::connect) switch it to non-blocking mode, and refuse with
    /// `InvalidInput` a socket that is not an IPv4 or IPv6 stream socket (as `from_std`
    /// does).
    fn from(fd: OwnedFd) -> TcpSocket {
        TcpSocket {
            sock: Socket::from_owned(fd),
            from_fd: true,
        }
    }
}

impl From<TcpSocket> for OwnedFd {
    fn from(socket: TcpSocket) -> OwnedFd {
        socket.sock.into_owned()
    }
}
