//! The kernel's socket errors that no caller can match, or that mislead, in our own words:
//! an address of a family the socket cannot take (UDP sends and connects, `TcpSocket`'s bind
//! and connect), a bind to an address in use or with no port left, a TCP connect with no
//! local port to use, a UDP send with no peer, an accept
//! on a listener shut down, a second bind, a Unix bind to a path taken or in a missing
//! directory, a Unix datagram socket taken by another peer, a Unix connect or send to a path with no socket, a host
//! name lookup made with no fd free, a multicast join or leave that names no interface or
//! membership, a UDP send or connect to a broadcast address without `SO_BROADCAST`.

use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::sys::Socket;

/// An error in our own words, the kernel's kept as its source, so that
/// `overlap::io::raw_os_error` still finds the code.
#[derive(Debug)]
struct Reworded {
    msg: Cow<'static, str>,
    source: io::Error,
}

impl fmt::Display for Reworded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl Error for Reworded {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// `source`, the kernel's error, as one of `kind` saying `msg`.
fn reworded(
    kind: io::ErrorKind,
    msg: impl Into<Cow<'static, str>>,
    source: io::Error,
) -> io::Error {
    io::Error::new(
        kind,
        Reworded {
            msg: msg.into(),
            source,
        },
    )
}

/// The kernel's words for a destination `to` of a family the socket cannot carry, as
/// `InvalidInput` saying which way round: `EAFNOSUPPORT` (of no `ErrorKind` to match) for
/// an IPv6 `to` for an IPv4 socket, or an IPv4 one to connect an IPv6 socket that cannot
/// carry IPv4 to (bound to an IPv6 address, or IPv6-only), and `ENETUNREACH` for an IPv4
/// (or mapped) `to` such a socket sends to; on `[::]`, `ENETUNREACH` may be real and stays.
fn wrong_family(sock: &Socket, to: SocketAddr, err: io::Error) -> io::Error {
    let ipv4_to = match to {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
    };
    let ipv6_only = || ipv4_to && !carries_ipv4(sock);
    let msg = match err.raw_os_error() {
        Some(libc::EAFNOSUPPORT | libc::ENETUNREACH) if ipv6_only() => {
            "an IPv6 socket bound to an IPv6 address, or set IPv6-only, cannot send to or \
             connect to an IPv4 address: use an IPv4 socket, or one bound to [::]"
        }
        Some(libc::EAFNOSUPPORT) => "an IPv4 socket cannot send to or connect to an IPv6 address",
        _ => return err,
    };
    let source = err;
    reworded(io::ErrorKind::InvalidInput, msg, source)
}

/// A UDP send or connect to `to` refused: [`wrong_family`], then [`broadcast_refused`].
pub(crate) fn udp_refused(sock: &Socket, to: SocketAddr, err: io::Error) -> io::Error {
    broadcast_refused(sock, to, wrong_family(sock, to, err))
}

/// A UDP send or connect to `to` that the kernel refused with `EACCES` on a socket without
/// `SO_BROADCAST`: what it answers for a broadcast destination, in words ("Permission
/// denied") that read as a missing privilege. Kept `PermissionDenied`, saying what would
/// allow it; other errors, and `EACCES` with `SO_BROADCAST` on (a security module's), pass
/// as they are.
fn broadcast_refused(sock: &Socket, to: SocketAddr, err: io::Error) -> io::Error {
    let broadcast_on = || {
        sock.flag(libc::SOL_SOCKET, libc::SO_BROADCAST)
            .unwrap_or(true)
    };
    if err.raw_os_error() != Some(libc::EACCES) || broadcast_on() {
        return err;
    }
    let msg = format!(
        "permission denied sending or connecting to {to}: the kernel refuses a broadcast \
         address to a socket that has not called set_broadcast(true) (SO_BROADCAST), and \
         this one has not"
    );
    reworded(io::ErrorKind::PermissionDenied, msg, err)
}

/// An `accept` that failed with `EINVAL`: the socket no longer listens, shut down (here, or
/// through another copy of it: a process it was handed to, an old generation of a
/// hot-restarted server), which the kernel's bare "Invalid argument" does not say. Kept
/// `InvalidInput`; other errors pass as they are.
pub(crate) fn not_listening(err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::EINVAL) {
        return err;
    }
    let msg = "accept on a socket that no longer listens: it was shut down, here or \
               through another copy of it (a process it was handed to, say)";
    reworded(io::ErrorKind::InvalidInput, msg, err)
}

