//! The TCP examples (`tcp_echo`, `tcp_echo_per_core`, `tcp_echo_acceptor`, `tcp_proxy`)
//! given a bad command line: each exits with status 1 and a message that names the
//! argument at fault, without a panic, and without serving on what it was not asked for
//! (an argument too many, or a thread count of 0, used to be ignored).
//!
//! Needs the examples built (`cargo test` builds them).

mod support;

use std::net::TcpListener;

use support::{run_example, ExampleRun};

const SERVERS: [&str; 4] = [
    "tcp_echo",
    "tcp_echo_per_core",
    "tcp_echo_acceptor",
    "tcp_proxy",
];

/// `run` ended with status 1, naming `named` in its message (printed in its own words,
/// not as the `Debug` form `Custom { kind: .. }`), before it announced an address.
fn refused(name: &str, run: ExampleRun, named: &str) {
    assert_eq!(run.status.code(), Some(1), "{name}: {run:?}");
    assert!(
        run.stderr.contains(named),
        "{name}: {named:?} unnamed: {run:?}"
    );
    assert!(!run.stderr.contains("panicked"), "{name}: {run:?}");
    assert!(run.stderr.starts_with("error: "), "{name}: {run:?}");
    assert!(!run.stderr.contains("Custom {"), "{name}: {run:?}");
    assert!(!run.stdout.contains("listening"), "{name}: {run:?}");
}

/// How a refusal names the argument `arg`: as it was given, an empty one as `""`.
fn shown(arg: &str) -> &str {
    if arg.is_empty() {
        r#""""#
    } else {
        arg
    }
}

#[test]
fn a_listen_address_that_does_not_parse_is_named() {
    for name in SERVERS {
        for bad in ["nonsense", "127.0.0.1:99999", "127.0.0.1", ""] {
            refused(name, run_example(name, &[bad]), shown(bad));
        }
    }
}

#[test]
fn a_listen_address_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for name in SERVERS {
        let run = run_example(name, &[&addr]);
        assert!(run.stderr.contains("in use"), "{name}: {run:?}");
        refused(name, run, &addr);
    }
}

#[test]
fn an_argument_too_many_is_refused() {
    let cases: [(&str, &[&str]); 4] = [
        ("tcp_echo", &["127.0.0.1:0", "extra"]),
        ("tcp_echo_per_core", &["127.0.0.1:0", "1", "extra"]),
        ("tcp_echo_acceptor", &["127.0.0.1:0", "1", "extra"]),
        ("tcp_proxy", &["127.0.0.1:0", "127.0.0.1:1", "extra"]),
    ];
    for (name, args) in cases {
        refused(name, run_example(name, args), "extra");
    }
}

#[test]
fn a_thread_count_that_is_not_a_positive_number_is_named() {
    for name in ["tcp_echo_per_core", "tcp_echo_acceptor"] {
        for bad in ["0", "-1", "abc", "", "99999999999999999999"] {
            let run = run_example(name, &["127.0.0.1:0", bad]);
            refused(name, run, shown(bad));
        }
    }
}

#[test]
fn an_upstream_that_is_not_an_ip_address_and_port_is_named() {
    for bad in [
        "localhost:7000",
        "nonsense",
        "127.0.0.1:99999",
        "127.0.0.1",
        "",
    ] {
        let run = run_example("tcp_proxy", &["127.0.0.1:0", bad]);
        refused("tcp_proxy", run, shown(bad));
    }
}

/// An upstream that is the proxy's own address: every connection would open another
/// through the proxy, until the descriptors ran out, and the proxy stayed wedged with them
/// after the client left.
#[test]
fn a_proxy_pointed_at_itself_is_refused() {
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let run = run_example("tcp_proxy", &[&free, &free]);
    assert!(run.stderr.contains("own address"), "{run:?}");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains(&free), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
}
