//! Turning "anything address-like" into socket addresses without blocking the loop.
//!
//! Literal IP addresses (`"127.0.0.1:80"`, `(Ipv6Addr::LOCALHOST, 80)`, a `SocketAddr`) are
//! parsed in place. Only a host name goes to the blocking pool, because `getaddrinfo` may
//! block for seconds on DNS.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Something that names one or more socket addresses: a [`SocketAddr`], an `(ip, port)`
/// pair, a `"host:port"` string, a `(host, port)` pair, or a slice of addresses. In a string,
/// an IPv6 address takes brackets, `"[::1]:80"`; see [`lookup_host`] for what is refused.
///
/// Host names are resolved with `getaddrinfo` on the runtime's blocking pool
/// ([`spawn_blocking`](overlap_runtime::spawn_blocking)), never on the event loop; literal IP
/// addresses need no pool. Functions taking one try each resolved address in turn and
/// return the last error if none works.
///
/// This trait is sealed: it cannot be implemented outside this crate.
pub trait ToSocketAddrs: sealed::Sealed {}

pub(crate) mod sealed {
    use super::Lookup;

    /// What an address-like value turns into before any lookup.
    pub trait Sealed {
        /// Parses literal addresses, or hands back the host to look up.
        fn to_lookup(&self) -> Lookup;
    }
}

/// Either addresses known already, or a host to resolve on the blocking pool.
#[derive(Debug)]
pub enum Lookup {
    /// One address, parsed without a lookup (and without allocating: the common case).
    One(SocketAddr),
    /// Parsed without a lookup.
    Done(io::Result<Vec<SocketAddr>>),
    /// `(host, port)` to resolve.
    Host(String, u16),
}

/// Resolves `addr`, on the blocking pool if it names a host.
pub(crate) async fn resolve<A: ToSocketAddrs>(addr: A) -> io::Result<Vec<SocketAddr>> {
    resolve_lookup(addr.to_lookup()).await
}

/// The first address `addr` resolves to, or `InvalidInput` saying there is none to `what`.
/// A literal address costs no allocation.
pub(crate) async fn resolve_first<A: ToSocketAddrs>(
    addr: A,
    what: &'static str,
) -> io::Result<SocketAddr> {
    let first = match addr.to_lookup() {
        Lookup::One(addr) => Some(addr),
        lookup => resolve_lookup(lookup).await?.into_iter().next(),
    };
    first.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, what))
}

async fn resolve_lookup(lookup: Lookup) -> io::Result<Vec<SocketAddr>> {
    match lookup {
        Lookup::One(addr) => Ok(vec![addr]),
        Lookup::Done(res) => res,
        Lookup::Host(host, port) => {
            // No pool to resolve on: fail as registering a socket there does.
            if overlap_runtime::Handle::try_current().is_none() {
                return Err(io::Error::other(format!(
                    "host name lookup of {host:?} outside an overlap runtime (names are \
                     resolved on its blocking pool): look it up inside `overlap::block_on` \
                     or `Runtime::block_on`"
                )));
            }
            let job = overlap_runtime::spawn_blocking_or_error(move || {
                std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                    .map(Iterator::collect::<Vec<_>>)
                    .map_err(|e| crate::sock_errors::lookup_out_of_fds(&host, e))
            });
            job.await
                .map_err(|e| io::Error::other(format!("host name lookup failed: {e}")))??
        }
    }
}

