//! How the HTTP echo example frames requests against inputs that two parsers could read
//! differently (the stuff of request smuggling): every such request gets a 4xx or 5xx, or
//! is read exactly as the head parser reads it. Run against the real binary.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::ExampleServer;

/// Sends `req` and reads until the server closes (every request here ends the connection:
/// refused, or asked with `Connection: close`); returns what came back.
fn exchange(server: &ExampleServer, req: &[u8]) -> String {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(req).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "no end to the exchange ({e}); got {:?}",
            String::from_utf8_lossy(&got)
        ),
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The status codes of the responses in `text`.
fn statuses(text: &str) -> Vec<&str> {
    text.match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect()
}

fn refused(server: &ExampleServer, req: &[u8]) {
    let got = exchange(server, req);
    let st = statuses(&got);
    assert!(
        st.first()
            .is_some_and(|s| s.starts_with('4') || s.starts_with('5')),
        "{:?}: answers {st:?}\n{got}",
        String::from_utf8_lossy(req)
    );
}

#[test]
fn a_bare_lf_ending_the_trailers_does_not_swallow_the_next_request() {
    let server = ExampleServer::start("http_echo");
    // The head parser takes a bare LF as a line end; the trailer reader used to take only
    // CRLF, and read the next request as trailer lines: two requests, one answer.
    let got = exchange(
        &server,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          1\r\nA\r\n0\r\n\n\
          GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(statuses(&got), ["200", "200"], "{got}");
    assert!(
        got.contains("GET /second"),
        "the second request was answered: {got}"
    );
}

/// Trailers dripped a byte per write are parsed once a line ends (not at every byte): the
/// request is still answered, and a malformed trailer line still refused, wherever its
/// bytes were cut.
#[test]
fn trailers_dripped_a_byte_at_a_time_are_read_as_a_whole() {
    let server = ExampleServer::start("http_echo");
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nA\r\n0\r\n";
    for (trailers, want) in [
        (&b"X-Sum: 1\r\nY: 2\r\n\r\n"[..], "200"),
        (b"X-Sum: 1\r\nno colon\r\n\r\n", "400"),
    ] {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(head).unwrap();
        for byte in trailers {
            s.write_all(std::slice::from_ref(byte)).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let got = String::from_utf8_lossy(&got);
        assert_eq!(statuses(&got), [want], "{got}");
    }
}

#[test]
fn malformed_trailers_and_chunk_size_lines_are_refused() {
    let server = ExampleServer::start("http_echo");
    for req in [
        // A trailer line with a NUL and no colon.
        &b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
           1\r\nA\r\n0\r\nno colon \x00 here\r\n\r\n"[..],
        // A bare LF inside a chunk extension: the chunk-size line ends differently for a
        // peer that takes bare LFs as line ends.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;\nxx\r\nAB\r\n0\r\n\r\n",
        // A control byte in an extension.
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;a\x01b\r\nA\r\n0\r\n\r\n",
    ] {
        refused(&server, req);
    }
}

#[test]
fn only_spaces_and_tabs_surround_a_coding_name() {
    let server = ExampleServer::start("http_echo");
    // NBSP, NEL, ideographic space: not OWS, so not the `chunked` coding (a 501, not a
    // chunked body).
    for te in [
        &b"\xc2\xa0chunked"[..],
        b"chunked\xc2\x85",
        b"\xe3\x80\x80chunked",
    ] {
        let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ".to_vec();
        req.extend_from_slice(te);
        req.extend_from_slice(b"\r\n\r\n1\r\nA\r\n0\r\n\r\n");
        refused(&server, &req);
    }
    // Tabs and spaces are fine.
    let got = exchange(
        &server,
        b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: \t chunked \t\r\n\r\n\
          1\r\nA\r\n0\r\n\r\n",
    );
    assert_eq!(statuses(&got), ["200"], "{got}");
}

#[test]
fn the_classic_smuggling_patterns_are_refused() {
    let server = ExampleServer::start("http_echo");
    let cases: &[&[u8]] = &[
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\nContent-Length: 1\r\n\r\na",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nFoo: a\x00b\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
    ];
    for req in cases {
        refused(&server, req);
    }
}

/// `chunk-size = 1*HEXDIG` (RFC 9112 §7.1) allows leading zeros, however many: a size is
/// its value, not its digit count. httparse refuses more than 16 digits, which used to make
/// `00000000000000000003` a 400; a value past any body is a 413, as a 16-digit one is.
#[test]
fn a_chunk_size_is_read_by_its_value_whatever_its_leading_zeros() {
    let server = ExampleServer::start("http_echo");
    let chunked = |chunks: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}"
        )
    };
    let zeros = "0".repeat(40);
    let got = exchange(
        &server,
        chunked(&format!(
            "{zeros}3\r\nabc\r\n{zeros}1;e=v\r\nd\r\n{zeros}0\r\n\r\n"
        ))
        .as_bytes(),
    );
    assert_eq!(statuses(&got), ["200"], "{got}");
    assert!(got.ends_with("\r\n\r\nabcd"), "the body comes back: {got}");
    // Seventeen significant digits: more than any body may hold, whatever their zeros.
    for size in [
        "10000000000000000",
        "000000000000000000000fffffffffffffffff",
    ] {
        let got = exchange(&server, chunked(&format!("{size}\r\n")).as_bytes());
        assert_eq!(statuses(&got), ["413"], "{size}: {got}");
    }
}

