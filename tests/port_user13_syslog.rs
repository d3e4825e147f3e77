//! A user's syslog collector (a tiny rsyslog), sketched as one would for tokio with
//! tokio-util's codec, `CancellationToken` and `TaskTracker`, then written for overlap by
//! changing `tokio::` to `overlap::` and `tokio_util::` to `overlap::`: RFC 5424 and
//! RFC 3164 parsing (`port_user13_syslog/parse.rs`), RFC 6587's two TCP framings as a
//! `Decoder` (`codec.rs`), the filters and the rotating file outputs (`outputs.rs`), the
//! forwarder to an upstream (`forward.rs`), the control socket (`control.rs`), the inputs
//! and the shutdown (`server.rs`), and the tests' senders, control client and upstream
//! (`client.rs`); the tests of rotation, forwarding, load, control and shutdown are in
//! `traffic.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use bytes::BytesMut;
//! use tokio::io::AsyncWriteExt;
//! use tokio::net::{TcpListener, UdpSocket, UnixDatagram, UnixListener};
//! use tokio_util::codec::{Decoder, Framed, FramedRead, LinesCodec};
//! use tokio_util::{sync::CancellationToken, task::TaskTracker};
//!
//! // UDP (and, the same, the Unix datagram socket): one message per datagram
//! let mut buf = BytesMut::with_capacity(max + 1);
//! loop {
//!     buf.clear();
//!     tokio::select! {
//!         _ = token.cancelled() => return,
//!         r = socket.recv_buf_from(&mut buf) => if r.is_err() { continue },
//!     }
//!     if buf.len() > max { stats.oversized += 1; continue }
//!     state.accept(Input::Udp, &buf);
//! }
//! // TCP: RFC 6587, octet counting or LF-terminated, told apart by the first byte
//! impl Decoder for SyslogCodec {
//!     type Item = Vec<u8>;
//!     type Error = FrameError;          // From<io::Error>
//!     fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> { .. }
//!     fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, FrameError> { .. }
//! }
//! let mut frames = FramedRead::new(stream, SyslogCodec::new(max));
//! while let Some(frame) = frames.next().await {
//!     match frame { Ok(msg) => state.accept(Input::Tcp, &msg), Err(e) => { note(e); break } }
//! }
//! // a file output: the batch appended on an interval, whole lines, rotating by size
//! let mut file = OpenOptions::new().append(true).create(true).open(&path).await?;
//! let mut part = batch.split_to(cut);
//! file.write_all_buf(&mut part).await?;
//! file.flush().await?;
//! tokio::fs::rename(&path, path.with_extension("log.1")).await?;
//! // the forwarder: bounded queue, drop-oldest, reconnect with backoff
//! wr.write_all_buf(&mut frame).await
//! // the control socket
//! let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(256));
//! // shutdown: the inputs first, then the outputs' last flush
//! inputs.cancel(); input_tasks.close(); timeout(drain, input_tasks.wait()).await;
//! outputs.cancel(); output_tasks.close(); timeout(drain, output_tasks.wait()).await;
//! ```
//!
//! The tests check: 5424 parsing (every header field, `-` as none, structured data with
//! several elements and `\"`, `\\` and `\]` escaped in values, a BOM before the message,
//! a header cut short kept raw) and 3164 (a space-padded day, a tag with and without a
//! pid, no header at all); a bad or missing PRI and arbitrary bytes give a raw record with
//! user.notice, never a panic, and bytes that are not UTF-8 are replaced; the decoder fed
//! both framings split at every byte boundary, several messages a chunk, a CRLF, blank
//! lines and a last line without LF at the end, a frame cut by the end an error; one exact
//! record from each input (UDP, TCP, the Unix datagram socket) in the file; both framings
//! over real TCP connections, several messages in one write and a message written a byte
//! at a time; an oversized frame, an overlong line, a bad length and a first byte that
//! fits neither framing each closing only their connection, counted, while another
//! connection goes on; filters routing by facility, severity and app name to the right
//! files (`port_user13_syslog.rs`); size-based rotation keeping `keep` files, no file over
//! the maximum, every message once across them, and the oldest gone past `keep`; the
//! forwarder down at the start, then up: the queue delivered in order, at most its bound,
//! the oldest dropped and counted; the upstream closing its connection, the next one
//! carrying on; three
//! thousand UDP datagrams from six sockets, all counted and all in the file (the senders
//! paced by what the collector has taken, so loopback drops nothing); control commands
//! (`stats`, `rotate`, `reload` with a good and a bad filters file, unknown, empty and
//! overlong lines, the session going on after each); a shutdown writing every accepted
//! message with a flush interval that never came, and one in the middle of four
//! connections' bursts writing every message it had taken in, once; the same over `::1`; and no fd or task
//! left after a run (`traffic.rs`).
//!
//! What porting it found missing in overlap: tokio's `AsyncWriteExt::write_all_buf` (and
//! `write_buf`). The file outputs write each batch with `file.write_all_buf(&mut part)`,
//! and the forwarder each frame with `wr.write_all_buf(&mut frame)`, as tokio programs
//! holding a `BytesMut` do; overlap had the read side (`read_buf`, `recv_buf_from`) but
//! not this one, and futures' `write_all(&batch)` leaves the buffer as it was, so a write
//! dropped part way (a `select!`, a timeout) cannot tell how much went. It is there now:
//! `overlap::io::AsyncWriteBufExt` with `write_buf` and `write_all_buf` on every
//! futures-io writer, from a `BytesMut`, `VecDeque<u8>`, `Cursor` or `&[u8]`, the buffer advanced
//! past what was written (see `tests/io_write_buf.rs`). Nothing else: `recv_buf_from` on
//! `UdpSocket` and `UnixDatagram`, `UdpSocket::set_recv_buffer_size`, `Decoder` with its
//! `decode_eof`, `FramedRead`, `Framed` with `LinesCodec::new_with_max_length` and
//! `LinesCodecError`, `OpenOptions::append`, `File::metadata`/`sync_all`, `fs::rename`,
//! `fs::read_to_string`, `UnixListener`, `UnixDatagram::unbound`/`send_to`,
//! `CancellationToken`, `TaskTracker`, `oneshot`, `Notify`, `interval` with
//! `MissedTickBehavior::Delay` and `timeout` all have their tokio names and behaved as
//! tokio's would.
//!
//! What the port changed, against tokio: the imports (`bytes::BytesMut` is
//! `overlap::codec::BytesMut`, `futures::{SinkExt, StreamExt}` are `overlap::sink` and
//! `overlap::stream`, `write_all_buf` needs `overlap::io::AsyncWriteBufExt` beside
//! `AsyncWriteExt`); shared state is `Rc` with `Cell`/`RefCell` where tokio's `spawn`
//! needs `Arc` and locks; the forwarder closes its half with `close()` (tokio:
//! `shutdown()`); `BytesMut::freeze` gives a `Vec<u8>` (tokio: `Bytes`), which is what the
//! decoder's frames are anyway. As in the StatsD port, the control session goes on after
//! `MaxLineLengthExceeded`'s one `None`, as it must with tokio-util too.
//!
//! What the port got wrong at first was the user's, and would be in tokio: the file
//! writer flushed on `interval(every)`, whose first tick is at once, and under load that
//! tick came only after the file had opened (a pool job), taking whatever had arrived by
//! then; the shutdown test, which counts on nothing being written before the shutdown,
//! failed once in a run. The writer now starts with `interval_at(now + every, every)`.
//!
//! What the user got right, in both runtimes: the shutdown ends the inputs before the
//! outputs. With one token for all, a TCP connection polled after a file writer's last
//! flush could still route a message into a batch nobody would write: with the outputs
//! ended first, the mid-burst shutdown test lost messages in 16 runs of 20.

