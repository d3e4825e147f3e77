//! The HTTP echo example's answers written out by hand (not derived by the model in
//! `tests/http_echo_harness/pipeline_model.rs`, which they check in turn), for the requests
//! where the contract in `examples/http_echo/main.rs` is easiest to misread: bodies of
//! length 0 and empty chunked bodies, field values with tabs, empty or repeated, obs-text
//! and obs-fold, framing and `Connection` tokens in any case, and `100 Continue`. Each
//! pipeline goes whole, a byte per write, and cut at random (seeded) places.

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
#[path = "http_echo_harness/pipeline_answers.rs"]
mod pipeline_answers;
#[allow(dead_code)]
#[path = "http_echo_harness/pipeline_client.rs"]
mod pipeline_client;
#[allow(dead_code)]
#[path = "http_echo_harness/pipeline_model.rs"]
mod pipeline_model;
#[allow(dead_code)]
#[path = "http_echo_harness/pipeline_requests.rs"]
mod pipeline_requests;
#[allow(dead_code)]
#[path = "../examples/http_echo/request.rs"]
mod request;
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use http_echo_harness::with_server;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use pipeline_answers::Checker;
use pipeline_client::{exchange, pieces, End};
use pipeline_model::{body_due, head_due, Due};
use request::Limits;
use support::{settle, within, Rng};

/// A hang guard only: every exchange here ends as soon as the server has answered.
const HANG: Duration = Duration::from_secs(60);

/// Sends `wire` on fresh connections, whole, a byte per write, and cut at random places
/// (three seeds), each time half-closing and then probing; the answers must be `due()`.
async fn each_way(addr: SocketAddr, wire: &[u8], due: impl Fn() -> Vec<Due>) {
    let mut ways = vec![("whole", vec![(wire.to_vec(), 0)])];
    let mut rng = Rng(0x0dd4_ead0);
    let every: Vec<usize> = (1..wire.len()).collect();
    ways.push(("a byte per write", pieces(&mut rng, wire, &every)));
    for seed in [1u64, 2, 3] {
        let mut rng = Rng(0x0dd4_ead0_0000 + seed);
        let mut cuts: Vec<usize> = (0..8).map(|_| 1 + rng.below(wire.len() - 1)).collect();
        cuts.sort_unstable();
        cuts.dedup();
        ways.push(("cut at random", pieces(&mut rng, wire, &cuts)));
    }
    for (way, sent) in &ways {
        for end in [End::HalfClose, End::Probe] {
            let stream = TcpStream::connect(addr).await.unwrap();
            let what = format!("{way}, {end:?}: no end to the exchange");
            let done = within(HANG, exchange(stream, sent, due(), end, 64 << 10), &what).await;
            if let Err(e) = done {
                let cuts: Vec<usize> = sent.iter().map(|(p, _)| p.len()).collect();
                panic!("{way} (pieces of {cuts:?}), {end:?}: {e}");
            }
        }
    }
}

/// The head of `req` up to its last field line's end (what a body-less request gets back).
fn head(req: &[u8]) -> &[u8] {
    &req[..req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2]
}

