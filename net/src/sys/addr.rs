//! Socket addresses in their kernel form (`sockaddr_storage` + length).

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr as UnixAddr;
use std::path::Path;

/// A socket address as the kernel reads and writes it.
///
/// # Invariant
/// `len <= size_of::<sockaddr_storage>()`, and the first `len` bytes of `storage` form a valid
/// address of the family in `storage.ss_family` (or are what the kernel wrote there).
#[derive(Clone, Copy)]
pub(crate) struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl SockAddr {
    /// An all-zero buffer of full size, for the kernel to fill (accept, recvfrom, getsockname).
    pub(crate) fn empty() -> SockAddr {
        SockAddr {
            // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    pub(crate) fn len(&self) -> libc::socklen_t {
        self.len
    }

    /// The length field, for the kernel to update. It must not grow beyond the storage (the
    /// kernel truncates and reports the full length, which `clamp_len` fixes).
    pub(crate) fn len_mut(&mut self) -> &mut libc::socklen_t {
        &mut self.len
    }

    /// Keeps the invariant after the kernel reported a length larger than the buffer.
    pub(crate) fn clamp_len(&mut self) {
        let max = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        self.len = self.len.min(max);
    }

    pub(crate) fn family(&self) -> libc::c_int {
        libc::c_int::from(self.storage.ss_family)
    }

    /// The address family (`AF_INET` or `AF_INET6`) of an IP socket address.
    pub(crate) fn domain_of(addr: &SocketAddr) -> libc::c_int {
        match addr {
            SocketAddr::V4(_) => libc::AF_INET,
            SocketAddr::V6(_) => libc::AF_INET6,
        }
    }

    /// A Unix-domain address for `path`. A path starting with a NUL byte names an abstract
    /// socket (Linux), whose name is the bytes after it, not NUL-terminated.
    pub(crate) fn unix(path: &Path) -> io::Result<SockAddr> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.is_empty() {
            // The kernel would take it as an abstract address, reachable by any process.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty path names no Unix socket",
            ));
        }
        let mut addr = SockAddr::empty();
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
        let un = unsafe { &mut *(addr.as_mut_ptr().cast::<libc::sockaddr_un>()) };
        un.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let abstract_name = bytes.first() == Some(&0);
        // A pathname needs room for its terminating NUL; an abstract name does not.
        let room = un.sun_path.len() - usize::from(!abstract_name);
        if bytes.len() > room {
            let msg = if abstract_name {
                format!(
                    "an abstract Unix socket name is at most {} bytes after its NUL, not {}",
                    room - 1,
                    bytes.len() - 1
                )
            } else {
                format!(
                    "a Unix socket path is at most {room} bytes, not {}: {}",
                    bytes.len(),
                    path.display()
                )
            };
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        }
        if !abstract_name && bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a Unix socket path must not contain a NUL byte: {path:?}"),
            ));
        }
        for (dst, src) in un.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let base = mem::offset_of!(libc::sockaddr_un, sun_path);
        addr.len = (base + bytes.len() + usize::from(!abstract_name)) as libc::socklen_t;
        Ok(addr)
    }

    /// The Unix-domain address stored here (as `accept` or `recvfrom` wrote it for an
    /// `AF_UNIX` socket) in std's type, built without asking the kernel again. `None` when
    /// std's type cannot hold it: another family, or a path that fills `sun_path` with no
    /// terminating NUL.
    pub(crate) fn to_unix(self) -> Option<UnixAddr> {
        let base = mem::offset_of!(libc::sockaddr_un, sun_path);
        let len = self.len as usize;
        if len <= base {
            // An unbound socket's address is its family alone. std has no constructor for
            // it, but an empty path is how it spells it (checked, in case that changes).
            return UnixAddr::from_pathname("")
                .ok()
                .filter(UnixAddr::is_unnamed);
        }
        if self.family() != libc::AF_UNIX {
            return None;
        }
        // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un, and every byte
        // of it is initialised (zeroed, then written by the kernel).
        let un = unsafe { &*(self.as_ptr().cast::<libc::sockaddr_un>()) };
        let path = un.sun_path.map(|c| c as u8);
        let name = &path[..(len - base).min(path.len())];
        match name.split_first() {
            Some((0, abstract_name)) => UnixAddr::from_abstract_name(abstract_name).ok(),
            _ => {
                let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
                UnixAddr::from_pathname(std::ffi::OsStr::from_bytes(&name[..end])).ok()
            }
        }
    }

    /// The IP address stored here, or `InvalidInput` for another family.
    pub(crate) fn to_inet(self) -> io::Result<SocketAddr> {
        match self.family() {
            libc::AF_INET if self.len as usize >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in, which it is large
                // enough and aligned for, and `len` covers it.
                let sin = unsafe { &*(self.as_ptr().cast::<libc::sockaddr_in>()) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Ok(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if self.len as usize >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(self.as_ptr().cast::<libc::sockaddr_in6>()) };
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an IPv4 or IPv6 socket address",
            )),
        }
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> SockAddr {
        let mut out = SockAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                let sin = unsafe { &mut *(out.as_mut_ptr().cast::<libc::sockaddr_in>()) };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
                out.len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                let sin6 = unsafe { &mut *(out.as_mut_ptr().cast::<libc::sockaddr_in6>()) };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                sin6.sin6_scope_id = a.scope_id();
                out.len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_round_trip() {
        for s in ["127.0.0.1:80", "[::1]:443", "[fe80::1%3]:9"] {
            let a: SocketAddr = s.parse().unwrap();
            assert_eq!(SockAddr::from(a).to_inet().unwrap(), a);
        }
    }

    #[test]
    fn unix_path_too_long() {
        let long = "x".repeat(200);
        assert!(SockAddr::unix(Path::new(&long)).is_err());
        let ok = SockAddr::unix(Path::new("/tmp/sock")).unwrap();
        assert_eq!(ok.family(), libc::AF_UNIX);
    }
}