/// Trailers past the head's limits (64 fields, 16 KiB) get a 431 that says it was the
/// trailers, not the request head, that were too large.
#[test]
fn trailers_too_large_are_named_as_such() {
    let server = ExampleServer::start("http_echo");
    let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n";
    let many = "T: 1\r\n".repeat(65);
    let long = format!("T: {}\r\n", "a".repeat(17_000));
    for trailers in [many, long] {
        let got = exchange(&server, format!("{head}{trailers}\r\n").as_bytes());
        assert_eq!(statuses(&got), ["431"], "{got}");
        assert!(got.ends_with("trailer section too large\n"), "{got}");
    }
    // At the limits, they are read and ignored.
    let head = head.replace("Host: x\r\n", "Host: x\r\nConnection: close\r\n");
    let got = exchange(
        &server,
        format!("{head}{}\r\n", "T: 1\r\n".repeat(64)).as_bytes(),
    );
    assert_eq!(statuses(&got), ["200"], "{got}");
}

/// A chunk-size line over its 4 KiB limit is a 400 however its bytes arrive: whole in one
/// read too (it was then read, extensions and all, where the same line in pieces was
/// refused).
#[test]
fn a_chunk_size_line_over_its_limit_is_refused_even_in_one_read() {
    let server = ExampleServer::start("http_echo");
    let req = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
         1;e={}\r\nA\r\n0\r\n\r\n",
        "v".repeat(5000)
    );
    let got = exchange(&server, req.as_bytes());
    assert_eq!(statuses(&got), ["400"], "{got}");
    assert!(got.ends_with("chunk-size line too long\n"), "{got}");
}

/// A request line gets a 414 when it alone, without its line end, is over the 16 KiB head
/// limit, and a 431 when it is not but the head is: the same line got a 414 ended by CRLF
/// and a 431 ended by a bare LF (its CR was counted as part of it).
#[test]
fn a_request_line_at_the_limit_gets_the_same_status_whatever_its_line_end() {
    let server = ExampleServer::start("http_echo");
    for (len, status) in [(16 * 1024, "431"), (16 * 1024 + 1, "414")] {
        let line = format!("GET /{} HTTP/1.1", "a".repeat(len - "GET / HTTP/1.1".len()));
        for end in ["\r\n", "\n"] {
            let got = exchange(&server, format!("{line}{end}Host: t{end}{end}").as_bytes());
            assert_eq!(statuses(&got), [status], "{len} bytes ended by {end:?}");
        }
        // Its CR in the read that passes the limit, its LF in a later one.
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(format!("{line}\r").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let _ = s.write_all(b"\nHost: t\r\n\r\n");
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        let got = String::from_utf8_lossy(&got);
        assert_eq!(statuses(&got), [status], "{len} bytes, CR and LF apart");
    }
}

/// RFC 9112 §3.2: no form of request-target has a fragment, and the asterisk-form is for
/// OPTIONS only. Either makes the request line invalid, which gets a 400 (§3), not a
/// correction (§3 forbids one: `/a#b` may be read as `/a` by one hop, as `/a#b` by
/// another). Both were echoed; a HEAD's 400 has no body.
#[test]
fn a_fragment_or_an_asterisk_not_for_options_in_the_target_is_a_400() {
    let server = ExampleServer::start("http_echo");
    for req in [
        &b"GET * HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"POST * HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
        b"HEAD * HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a#b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /a?q=1#b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /# HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET http://t/a#b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"OPTIONS /#b HTTP/1.1\r\nHost: t\r\n\r\n",
        b"HEAD /a#b HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let got = exchange(&server, req);
        let shown = String::from_utf8_lossy(req);
        assert_eq!(statuses(&got), ["400"], "{shown:?}: {got}");
        if req.starts_with(b"HEAD") {
            assert!(got.ends_with("\r\n\r\n"), "{shown:?}: {got}");
        }
    }
    // OPTIONS may ask about the whole server; an escaped `#` is path data.
    for req in [
        &b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"[..],
        b"GET /a%23b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let got = exchange(&server, req);
        assert_eq!(statuses(&got), ["200"], "{got}");
        // The head comes back, all but its empty last line.
        let head = String::from_utf8_lossy(&req[..req.len() - 2]);
        assert!(got.ends_with(&*head), "{got}");
    }
}