/// `Content-Length: 0` (however spelled, with a `Content-Type`, an `Expect`, on a HEAD, on
/// HTTP/1.0) is no body: the head comes back as text. An empty chunked body is a body: it
/// comes back empty, with its own `Content-Type`. After `Connection: close`, nothing.
#[test]
fn content_length_zero_and_empty_chunked_bodies_are_answered_as_documented() {
    const REQS: [&[u8]; 8] = [
        b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n",
        b"PUT /b HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        b"HEAD /c HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        b"POST /d HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: a/b\r\n\r\n0\r\n\r\n",
        b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length:000\r\n\r\n",
        b"POST /f HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        b"DELETE /g HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    let due = || {
        vec![
            head_due("POST", head(REQS[0]), None),
            head_due("PUT", head(REQS[1]), None),
            head_due("HEAD", head(REQS[2]), None),
            body_due(b"", "a/b", None),
            head_due(
                "POST",
                b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 000\r\n",
                None,
            ),
            head_due("POST", head(REQS[5]), Some("keep-alive")),
            head_due("DELETE", head(REQS[6]), Some("close")),
        ]
    };
    with_server(Limits::default(), |addr| async move {
        each_way(addr, &REQS.concat(), due).await;
    });
}

/// Field values lose the spaces and tabs around them and keep those inside; empty values
/// come back empty; repeated names (in any case) come back each in its place; a value
/// with obs-text comes back byte for byte, labelled without a charset. An obs-fold is
/// malformed: a 400 after the answers before it, then nothing.
#[test]
fn odd_but_valid_heads_are_echoed_field_for_field_and_an_obs_fold_is_refused() {
    const ODD: &[u8] = b"GET /t HTTP/1.1\r\nHost: t\r\nX-Tabs:\t\tv w\t \r\nX-Empty:\r\n\
        X-Blank:   \t\r\nAccept: a\r\naccept:b\r\nACCEPT:  c\r\nX-Inner: a\tb  c\r\n\r\n";
    const ODD_ECHO: &[u8] = b"GET /t HTTP/1.1\r\nHost: t\r\nX-Tabs: v w\r\nX-Empty: \r\n\
        X-Blank: \r\nAccept: a\r\naccept: b\r\nACCEPT: c\r\nX-Inner: a\tb  c\r\n";
    const OBS: &[u8] = b"HEAD /o HTTP/1.1\r\nHost: t\r\nX-Obs: caf\xe9\xff\r\n\r\n\
        OPTIONS * HTTP/1.1\r\nHost: t\r\nX-Obs: caf\xe9\xff\r\n\r\n";
    const OBS_ECHO: &[u8] = b"OPTIONS * HTTP/1.1\r\nHost: t\r\nX-Obs: caf\xe9\xff\r\n";
    let obs_due = |method| match method {
        "HEAD" => Due::Echo {
            head_only: true,
            length: OBS_ECHO.len() - "OPTIONS".len() + "GET".len() + 1,
            body: Vec::new(),
            content_type: b"text/plain".to_vec(),
            connection: None,
            may_continue: false,
        },
        _ => head_due("OPTIONS", OBS_ECHO, None),
    };
    with_server(Limits::default(), |addr| async move {
        let wire = [ODD, OBS, b"GET /f HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n b\r\n\r\nGET /no HTTP/1.1\r\nHost: t\r\n\r\n"].concat();
        let due = || {
            vec![
                head_due("GET", ODD_ECHO, None),
                obs_due("HEAD"),
                obs_due("OPTIONS"),
                Due::Refused {
                    status: 400,
                    head_only: false,
                },
            ]
        };
        each_way(addr, &wire, due).await;
        // A HEAD's refusal has its length, and no body.
        let wire = [
            ODD,
            b"HEAD /f HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n\tb\r\n\r\n",
        ]
        .concat();
        let due = || {
            vec![
                head_due("GET", ODD_ECHO, None),
                Due::Refused {
                    status: 400,
                    head_only: true,
                },
            ]
        };
        each_way(addr, &wire, due).await;
    });
}

/// `Transfer-Encoding` and `Connection` tokens are read whatever their case and place in a
/// list: `Chunked`, `CHUNKED`; `Keep-Alive` on HTTP/1.0; `close` wins over `keep-alive`
/// in one field or in two, in either order; `closed` is not `close`.
#[test]
fn framing_and_connection_tokens_are_read_in_any_case() {
    const KEPT: &[u8] = b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
        POST /d HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:CHUNKED\r\nContent-Type: x/y\r\n\r\n1;A=B\r\nz\r\n0\r\n\r\n\
        GET /e HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n\
        GET /f HTTP/1.1\r\nHost: t\r\nConnection: KEEP-ALIVE\r\n\r\n\
        GET /g HTTP/1.1\r\nHost: t\r\nConnection: closed, upgrade\r\n\r\n";
    let kept = || {
        vec![
            body_due(b"abc", "application/octet-stream", None),
            body_due(b"z", "x/y", None),
            head_due(
                "GET",
                b"GET /e HTTP/1.0\r\nConnection: Keep-Alive\r\n",
                Some("keep-alive"),
            ),
            head_due(
                "GET",
                b"GET /f HTTP/1.1\r\nHost: t\r\nConnection: KEEP-ALIVE\r\n",
                None,
            ),
            head_due(
                "GET",
                b"GET /g HTTP/1.1\r\nHost: t\r\nConnection: closed, upgrade\r\n",
                None,
            ),
        ]
    };
    with_server(Limits::default(), |addr| async move {
        each_way(addr, KEPT, kept).await;
        for closing in [
            &b"GET /h HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\nConnection: Close\r\n\r\n"[..],
            b"GET /i HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n",
            b"GET /j HTTP/1.0\r\nConnection: CLOSE, keep-alive\r\n\r\n",
            b"GET /k HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
            b"GET /l HTTP/1.0\r\nConnection: upgrade\r\n\r\n",
        ] {
            let wire = [closing, b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n"].concat();
            let method = "GET";
            each_way(addr, &wire, || {
                vec![head_due(method, head(closing), Some("close"))]
            })
            .await;
        }
    });
}

/// A client on one connection that sends, then reads until the answers it waits for came.
struct Stepper {
    stream: TcpStream,
    checker: Checker,
}

impl Stepper {
    async fn send(&mut self, bytes: &[u8], due: Vec<Due>) {
        for d in due {
            self.checker.expect(d);
        }
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads until `done` holds of what came.
    async fn until(&mut self, done: impl Fn(&Checker) -> bool, what: &str) {
        let read = async {
            let mut buf = [0u8; 4096];
            while !done(&self.checker) {
                let n = self.stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "{what}: closed");
                if let Err(e) = self.checker.feed(&buf[..n]) {
                    panic!("{what}: {e}");
                }
            }
        };
        within(HANG, read, what).await;
    }
}

/// The echo of `body`, which a `100 Continue` may come before.
fn expecting(body: &[u8]) -> Due {
    Due::Echo {
        head_only: false,
        length: body.len(),
        body: body.to_vec(),
        content_type: b"application/octet-stream".to_vec(),
        connection: None,
        may_continue: true,
    }
}

/// `100 Continue` comes once, after the answers before, when a body is awaited (sized or
/// chunked), and only then: not for a request with no body or `Content-Length: 0`, nor on
/// HTTP/1.0, which must ignore the expectation (RFC 9110 §10.1.1).
#[test]
fn expect_100_continue_comes_once_and_only_where_due() {
    with_server(Limits::default(), |addr| async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut c = Stepper {
            stream,
            checker: Checker::new(Vec::new()),
        };
        const GET: &[u8] = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n";
        let post =
            b"POST /b HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
        c.send(
            &[GET, post].concat(),
            vec![head_due("GET", head(GET), None), expecting(b"hello")],
        )
        .await;
        c.until(|c| c.continued(), "the 100 Continue for a sized body")
            .await;
        c.send(b"hello", Vec::new()).await;
        c.until(Checker::done, "the echo of the sized body").await;
        let put = b"PUT /c HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n";
        c.send(put, vec![expecting(b"hello")]).await;
        c.until(|c| c.continued(), "the 100 Continue for a chunked body")
            .await;
        c.send(b"5\r\nhello\r\n0\r\n\r\n", Vec::new()).await;
        c.until(Checker::done, "the echo of the chunked body").await;
        // No body to wait for: answered at once, without a 100 first.
        for req in [
            &b"GET /d HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n"[..],
            b"PUT /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        ] {
            let method = std::str::from_utf8(&req[..3]).unwrap();
            c.send(req, vec![head_due(method, head(req), None)]).await;
            c.until(Checker::done, "the echo of a head expecting 100")
                .await;
        }
        // HTTP/1.0: the server reads the head alone and waits for the body without a 100.
        let old = b"POST /f HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        c.send(
            old,
            vec![body_due(
                b"abc",
                "application/octet-stream",
                Some("keep-alive"),
            )],
        )
        .await;
        settle().await;
        c.send(b"abc", Vec::new()).await;
        c.until(Checker::done, "the echo of an HTTP/1.0 body").await;
        // The body right behind its head: a 100 may come or not, but once at most.
        let post =
            b"POST /g HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi";
        c.send(post, vec![expecting(b"hi")]).await;
        c.until(Checker::done, "the echo of a body sent with its head")
            .await;
        let last = b"GET /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        c.send(last, vec![head_due("GET", head(last), Some("close"))])
            .await;
        c.until(Checker::done, "the last answer").await;
        let mut rest = Vec::new();
        c.stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"", "more after the close");
    });
}

