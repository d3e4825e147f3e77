//! `UdpSocket`: datagrams over IP.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::task::{ready, Context, Poll};

use overlap_runtime::{AsyncFd, Direction};

use crate::io::{
    impl_readiness, poll_read_with, poll_recv_datagram, poll_send_datagram, poll_write_with,
    read_io, try_now, write_io,
};
use crate::resolve::{resolve_first, try_each, ToSocketAddrs};
use crate::sock_errors::{no_peer, udp_refused};
use crate::sys::{SockAddr, Socket};

/// A UDP socket on the reactor.
///
/// Each `recv` returns one datagram; one longer than the buffer is truncated (the rest is
/// lost). Readiness is only cleared on `EAGAIN` here, since a short datagram says nothing
/// about what else is queued.
///
/// On a [connected](Self::connect) socket, an ICMP "port unreachable" from the peer is
/// reported by a later `send` or `recv` (or peek) as `ConnectionRefused`; a `send` that
/// reports it has sent nothing, and the next one goes out. An unconnected socket is not
/// told (Linux tells connected ones only, unless `IP_RECVERR` is set): a server's `send_to`
/// a gone peer is lost like any datagram, and its `recv_from` waits on.
///
/// A datagram longer than UDP can carry (65,507 bytes of payload over IPv4, 65,527 over
/// IPv6) is refused by the kernel with `EMSGSIZE`, "Message too long", which has no
/// `ErrorKind` of its own: match it with `err.raw_os_error() == Some(libc::EMSGSIZE)`.
/// Nothing is sent, and the socket goes on working.
///
/// ```
/// use overlap::net::UdpSocket;
///
/// overlap::block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct UdpSocket {
    pub(crate) io: AsyncFd<Socket>,
    /// The last `send_batch` sent fewer datagrams than it offered: the next one tries only
    /// its first, alone (see `send_batch`).
    pub(crate) batch_cut: std::sync::atomic::AtomicBool,
}