/// The socket addresses `host` names: a literal address is parsed at once, a host name is
/// resolved with `getaddrinfo` on the blocking pool, never on the event loop.
///
/// Dropping the future gives the lookup up: a `getaddrinfo` already running finishes on the
/// pool and its answer is dropped.
///
/// ```
/// overlap::block_on(async {
///     let addrs: Vec<_> = overlap::net::lookup_host("127.0.0.1:80").await?.collect();
///     assert_eq!(addrs, ["127.0.0.1:80".parse().unwrap()]);
///     // Names come from the system's resolver (/etc/hosts first, usually).
///     for addr in overlap::net::lookup_host(("localhost", 8080)).await? {
///         assert!(addr.ip().is_loopback());
///     }
///     # std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
/// A name that does not resolve gives the resolver's error, unless no fd was free (the
/// resolver needs some: it then says "Name or service not known" even for `localhost`):
/// that error says so, its `EMFILE` kept as the source. A name looked up outside any
/// runtime (there is no blocking pool to resolve it on) gives `Other`, as a socket made
/// there does. A malformed `"host:port"` string gives `InvalidInput`, without a lookup.
/// So do an empty host (`":80"`, `("", 80)`), an IP address with no port (`"::1"`,
/// `"fe80::1"`), a host with a NUL byte, brackets that hold no IPv6 address
/// (`"[127.0.0.1]:80"`, `"[localhost]:80"`; a scope goes by number, `"[fe80::1%2]:80"`),
/// any brackets in a `(host, port)` pair, and a `/` anywhere (a URL passed whole: std
/// would send `"http://127.0.0.1:80"` to the resolver as the name `"http://127.0.0.1"`).
/// An IPv6 address without brackets whose last group can be read as a port is read so,
/// as std's `ToSocketAddrs` does: `"::1:80"` is `[::1]:80`. Write `"[addr]:port"` to be
/// unambiguous.
pub async fn lookup_host<A: ToSocketAddrs>(
    host: A,
) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(resolve(host).await?.into_iter())
}