mod support;

#[path = "port_user13_syslog/client.rs"]
mod client;
#[path = "port_user13_syslog/codec.rs"]
mod codec;
#[path = "port_user13_syslog/control.rs"]
mod control;
#[path = "port_user13_syslog/forward.rs"]
mod forward;
#[path = "port_user13_syslog/outputs.rs"]
mod outputs;
#[path = "port_user13_syslog/parse.rs"]
mod parse;
#[path = "port_user13_syslog/server.rs"]
mod server;
#[path = "port_user13_syslog/traffic.rs"]
mod traffic;

use std::time::Duration;

use client::{msg5424, send_tcp, send_udp, send_unix, tcp_sender, udp_sender, Rig};
use codec::{octet_frame, FrameError, Framing, SyslogCodec};
use outputs::{FileConfig, Filter};
use overlap::codec::{BytesMut, Decoder};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use parse::{parse, Format, Record, SdElement};
use support::within;

/// A hang guard only.
const HANG: Duration = Duration::from_secs(120);

fn sd(id: &str, params: &[(&str, &str)]) -> SdElement {
    SdElement {
        id: id.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn rfc5424_with_structured_data_and_escapes() {
    let raw = br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Appli\"cation\\" eventID="10\]11"][examplePriority@32473 class="high"] An application event"#;
    assert_eq!(
        parse(raw),
        Record {
            facility: 20,
            severity: 5,
            format: Format::Rfc5424,
            timestamp: Some("2003-10-11T22:14:15.003Z".into()),
            host: Some("mymachine.example.com".into()),
            app: Some("evntslog".into()),
            procid: None,
            msgid: Some("ID47".into()),
            sd: vec![
                sd(
                    "exampleSDID@32473",
                    &[
                        ("iut", "3"),
                        ("eventSource", "Appli\"cation\\"),
                        ("eventID", "10]11")
                    ]
                ),
                sd("examplePriority@32473", &[("class", "high")]),
            ],
            msg: "An application event".into(),
        }
    );
    // All nil, a BOM before the message, no message at all.
    let r = parse(b"<0>1 - - - - - - \xEF\xBB\xBFhello \xE2\x9C\x93");
    assert_eq!((r.facility, r.severity, r.host, r.sd), (0, 0, None, vec![]));
    assert_eq!(r.msg, "hello \u{2713}");
    let r = parse(b"<191>1 - h a 42 - -");
    assert_eq!((r.facility, r.severity), (23, 7));
    assert_eq!((r.procid.as_deref(), r.msg.as_str()), (Some("42"), ""));
    // Cut short, an unclosed element, a bad escape's end: raw, the default priority.
    for bad in [
        &b"<13>1 2003-10-11T22:14:15Z host app"[..],
        b"<13>1 - - - - - [id a=\"x\"",
        b"<13>1 - - - - - [id a=\"x\\\"]",
        b"<13>1 - - - - - [id a=x] m",
        b"<13>1 - - - - - [] m",
        b"<13>1 - - - - - nosd",
    ] {
        let r = parse(bad);
        assert!(r.malformed(), "{:?}", String::from_utf8_lossy(bad));
        assert_eq!((r.facility, r.severity), (1, 5));
        assert_eq!(r.msg.as_bytes(), bad);
    }
}

#[test]
fn rfc3164_and_garbage_never_panic() {
    let r = parse(b"<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed on /dev/pts/8\n");
    assert_eq!(
        (r.facility, r.severity, &r.format),
        (4, 2, &Format::Rfc3164)
    );
    assert_eq!(r.timestamp.as_deref(), Some("Oct 11 22:14:15"));
    assert_eq!(
        (r.host.as_deref(), r.app.as_deref(), r.procid.as_deref()),
        (Some("mymachine"), Some("su"), Some("123"))
    );
    assert_eq!(r.msg, "'su root' failed on /dev/pts/8");
    let r = parse(b"<13>Feb  5 17:32:18 10.0.0.99 myapp: Use the BFG!");
    assert_eq!(r.timestamp.as_deref(), Some("Feb  5 17:32:18"));
    assert_eq!(
        (r.app.as_deref(), r.procid, r.msg.as_str()),
        (Some("myapp"), None, "Use the BFG!")
    );
    // No tag: the content follows the host.
    let r = parse(b"<13>Feb  5 17:32:18 host just words here");
    assert_eq!((r.app, r.msg.as_str()), (None, "just words here"));
    // No header: all of it is the message, the PRI still read.
    let r = parse(b"<30>no header at all");
    assert_eq!(
        (r.facility, r.severity, r.format, r.msg.as_str()),
        (3, 6, Format::Rfc3164, "no header at all")
    );
    // Bad PRIs: raw, user.notice, the bytes kept (not UTF-8 replaced).
    for bad in [
        &b"no pri"[..],
        b"<>x",
        b"<192>x",
        b"<013>x",
        b"<1a>x",
        b"<9999>x",
        b"<13",
        b"",
        b"\xff\xfe<13>x",
    ] {
        let r = parse(bad);
        assert!(r.malformed());
        assert_eq!((r.facility, r.severity), (1, 5));
        assert_eq!(r.msg, String::from_utf8_lossy(bad));
    }
    let r = parse(b"<13>Feb  5 17:32:18 h app: caf\xe9 \xff");
    assert_eq!(r.msg, "caf\u{fffd} \u{fffd}");
    // Whatever the bytes, a record, and a line of one line.
    let mut rng = support::Rng(13);
    let alphabet = b"<>1 -[]=\"\\:0123456789abcxyzJanFeb \n\r\xff";
    for len in 0..3000 {
        let bytes: Vec<u8> = (0..len % 120)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let line = parse(&bytes).line();
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
    }
}

/// Decodes `chunks` one after another as reads would bring them, then the end.
fn decode_all(max: usize, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<FrameError>, Framing) {
    let mut codec = SyslogCodec::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(e) => return (out, Some(e), codec.framing()),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return (out, None, codec.framing()),
            Err(e) => return (out, Some(e), codec.framing()),
        }
    }
}