/// The kernel's words for `TcpSocket::bind` or `connect` to an address `to` of the other
/// family, as `InvalidInput` saying which way round: `EAFNOSUPPORT` (of no `ErrorKind` to
/// match) for an IPv6 `to` on an IPv4 socket, a bare `EINVAL` for an IPv4 one on an IPv6
/// socket (which takes IPv4 peers IPv4-mapped only). An IPv6 socket that carries no IPv4
/// (IPv6-only, or bound to an IPv6 address) is told so for an IPv4 `to` plain or mapped,
/// rather than sent to the mapped form, which it refuses with a bare `EINVAL` (a bind) or
/// `ENETUNREACH` (a connect). Other errors pass as they are.
pub(crate) fn tcp_wrong_family(sock: &Socket, to: SocketAddr, err: io::Error) -> io::Error {
    let code = err.raw_os_error();
    if !matches!(
        code,
        Some(libc::EAFNOSUPPORT | libc::EINVAL | libc::ENETUNREACH)
    ) {
        return err;
    }
    let domain = sock.getsockopt::<libc::c_int>(libc::SOL_SOCKET, libc::SO_DOMAIN);
    let unreachable = code == Some(libc::ENETUNREACH);
    let msg = match (domain.ok(), to) {
        (Some(libc::AF_INET6), _) if refuses_ipv4(sock, to, unreachable) => {
            "an IPv6 socket set IPv6-only (IPV6_V6ONLY, or net.ipv6.bindv6only for new \
             sockets), or bound to an IPv6 address, cannot bind or connect to an IPv4 \
             address, IPv4-mapped or not: make it with TcpSocket::new_v4"
        }
        _ if unreachable => return err,
        (Some(libc::AF_INET), SocketAddr::V6(_)) => {
            "an IPv4 socket cannot bind or connect to an IPv6 address: make it with \
             TcpSocket::new_v6"
        }
        (Some(libc::AF_INET6), SocketAddr::V4(_)) => {
            "an IPv6 socket cannot bind or connect to an IPv4 address: make it with \
             TcpSocket::new_v4, or give the address IPv4-mapped (::ffff:a.b.c.d)"
        }
        _ => return err,
    };
    let source = err;
    reworded(io::ErrorKind::InvalidInput, msg, source)
}

/// Whether an IPv6 TCP socket's bind or connect to `to` failed (`unreachable`: with
/// `ENETUNREACH`, else `EINVAL` or `EAFNOSUPPORT`) for `to` being IPv4, plain or mapped,
/// on a socket that carries no IPv4.
fn refuses_ipv4(sock: &Socket, to: SocketAddr, unreachable: bool) -> bool {
    let ipv4 = match to {
        SocketAddr::V4(_) => true,
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_some(),
    };
    // `EINVAL` for a mapped `to` on a bound socket is that of a second bind (`already_bound`).
    let second_bind = || {
        to.is_ipv6()
            && !unreachable
            && matches!(sock.local_addr().and_then(|a| a.to_inet()), Ok(a) if a.port() != 0)
    };
    ipv4 && !carries_ipv4(sock) && !second_bind()
}

/// A TCP or UDP bind to `addr` that failed with `EADDRINUSE`, the kernel's bare "Address
/// already in use", which names no address, and for port 0 (any port) means that no port
/// of the ephemeral range is free on that address. Kept `AddrInUse`; other errors pass as
/// they are.
pub(crate) fn bind_in_use(addr: SocketAddr, err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::EADDRINUSE) {
        return err;
    }
    let msg = if addr.port() == 0 {
        format!(
            "no free port on {} to bind to: every port of the ephemeral range \
             (net.ipv4.ip_local_port_range) is taken there, and a bind to port 0 holds one \
             whatever the destination (an unbound socket's connect shares ports between \
             destinations)",
            addr.ip()
        )
    } else {
        format!("{addr} is in use by another socket")
    };
    reworded(io::ErrorKind::AddrInUse, msg, err)
}

/// A multicast join (`joining`) or leave of `group` on the interface `on` describes ("the
/// interface with address 127.0.0.1", "interface index 1") that the kernel refused in
/// words naming neither: `ENODEV` ("No such device": no interface has that address or
/// index, or, for the kernel's choice, none routes to the group) as `InvalidInput`;
/// `EADDRINUSE` on a join ("Address already in use", read as a port taken: the socket is
/// a member already) and `EADDRNOTAVAIL` on a leave (it is not a member) keep their kinds.
/// Other errors pass as they are.
pub(crate) fn multicast_membership(
    err: io::Error,
    joining: bool,
    group: IpAddr,
    on: &str,
) -> io::Error {
    let verb = if joining { "join" } else { "leave" };
    let (kind, msg) = match (err.raw_os_error(), joining) {
        (Some(libc::ENODEV), _) => (
            io::ErrorKind::InvalidInput,
            format!("cannot {verb} multicast group {group} on {on}: no such interface"),
        ),
        (Some(libc::EADDRINUSE), true) => (
            io::ErrorKind::AddrInUse,
            format!("this socket has already joined multicast group {group} on {on}"),
        ),
        (Some(libc::EADDRNOTAVAIL), false) => (
            io::ErrorKind::AddrNotAvailable,
            format!(
                "this socket has not joined multicast group {group} on {on}, so cannot leave it"
            ),
        ),
        _ => return err,
    };
    reworded(kind, msg, err)
}