/// Runs `f` on each address of `addr` in turn until one succeeds; otherwise returns the last
/// error (or `InvalidInput` if there was no address).
pub(crate) async fn try_each<A, T, F, Fut>(addr: A, mut f: F) -> io::Result<T>
where
    A: ToSocketAddrs,
    F: FnMut(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = io::Result<T>>,
{
    let mut last = None;
    for a in resolve(addr).await? {
        match f(a).await {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}

fn one(addr: SocketAddr) -> Lookup {
    Lookup::One(addr)
}

fn invalid(msg: &'static str) -> Lookup {
    Lookup::Done(Err(io::Error::new(io::ErrorKind::InvalidInput, msg)))
}

macro_rules! literal {
    ($($t:ty),*) => {$(
        impl ToSocketAddrs for $t {}
        impl sealed::Sealed for $t {
            fn to_lookup(&self) -> Lookup {
                one(SocketAddr::from(*self))
            }
        }
    )*};
}

literal!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);

/// The refusal of an address with a slash in it, most often a URL passed whole.
const NOT_A_URL: &str = "invalid socket address: a host or host:port has no '/' (a URL is no \
                         address: pass its host and port, as \"127.0.0.1:80\")";

impl ToSocketAddrs for (&str, u16) {}
impl sealed::Sealed for (&str, u16) {
    fn to_lookup(&self) -> Lookup {
        let (host, port) = *self;
        match host.parse::<IpAddr>() {
            Ok(ip) => one(SocketAddr::new(ip, port)),
            // getaddrinfo would only fail, after a trip to the blocking pool (std's lookup
            // refuses a NUL as being in a "file name").
            Err(_) if host.is_empty() => invalid("empty host name"),
            Err(_) if host.contains('\0') => invalid("a host name must not contain a NUL byte"),
            // No name has brackets: the resolver would ask DNS for it all the same.
            Err(_) if host.starts_with('[') => invalid(
                "a host in a (host, port) pair takes no brackets: write an IPv6 address bare",
            ),
            // No name has a slash: a URL passed whole would go to DNS as a name.
            Err(_) if host.contains('/') => invalid(NOT_A_URL),
            Err(_) => Lookup::Host(host.to_owned(), port),
        }
    }
}

impl ToSocketAddrs for (String, u16) {}
impl sealed::Sealed for (String, u16) {
    fn to_lookup(&self) -> Lookup {
        (self.0.as_str(), self.1).to_lookup()
    }
}

impl ToSocketAddrs for str {}
impl sealed::Sealed for str {
    fn to_lookup(&self) -> Lookup {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return one(addr);
        }
        // A URL passed whole ("http://127.0.0.1:80/"): split at its last colon it reads as
        // the name "http://127.0.0.1", or as a port with a path after it.
        if self.contains('/') {
            return invalid(NOT_A_URL);
        }
        // A whole IP address names no port. Split at its last colon, an IPv6 one may still
        // read as address and port, which std (and so tokio) accepts: "::1:80" is [::1]:80.
        // Otherwise the rest would go to the resolver ("fe80::1" as host "fe80:", port 1).
        if self.parse::<IpAddr>().is_ok() {
            let split = self.rsplit_once(':').and_then(|(host, port)| {
                Some(SocketAddr::new(host.parse().ok()?, port.parse().ok()?))
            });
            return match split {
                Some(addr) => one(addr),
                None => invalid("invalid socket address: no port (write IPv6 as [addr]:port)"),
            };
        }
        // "[addr]:port" that did not parse: brackets hold an IPv6 address and nothing else,
        // so no name is to be looked up.
        if let Some(rest) = self.strip_prefix('[') {
            return match rest.split_once(']') {
                Some((ip, tail)) if ip.parse::<Ipv6Addr>().is_ok() => {
                    match tail.strip_prefix(':') {
                        Some(_) => invalid("invalid port value"),
                        None if tail.is_empty() => {
                            invalid("invalid socket address: no port after [addr]")
                        }
                        None => invalid("invalid socket address: expected [IPv6 address]:port"),
                    }
                }
                _ => invalid(
                    "invalid socket address: brackets must hold an IPv6 address (a scope by \
                     number), as in [::1]:80",
                ),
            };
        }
        // "host:port"; the port is split off at the last colon, as getaddrinfo users expect.
        let Some((host, port)) = self.rsplit_once(':') else {
            return invalid("invalid socket address: expected host:port");
        };
        match port.parse::<u16>() {
            Ok(port) => (host, port).to_lookup(),
            Err(_) => invalid("invalid port value"),
        }
    }
}

impl ToSocketAddrs for String {}
impl sealed::Sealed for String {
    fn to_lookup(&self) -> Lookup {
        self.as_str().to_lookup()
    }
}

impl ToSocketAddrs for [SocketAddr] {}
impl sealed::Sealed for [SocketAddr] {
    fn to_lookup(&self) -> Lookup {
        Lookup::Done(Ok(self.to_vec()))
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: ToSocketAddrs + ?Sized> sealed::Sealed for &T {
    fn to_lookup(&self) -> Lookup {
        (**self).to_lookup()
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;
    use super::*;

    fn done(l: Lookup) -> Vec<SocketAddr> {
        match l {
            Lookup::One(a) => vec![a],
            Lookup::Done(r) => r.unwrap(),
            Lookup::Host(h, p) => panic!("unexpected lookup of {h}:{p}"),
        }
    }

    #[test]
    fn literals_need_no_lookup() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(done("127.0.0.1:80".to_lookup()), [v4]);
        assert_eq!(done(("127.0.0.1", 80).to_lookup()), [v4]);
        assert_eq!(done((Ipv4Addr::LOCALHOST, 80).to_lookup()), [v4]);
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(done("[::1]:80".to_lookup()), [v6]);
        assert_eq!(done(("::1", 80).to_lookup()), [v6]);
    }

    #[test]
    fn host_names_are_looked_up() {
        match "localhost:8080".to_lookup() {
            Lookup::Host(h, p) => assert_eq!((h.as_str(), p), ("localhost", 8080)),
            Lookup::One(_) | Lookup::Done(_) => panic!("expected a lookup"),
        }
        assert!(matches!("localhost".to_lookup(), Lookup::Done(Err(_))));
        assert!(matches!("localhost:x".to_lookup(), Lookup::Done(Err(_))));
    }
}
