//! The HTTP echo example against a model of what it must answer to valid requests
//! (`tests/http_echo_harness/pipeline_model.rs`, after the contract in
//! `examples/http_echo/main.rs`): seeded random pipelines of valid requests (bodies by length
//! or chunked with extensions and trailers, HEADs, HTTP/1.0 kept alive, 100-continue, field
//! values with tabs, empty or repeated, tokens in any case), each sent on one connection cut
//! at random bytes, mid-CRLF, mid chunk-size line and between requests, are answered exactly
//! (status, fields, length, body, order) and the connection ends exactly where the model
//! says. Also: a reader taking one byte at a time, a client half-closing at once, an invalid
//! request mid-pipeline, thousands of tiny requests past the 64 KiB hold-back, and one
//! chunked request cut at every byte. A failing case prints its seed and round.

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

use http_echo_harness::{with_server, with_server_sending};
use overlap::net::{TcpSocket, TcpStream};
use pipeline_client::{exchange, pieces, End};
use pipeline_model::{body_due, dues, head_due, shown, Due};
use pipeline_requests::{random_pipeline, random_request, wire_and_cuts};
use request::Limits;
use support::{within, Rng};

/// The seeds every random test runs with: fixed, so a run is reproducible.
const SEEDS: &[u64] = &[
    0x5eed_0000_0001,
    0x5eed_0000_0002,
    0xdead_beef_0003,
    0x0123_4567_89ab_cdef,
    0x7777_0000_0005,
    0x1f2e_3d4c_5b6a_7980,
];

/// A hang guard only: every exchange here ends as soon as the server has answered.
const HANG: Duration = Duration::from_secs(60);

