//! Every `libc` call overlap-net makes, behind safe wrappers.
//!
//! The socket types above this module are plain safe Rust: they only combine these calls with
//! the reactor's readiness. Nothing here retries: `EAGAIN`, `EINTR` and `EINPROGRESS` are
//! returned as errors for the caller to turn into a wait.

mod addr;
#[cfg(feature = "count-syscalls")]
pub(crate) mod counters;
mod fds;

use std::io;
use std::mem::{self, ManuallyDrop};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

pub(crate) use addr::SockAddr;
pub(crate) use fds::{Received, MAX_FDS};
pub(crate) use mmsg::{RecvMeta, MAX_BATCH};
use overlap_runtime::syscall;

/// Counts one I/O syscall of `kind` when the `count-syscalls` feature is on.
macro_rules! count {
    ($kind:ident) => {
        #[cfg(feature = "count-syscalls")]
        counters::bump(counters::Kind::$kind);
    };
}

mod mmsg;
mod tos;

/// An open socket descriptor, always in non-blocking, close-on-exec mode when created here.
///
/// # Invariant
/// `fd` is an open socket owned by this value; it is closed exactly once, on drop (or
/// given away by [`into_owned`](Socket::into_owned)), and never used after that.
#[derive(Debug)]
pub(crate) struct Socket {
    fd: ManuallyDrop<OwnedFd>,
    /// `SO_LINGER` as last set here, inherited, or read when the fd was adopted: one of
    /// [`LINGER_OFF`], [`LINGER_ZERO`] (`close` resets the connection) or [`LINGER_TIME`]
    /// (`close` waits for unsent data to go, up to that time, non-blocking or not, so the
    /// drop closes on the blocking pool).
    linger: AtomicU8,
}

/// `SO_LINGER` off: `close` lets the kernel finish the connection in the background.
const LINGER_OFF: u8 = 0;
/// `SO_LINGER` on with a zero time: `close` resets the connection.
const LINGER_ZERO: u8 = 1;
/// `SO_LINGER` on with a time: `close` may wait for unsent data.
const LINGER_TIME: u8 = 2;

/// The state for the linger setting `l` (as the kernel holds it: whole seconds).
fn linger_state(l: Option<Duration>) -> u8 {
    match l {
        None => LINGER_OFF,
        Some(d) if d.is_zero() => LINGER_ZERO,
        Some(_) => LINGER_TIME,
    }
}

impl Socket {
    /// `socket(domain, ty | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)`.
    pub(crate) fn new(domain: libc::c_int, ty: libc::c_int) -> io::Result<Socket> {
        let flags = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket takes only integers.
        let fd = syscall!(socket(domain, flags, 0))?;
        // SAFETY: `fd` was just returned by socket and is owned by nobody else.
        Ok(Socket::wrap(
            unsafe { OwnedFd::from_raw_fd(fd) },
            LINGER_OFF,
        ))
    }

    fn wrap(fd: OwnedFd, linger: u8) -> Socket {
        Socket {
            fd: ManuallyDrop::new(fd),
            linger: AtomicU8::new(linger),
        }
    }

    /// `socketpair(domain, ty | SOCK_NONBLOCK | SOCK_CLOEXEC)`: two connected sockets.
    pub(crate) fn pair(domain: libc::c_int, ty: libc::c_int) -> io::Result<(Socket, Socket)> {
        let flags = ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let mut fds = [-1; 2];
        // SAFETY: `fds` is a writable array of two c_ints, as socketpair requires.
        syscall!(socketpair(domain, flags, 0, fds.as_mut_ptr()))?;
        // SAFETY: on success both fds are new and owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok((Socket::wrap(a, LINGER_OFF), Socket::wrap(b, LINGER_OFF)))
    }

    /// Takes ownership of `fd` as it is (the caller sets non-blocking mode if needed). The fd
    /// handed over may turn out not to be a socket: `crate::adopt` checks that before the
    /// socket is used.
    pub(crate) fn from_owned(fd: OwnedFd) -> Socket {
        let sock = Socket::wrap(fd, LINGER_OFF);
        // One look, so that a linger time set elsewhere is honoured on drop too.
        let linger = sock.linger().map_or(LINGER_OFF, linger_state);
        sock.linger.store(linger, Ordering::Relaxed);
        sock
    }

    /// Gives the descriptor back.
    pub(crate) fn into_owned(self) -> OwnedFd {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so `fd` is taken exactly once, here.
        unsafe { ManuallyDrop::take(&mut this.fd) }
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Switches `O_NONBLOCK` on or off (`ioctl(FIONBIO)`).
    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let mut arg = libc::c_int::from(on);
        // SAFETY: FIONBIO reads one c_int from the pointer, which is valid for the call.
        syscall!(ioctl(self.raw(), libc::FIONBIO, &mut arg))?;
        Ok(())
    }

