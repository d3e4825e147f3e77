//! Address strings that can never name a socket address are refused with `InvalidInput` at
//! once, without a trip to the resolver (`getaddrinfo` on the blocking pool): an empty host
//! (`":80"`, `("", 80)`), and an IP address with no port (`"::1"`, `"fe80::1"`). They used to
//! reach the resolver, which answered with an uncategorized "Name or service not known". An
//! unbracketed IPv6 address whose last group reads as a port is taken as std takes it
//! (`"::1:80"` is `[::1]:80`), without a lookup either.

use std::io::ErrorKind;
use std::net::SocketAddr;

use overlap::net::{lookup_host, UdpSocket};

#[overlap::test]
async fn hosts_that_cannot_resolve_are_refused_without_a_lookup() {
    let mut results = Vec::new();
    for s in [":80", ":0", "::1", "fe80::1", "fe80::1:99999", "127.0.0.1"] {
        results.push((s.to_owned(), lookup_host(s).await.map(|_| ())));
        results.push((format!("bind {s}"), UdpSocket::bind(s).await.map(|_| ())));
    }
    results.push((
        "(\"\", 80)".to_owned(),
        lookup_host(("", 80)).await.map(|_| ()),
    ));
    let empty = (String::new(), 80);
    results.push((
        "(String::new(), 80)".to_owned(),
        lookup_host(empty).await.map(|_| ()),
    ));
    for (input, res) in &results {
        let kind = res.as_ref().map_err(|e| e.kind());
        assert_eq!(kind, Err(ErrorKind::InvalidInput), "{input}: {res:?}");
    }
    // Nothing went to the resolver: no blocking thread was ever started.
    assert_eq!(overlap::metrics().blocking_threads, 0);
    // What should work still does: bracketed IPv6 with a port, and the name localhost.
    let v6: Vec<SocketAddr> = lookup_host("[::1]:80").await.unwrap().collect();
    assert_eq!(v6, ["[::1]:80".parse::<SocketAddr>().unwrap()]);
    // As std reads it (and so tokio): the last group of an unbracketed IPv6 address is the port.
    for (s, want) in [
        ("::1:80", "[::1]:80"),
        ("2001:db8::1:53", "[2001:db8::1]:53"),
    ] {
        let got: Vec<SocketAddr> = lookup_host(s).await.unwrap().collect();
        let std: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(s)
            .unwrap()
            .collect();
        assert_eq!(got, [want.parse::<SocketAddr>().unwrap()], "{s}");
        assert_eq!(got, std, "{s}");
    }
    assert_eq!(
        overlap::metrics().blocking_threads,
        0,
        "a literal went to the resolver"
    );
    let local: Vec<SocketAddr> = lookup_host("localhost:80").await.unwrap().collect();
    assert!(local.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
}