/// Runs one exchange on `stream`, panicking with `case` (seed, round, what was sent) if the
/// answers are not those due, or never end.
async fn run(
    stream: TcpStream,
    sent: &[(Vec<u8>, usize)],
    dues: Vec<Due>,
    end: End,
    read_size: usize,
    case: &str,
) {
    let wire: Vec<u8> = sent.iter().flat_map(|(p, _)| p.clone()).collect();
    let cuts: Vec<usize> = sent
        .iter()
        .scan(0, |at, (p, _)| {
            *at += p.len();
            Some(*at)
        })
        .collect();
    let what = format!("{case}, {end:?}: no end to the exchange");
    if let Err(e) = within(HANG, exchange(stream, sent, dues, end, read_size), &what).await {
        let wire = match wire.len() {
            0..=8192 => shown(&wire),
            n => format!("{n} bytes"),
        };
        panic!("{case}, {end:?}: {e}\nsent: {wire}\ncut after {cuts:?}");
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap()
}

#[test]
fn random_valid_pipelines_cut_anywhere_get_exactly_the_model_answers() {
    with_server(Limits::default(), |addr| async move {
        for &seed in SEEDS {
            let mut rng = Rng(seed);
            for round in 0..40 {
                let n = 1 + rng.below(10);
                let reqs = random_pipeline(&mut rng, n);
                let (wire, cuts) = wire_and_cuts(&mut rng, &reqs);
                let sent = pieces(&mut rng, &wire, &cuts);
                let end = [End::HalfClose, End::Probe][rng.below(2)];
                let case = format!("seed {seed:#x} round {round}");
                run(
                    connect(addr).await,
                    &sent,
                    dues(&reqs),
                    end,
                    64 << 10,
                    &case,
                )
                .await;
            }
        }
    });
}

/// The server's send buffer and the client's receive buffer are a few KiB, and the client
/// reads one byte per read while it pipelines: the server's writes back up at every answer,
/// its hold-back fills, it stops reading; every answer still comes, whole and in order.
#[test]
fn a_reader_taking_one_byte_at_a_time_gets_every_pipelined_answer() {
    with_server_sending(Limits::default(), 1 << 30, Some(4096), |addr| async move {
        for &seed in &SEEDS[..2] {
            let mut rng = Rng(seed ^ 0x0b17e);
            let reqs: Vec<_> = (0..60)
                .map(|i| random_request(&mut rng, i, false))
                .collect();
            let (wire, cuts) = wire_and_cuts(&mut rng, &reqs);
            let sent = pieces(&mut rng, &wire, &cuts);
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            let stream = socket.connect(addr).await.unwrap();
            let case = format!("seed {seed:#x}");
            run(stream, &sent, dues(&reqs), End::HalfClose, 1, &case).await;
        }
    });
}

/// The whole pipeline in one write and the write side shut down right behind it, the last
/// request a POST whose body is past the echo's copy limit (16 KiB) or the uncounted size
/// (64 KiB), or small: the server reads the end of the stream while answers are still held
/// back or being written, and owes them all.
#[test]
fn a_client_half_closing_right_after_its_last_request_gets_every_answer() {
    with_server(Limits::default(), |addr| async move {
        let mut rng = Rng(0x4a1f_c105);
        for round in 0..30 {
            let n = 1 + rng.below(8);
            let reqs: Vec<_> = (0..n).map(|i| random_request(&mut rng, i, false)).collect();
            let len = [17 << 10, 100 << 10, 3][rng.below(3)];
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let last = format!(
                "POST /last HTTP/1.1\r\nHost: t\r\nContent-Type: x/last\r\n\
                 Content-Length: {len}\r\n\r\n"
            );
            let mut wire: Vec<u8> = reqs.iter().flat_map(|r| r.wire.clone()).collect();
            wire.extend_from_slice(last.as_bytes());
            wire.extend_from_slice(&body);
            let mut due = dues(&reqs);
            due.push(body_due(&body, "x/last", None));
            let sent = [(wire, 0)];
            let case = format!("round {round}");
            let stream = connect(addr).await;
            run(stream, &sent, due, End::HalfClose, 64 << 10, &case).await;
        }
    });
}

/// Requests the contract refuses, each with the status it names.
const INVALID: &[(&str, u16)] = &[
    ("GET /no-host HTTP/1.1\r\n\r\n", 400),
    ("HEAD /no-host HTTP/1.1\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
    ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n", 417),
    ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    ("GET / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n b\r\n\r\n", 400),
    ("HEAD / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n\tb\r\n\r\n", 400),
    ("GET / HTTP/1.1\r\nHost: t\r\nX Bad: v\r\n\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nBad Trailer\r\n\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
    ("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999999\r\n\r\n", 413),
    ("CONNECT t:443 HTTP/1.1\r\nHost: t\r\n\r\n", 501),
    ("GET /a#frag HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("GET * HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ("GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400),
];

/// Valid requests, then an invalid one, then more: the answers before it come whole, then
/// exactly one refusal with its status and `Connection: close`, then the close; nothing
/// answers the requests after it.
#[test]
fn an_invalid_request_mid_pipeline_gets_one_refusal_after_the_answers_before_it() {
    with_server(Limits::default(), |addr| async move {
        for &seed in &SEEDS[..3] {
            let mut rng = Rng(seed ^ 0xbad);
            for (i, &(invalid, status)) in INVALID.iter().enumerate() {
                for round in 0..3 {
                    let before: Vec<_> = (0..rng.below(5))
                        .map(|n| random_request(&mut rng, n, false))
                        .collect();
                    let after: Vec<_> = (0..rng.below(3))
                        .map(|n| random_request(&mut rng, 10 + n, false))
                        .collect();
                    let mut due = dues(&before);
                    let head_only = invalid.starts_with("HEAD ");
                    due.push(Due::Refused { status, head_only });
                    let (mut wire, mut cuts) = wire_and_cuts(&mut rng, &before);
                    cuts.push(wire.len());
                    wire.extend_from_slice(invalid.as_bytes());
                    cuts.push(wire.len() - rng.below(invalid.len()));
                    cuts.push(wire.len());
                    for r in &after {
                        wire.extend_from_slice(&r.wire);
                    }
                    cuts.retain(|&c| c > 0 && c < wire.len());
                    cuts.sort_unstable();
                    cuts.dedup();
                    let sent = pieces(&mut rng, &wire, &cuts);
                    let case = format!("seed {seed:#x} invalid {i} round {round}");
                    run(
                        connect(addr).await,
                        &sent,
                        due,
                        End::HalfClose,
                        64 << 10,
                        &case,
                    )
                    .await;
                }
            }
        }
    });
}

/// 5000 tiny requests (GETs, one-byte POSTs, HEADs) pipelined, cut at random: their answers,
/// well past the 64 KiB the server holds back, all come in order, with a roomy send buffer
/// and with one of a few KiB.
#[test]
fn thousands_of_tiny_pipelined_requests_are_answered_in_order_past_the_hold_back() {
    for send_buffer in [None, Some(4096)] {
        with_server_sending(Limits::default(), 1 << 30, send_buffer, |addr| async move {
            let mut rng = Rng(0x7e57_0005);
            let (mut wire, mut due) = (Vec::new(), Vec::new());
            for i in 0..5000 {
                let req = match i % 3 {
                    0 => format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n"),
                    1 => format!(
                        "POST /{i} HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n{}",
                        i % 10
                    ),
                    _ => format!("HEAD /{i} HTTP/1.1\r\nHost: t\r\n\r\n"),
                };
                wire.extend_from_slice(req.as_bytes());
                let head = &req.as_bytes()[..req.find("\r\n\r\n").unwrap() + 2];
                due.push(match i % 3 {
                    0 => head_due("GET", head, None),
                    1 => body_due(
                        format!("{}", i % 10).as_bytes(),
                        "application/octet-stream",
                        None,
                    ),
                    _ => head_due("HEAD", head, None),
                });
            }
            let mut cuts: Vec<usize> = (0..50).map(|_| 1 + rng.below(wire.len() - 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let sent = pieces(&mut rng, &wire, &cuts);
            let case = format!("send buffer {send_buffer:?}");
            run(connect(addr).await, &sent, due, End::Probe, 64 << 10, &case).await;
        });
    }
}

/// One chunked request (sizes in both cases and with leading zeros, extensions with a
/// quoted `;`, whitespace before a `;`, trailers) and a GET behind it, sent in two writes
/// cut at every byte, then in one write per byte.
#[test]
fn a_chunked_body_with_extensions_and_trailers_cut_at_every_byte_is_read_alike() {
    let wire: &[u8] = b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\
        Content-Type: text/x-c\r\n\r\n\
        5;a=b\r\nhello\r\n00A ;q=\"x;y\";z\r\n, chunked!\r\n1\t;t\r\n?\r\n\
        0;end=1\r\nX-Trailer: 1\r\nX-Other:\tv\r\n\r\n\
        GET /next HTTP/1.1\r\nHost: t\r\n\r\n";
    let due = || {
        vec![
            body_due(b"hello, chunked!?", "text/x-c", None),
            head_due("GET", b"GET /next HTTP/1.1\r\nHost: t\r\n", None),
        ]
    };
    with_server(Limits::default(), |addr| async move {
        let mut rng = Rng(0x0c4a_7bed);
        for cut in 1..wire.len() {
            let sent = [(wire[..cut].to_vec(), 3), (wire[cut..].to_vec(), 0)];
            let end = [End::HalfClose, End::Probe][cut % 2];
            run(
                connect(addr).await,
                &sent,
                due(),
                end,
                64 << 10,
                &format!("cut {cut}"),
            )
            .await;
        }
        let every: Vec<usize> = (1..wire.len()).collect();
        let sent = pieces(&mut rng, wire, &every);
        run(
            connect(addr).await,
            &sent,
            due(),
            End::Probe,
            64 << 10,
            "every byte",
        )
        .await;
    });
}
