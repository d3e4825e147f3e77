//! The type of service of outgoing packets: IPv4's `IP_TOS` and IPv6's traffic class
//! (`IPV6_TCLASS`).

use std::io;

use super::Socket;

/// A type-of-service or traffic-class byte from the user's `u32`: one byte, a larger value
/// refused, as the kernel would truncate it silently.
fn one_byte(value: u32, what: &str) -> io::Result<libc::c_int> {
    let byte = u8::try_from(value).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a {what} is at most 255, not {value}"),
        )
    })?;
    Ok(libc::c_int::from(byte))
}

impl Socket {
    /// Sets the IPv4 type-of-service byte (`IP_TOS`); like a TTL, it is one byte, and a
    /// larger value is refused. On an IPv6 socket the traffic class (`IPV6_TCLASS`) is set
    /// first: the kernel takes `IP_TOS` there too, but it marks only the IPv4 traffic of a
    /// dual-stack socket, and IPv6 packets would go out with class 0.
    pub(crate) fn set_tos(&self, tos: u32) -> io::Result<()> {
        let tos = one_byte(tos, "type of service")?;
        if self.is_ipv6()? {
            self.setsockopt(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tos)?;
        }
        self.setsockopt(libc::IPPROTO_IP, libc::IP_TOS, tos)
    }

    /// The `IP_TOS` setting.
    pub(crate) fn tos(&self) -> io::Result<u32> {
        let tos: libc::c_int = self.getsockopt(libc::IPPROTO_IP, libc::IP_TOS)?;
        Ok(tos as u32)
    }

    /// Sets the IPv6 traffic class (`IPV6_TCLASS`) alone; an IPv4 socket refuses it with
    /// the kernel's error.
    pub(crate) fn set_tclass(&self, tclass: u32) -> io::Result<()> {
        let tclass = one_byte(tclass, "traffic class")?;
        self.setsockopt(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, tclass)
    }

    /// The `IPV6_TCLASS` setting.
    pub(crate) fn tclass(&self) -> io::Result<u32> {
        let tclass: libc::c_int = self.getsockopt(libc::IPPROTO_IPV6, libc::IPV6_TCLASS)?;
        Ok(tclass as u32)
    }
}