/// A GET head of exactly `len` bytes, padded with a field.
fn head_of(len: usize) -> Vec<u8> {
    let start = b"GET /pad HTTP/1.1\r\nHost: t\r\nX-Pad: ";
    let pad = len - start.len() - 4;
    [&start[..], &vec![b'p'; pad], b"\r\n\r\n"].concat()
}

/// The empty lines a server ignores before a request line (RFC 9112 §2.2; some clients end
/// a body with one) are no part of the head: a head at the 16 KiB limit after them is
/// served as it is without them, and one a byte over it is a 431 either way. They are
/// dropped as they come: a request after 64 KiB of them is served too.
#[test]
fn empty_lines_before_a_head_at_the_limit_do_not_count_against_it() {
    let max = Limits::default().max_head;
    let post = b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi";
    let at_limit = head_of(max);
    let echo = at_limit[..at_limit.len() - 2].to_vec();
    with_server(Limits::default(), |addr| async move {
        for empty in [&b""[..], b"\r\n", b"\r\n\n\r\n"] {
            let wire = [&post[..], empty, &at_limit].concat();
            let due = || {
                vec![
                    body_due(b"hi", "application/octet-stream", None),
                    head_due("GET", &echo, None),
                ]
            };
            each_way(addr, &wire, due).await;
            let wire = [&post[..], empty, &head_of(max + 1)].concat();
            let due = || {
                vec![
                    body_due(b"hi", "application/octet-stream", None),
                    Due::Refused {
                        status: 431,
                        head_only: false,
                    },
                ]
            };
            each_way(addr, &wire, due).await;
        }
        let flood = [&b"\r\n".repeat(32 << 10)[..], &at_limit].concat();
        let mut rng = Rng(0xf100d);
        let cuts: Vec<usize> = (1..flood.len()).step_by(4093).collect();
        let stream = TcpStream::connect(addr).await.unwrap();
        let due = vec![head_due("GET", &echo, None)];
        let sent = pieces(&mut rng, &flood, &cuts);
        let done = exchange(stream, &sent, due, End::Probe, 64 << 10);
        within(HANG, done, "no end after the flood").await.unwrap();
    });
}
