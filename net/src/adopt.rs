//! The check `from_std` (and `TryFrom<OwnedFd>`, which goes through it) makes on a socket
//! handed over: that it is the kind of socket its wrapper is written for.
//!
//! std's `From<OwnedFd>` takes any fd, so a listening socket can arrive as a stream, a
//! seqpacket or datagram socket as a `UnixStream`, a Unix socket as a `UdpSocket`. Taken as
//! they are, these wait for ever or lose data: a listening socket never turns readable or
//! writable for a `recv`, a connected one turns readable for an `accept` only when data
//! comes, a stream read that returns short of its buffer takes the queue to be empty (true
//! of a byte stream only: a message socket returns one message, leaving the next one queued
//! with no edge to come), and an address of the wrong family fails the call only after the
//! kernel has handed over the datagram or the connection. Nor need the fd be a socket at
//! all: a pipe or an eventfd registers, and waits for ever; a file fails to register with
//! epoll's `EPERM`, which names neither the wrapper nor the fd.

use std::io;
use std::os::fd::AsRawFd;

use crate::sys::Socket;

/// The socket a wrapper needs: its family (IP or Unix), type, and whether it listens.
pub(crate) struct Kind {
    /// The wrapper, with its article ("a TcpStream").
    wrapper: &'static str,
    /// `AF_UNIX`, or else `AF_INET`/`AF_INET6`.
    unix: bool,
    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    ty: libc::c_int,
    /// Whether it must be listening (`SO_ACCEPTCONN`); a datagram socket never is.
    listening: bool,
}

pub(crate) const TCP_STREAM: Kind = Kind::new("a TcpStream", false, libc::SOCK_STREAM, false);
pub(crate) const TCP_LISTENER: Kind = Kind::new("a TcpListener", false, libc::SOCK_STREAM, true);
pub(crate) const UDP_SOCKET: Kind = Kind::new("a UdpSocket", false, libc::SOCK_DGRAM, false);
pub(crate) const UNIX_STREAM: Kind = Kind::new("a UnixStream", true, libc::SOCK_STREAM, false);
pub(crate) const UNIX_LISTENER: Kind = Kind::new("a UnixListener", true, libc::SOCK_STREAM, true);
pub(crate) const UNIX_DATAGRAM: Kind = Kind::new("a UnixDatagram", true, libc::SOCK_DGRAM, false);

impl Kind {
    const fn new(wrapper: &'static str, unix: bool, ty: libc::c_int, listening: bool) -> Kind {
        Kind {
            wrapper,
            unix,
            ty,
            listening,
        }
    }

    /// `Ok` if `sock` is of this kind; `InvalidInput` naming what it is otherwise (an fd that
    /// is not a socket at all included). What the kernel will not tell (an option refused,
    /// by a sandbox say) is not held against it: the socket's own calls report what is
    /// wrong then.
    pub(crate) fn check(&self, sock: &Socket) -> io::Result<()> {
        self.check_as(sock, true)
    }

    /// For a socket about to be made to listen: `InvalidInput` as [`check`](Self::check)
    /// gives if its type is not this kind's, since `listen(2)` of a datagram or raw socket
    /// fails with the kernel's `EOPNOTSUPP`, which names neither. (Its family, and whether
    /// it listens, are left to `check` once it does.)
    pub(crate) fn check_before_listen(&self, sock: &Socket) -> io::Result<()> {
        self.check_as(sock, false)
    }

    /// [`check`](Self::check), of the type alone unless `whole`.
    fn check_as(&self, sock: &Socket, whole: bool) -> io::Result<()> {
        self.check_is_socket(sock)?;
        let opt = |name| sock.getsockopt::<libc::c_int>(libc::SOL_SOCKET, name).ok();
        let domain = opt(libc::SO_DOMAIN);
        let ty = opt(libc::SO_TYPE);
        let listening = opt(libc::SO_ACCEPTCONN).map(|on| on != 0).filter(|_| whole);
        let family_ok = !whole || domain.is_none_or(|d| self.family_ok(d));
        let type_ok = ty.is_none_or(|t| t == self.ty);
        let listening_ok = listening.is_none_or(|l| l == self.listening);
        if family_ok && type_ok && listening_ok {
            return Ok(());
        }
        Err(self.refuse(&describe(domain.map(domain_name), ty, listening)))
    }

