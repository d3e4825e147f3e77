//! Address strings that can never name a host are refused with `InvalidInput` and our own
//! words, without a trip to the resolver (`getaddrinfo` on the blocking pool):
//!
//! - a host name with a NUL byte in it, which used to reach std's lookup and come back as
//!   "file name contained an unexpected NUL byte", about a file there is none of;
//! - a host in brackets that is no IPv6 address (`"[127.0.0.1]:80"`, `"[localhost]:80"`),
//!   and a bracketed host in a `(host, port)` pair, which used to be sent to the resolver
//!   as a name (brackets and all: a DNS query for a name that cannot exist) and fail with
//!   its uncategorized "Name or service not known";
//! - `"[::1]"` with no port, which used to be refused as an "invalid port value";
//! - a URL passed whole (`"http://127.0.0.1:80/"`, `"127.0.0.1:80/p/1"`), which used to be
//!   refused as an "invalid port value" when a path followed the port, and otherwise sent to
//!   the resolver as the name `"http://127.0.0.1"`.
//!
//! The test runs in a child of its own in which `socket` fails, so that on code that still
//! sends these to the resolver, no query leaves the machine.

mod support;

use std::io::{self, ErrorKind};
use std::net::SocketAddr;

use overlap::net::{lookup_host, UdpSocket};
use support::run_in_child;
use support::seccomp::{install, rule};

async fn refusal(input: &str, res: io::Result<impl Sized>) -> String {
    let err = match res {
        Ok(_) => panic!("{input:?} was accepted"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{input:?}: {err}");
    err.to_string()
}

#[test]
fn hosts_no_resolver_can_find_are_refused_in_our_words_without_a_lookup() {
    run_in_child(
        "hosts_no_resolver_can_find_are_refused_in_our_words_without_a_lookup",
        || {
            overlap::block_on(async {
                // A socket made before the filter, for send_to.
                let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                install(&[rule(libc::SYS_socket, libc::EPERM)]);

                for s in ["local\0host:80", "\0:80", "localhost\0:80"] {
                    let msg = refusal(s, lookup_host(s).await).await;
                    assert!(msg.contains("NUL") && !msg.contains("file"), "{s:?}: {msg}");
                    let msg = refusal(s, udp.send_to(b"x", s).await).await;
                    assert!(msg.contains("NUL"), "send_to {s:?}: {msg}");
                }
                let msg = refusal("(\"a\\0b\", 80)", lookup_host(("a\0b", 80)).await).await;
                assert!(msg.contains("NUL") && !msg.contains("file"), "{msg}");

                for s in [
                    "[127.0.0.1]:80",
                    "[localhost]:80",
                    "[fe80::1%lo]:80",
                    "[::1]x:80",
                    "[::1:80",
                ] {
                    let msg = refusal(s, lookup_host(s).await).await;
                    assert!(msg.contains("IPv6"), "{s:?}: {msg}");
                }
                for host in ["[::1]", "[localhost]"] {
                    let msg = refusal(host, lookup_host((host, 80)).await).await;
                    assert!(msg.contains("bracket"), "({host:?}, 80): {msg}");
                }
                for s in ["[::1]", "[::1]:"] {
                    let msg = refusal(s, lookup_host(s).await).await;
                    assert!(msg.contains("port"), "{s:?}: {msg}");
                }
                let msg = refusal("[::1]:99999", lookup_host("[::1]:99999").await).await;
                assert!(msg.contains("port"), "{msg}");
                // A crawler's URL passed whole: no host or port has a scheme or a path.
                for s in [
                    "http://127.0.0.1:80",
                    "http://127.0.0.1:80/",
                    "127.0.0.1:80/p/1",
                    "http://localhost/",
                    "http://[::1]:80/",
                ] {
                    let msg = refusal(s, lookup_host(s).await).await;
                    assert!(msg.contains("URL"), "{s:?}: {msg}");
                }
                let msg = refusal("(\"http://a\", 80)", lookup_host(("http://a", 80)).await).await;
                assert!(msg.contains("URL"), "{msg}");

                assert_eq!(
                    overlap::metrics().blocking_threads,
                    0,
                    "an input went to the resolver"
                );

                // What names an address still does, without a lookup.
                let v6: Vec<SocketAddr> = lookup_host("[::1]:80").await.unwrap().collect();
                assert_eq!(v6, ["[::1]:80".parse::<SocketAddr>().unwrap()]);
                let scoped: Vec<SocketAddr> =
                    lookup_host("[fe80::1%1]:80").await.unwrap().collect();
                assert_eq!(scoped, ["[fe80::1%1]:80".parse::<SocketAddr>().unwrap()]);
                let pair: Vec<SocketAddr> = lookup_host(("::1", 80)).await.unwrap().collect();
                assert_eq!(pair, v6);
                assert_eq!(overlap::metrics().blocking_threads, 0);
            });
        },
    );
}

/// A host name looked up outside any runtime (there is no blocking pool to resolve it on)
/// fails with an `Other` error saying so, as a literal address's `connect` there does
/// (registering the socket fails), where the lookup panicked. In a child in which `socket`
/// fails, so that on code that still resolves it no query leaves the machine.
#[test]
fn a_host_name_looked_up_outside_any_runtime_is_an_error() {
    run_in_child(
        "a_host_name_looked_up_outside_any_runtime_is_an_error",
        || {
            install(&[rule(libc::SYS_socket, libc::EPERM)]);
            let check = |what: &str, res: std::task::Poll<io::Result<()>>| match res {
                std::task::Poll::Ready(Err(e)) => {
                    assert_eq!(e.kind(), ErrorKind::Other, "{what}: {e}");
                    assert!(e.to_string().contains("outside"), "{what}: {e}");
                }
                other => panic!("{what} outside any runtime: {other:?}"),
            };
            let lookup = async { lookup_host("localhost:80").await.map(drop) };
            check("lookup_host", support::polled(lookup).poll());
            let tcp = async {
                overlap::net::TcpStream::connect("localhost:80")
                    .await
                    .map(drop)
            };
            check("TcpStream::connect", support::polled(tcp).poll());
        },
    );
}