    /// The bytes written that the peer has not acknowledged yet, sent or not
    /// (`ioctl(SIOCOUTQ)`).
    pub(crate) fn unacknowledged(&self) -> io::Result<usize> {
        let mut queued: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ's number) writes one c_int through the pointer, which
        // is valid for the call.
        syscall!(ioctl(self.raw(), libc::TIOCOUTQ, &mut queued))?;
        Ok(usize::try_from(queued).unwrap_or(0))
    }

    pub(crate) fn bind(&self, addr: &SockAddr) -> io::Result<()> {
        // SAFETY: `addr` points at `len` initialised bytes (SockAddr invariant).
        syscall!(bind(self.raw(), addr.as_ptr(), addr.len()))?;
        Ok(())
    }

    pub(crate) fn listen(&self, backlog: i32) -> io::Result<()> {
        // SAFETY: listen takes only integers.
        syscall!(listen(self.raw(), backlog))?;
        Ok(())
    }

    /// Starts a connection. On a non-blocking stream socket this usually fails with
    /// `EINPROGRESS`; the caller then waits for writability and reads [`Socket::take_error`].
    pub(crate) fn connect(&self, addr: &SockAddr) -> io::Result<()> {
        // SAFETY: `addr` points at `len` initialised bytes (SockAddr invariant).
        syscall!(connect(self.raw(), addr.as_ptr(), addr.len()))?;
        Ok(())
    }

    /// `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`, so the new socket never exists in
    /// blocking or inheritable mode, not even for a moment.
    pub(crate) fn accept(&self) -> io::Result<(Socket, SockAddr)> {
        let mut addr = SockAddr::empty();
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        count!(Accept);
        // SAFETY: `addr` is a writable sockaddr_storage and its length field says how large.
        let fd = syscall!(accept4(
            self.raw(),
            addr.as_mut_ptr(),
            addr.len_mut(),
            flags
        ))?;
        addr.clamp_len();
        // SAFETY: `fd` was just returned by accept4 and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // An accepted socket inherits the listener's SO_LINGER.
        let sock = Socket::wrap(fd, self.linger.load(Ordering::Relaxed));
        Ok((sock, addr))
    }

    /// `recv(buf, flags)`.
    pub(crate) fn recv(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        count!(Recv);
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = syscall!(recv(self.raw(), buf.as_mut_ptr().cast(), buf.len(), flags))?;
        Ok(n as usize)
    }

    /// The whole length of the datagram at the head of the queue, which stays queued:
    /// `recv` into no buffer with `MSG_PEEK | MSG_TRUNC` (Linux returns the datagram's real
    /// length; for Unix datagram sockets since 3.4).
    pub(crate) fn peek_datagram_len(&self) -> io::Result<usize> {
        self.recv(&mut [], libc::MSG_PEEK | libc::MSG_TRUNC)
    }