/// A TCP connect to `to` that failed with `EADDRNOTAVAIL`, the kernel's bare "Cannot assign
/// requested address", which names neither address nor says that the connection's pair of
/// addresses is taken. Bound to a port (`SO_REUSEADDR` lets sockets share one), the socket's
/// address is already connected to `to` by another socket; unbound, no ephemeral port is
/// left toward `to`. Kept `AddrNotAvailable`; other errors pass as they are.
pub(crate) fn tcp_no_local_port(sock: &Socket, to: SocketAddr, err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::EADDRNOTAVAIL) {
        return err;
    }
    let msg = match sock.local_addr().and_then(|a| a.to_inet()) {
        Ok(from) if from.port() != 0 => format!(
            "cannot connect from {from} to {to}: {from} is already connected to {to} by \
             another socket, and a TCP connection needs a pair of addresses of its own (bind \
             another port, or port 0 for the kernel to pick one)"
        ),
        _ => format!(
            "cannot connect to {to}: no local port is free toward it (the ephemeral range, \
             net.ipv4.ip_local_port_range, is used up, connections in TIME_WAIT included): \
             reuse connections, or spread them over more source addresses"
        ),
    };
    reworded(io::ErrorKind::AddrNotAvailable, msg, err)
}

/// Whether `sock` can send to IPv4 destinations: an IPv4 socket, or an IPv6 one neither
/// set IPv6-only nor bound to an IPv6 address (unbound, on `[::]`, or on an IPv4-mapped
/// address). What cannot be read counts as yes, leaving the kernel's error as it was.
fn carries_ipv4(sock: &Socket) -> bool {
    let domain = sock.getsockopt::<libc::c_int>(libc::SOL_SOCKET, libc::SO_DOMAIN);
    let ipv6 = domain.ok() == Some(libc::AF_INET6);
    if !ipv6
        || sock
            .flag(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)
            .unwrap_or(false)
    {
        return !ipv6;
    }
    match sock.local_addr().and_then(|a| a.to_inet()) {
        Ok(SocketAddr::V6(a)) => a.ip().is_unspecified() || a.ip().to_ipv4_mapped().is_some(),
        _ => true,
    }
}

/// The kernel's `EDESTADDRREQ` for a `send` on a socket never connected, of no `ErrorKind`
/// a caller can match, as `NotConnected` (what a `UnixDatagram`'s says) in our own words.
pub(crate) fn no_peer(err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::EDESTADDRREQ) {
        return err;
    }
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the UDP socket is not connected: connect it, or name the destination with send_to",
    )
}

/// The kernel's bare `EINVAL` for a `bind` of a socket already bound, as `InvalidInput`
/// naming the address it has (`bound`, if it could be read). Other errors pass as they are.
pub(crate) fn already_bound(err: io::Error, bound: Option<String>) -> io::Error {
    match (err.raw_os_error(), bound) {
        (Some(libc::EINVAL), Some(bound)) => {
            let msg = format!("the socket is already bound, to {bound}: a socket binds once");
            reworded(io::ErrorKind::InvalidInput, msg, err)
        }
        (_, _) => err,
    }
}

/// A Unix socket's `bind` to `path` that failed, in words that name the path: the
/// kernel's name none, so a program binding a control socket and a socket per service
/// cannot tell which bind failed. `EADDRINUSE` as [`unix_path_in_use`] says; a path the
/// kernel cannot make the socket's file at (`ENOENT`: its directory is missing, as when a
/// runtime directory was not made or was removed; `ENOTDIR`, `EACCES`, `EROFS`, `ELOOP`)
/// with the kernel's reason. Kinds and codes kept; other errors pass as they are.
pub(crate) fn unix_bind_failed(path: &std::path::Path, err: io::Error) -> io::Error {
    let why = match err.raw_os_error() {
        Some(libc::EADDRINUSE) => return unix_path_in_use(path, err),
        Some(libc::ENOENT) => "its directory does not exist",
        Some(libc::ENOTDIR) => "a part of its directory is not a directory",
        Some(libc::EACCES) => {
            "permission denied (to search its directory or create a file in it, or by a \
             security policy)"
        }
        Some(libc::EROFS) => "its file system is read-only",
        Some(libc::ELOOP) => "too many symbolic links on the way to its directory",
        _ => return err,
    };
    let msg = format!("cannot bind a Unix socket at {path:?}: {why}");
    reworded(err.kind(), msg, err)
}