impl UdpSocket {
    /// Binds to `addr`, trying each resolved address in turn (port 0 picks a free port).
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        try_each(addr, |a| async move {
            let sock = Socket::new(SockAddr::domain_of(&a), libc::SOCK_DGRAM)?;
            sock.bind(&SockAddr::from(a))
                .map_err(|e| crate::sock_errors::bind_in_use(a, e))?;
            UdpSocket::from_socket(sock)
        })
        .await
    }

    fn from_socket(sock: Socket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: AsyncFd::new(sock)?,
            batch_cut: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Wraps a std socket, switching it to non-blocking mode. Must be called inside a
    /// runtime; outside one it fails, and leaves the socket's mode (shared with its dups)
    /// as it was. A socket that is not an IPv4 or IPv6 datagram socket (a Unix or TCP
    /// socket passed in as an fd) is refused with `InvalidInput`, as is an fd that is no
    /// socket at all (a pipe, a file, an eventfd).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        let sock = Socket::from_owned(OwnedFd::from(socket));
        crate::adopt::UDP_SOCKET.check(&sock)?;
        Ok(UdpSocket {
            io: crate::io::register_nonblocking(sock)?,
            batch_cut: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Removes the socket from the reactor and returns it as a std socket, still in
    /// non-blocking mode.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        Ok(std::net::UdpSocket::from(self.io.into_inner().into_owned()))
    }

    /// Sets the default peer for [`send`](Self::send) and the only source the kernel queues
    /// datagrams from, from now on: one from elsewhere is dropped unseen, and its sender
    /// gets an ICMP "port unreachable" (`ConnectionRefused` on its next call, if connected)
    /// as if no socket were bound here, so a protocol that must answer a stranger (TFTP's
    /// ERROR 5 to a wrong transfer ID) keeps its socket unconnected and checks each
    /// `recv_from`'s source. Datagrams already queued stay, whatever their source,
    /// and [`recv`](Self::recv) returns them first with no way to tell where they came
    /// from: a client that must take only its peer's answers (a DNS resolver) still checks
    /// each one, or drains the queue with [`try_recv_from`](Self::try_recv_from) after the
    /// connect, as a socket bound to port 0 can be sent to before it is connected.
    ///
    /// Tries each resolved address until one is accepted; an IPv6 address for an IPv4
    /// socket, or an IPv4 one for an IPv6 socket bound to an IPv6 address (such as `::1`)
    /// or set IPv6-only, is refused with `InvalidInput`.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        let sock = self.io.get_ref();
        try_each(addr, |a| async move {
            sock.connect(&SockAddr::from(a))
                .map_err(|e| udp_refused(sock, a, e))
        })
        .await
    }

    /// Sends a datagram to the connected peer; returns the bytes sent. A socket never
    /// connected fails with `NotConnected`.
    ///
    /// Cancel-safe: dropped before it completes, it has sent nothing.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        write_io(&self.io, |s| s.send(buf)).await.map_err(no_peer)
    }

    /// Receives a datagram from the connected peer, waiting for one.
    ///
    /// Cancel-safe: dropped while it waits, it has taken no datagram from the queue.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_io(&self.io, |s| s.recv(buf, 0)).await
    }

    /// Receives the next datagram without removing it from the queue.
    ///
    /// Cancel-safe: it takes nothing from the queue.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_io(&self.io, |s| s.recv(buf, libc::MSG_PEEK)).await
    }

    /// Sends a datagram to `target` (the first address it resolves to). An IPv6 `target`
    /// for an IPv4 socket is refused with `InvalidInput`, as is an IPv4 (or IPv4-mapped) one
    /// for an IPv6 socket that cannot carry IPv4: bound to an IPv6 address (such as `::1`),
    /// or set IPv6-only (the kernel says "Network is unreachable").
    ///
    /// Cancel-safe: dropped before it completes, it has sent nothing.
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let to = resolve_first(target, "no addresses to send data to").await?;
        let addr = SockAddr::from(to);
        write_io(&self.io, |s| s.send_to(buf, &addr))
            .await
            .map_err(|e| udp_refused(self.io.get_ref(), to, e))
    }

    /// Receives a datagram and the address it came from.
    ///
    /// A datagram longer than `buf` is cut to fit, the rest dropped, and the length returned
    /// is `buf.len()`, as for a datagram that fits exactly (tokio's and std's say no more).
    /// A buffer one byte longer than the longest datagram taken tells them apart (a DNS
    /// forwarder taking 4,096-byte answers reads into 4,097 bytes, and a full buffer means
    /// cut), or [`recv_batch`](Self::recv_batch), whose datagrams say `truncated`; or
    /// [`next_datagram_len`](Self::next_datagram_len) gives the length first.
    ///
    /// On an IPv6 socket that carries IPv4 (bound to `[::]`), an IPv4 sender's address comes
    /// IPv4-mapped (`[::ffff:127.0.0.2]:53`), as tokio's and std's do: it is not equal to the
    /// `127.0.0.2:53` a query was sent to, so a client matching answers by source compares
    /// `from.ip().to_canonical()` and the port.
    ///
    /// Cancel-safe: dropped while it waits, it has taken no datagram from the queue.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, addr) = read_io(&self.io, |s| s.recv_from(buf, 0)).await?;
        Ok((n, addr.to_inet()?))
    }

    recv_buf_methods!(
        SocketAddr,
        64 * 1024,
        "64 KiB, which the largest UDP payload fits",
        /// ```
        /// use overlap::net::UdpSocket;
        ///
        /// overlap::block_on(async {
        ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
        ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
        ///     a.send_to(b"ping", b.local_addr()?).await?;
        ///     let mut buf = Vec::with_capacity(1500);
        ///     let (n, from) = b.recv_buf_from(&mut buf).await?;
        ///     assert_eq!((n, &buf[..], from), (4, &b"ping"[..], a.local_addr()?));
        ///     std::io::Result::Ok(())
        /// })
        /// .unwrap();
        /// ```
    );

    /// Like [`recv_from`](Self::recv_from), leaving the datagram in the queue. To learn only
    /// where the next datagram comes from, [`peek_sender`](Self::peek_sender) needs no
    /// buffer.
    ///
    /// Cancel-safe: it takes nothing from the queue.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, addr) = read_io(&self.io, |s| s.recv_from(buf, libc::MSG_PEEK)).await?;
        Ok((n, addr.to_inet()?))
    }

    /// The source address of the datagram at the head of the queue, waiting for one to
    /// arrive. The datagram stays queued, whole: the next `recv_from` returns it. (A
    /// `peek_from` into an empty buffer, which Linux allows.)
    ///
    /// Cancel-safe: it takes nothing from the queue.
    ///
    /// ```
    /// use overlap::net::UdpSocket;
    ///
    /// overlap::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(b"hello", b.local_addr()?).await?;
    ///     // Decide from the sender alone, then take the datagram.
    ///     assert_eq!(b.peek_sender().await?, a.local_addr()?);
    ///     let mut buf = [0u8; 16];
    ///     let (n, from) = b.recv_from(&mut buf).await?;
    ///     assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr()?));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn peek_sender(&self) -> io::Result<SocketAddr> {
        let (_, addr) = read_io(&self.io, |s| s.recv_from(&mut [], libc::MSG_PEEK)).await?;
        addr.to_inet()
    }

    /// [`peek_sender`](Self::peek_sender) as a poll function: `Pending` (with the waker
    /// stored) until a datagram is queued.
    pub fn poll_peek_sender(&self, cx: &mut Context<'_>) -> Poll<io::Result<SocketAddr>> {
        let peek = |s: &Socket| s.recv_from(&mut [], libc::MSG_PEEK);
        let (_, addr) = ready!(poll_read_with(&self.io, cx, peek, |_| false))?;
        Poll::Ready(addr.to_inet())
    }

    /// The source address of the datagram at the head of the queue, if one is queued,
    /// without waiting: `WouldBlock` otherwise. The datagram stays queued. Pairs with
    /// [`readable`](Self::readable).
    pub fn try_peek_sender(&self) -> io::Result<SocketAddr> {
        let peek = |s: &Socket| s.recv_from(&mut [], libc::MSG_PEEK);
        try_now(&self.io, Direction::Read, peek)?.1.to_inet()
    }

    /// The whole length of the datagram at the head of the queue, waiting for one to arrive;
    /// the datagram stays queued. A buffer of that length takes it uncut, where `recv_from`
    /// would cut a longer datagram to its buffer with no sign. (`recv` with
    /// `MSG_PEEK | MSG_TRUNC` into an empty buffer, as systemd sizes its notify datagrams.)
    ///
    /// An empty datagram has length 0: that is a datagram queued, not none. On a connected
    /// socket a pending error (`ConnectionRefused` from an ICMP "port unreachable") is
    /// returned here, and cleared, as by any receive.
    ///
    /// Cancel-safe: it takes nothing from the queue.
    ///
    /// ```
    /// use overlap::net::UdpSocket;
    ///
    /// overlap::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.send_to(&[1u8; 3000], b.local_addr()?).await?;
    ///     let mut buf = vec![0u8; b.next_datagram_len().await?];
    ///     let (n, _) = b.recv_from(&mut buf).await?;
    ///     assert_eq!(n, 3000);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn next_datagram_len(&self) -> io::Result<usize> {
        read_io(&self.io, Socket::peek_datagram_len).await
    }

    /// [`next_datagram_len`](Self::next_datagram_len) as a poll function: `Pending` (with
    /// the waker stored) until a datagram is queued.
    pub fn poll_next_datagram_len(&self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        poll_read_with(&self.io, cx, Socket::peek_datagram_len, |_| false)
    }

    /// The whole length of the datagram at the head of the queue if one is queued, without
    /// waiting: `WouldBlock` otherwise. The datagram stays queued.
    pub fn try_next_datagram_len(&self) -> io::Result<usize> {
        try_now(&self.io, Direction::Read, Socket::peek_datagram_len)
    }

    /// Like [`try_recv_from`](Self::try_recv_from), leaving the datagram in the queue: a
    /// copy of the next datagram and its source if one is queued, `WouldBlock` otherwise.
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let peek = |s: &Socket| s.recv_from(buf, libc::MSG_PEEK);
        let (n, addr) = try_now(&self.io, Direction::Read, peek)?;
        Ok((n, addr.to_inet()?))
    }

    /// Receives a datagram from the connected peer if one is queued, without waiting:
    /// `WouldBlock` otherwise. Pairs with [`readable`](Self::readable):
    ///
    /// ```
    /// use std::io::{self, ErrorKind};
    /// use overlap::net::UdpSocket;
    ///
    /// overlap::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     a.connect(b.local_addr()?).await?;
    ///     b.connect(a.local_addr()?).await?;
    ///     let mut buf = [0u8; 16];
    ///     assert_eq!(b.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     a.writable().await?;
    ///     a.try_send(b"hi")?;
    ///     let n = loop {
    ///         b.readable().await?;
    ///         match b.try_recv(&mut buf) {
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
    ///             res => break res?,
    ///         }
    ///     };
    ///     assert_eq!(&buf[..n], b"hi");
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_now(&self.io, Direction::Read, |s| s.recv(buf, 0))
    }

    /// Sends a datagram to the connected peer if it can go now, without waiting:
    /// `WouldBlock` otherwise (`NotConnected` with no peer, as [`send`](Self::send)). Pairs
    /// with [`writable`](Self::writable).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        try_now(&self.io, Direction::Write, |s| s.send(buf)).map_err(no_peer)
    }

    /// Receives a datagram and its source if one is queued, without waiting: `WouldBlock`
    /// otherwise.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, addr) = try_now(&self.io, Direction::Read, |s| s.recv_from(buf, 0))?;
        Ok((n, addr.to_inet()?))
    }

    /// Sends a datagram to `target` if it can go now, without waiting: `WouldBlock`
    /// otherwise. It takes a resolved address, as [`poll_send_to`](Self::poll_send_to) does.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        let addr = SockAddr::from(target);
        try_now(&self.io, Direction::Write, |s| s.send_to(buf, &addr))
            .map_err(|e| udp_refused(self.io.get_ref(), target, e))
    }

    /// [`recv`](Self::recv) as a poll function, for hand-written futures and streams:
    /// `Pending` (with the waker stored) until a datagram is there.
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        poll_recv_datagram(&self.io, cx, buf)
    }

    /// [`send`](Self::send) as a poll function.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        poll_send_datagram(&self.io, cx, buf).map_err(no_peer)
    }

    /// [`recv_from`](Self::recv_from) as a poll function.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// use overlap::net::UdpSocket;
    ///
    /// overlap::block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let b = UdpSocket::bind("127.0.0.1:0").await?;
    ///     let to = b.local_addr()?;
    ///     poll_fn(|cx| a.poll_send_to(cx, b"hi", to)).await?;
    ///     let mut buf = [0u8; 8];
    ///     let (n, from) = poll_fn(|cx| b.poll_recv_from(cx, &mut buf)).await?;
    ///     assert_eq!((&buf[..n], from), (&b"hi"[..], a.local_addr()?));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let (n, addr) = ready!(poll_read_with(
            &self.io,
            cx,
            |s| s.recv_from(buf, 0),
            |_| false
        ))?;
        Poll::Ready(Ok((n, addr.to_inet()?)))
    }

    /// [`peek_from`](Self::peek_from) as a poll function.
    pub fn poll_peek_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let peek = |s: &Socket| s.recv_from(buf, libc::MSG_PEEK);
        let (n, addr) = ready!(poll_read_with(&self.io, cx, peek, |_| false))?;
        Poll::Ready(Ok((n, addr.to_inet()?)))
    }

    /// [`send_to`](Self::send_to) as a poll function. It takes a resolved address: name
    /// lookups are async, so they happen before.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let addr = SockAddr::from(target);
        poll_write_with(&self.io, cx, |s| s.send_to(buf, &addr), |_| false)
            .map_err(|e| udp_refused(self.io.get_ref(), target, e))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()?.to_inet()
    }

    /// The connected peer's address (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()?.to_inet()
    }

    /// Reads and clears the socket's pending error (`SO_ERROR`), such as a queued
    /// `ConnectionRefused`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

crate::impl_socket_fd!(UdpSocket, std::net::UdpSocket, "a UDP socket");

impl_readiness!(
    UdpSocket,
    "try_recv",
    "try_send",
    poll_recv_ready,
    poll_send_ready,
    ready {
        ///
        /// An error-only wait on a connected socket, ended by the ICMP error of a send to a
        /// port with nothing bound:
        ///
        /// ```
        /// use overlap::io::Interest;
        /// use overlap::net::UdpSocket;
        ///
        /// overlap::block_on(async {
        ///     // A loopback port whose socket is gone.
        ///     let closed = UdpSocket::bind("127.0.0.1:0").await?.local_addr()?;
        ///     let sock = UdpSocket::bind("127.0.0.1:0").await?;
        ///     sock.connect(closed).await?;
        ///     sock.send(b"anyone?").await?;
        ///     assert!(sock.ready(Interest::ERROR).await?.is_error());
        ///     // The next call takes the error.
        ///     let err = sock.recv(&mut [0u8; 16]).await.unwrap_err();
        ///     assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        ///     std::io::Result::Ok(())
        /// })
        /// .unwrap();
        /// ```
    }
);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}