    /// `recvmsg` into `buf` with no room for ancillary data; also returns whether the kernel
    /// had ancillary data to discard (`MSG_CTRUNC`: passed fds, which it closes, or
    /// credentials).
    pub(crate) fn recv_noting_truncation(&self, buf: &mut [u8]) -> io::Result<(usize, bool)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid: no name, no control buffer.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        count!(Recv);
        // SAFETY: `msg` points at one iovec describing `buf`, valid for writes of its length,
        // and has no name or control buffer for the kernel to fill.
        let n = syscall!(recvmsg(self.raw(), &mut msg, 0))?;
        Ok((n as usize, msg.msg_flags & libc::MSG_CTRUNC != 0))
    }

    /// `recvmsg` into several buffers (at most 1024 of them, the kernel's limit), with no
    /// room for ancillary data; also returns whether the kernel had ancillary data to
    /// discard (`MSG_CTRUNC`), as [`recv_noting_truncation`](Socket::recv_noting_truncation)
    /// does.
    pub(crate) fn recv_vectored(
        &self,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> io::Result<(usize, bool)> {
        // SAFETY: an all-zero msghdr is valid: no name, no control buffer, no iovecs.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_iov = bufs.as_mut_ptr().cast();
        msg.msg_iovlen = bufs.len().min(1024) as _;
        count!(Recv);
        // SAFETY: `msg` points at `msg_iovlen` iovecs (IoSliceMut has iovec's layout on Unix),
        // each describing memory valid for writes of its length and borrowed for the call;
        // there is no name or control buffer for the kernel to fill.
        let n = syscall!(recvmsg(self.raw(), &mut msg, 0))?;
        Ok((n as usize, msg.msg_flags & libc::MSG_CTRUNC != 0))
    }

    /// `recvfrom(buf, flags)` with the sender's address.
    pub(crate) fn recv_from(
        &self,
        buf: &mut [u8],
        flags: libc::c_int,
    ) -> io::Result<(usize, SockAddr)> {
        let mut addr = SockAddr::empty();
        count!(Recv);
        // SAFETY: `buf` is valid for writes of its length; `addr` is a writable
        // sockaddr_storage whose length field says how large it is.
        let n = syscall!(recvfrom(
            self.raw(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags,
            addr.as_mut_ptr(),
            addr.len_mut()
        ))?;
        addr.clamp_len();
        Ok((n as usize, addr))
    }

    /// `send(buf, MSG_NOSIGNAL)`: a write to a reset connection returns `EPIPE` instead of
    /// raising `SIGPIPE`.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        count!(Send);
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
        let n = syscall!(send(
            self.raw(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL
        ))?;
        Ok(n as usize)
    }

    /// `sendto(buf, MSG_NOSIGNAL, addr)`.
    pub(crate) fn send_to(&self, buf: &[u8], addr: &SockAddr) -> io::Result<usize> {
        count!(Send);
        // SAFETY: `buf` is valid for reads of its length; `addr` points at `len` initialised
        // bytes.
        let n = syscall!(sendto(
            self.raw(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
            addr.as_ptr(),
            addr.len()
        ))?;
        Ok(n as usize)
    }

    /// `sendmsg` of several buffers with `MSG_NOSIGNAL`.
    pub(crate) fn send_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: msghdr is plain old data; all zeroes is a valid (empty) message.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        // IoSlice is guaranteed ABI-compatible with iovec on Unix. The kernel caps the count
        // at IOV_MAX (1024) and fails with EINVAL beyond it, so send at most that many.
        let count = bufs.len().min(1024);
        msg.msg_iov = bufs.as_ptr().cast_mut().cast();
        msg.msg_iovlen = count as _;
        count!(Send);
        // SAFETY: `msg` points at `count` iovecs (IoSlice has iovec's layout) that stay
        // borrowed for the call; the kernel only reads them.
        let n = syscall!(sendmsg(self.raw(), &msg, libc::MSG_NOSIGNAL))?;
        Ok(n as usize)
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => libc::SHUT_RD,
            Shutdown::Write => libc::SHUT_WR,
            Shutdown::Both => libc::SHUT_RDWR,
        };
        // SAFETY: shutdown takes only integers.
        syscall!(shutdown(self.raw(), how))?;
        Ok(())
    }

    pub(crate) fn local_addr(&self) -> io::Result<SockAddr> {
        let mut addr = SockAddr::empty();
        // SAFETY: `addr` is a writable sockaddr_storage whose length field says how large.
        syscall!(getsockname(self.raw(), addr.as_mut_ptr(), addr.len_mut()))?;
        addr.clamp_len();
        Ok(addr)
    }

    pub(crate) fn peer_addr(&self) -> io::Result<SockAddr> {
        let mut addr = SockAddr::empty();
        // SAFETY: as in `local_addr`.
        syscall!(getpeername(self.raw(), addr.as_mut_ptr(), addr.len_mut()))?;
        addr.clamp_len();
        Ok(addr)
    }

    /// Reads and clears `SO_ERROR`: the result of a non-blocking connect, or an asynchronous
    /// error such as the ICMP "port unreachable" on a connected UDP socket.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        let err: libc::c_int = self.getsockopt(libc::SOL_SOCKET, libc::SO_ERROR)?;
        Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
    }

    /// Sets an IPv4 time-to-live option (`IP_TTL`, `IP_MULTICAST_TTL`). A TTL is one byte:
    /// a larger value would reach the kernel as a negative `int`, which it reads as "back
    /// to the default", so it is refused here. A unicast TTL of 0 is refused too, in our own
    /// words (the kernel's are "Invalid argument"); a multicast one of 0 keeps datagrams on
    /// this host, and is taken. On an IPv6 socket `IP_TTL` also sets the hop limit
    /// (`IPV6_UNICAST_HOPS`): the kernel takes `IP_TTL` there too, but IPv6 packets carry
    /// the hop limit, and would keep the default.
    pub(crate) fn set_ttl_option(&self, name: libc::c_int, ttl: u32) -> io::Result<()> {
        if ttl > 255 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a TTL is at most 255, not {ttl}"),
            ));
        }
        if ttl == 0 && name == libc::IP_TTL {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a unicast TTL is 1 to 255, not 0",
            ));
        }
        if name == libc::IP_TTL && self.is_ipv6()? {
            self.setsockopt(
                libc::IPPROTO_IPV6,
                libc::IPV6_UNICAST_HOPS,
                ttl as libc::c_int,
            )?;
        }
        self.setsockopt(libc::IPPROTO_IP, name, ttl as libc::c_int)
    }

    /// Whether this is an IPv6 socket (`SO_DOMAIN`), dual-stack or not.
    fn is_ipv6(&self) -> io::Result<bool> {
        let domain: libc::c_int = self.getsockopt(libc::SOL_SOCKET, libc::SO_DOMAIN)?;
        Ok(domain == libc::AF_INET6)
    }

    /// Sets a buffer size option (`SO_SNDBUF`, `SO_RCVBUF`). The kernel takes an `int`, so a
    /// size past `i32::MAX` is clamped to that (it caps the value at its own maximum anyway).
    pub(crate) fn set_buffer_size(&self, name: libc::c_int, size: u32) -> io::Result<()> {
        let size = size.min(libc::c_int::MAX as u32) as libc::c_int;
        self.setsockopt(libc::SOL_SOCKET, name, size)
    }

    /// Reads a buffer size option (`SO_SNDBUF`, `SO_RCVBUF`): what the kernel keeps, which is
    /// twice what was set (it counts its bookkeeping too).
    pub(crate) fn buffer_size(&self, name: libc::c_int) -> io::Result<u32> {
        let size: libc::c_int = self.getsockopt(libc::SOL_SOCKET, name)?;
        Ok(size as u32)
    }

    /// Reads an IPv4 time-to-live option (`IP_TTL`, `IP_MULTICAST_TTL`).
    pub(crate) fn ttl_option(&self, name: libc::c_int) -> io::Result<u32> {
        let ttl: libc::c_int = self.getsockopt(libc::IPPROTO_IP, name)?;
        Ok(ttl as u32)
    }

    /// `setsockopt` with a plain value (`c_int`, `linger`, `ip_mreq`...).
    pub(crate) fn setsockopt<T: Copy>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        value: T,
    ) -> io::Result<()> {
        // SAFETY: `value` is a live, initialised T of the size passed; callers pass the type
        // the option expects, and the kernel rejects a wrong size with EINVAL.
        syscall!(setsockopt(
            self.raw(),
            level,
            name,
            (&value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t
        ))?;
        Ok(())
    }

    /// The file type of the fd (`fstat`'s `st_mode & S_IFMT`: `S_IFSOCK`, `S_IFIFO`,
    /// `S_IFREG`, ...; 0 for an anonymous inode such as an eventfd), or `None` if `fstat`
    /// fails. For saying what an fd handed over as a socket is instead.
    pub(crate) fn file_type(&self) -> Option<libc::mode_t> {
        let mut st = mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: `st` is writable for a whole `stat`, which is what fstat fills in.
        syscall!(fstat(self.raw(), st.as_mut_ptr())).ok()?;
        // SAFETY: fstat succeeded and filled `st` in (which started zeroed besides).
        Some(unsafe { st.assume_init() }.st_mode & libc::S_IFMT)
    }

    /// `getsockopt` into a plain value. `T` must be valid for any bit pattern.
    pub(crate) fn getsockopt<T: Copy>(
        &self,
        level: libc::c_int,
        name: libc::c_int,
    ) -> io::Result<T> {
        let mut value = mem::MaybeUninit::<T>::zeroed();
        let mut len = mem::size_of::<T>() as libc::socklen_t;
        // SAFETY: `value` is writable for `len` bytes; the kernel writes at most `len`.
        syscall!(getsockopt(
            self.raw(),
            level,
            name,
            value.as_mut_ptr().cast(),
            &mut len
        ))?;
        // SAFETY: the value started zeroed and the kernel wrote at most its size; callers only
        // use integer-like types (c_int, linger, ucred, byte arrays) for which any bytes are
        // valid.
        Ok(unsafe { value.assume_init() })
    }

    /// Binds the socket to a network interface (`SO_BINDTODEVICE`), or unbinds it (`None`,
    /// or an empty name).
    ///
    /// The kernel reads the name as a C string cut to `IFNAMSIZ - 1` bytes: a name with a
    /// NUL inside, or longer than an interface name can be, would bind the socket to the
    /// interface named by its start. Such names are refused with `InvalidInput` (one NUL at
    /// the end, as a C string has, is fine).
    pub(crate) fn bind_device(&self, name: Option<&[u8]>) -> io::Result<()> {
        let name = name.unwrap_or_default();
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        if name.contains(&0) || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "not an interface name (at most {} bytes, no NUL): {:?}",
                    libc::IFNAMSIZ - 1,
                    String::from_utf8_lossy(name)
                ),
            ));
        }
        // SAFETY: `name` is readable for the length passed; the kernel copies at most
        // IFNAMSIZ bytes of it and needs no terminating NUL when given the length.
        syscall!(setsockopt(
            self.raw(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t
        ))?;
        Ok(())
    }

    /// The interface the socket is bound to (`SO_BINDTODEVICE`), if any.
    pub(crate) fn device(&self) -> io::Result<Option<Vec<u8>>> {
        let name: [u8; libc::IFNAMSIZ] =
            self.getsockopt(libc::SOL_SOCKET, libc::SO_BINDTODEVICE)?;
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Ok((len > 0).then(|| name[..len].to_vec()))
    }

    /// Sets a boolean option (`c_int` 0 or 1).
    pub(crate) fn set_flag(
        &self,
        level: libc::c_int,
        name: libc::c_int,
        on: bool,
    ) -> io::Result<()> {
        self.setsockopt(level, name, libc::c_int::from(on))
    }

    /// Reads a boolean option.
    pub(crate) fn flag(&self, level: libc::c_int, name: libc::c_int) -> io::Result<bool> {
        Ok(self.getsockopt::<libc::c_int>(level, name)? != 0)
    }

    /// `SO_LINGER`: `None` turns it off; `Some(0)` makes `close` send a reset. The kernel
    /// counts whole seconds: a time with a fraction is rounded up (never down to a reset),
    /// and one past the kernel's limit (`c_int::MAX` seconds) is clamped to it.
    pub(crate) fn set_linger(&self, dur: Option<Duration>) -> io::Result<()> {
        let secs = dur.map_or(0, |d| {
            d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
        });
        let linger = libc::linger {
            l_onoff: libc::c_int::from(dur.is_some()),
            l_linger: secs.min(libc::c_int::MAX as u64) as libc::c_int,
        };
        self.setsockopt(libc::SOL_SOCKET, libc::SO_LINGER, linger)?;
        let state = linger_state(dur.map(|_| Duration::from_secs(secs)));
        self.linger.store(state, Ordering::Relaxed);
        Ok(())
    }

    /// Whether closing resets the connection (`SO_LINGER` on with a zero time, as set here,
    /// inherited from a listener, or found when the fd was adopted).
    pub(crate) fn resets_on_close(&self) -> bool {
        self.linger.load(Ordering::Relaxed) == LINGER_ZERO
    }

    pub(crate) fn linger(&self) -> io::Result<Option<Duration>> {
        let l: libc::linger = self.getsockopt(libc::SOL_SOCKET, libc::SO_LINGER)?;
        Ok((l.l_onoff != 0).then(|| Duration::from_secs(l.l_linger.max(0) as u64)))
    }

    /// Runs `f` on a std socket type viewing this fd without taking ownership, for the few
    /// things std already decodes well (Unix socket addresses).
    pub(crate) fn with_std<S: FromRawFd + IntoRawFd, R>(&self, f: impl FnOnce(&S) -> R) -> R {
        // SAFETY: the fd is open for the whole call (we hold `&self`), and ManuallyDrop keeps
        // the temporary std value from closing it.
        let view = ManuallyDrop::new(unsafe { S::from_raw_fd(self.raw()) });
        f(&view)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: drop runs once, and nothing uses `fd` after this.
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        if *self.linger.get_mut() == LINGER_TIME {
            // Closing may wait for the peer to take unsent data: never on a loop's thread.
            // Outside any runtime no loop can stall: it closes here, as std would.
            overlap_runtime::spawn_blocking_detached(move || drop(fd));
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Takes ownership of an open Unix socket fd, as tokio's `UnixSocket` does. The same as
/// `UnixSocket::from(OwnedFd::from_raw_fd(fd))`: the fd is taken as it is, and switched to
/// non-blocking mode when the socket listens, connects or becomes a datagram socket.
impl FromRawFd for crate::UnixSocket {
    /// # Safety
    /// `fd` must be an open socket that the caller owns and hands over: nothing else may use
    /// or close it afterwards (see [`FromRawFd::from_raw_fd`]).
    unsafe fn from_raw_fd(fd: RawFd) -> crate::UnixSocket {
        // SAFETY: the caller hands over an open fd it owns, as this function requires.
        crate::UnixSocket::from(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
