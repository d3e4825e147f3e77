//! The HTTP echo example (the real binary) against clients that are hostile or merely odd,
//! where the other http_echo tests leave a gap: a request line that cannot be HTTP (a TLS or
//! SSH greeting, binary garbage) is refused as soon as a byte shows it, not when its line
//! end or the head timeout comes.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::ExampleServer;

/// A hang guard only: every exchange here ends at once, or at the 10 s head timeout.
const HANG: Duration = Duration::from_secs(30);

fn connect(server: &ExampleServer) -> TcpStream {
    let s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(HANG)).unwrap();
    s
}

/// Reads until the server closes, or until `HANG`; what came back.
fn read_all(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        // A server that refused and closed may reset what the client sent after.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{e}; got {:?}", String::from_utf8_lossy(&got)),
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The status of the answer at the start of `text` (or the whole text when it has none).
fn status(text: &str) -> &str {
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .unwrap_or(text)
}

/// A control byte can be in no request line: the answer is a 400 at once, not a 408 when
/// the head timeout (10 s) is up, as it was while the server waited for the line's LF that
/// a TLS ClientHello (one in seven has no 0x0A byte) or a binary probe may never send.
/// Each client keeps its end open and sends nothing more.
#[test]
fn a_request_line_with_a_control_byte_is_refused_before_it_ends() {
    let server = ExampleServer::start("http_echo");
    let greetings: &[&[u8]] = &[
        // The start of a TLS 1.2 ClientHello record.
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"G\x01",
        b"GET /\x00",
        b"GET /a\x7fb",
        b"GET / HTTP/1.1\x1b",
        // After empty lines, which come before a request line.
        b"\r\n\r\nGET \x02",
    ];
    // All at once: a server that waits for the head timeout takes 10 s, not 60.
    let mut conns: Vec<TcpStream> = greetings
        .iter()
        .map(|g| {
            let mut s = connect(&server);
            s.write_all(g).unwrap();
            s
        })
        .collect();
    for (g, s) in greetings.iter().zip(&mut conns) {
        let got = read_all(s);
        assert_eq!(
            status(&got),
            "400",
            "for {:?}: {got:?}",
            String::from_utf8_lossy(g)
        );
    }
    // Bytes that may be in a request line (obs-text in a target, as curl sends UTF-8) do not
    // end the wait: that request, finished later, is served.
    let mut s = connect(&server);
    s.write_all(b"GET /caf\xc3\xa9").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.write_all(b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = read_all(&mut s);
    assert_eq!(status(&got), "200", "{got:?}");
}