#[test]
fn the_decoder_takes_both_framings_split_at_every_byte() {
    let msgs: [&[u8]; 4] = [
        b"<13>1 - h a - - - one",
        b"<14>two has a space",
        b"<15>",
        b"<13>x\ny",
    ];
    let mut octets = Vec::new();
    for m in msgs {
        octets.extend(octet_frame(m));
    }
    let lf = b"<13>1 - h a - - - one\n\n<14>two\r\n<15>three\n<16>last without LF".to_vec();
    let lf_expected: [&[u8]; 4] = [
        b"<13>1 - h a - - - one",
        b"<14>two",
        b"<15>three",
        b"<16>last without LF",
    ];
    for (stream, expected, framing) in [
        (&octets, &msgs[..], Framing::OctetCounting),
        (&lf, &lf_expected[..], Framing::NonTransparent),
    ] {
        for cut in 0..=stream.len() {
            let (frames, err, seen) = decode_all(64, &[&stream[..cut], &stream[cut..]]);
            assert!(err.is_none(), "cut at {cut}: {err:?}");
            assert_eq!(seen, framing);
            assert_eq!(frames, expected, "cut at {cut}");
        }
        // A byte at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_all(64, &bytes).0, expected);
    }
    // The maximum: exactly it passes, one more is an error, in either framing, however
    // the bytes come (the length alone is enough to refuse an octet-counted frame).
    let fit = octet_frame(&[b'a'; 64]);
    assert_eq!(decode_all(64, &[&fit]).0.len(), 1);
    let (_, err, _) = decode_all(64, &[b"65 "]);
    assert!(
        matches!(err, Some(FrameError::TooLong { len: 65, max: 64 })),
        "{err:?}"
    );
    let mut line = vec![b'<'];
    line.extend([b'x'; 64]);
    let (_, err, _) = decode_all(64, &[&line[..40], &line[40..]]);
    assert!(matches!(err, Some(FrameError::TooLong { .. })), "{err:?}");
    // Garbage: a first byte of neither framing, a bad or overlong length, a frame cut by
    // the end, a line after octet counting began.
    for bad in [
        &b"hello\n"[..],
        b"1x2 abc",
        b"0 ",
        b"1234567 x",
        b"10 short",
        b"3 abc<13>x\n",
    ] {
        let (_, err, _) = decode_all(64, &[bad]);
        assert!(
            matches!(err, Some(FrameError::Garbage(_) | FrameError::Truncated)),
            "{:?}: {err:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[overlap::test]
async fn one_exact_record_from_each_input() {
    within(
        HANG,
        async {
            let rig = Rig::start(|_, _| {}).await;
            let udp = udp_sender(rig.server.udp).await;
            send_udp(
                &udp,
                "<134>1 2026-12-04T10:00:00Z web nginx 77 ACC - via udp",
            )
            .await;
            rig.received(1).await;
            let mut tcp = tcp_sender(rig.server.tcp).await;
            send_tcp(
                &mut tcp,
                octet_frame(b"<11>Dec  4 10:00:00 db postgres[9]: via tcp"),
            )
            .await;
            rig.received(2).await;
            send_unix(
                &rig.config().unix,
                "<38>Dec  4 10:00:01 local sshd[1]: via unix\n",
            )
            .await;
            rig.received(3).await;
            rig.written("all", 3).await;
            assert_eq!(
                client::file_lines(&rig.dir.join("all.log")).await,
                [
                    "16.6 web nginx: via udp",
                    "1.3 db postgres: via tcp",
                    "4.6 local sshd: via unix",
                ]
            );
            let s = rig.server.stats();
            assert_eq!(
                (s.udp.get(), s.tcp.get(), s.unix.get(), s.malformed.get()),
                (1, 1, 1, 0)
            );
            assert!(rig.server.shutdown().await);
            assert!(!rig.config().unix.exists(), "the socket's path removed");
        },
        "each input",
    )
    .await;
}

#[overlap::test]
async fn tcp_takes_both_framings_in_one_write_and_byte_by_byte() {
    within(
        HANG,
        async {
            let rig = Rig::start(|_, _| {}).await;
            let mut octets = tcp_sender(rig.server.tcp).await;
            let mut lines = tcp_sender(rig.server.tcp).await;
            let mut batch = Vec::new();
            for i in 0..5 {
                batch.extend(octet_frame(
                    msg5424(1, 5, "oc", &format!("o{i}\nwith LF")).as_bytes(),
                ));
            }
            send_tcp(&mut octets, &batch).await;
            let text = "<13>Dec  4 10:00:00 h lf: l0\n<13>Dec  4 10:00:00 h lf: l1\r\n\n";
            send_tcp(&mut lines, text).await;
            rig.received(7).await;
            // One message a byte at a time, each its own segment (`TCP_NODELAY`): the
            // collector's reads take them as they come (the decoder test above splits a
            // stream at every byte without leaving it to the kernel).
            let one = octet_frame(msg5424(1, 5, "oc", "bytewise").as_bytes());
            for b in one.chunks(1) {
                send_tcp(&mut octets, b).await;
            }
            send_tcp(&mut lines, "<13>Dec  4 10:00:00 h lf: last, no LF").await;
            drop(lines);
            rig.received(9).await;
            rig.written("all", 9).await;
            let mut got = rig.messages("all.log").await;
            got.sort();
            let mut want: Vec<String> = (0..5).map(|i| format!("o{i}\\nwith LF")).collect();
            want.extend(["l0", "l1", "bytewise", "last, no LF"].map(String::from));
            want.sort();
            assert_eq!(got, want);
            assert_eq!(rig.server.stats().frame_errors.get(), 0);
            assert!(rig.server.shutdown().await);
        },
        "the framings",
    )
    .await;
}

/// Reads until the collector closes the connection: whether it did (rather than reset).
async fn closed_by_collector(s: &mut overlap::net::TcpStream) -> bool {
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf).await, Ok(0) | Err(_))
}

#[overlap::test]
async fn a_bad_frame_closes_only_its_connection() {
    within(
        HANG,
        async {
            let rig = Rig::start(|c, _| c.max_message = 100).await;
            let mut good = tcp_sender(rig.server.tcp).await;
            send_tcp(&mut good, octet_frame(b"<13>good 1")).await;
            rig.received(1).await;
            let overlong = format!("<13>an overlong line without its end{}", ".".repeat(70));
            let cases: [&[u8]; 5] = [
                b"101 ",
                overlong.as_bytes(),
                b"12x <13>bad length",
                b"GET / HTTP/1.1\r\n",
                // One good frame, then the end inside the next (this one sends its end).
                b"5 <13>a3 <1",
            ];
            for (n, case) in cases.iter().enumerate() {
                let mut bad = tcp_sender(rig.server.tcp).await;
                send_tcp(&mut bad, case).await;
                if n == 4 {
                    bad.close().await.unwrap();
                }
                assert!(closed_by_collector(&mut bad).await, "case {n}");
                let errors = rig.server.stats().frame_errors.get();
                assert_eq!(errors, n as u64 + 1);
            }
            let last = rig.server.stats().last_frame_error.borrow().clone();
            assert_eq!(last, "connection ended inside a frame");
            // The good connection goes on; the one message before the bad bytes counted.
            send_tcp(&mut good, octet_frame(b"<13>good 2")).await;
            rig.received(3).await;
            rig.written("all", 3).await;
            assert_eq!(rig.messages("all.log").await.len(), 3);
            assert!(rig.server.shutdown().await);
            assert!(closed_by_collector(&mut good).await);
        },
        "bad frames",
    )
    .await;
}

#[overlap::test]
async fn filters_route_to_the_right_files() {
    within(
        HANG,
        async {
            let rig = Rig::start(|c, dir| {
                let file = |name: &str, filter: &str| FileConfig {
                    name: name.into(),
                    path: dir.join(format!("{name}.log")),
                    filter: Filter::parse(filter).unwrap(),
                    max_bytes: 1 << 20,
                    keep: 2,
                };
                c.files = vec![
                    file("auth", "facility=4,10"),
                    file("errors", "severity<=3"),
                    file("nginx", "app=nginx severity<=6"),
                    file("all", "*"),
                ];
            })
            .await;
            let udp = udp_sender(rig.server.udp).await;
            let sent = [
                (4, 6, "sshd", "auth info"),
                (10, 2, "sudo", "authpriv crit"),
                (1, 3, "nginx", "nginx error"),
                (1, 7, "nginx", "nginx debug"),
                (16, 6, "nginx", "nginx info"),
                (3, 5, "cron", "daemon notice"),
            ];
            for (f, s, app, m) in sent {
                send_udp(&udp, msg5424(f, s, app, m)).await;
            }
            send_udp(&udp, "garbage without a pri").await;
            rig.received(7).await;
            rig.written("all", 7).await;
            rig.written("auth", 2).await;
            rig.written("errors", 2).await;
            rig.written("nginx", 2).await;
            assert_eq!(
                rig.messages("auth.log").await,
                ["auth info", "authpriv crit"]
            );
            assert_eq!(
                rig.messages("errors.log").await,
                ["authpriv crit", "nginx error"]
            );
            assert_eq!(
                rig.messages("nginx.log").await,
                ["nginx error", "nginx info"]
            );
            assert_eq!(rig.messages("all.log").await.len(), 7);
            let lines = client::file_lines(&rig.dir.join("all.log")).await;
            assert_eq!(lines[6], "1.5 - -: garbage without a pri");
            assert_eq!(rig.server.stats().malformed.get(), 1);
            assert!(rig.server.shutdown().await);
        },
        "the filters",
    )
    .await;
}
