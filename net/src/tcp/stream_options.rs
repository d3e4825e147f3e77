//! `TcpStream`'s socket options: Nagle, delayed ACKs, keep-alive on and off (its timing is in
//! `keepalive.rs`), linger and TTL.

use std::io;
use std::time::Duration;

use super::TcpStream;

impl TcpStream {
    /// Sets `TCP_NODELAY`: when on, small writes go out at once instead of being coalesced
    /// by Nagle's algorithm.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io
            .get_ref()
            .set_flag(libc::IPPROTO_TCP, libc::TCP_NODELAY, nodelay)
    }

    /// Whether `TCP_NODELAY` is on.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().flag(libc::IPPROTO_TCP, libc::TCP_NODELAY)
    }

    /// Sets `SO_KEEPALIVE`: the kernel probes an idle connection and fails it if the peer
    /// is gone.
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.io
            .get_ref()
            .set_flag(libc::SOL_SOCKET, libc::SO_KEEPALIVE, keepalive)
    }

    /// Whether `SO_KEEPALIVE` is on.
    pub fn keepalive(&self) -> io::Result<bool> {
        self.io.get_ref().flag(libc::SOL_SOCKET, libc::SO_KEEPALIVE)
    }

    /// Sets `SO_LINGER`. `Some(Duration::ZERO)` makes dropping the stream reset the
    /// connection (RST) instead of closing it gracefully; `None` restores the default.
    ///
    /// With a longer time (counted in whole seconds by the kernel, so a fraction rounds up;
    /// anything past `i32::MAX` seconds, `Duration::MAX` included, is clamped to that),
    /// closing waits until the peer has taken the unsent data or the time is up, even on a
    /// non-blocking socket: dropping the stream then closes it on the blocking pool, so the
    /// loop never waits. (Streams accepted from a listener whose socket had a linger time,
    /// or made with `from_std` from one, do the same.)
    pub fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        self.io.get_ref().set_linger(dur)
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.io.get_ref().linger()
    }

    /// Sets `SO_LINGER` to zero: dropping the stream then resets the connection (RST)
    /// instead of closing it gracefully. The same as `set_linger(Some(Duration::ZERO))`.
    /// Split into owned halves, the stream resets once both are dropped, the write half's
    /// drop sending no FIN first (see [`OwnedWriteHalf`](super::OwnedWriteHalf)).
    pub fn set_zero_linger(&self) -> io::Result<()> {
        self.io.get_ref().set_linger(Some(Duration::ZERO))
    }

    /// Sets the IP time-to-live of outgoing packets (`IP_TTL`): 1 to 255, anything else is
    /// refused with `InvalidInput`. On an IPv6 socket it sets the hop limit
    /// (`IPV6_UNICAST_HOPS`) too, which IPv6 packets carry.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl_option(libc::IP_TTL, ttl)
    }

    /// The `IP_TTL` setting.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl_option(libc::IP_TTL)
    }

    /// Sets `TCP_QUICKACK`: when on, the kernel acknowledges received data at once instead
    /// of delaying the ACK (by 40 to 200 ms on Linux) in the hope of sending it with a reply.
    /// It helps a peer whose writes Nagle holds back waiting for that ACK, such as a client
    /// sending a request in two writes.
    ///
    /// The kernel does not keep the setting: it may fall back to delayed ACKs after later
    /// traffic, so a program that wants it throughout sets it again after each read. The
    /// getter reads what holds now.
    ///
    /// ```
    /// use overlap::net::{TcpListener, TcpStream};
    ///
    /// overlap::block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await?;
    ///     let stream = TcpStream::connect(listener.local_addr()?).await?;
    ///     stream.set_quickack(true)?;
    ///     assert!(stream.quickack()?);
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn set_quickack(&self, on: bool) -> io::Result<()> {
        self.io
            .get_ref()
            .set_flag(libc::IPPROTO_TCP, libc::TCP_QUICKACK, on)
    }

    /// Whether `TCP_QUICKACK` is on now (see [`set_quickack`](Self::set_quickack)).
    pub fn quickack(&self) -> io::Result<bool> {
        self.io
            .get_ref()
            .flag(libc::IPPROTO_TCP, libc::TCP_QUICKACK)
    }
}
