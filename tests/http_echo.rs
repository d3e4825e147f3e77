//! The HTTP/1.1 echo example (`examples/http_echo`), served on loopback port 0 and driven by
//! raw requests over real sockets, and by curl when it is installed (CI installs it).

#[allow(dead_code)]
#[path = "../examples/http_echo/conn.rs"]
mod conn;
#[path = "../examples/http_echo/date.rs"]
mod date;
#[allow(dead_code)]
mod http_echo_harness;
#[allow(dead_code)]
#[path = "../examples/http_echo/memory.rs"]
mod memory;
#[allow(dead_code)]
#[path = "../examples/http_echo/request.rs"]
mod request;
mod support;

use std::time::Duration;

use http_echo_harness::{one_request, with_server, Client};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use request::Limits;
use support::Rng;

#[test]
fn get_is_answered_with_its_own_head() {
    with_server(Limits::default(), |addr| async move {
        let r = one_request(
            addr,
            b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nX-Y: z\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(r.body, b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nX-Y: z\r\n");
    });
}

#[test]
fn a_body_comes_back_byte_for_byte() {
    with_server(Limits::default(), |addr| async move {
        let body: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
        let mut c = Client::connect(addr).await;
        let head = format!(
            "POST /up HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-test\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        c.send(head.as_bytes()).await;
        c.send(&body).await;
        let r = c.response(false).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/x-test"));
        assert!(r.body == body, "echoed body differs");
    });
}

#[test]
fn chunked_body_is_decoded_even_when_it_trickles_in() {
    with_server(Limits::default(), |addr| async move {
        let req: &[u8] = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let mut c = Client::connect(addr).await;
        for piece in req.chunks(3) {
            c.send(piece).await;
            overlap::time::sleep(Duration::from_micros(200)).await;
        }
        let r = c.response(false).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello world");
        assert_eq!(r.header("content-length"), Some("11"));
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    with_server(Limits::default(), |addr| async move {
        let mut c = Client::connect(addr).await;
        let mut batch = Vec::new();
        for i in 0..20 {
            let req = format!("POST /{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{i:02}");
            batch.extend_from_slice(req.as_bytes());
        }
        c.send(&batch).await;
        for i in 0..20 {
            let r = c.response(false).await;
            assert_eq!(r.body, format!("{i:02}").as_bytes());
        }
    });
}

#[test]
fn keep_alive_until_the_client_asks_to_close() {
    with_server(Limits::default(), |addr| async move {
        let mut c = Client::connect(addr).await;
        for _ in 0..3 {
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
            let r = c.response(false).await;
            assert_eq!((r.status, r.header("connection")), (200, None));
        }
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await;
        let r = c.response(false).await;
        assert_eq!(r.header("connection"), Some("close"));
        c.expect_eof().await;
    });
}

#[test]
fn http_1_0_closes_unless_kept_alive() {
    with_server(Limits::default(), |addr| async move {
        let mut c = Client::connect(addr).await;
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await;
        let r = c.response(false).await;
        assert_eq!(r.header("connection"), Some("keep-alive"));
        c.send(b"GET / HTTP/1.0\r\n\r\n").await;
        let r = c.response(false).await;
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        c.expect_eof().await;
        // `close` wins, whatever the order of the tokens.
        let mut c = Client::connect(addr).await;
        c.send(b"GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n")
            .await;
        let r = c.response(false).await;
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        c.expect_eof().await;
    });
}

#[test]
fn head_gets_headers_only() {
    with_server(Limits::default(), |addr| async move {
        let mut c = Client::connect(addr).await;
        c.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /y HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        let r = c.response(true).await;
        assert_eq!(r.status, 200);
        // The length a GET would get (RFC 9110 §9.3.2), whose echo says GET.
        let expected = b"GET /x HTTP/1.1\r\nHost: t\r\n".len().to_string();
        assert_eq!(r.header("content-length"), Some(expected.as_str()));
        // Had a body followed, this would parse it as the next response and fail.
        let r = c.response(false).await;
        assert!(r.body.starts_with(b"GET /y "));
        // A refused HEAD request's answer has no body either, only its length.
        let mut c = Client::connect(addr).await;
        c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .await;
        let r = c.response(true).await;
        assert_eq!(r.status, 400);
        assert!(r.header("content-length").is_some_and(|n| n != "0"));
        c.expect_eof().await;
        // Likewise for a HEAD refused while its head is read.
        for (req, status) in [
            (
                &b"HEAD / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n"[..],
                417,
            ),
            (b"HEAD / HTTP/1.1\r\n\r\n", 400),
            (
                b"\r\nHEAD / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
                400,
            ),
        ] {
            let mut c = Client::connect(addr).await;
            c.send(req).await;
            let r = c.response(true).await;
            assert_eq!(r.status, status);
            c.expect_eof().await;
        }
    });
}

/// An empty line may come before a request line (RFC 9112 §2.2): arriving in a read of its
/// own, it must not keep a malformed request line that follows from being refused at once
/// (400, not the 408 a head that never ends gets).
#[test]
fn a_bad_request_line_after_an_empty_line_is_refused_at_once() {
    with_server(Limits::default(), |addr| async move {
        let mut c = Client::connect(addr).await;
        c.send(b"\r\n").await;
        overlap::time::sleep(Duration::from_millis(50)).await;
        c.send(b"G\x01T / HTTP/1.1\r\n").await;
        assert_eq!(c.response(false).await.status, 400);
    });
}

#[test]
fn expect_100_continue_is_honoured() {
    with_server(Limits::default(), |addr| async move {
        let mut c = Client::connect(addr).await;
        c.send(b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
            .await;
        assert_eq!(c.response(false).await.status, 100);
        c.send(b"hello").await;
        let r = c.response(false).await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    });
}

#[test]
fn bad_requests_get_a_4xx_or_5xx_and_the_server_keeps_serving() {
    let long_header = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(20_000));
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: t\r\n{}\r\n",
        "X: y\r\n".repeat(100)
    );
    let cases: Vec<(&[u8], u16)> = vec![
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n", 413),
        (b"GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n", 417),
        (long_header.as_bytes(), 431),
        (many_headers.as_bytes(), 431),
        // A chunk-size line with no digit is no last chunk (what follows would become a
        // request of its own).
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\r\n\r\n", 400),
        (long_uri.as_bytes(), 414),
        // RFC 9112 §6.3: chunked not last (or not there, or twice) cannot be framed: 400;
        // a coding before it that is not known: 501.
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        // A 2xx to CONNECT would make the connection a tunnel (RFC 9110 §9.3.6).
        (b"CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n", 501),
    ];
    with_server(Limits::default(), |addr| async move {
        for (req, status) in cases {
            let mut c = Client::connect(addr).await;
            c.send(req).await;
            let r = c.response(false).await;
            let shown = String::from_utf8_lossy(&req[..req.len().min(60)]).into_owned();
            assert_eq!(r.status, status, "for {shown:?}");
            assert_eq!(r.header("connection"), Some("close"));
            assert!(!r.body.is_empty(), "the answer says what was wrong");
            c.expect_eof().await;
        }
        let r = one_request(addr, b"GET /still-up HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(r.status, 200);
    });
}

/// RFC 9112 §2.3: `HTTP-version = "HTTP" "/" DIGIT "." DIGIT`, its name case-sensitive.
/// One of that form other than 1.0 and 1.1 is a version the server does not serve (505,
/// RFC 9110 §15.6.6); anything else in its place leaves the request line invalid, which
/// is a 400 (RFC 9112 §3): a PROXY protocol line, or a lowercase name, is no HTTP version
/// at all. (httparse reports both alike; they were all a 505.)
#[test]
fn only_a_well_formed_version_other_than_1_x_is_a_505() {
    let cases: Vec<(&[u8], u16)> = vec![
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505),
        (b"GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
        (b"GET / http/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET / HTTP/2\r\nHost: t\r\n\r\n", 400),
        (b"GET / HTTP/1.x\r\nHost: t\r\n\r\n", 400),
        (b"GET / FTP/1.1\r\nHost: t\r\n\r\n", 400),
        (b"GET / X\r\nHost: t\r\n\r\n", 400),
        // An unencoded space in the target: the version's place holds the rest of it.
        (b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        (
            b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 80\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n",
            400,
        ),
        (b"\r\nGET / HTTP/1.1/\r\nHost: t\r\n\r\n", 400),
    ];
    with_server(Limits::default(), |addr| async move {
        for (req, status) in cases {
            let mut c = Client::connect(addr).await;
            c.send(req).await;
            let r = c.response(false).await;
            let shown = String::from_utf8_lossy(req).into_owned();
            assert_eq!(
                r.status,
                status,
                "for {shown:?}: {:?}",
                String::from_utf8_lossy(&r.body)
            );
            assert_eq!(r.header("connection"), Some("close"));
            c.expect_eof().await;
        }
        let r = one_request(addr, b"GET /still-up HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(r.status, 200);
    });
}

/// The empty lines a server ignores before a request line (RFC 9112 §2.2: some clients end
/// a body with an extra CRLF) are no part of it: a request line too long after them is a
/// 414 as it is without them, not a 431 for a line ended by the first CRLF.
#[test]
fn a_request_line_too_long_after_empty_lines_is_a_414() {
    with_server(Limits::default(), |addr| async move {
        let mut c = Client::connect(addr).await;
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\r\n")
            .await;
        assert_eq!(c.response(false).await.body, b"hi");
        let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(20_000));
        c.send(long.as_bytes()).await;
        let r = c.response(false).await;
        assert_eq!(r.status, 414, "{:?}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("connection"), Some("close"));
        c.expect_eof().await;
    });
}

fn short_timeouts() -> Limits {
    Limits {
        head_timeout: Duration::from_millis(150),
        body_timeout: Duration::from_millis(150),
        idle_timeout: Duration::from_millis(150),
        write_timeout: Duration::from_millis(150),
        ..Limits::default()
    }
}

#[test]
fn a_head_or_body_that_stalls_gets_408() {
    with_server(short_timeouts(), |addr| async move {
        // A slow drip of the head: each piece arrives in time, the whole head does not.
        let mut c = Client::connect(addr).await;
        for piece in [&b"GET / HT"[..], b"TP/1.1\r\n", b"Host: t\r\n"] {
            c.send(piece).await;
            overlap::time::sleep(Duration::from_millis(60)).await;
        }
        assert_eq!(c.response(false).await.status, 408);
        c.expect_eof().await;

        let mut c = Client::connect(addr).await;
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            .await;
        assert_eq!(c.response(false).await.status, 408);
        c.expect_eof().await;
    });
}

#[test]
fn an_idle_connection_is_closed_quietly() {
    with_server(short_timeouts(), |addr| async move {
        let mut c = Client::connect(addr).await;
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(c.response(false).await.status, 200);
        c.expect_eof().await;
    });
}

/// Empty lines start no request: a client dripping CRLFs between requests is still idle,
/// and closed when its idle time is up (each CRLF used to start the idle time again).
#[test]
fn empty_lines_do_not_keep_an_idle_connection_open() {
    with_server(short_timeouts(), |addr| async move {
        let mut c = overlap::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        assert!(c.read(&mut buf).await.unwrap() > 0);
        // A CRLF every 50 ms, for at most 3 s (20 idle times).
        for _ in 0..60 {
            if c.write_all(b"\r\n").await.is_err() {
                return; // closed, and reset for the late CRLF
            }
            match overlap::time::timeout(Duration::from_millis(50), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return, // closed
                Ok(Ok(n)) => panic!("unexpected answer: {:?}", &buf[..n]),
                Err(_) => {} // still open
            }
        }
        panic!("the connection is still open after 3 s of empty lines");
    });
}

#[test]
fn a_client_gone_mid_body_ends_only_its_own_task() {
    with_server(Limits::default(), |addr| async move {
        let alive = overlap::metrics().tasks_alive;
        {
            let mut c = Client::connect(addr).await;
            c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly this")
                .await;
        }
        // The connection's task notices the EOF and ends.
        wait_for_tasks_alive(alive).await;
        let r = one_request(addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(r.status, 200);
    });
}

/// Waits (up to a second) until the runtime's live tasks are back to `alive`, and asserts it.
async fn wait_for_tasks_alive(alive: u64) {
    for _ in 0..200 {
        if overlap::metrics().tasks_alive == alive {
            break;
        }
        overlap::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(overlap::metrics().tasks_alive, alive);
}

/// Runs curl with `args` (on the blocking pool: it blocks) and returns its stdout, or `None`
/// if curl is not installed.
async fn curl(args: Vec<String>) -> Option<Vec<u8>> {
    overlap::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .ok()?;
        assert!(out.status.success(), "curl {args:?}: {out:?}");
        Some(out.stdout)
    })
    .await
    .unwrap()
}

#[test]
fn curl_gets_its_request_and_its_body_back() {
    with_server(Limits::default(), |addr| async move {
        let url = format!("http://{addr}/via-curl");
        let Some(out) = curl(vec!["-sS".into(), url.clone()]).await else {
            eprintln!("curl not installed: skipped (CI installs it)");
            return;
        };
        assert!(out.starts_with(b"GET /via-curl HTTP/1.1\r\n"), "{out:?}");

        // 3 MiB makes curl send `Expect: 100-continue` and wait for it.
        let dir = std::env::temp_dir().join(format!("overlap-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("body.bin");
        let body: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 253) as u8).collect();
        std::fs::write(&path, &body).unwrap();
        let args = vec![
            "-sS".into(),
            "--data-binary".into(),
            format!("@{}", path.display()),
            "-H".into(),
            "Content-Type: application/x-test".into(),
            url,
        ];
        let out = curl(args).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out == body, "curl got back {} bytes", out.len());
    });
}

/// One random edit of a request: flip, insert, delete, duplicate or truncate bytes.
fn mutate(rng: &mut Rng, mut req: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(3) {
        if req.is_empty() {
            break;
        }
        let at = rng.below(req.len());
        match rng.below(5) {
            0 => {
                let i = at.min(req.len() - 1);
                req[i] ^= 1 << rng.below(8);
            }
            1 => req.insert(at, rng.next() as u8),
            2 => drop(req.drain(at..(at + 1 + rng.below(8)).min(req.len()))),
            3 => {
                let end = (at + 1 + rng.below(16)).min(req.len());
                let piece = req[at..end].to_vec();
                req.splice(at..at, piece);
            }
            _ => req.truncate(at.max(1)),
        }
    }
    req
}

#[test]
fn mangled_requests_never_hang_crash_or_leak_the_server() {
    let seeds: [&[u8]; 3] = [
        b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n",
    ];
    with_server(short_timeouts(), |addr| async move {
        let alive = overlap::metrics().tasks_alive;
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for round in 0..300 {
            let req = mutate(&mut rng, seeds[round % seeds.len()].to_vec());
            let mut c = Client::connect(addr).await;
            c.send(&req).await;
            // No more is coming: a request left incomplete must end in EOF, not a hang.
            c.stream.shutdown(std::net::Shutdown::Write).unwrap();
            let read_all = async { while c.fill().await {} };
            overlap::time::timeout(Duration::from_secs(5), read_all)
                .await
                .unwrap_or_else(|_| panic!("no answer and no close for {req:?}"));
            // Whatever came back is a sequence of well-formed responses.
            let mut rest = &c.buf[..];
            while !rest.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; 32];
                let mut r = httparse::Response::new(&mut headers);
                let httparse::Status::Complete(len) = r.parse(rest).unwrap() else {
                    panic!("truncated response {:?} to {req:?}", c.buf);
                };
                let cl = r.headers.iter().find(|h| h.name == "Content-Length");
                let cl: usize = std::str::from_utf8(cl.unwrap().value)
                    .unwrap()
                    .parse()
                    .unwrap();
                let head_only = req.starts_with(b"HEAD");
                rest = &rest[len + if head_only { 0 } else { cl }..];
            }
        }
        // Every connection's task has ended (so its fd is closed), and the server still serves.
        wait_for_tasks_alive(alive).await;
        let r = one_request(addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
        assert_eq!(r.status, 200);
    });
}