    /// `Ok` unless the fd is no socket at all (`ENOTSOCK`: a pipe, a file, an eventfd, say
    /// a service manager's fd 3 that is not what the program was told), which is refused
    /// as [`check`](Self::check) refuses a socket of another kind. Taken, a pipe or an
    /// eventfd would register and wait for ever, and a file fail to register with epoll's
    /// bare `EPERM`.
    pub(crate) fn check_is_socket(&self, sock: &Socket) -> io::Result<()> {
        match sock.getsockopt::<libc::c_int>(libc::SOL_SOCKET, libc::SO_TYPE) {
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                Err(self.refuse(&not_a_socket(sock)))
            }
            _ => Ok(()),
        }
    }

    /// `InvalidInput`: this kind's wrapper needs this kind of socket, not `what`.
    fn refuse(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} needs {}, not {what}",
                self.wrapper,
                describe(
                    Some(self.domain_name()),
                    Some(self.ty),
                    Some(self.listening)
                ),
            ),
        )
    }

    fn family_ok(&self, domain: libc::c_int) -> bool {
        if self.unix {
            domain == libc::AF_UNIX
        } else {
            domain == libc::AF_INET || domain == libc::AF_INET6
        }
    }

    fn domain_name(&self) -> &'static str {
        if self.unix {
            "Unix-domain"
        } else {
            "IPv4 or IPv6"
        }
    }
}

fn domain_name(domain: libc::c_int) -> &'static str {
    match domain {
        libc::AF_UNIX => "Unix-domain",
        libc::AF_INET => "IPv4",
        libc::AF_INET6 => "IPv6",
        _ => "non-IP, non-Unix",
    }
}

/// "a pipe or FIFO (fd 3 is not a socket)", "a regular file (...)", ...: what an fd that is
/// not a socket is, by its file type, and its number (a service manager's fd 3, a number
/// received over `SCM_RIGHTS`: the one to look for in `/proc/self/fd`).
fn not_a_socket(sock: &Socket) -> String {
    let what = match sock.file_type() {
        Some(libc::S_IFIFO) => "a pipe or FIFO",
        Some(libc::S_IFREG) => "a regular file",
        Some(libc::S_IFDIR) => "a directory",
        Some(libc::S_IFCHR) => "a character device",
        Some(libc::S_IFBLK) => "a block device",
        Some(libc::S_IFLNK) => "a symbolic link",
        // An anonymous inode (eventfd, timerfd, epoll, signalfd ...) has no file type.
        _ => "an fd",
    };
    format!("{what} (fd {} is not a socket)", sock.as_raw_fd())
}

/// "a listening IPv4 stream socket", "a Unix-domain seqpacket socket", ... leaving out what
/// is not known.
fn describe(domain: Option<&str>, ty: Option<libc::c_int>, listening: Option<bool>) -> String {
    let ty = ty.map(|ty| match ty {
        libc::SOCK_STREAM => "stream",
        libc::SOCK_DGRAM => "datagram",
        libc::SOCK_SEQPACKET => "seqpacket",
        libc::SOCK_RAW => "raw",
        _ => "other-type",
    });
    let is_stream = ty == Some("stream");
    let mut words = Vec::new();
    if is_stream && listening == Some(true) {
        words.push("listening");
    }
    words.extend(domain);
    words.extend(ty);
    words.push("socket");
    let mut text = words.join(" ");
    if is_stream && listening == Some(false) {
        text.push_str(" that is not listening");
    }
    let article = if text.starts_with(['a', 'e', 'i', 'o', 'u', 'I']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions() {
        assert_eq!(
            describe(Some("IPv4"), Some(libc::SOCK_STREAM), Some(true)),
            "a listening IPv4 stream socket"
        );
        assert_eq!(
            describe(Some("Unix-domain"), Some(libc::SOCK_STREAM), Some(false)),
            "a Unix-domain stream socket that is not listening"
        );
        assert_eq!(
            describe(Some("IPv6"), Some(libc::SOCK_DGRAM), Some(false)),
            "an IPv6 datagram socket"
        );
        assert_eq!(describe(None, None, None), "a socket");
    }
}
