//! The HTTP echo example (the real binary) against clients that are hostile or merely odd,
//! where the other http_echo tests leave a gap: a request line that cannot be HTTP (a TLS or
//! SSH greeting, binary garbage) is refused as soon as a byte shows it, not when its line
//! end or the head timeout comes; the chunk extensions of one body are bounded in total, not
//! only per line; and clients that connect and send nothing do not keep others out when the
//! server is at its descriptor limit.

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
        Err(e) => panic!(
            "no answer or close in {HANG:?} ({e}); got {:?}",
            String::from_utf8_lossy(&got)
        ),
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

/// `1;` and `n` bytes of extension, then one byte of data: each line under the 4 KiB line
/// limit.
fn chunk_with_extension(n: usize) -> Vec<u8> {
    let mut c = b"1;".to_vec();
    c.extend(std::iter::repeat_n(b'e', n));
    c.extend_from_slice(b"\r\nA\r\n");
    c
}

fn chunked_post(chunks: &[u8]) -> Vec<u8> {
    let mut req = b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    req.extend_from_slice(chunks);
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

/// Chunk extensions are read and ignored, but no longer without bound in total (hyper stops
/// at 16 KiB a body): a line's 4 KiB limit alone let a client make one body byte cost the
/// server a 4 KiB line, 8 MiB of body some 32 GiB of request.
#[test]
fn the_chunk_extensions_of_one_body_are_bounded_in_total() {
    let server = ExampleServer::start("http_echo");
    // 3 KiB of extensions per byte: the eighth chunk goes past 16 KiB.
    let chunks: Vec<u8> = (0..64).flat_map(|_| chunk_with_extension(3000)).collect();
    let mut s = connect(&server);
    // The server may refuse and close before it has read everything.
    let _ = s.write_all(&chunked_post(&chunks));
    let got = read_all(&mut s);
    assert_eq!(status(&got), "400", "{got:?}");
    assert!(got.contains("chunk extensions"), "{got:?}");
    // Under the bound, extensions are still ignored.
    let chunks: Vec<u8> = (0..4).flat_map(|_| chunk_with_extension(3000)).collect();
    let mut s = connect(&server);
    s.write_all(&chunked_post(&chunks)).unwrap();
    let got = read_all(&mut s);
    assert_eq!(status(&got), "200", "{got:?}");
    assert!(got.ends_with("\r\n\r\nAAAA"), "{got:?}");
}

/// The server's open descriptors, from /proc.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Clients that connect and send nothing (or nothing more) hold a descriptor each for the
/// idle timeout (60 s). At the server's descriptor limit, a client waiting to be accepted
/// waited as long; now the connections idle between requests, or before their first, are
/// closed to make room (as nginx reuses its idle connections). One in the middle of a
/// request is not.
#[test]
fn at_the_descriptor_limit_idle_connections_make_room() {
    let server = ExampleServer::start("http_echo");
    let pid = server.child.id();
    let before = fds(pid);
    let mut idle: Vec<TcpStream> = (0..6).map(|_| connect(&server)).collect();
    // One idle after a request, kept alive.
    let mut kept = connect(&server);
    kept.write_all(b"GET /kept HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    // The echoed head ends the answer.
    while !got.ends_with(b"Host: t\r\n") {
        let n = kept.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&buf[..n]);
    }
    idle.push(kept);
    let mut busy = connect(&server);
    busy.write_all(b"GET /busy HTTP/1.1\r\n").unwrap();
    // Every connection accepted, then the limit put where the server stands.
    for _ in 0..400 {
        if fds(pid) == before + idle.len() + 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(fds(pid), before + idle.len() + 1);
    support::set_soft_nofile_of(pid, fds(pid) as u64);

    let mut late = connect(&server);
    late.write_all(b"GET /late HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = read_all(&mut late);
    assert_eq!(status(&got), "200", "{got:?}");
    for mut c in idle {
        assert_eq!(read_all(&mut c), "", "an idle connection got an answer");
    }
    busy.write_all(b"Host: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = read_all(&mut busy);
    assert!(got.contains("GET /busy"), "{got:?}");
}