/// A Unix socket's `bind` to `path` that failed with `EADDRINUSE`: something is there
/// already, which the kernel's bare "Address already in use" does not name, nor say that a
/// socket's file stays after the socket is dropped (left by an earlier run, it makes the
/// next run's bind fail). Kept `AddrInUse`.
fn unix_path_in_use(path: &std::path::Path, err: io::Error) -> io::Error {
    use std::os::unix::ffi::OsStrExt;
    let msg = match path.as_os_str().as_bytes() {
        [0, name @ ..] => format!(
            "the abstract Unix socket name {:?} is bound already",
            String::from_utf8_lossy(name)
        ),
        _ => format!(
            "a file exists at {path:?} already: a Unix socket binds only to a new path, and \
             a socket's file stays after the socket is dropped (one an earlier run left \
             behind must be removed before binding again)"
        ),
    };
    reworded(io::ErrorKind::AddrInUse, msg, err)
}

/// A Unix datagram send or connect to `path` that failed with `EPERM`: the socket there is
/// connected to another socket and takes datagrams from it alone, which the kernel's bare
/// "Operation not permitted" does not say (it reads as the file's permissions, which fail
/// with `EACCES`). Kept `PermissionDenied`; other errors pass as they are.
/// `path` is `None` for a peer with no path (one end of a pair), named "the peer".
pub(crate) fn unix_peer_taken(path: Option<&std::path::Path>, err: io::Error) -> io::Error {
    if err.raw_os_error() != Some(libc::EPERM) {
        return err;
    }
    let at = match path {
        Some(path) => format!("the datagram socket at {path:?}"),
        None => "the peer datagram socket".to_string(),
    };
    let msg = format!("{at} is connected to another socket and takes datagrams from it alone");
    reworded(io::ErrorKind::PermissionDenied, msg, err)
}

/// A Unix `connect` or `send_to` to `path` that found nothing there (`ENOENT`) or no socket
/// bound there (`ECONNREFUSED`: a socket's file left after the socket was dropped, a file
/// that is no socket, or an abstract name nobody holds), which the kernel's bare "No such
/// file or directory" and "Connection refused" do not name (a client with several sockets
/// cannot tell which failed, nor that a crashed server's file is the cause). Kinds kept;
/// other errors pass as they are.
pub(crate) fn unix_unreachable(path: &std::path::Path, err: io::Error) -> io::Error {
    use std::os::unix::ffi::OsStrExt;
    let abstract_name = match path.as_os_str().as_bytes() {
        [0, name @ ..] => Some(String::from_utf8_lossy(name)),
        _ => None,
    };
    let (kind, msg) = match (err.raw_os_error(), abstract_name) {
        (Some(libc::ENOENT), _) => (
            io::ErrorKind::NotFound,
            format!("there is no Unix socket at {path:?}: no such file or directory"),
        ),
        (Some(libc::ECONNREFUSED), Some(name)) => (
            io::ErrorKind::ConnectionRefused,
            format!("no socket is bound to the abstract Unix socket name {name:?}"),
        ),
        (Some(libc::ECONNREFUSED), None) => (
            io::ErrorKind::ConnectionRefused,
            format!(
                "no socket is bound at {path:?}: the file there is no socket, or one left \
                 after its socket was dropped (a server that exited leaves it)"
            ),
        ),
        _ => return err,
    };
    reworded(kind, msg, err)
}

/// A host name lookup of `host` that failed, `err` the resolver's words, checked for the
/// cause they hide when the process (or the system) has no fd free: `getaddrinfo` cannot
/// open `/etc/hosts` nor a socket to ask DNS, and says "Name or service not known" even
/// for `localhost`. If a file cannot be opened now for want of fds, the error says so, with
/// that `EMFILE` (or `ENFILE`) as its source for `overlap::io::raw_os_error`; otherwise
/// `err` passes as it is.
pub(crate) fn lookup_out_of_fds(host: &str, err: io::Error) -> io::Error {
    let Err(no_fd) = std::fs::File::open("/dev/null") else {
        return err;
    };
    if !matches!(no_fd.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        return err;
    }
    let msg = format!(
        "looking up {host:?} failed ({err}) while no file descriptor was free ({no_fd}): \
         the resolver needs some to read /etc/hosts and ask DNS, so the name may well be \
         fine; try again once some are closed"
    );
    reworded(no_fd.kind(), msg, no_fd)
}
