//! The JSON value and the codec on their own, no process: every rule they state.

use overlap::codec::{BytesMut, Decoder, Encoder};

use super::framing::{Frame, FrameError, LspCodec, Outgoing};
use super::json::Json;

#[test]
fn json_values_round_trip_and_malformed_json_is_an_error_never_a_panic() {
    let text = r#" { "a" : [1, -2.5, 3e2, 0, -0.125E-2, true, false, null],
        "s": "q\"b\\s\/n\nr\rt\tb\bf\fu\u00e9\ud83e\udd80\u0001",
        "nested": {"e": {}, "l": [[], [{}]]}, "a": "last wins" } "#;
    let v = Json::parse(text.as_bytes()).unwrap();
    assert_eq!(v.get("a"), Some(&Json::str("last wins")));
    assert_eq!(
        v.get("s").and_then(Json::as_str),
        Some("q\"b\\s/n\nr\rt\tb\u{8}f\u{c}ué🦀\u{1}")
    );
    let Json::Obj(pairs) = &v else { panic!() };
    assert_eq!(
        pairs[0].1,
        Json::Arr(vec![
            Json::Num(1.0),
            Json::Num(-2.5),
            Json::Num(300.0),
            Json::Num(0.0),
            Json::Num(-0.00125),
            Json::Bool(true),
            Json::Bool(false),
            Json::Null,
        ])
    );
    // What it writes, it reads back the same.
    let written = v.to_text();
    assert_eq!(Json::parse(written.as_bytes()).unwrap(), v);
    assert!(
        written.contains(r#""q\"b\\s/n\nr\rt\tb\bf\fué🦀\u0001""#),
        "{written}"
    );
    for n in [0.1, 1e300, -5e-324, 123456789.0, 2f64.powi(52)] {
        assert_eq!(
            Json::parse(Json::Num(n).to_text().as_bytes()),
            Ok(Json::Num(n))
        );
    }
    assert_eq!(Json::Num(f64::NAN).to_text(), "null");
    for (bad, offset) in [
        ("", 0),
        ("{", 1),
        ("[1,]", 3),
        ("[1 2]", 3),
        ("{\"a\" 1}", 5),
        ("{a:1}", 1),
        ("01", 2),
        ("-", 1),
        ("1.", 2),
        ("1e", 2),
        ("tru", 0),
        ("\"abc", 4),
        ("\"\\x\"", 3),
        ("\"\\u12\"", 3),
        ("\"\\ud800\"", 7),
        ("\"\\ud800\\u0041\"", 13),
        ("\"\\udc00\"", 7),
        ("\"a\nb\"", 3),
        ("1 2", 2),
        ("nul", 0),
    ] {
        let e = Json::parse(bad.as_bytes()).unwrap_err();
        assert_eq!(e.offset, offset, "{bad:?}: {e}");
    }
    assert!(Json::parse(b"\"\xff\"").is_err(), "not UTF-8");
    let deep = "[".repeat(100_000);
    assert_eq!(
        Json::parse(deep.as_bytes()).unwrap_err().what,
        "nesting too deep"
    );
    // Whatever the bytes, an answer.
    let mut x = 99u32;
    for len in 0..3000 {
        let bytes: Vec<u8> = (0..len % 41)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b"{}[],:\"\\u0e-+.1aetnr \xc3"[(x % 22) as usize]
            })
            .collect();
        let _ = Json::parse(&bytes);
    }
}

fn decode_all(codec: &mut LspCodec, input: &[u8], step: usize) -> Vec<String> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in input.chunks(step) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            out.push(match frame {
                Frame::Message(body) => String::from_utf8(body.to_vec()).unwrap(),
                Frame::Oversized { len, max } => format!("oversized {len} > {max}"),
            });
        }
    }
    assert_eq!(codec.decode_eof(&mut buf).unwrap().map(|_| ()), None);
    out
}

#[test]
fn the_codec_frames_input_split_anywhere_and_skips_an_oversized_body() {
    let mut codec = LspCodec::new(100);
    let mut dst = BytesMut::new();
    for msg in ["{\"a\":1}", "[]"] {
        let msg = Outgoing::Message(Json::parse(msg.as_bytes()).unwrap());
        codec.encode(msg, &mut dst).unwrap();
    }
    let mut input = dst.to_vec();
    input.extend_from_slice(b"content-length:0\r\n\r\n");
    // Other fields are ignored, the name in any case, the value with spaces about it.
    input.extend_from_slice(
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nCONTENT-LENGTH:   4 \r\n\r\nnull",
    );
    // Over the maximum: skipped, not buffered, and the stream stays in step.
    input.extend_from_slice(b"Content-Length: 250\r\n\r\n");
    input.extend_from_slice(&[b'z'; 250]);
    input.extend_from_slice(b"Content-Length: 4\r\n\r\ntrue");
    let want = ["{\"a\":1}", "[]", "", "null", "oversized 250 > 100", "true"];
    for step in [1, 2, 3, 7, 64, input.len()] {
        assert_eq!(
            decode_all(&mut LspCodec::new(100), &input, step),
            want,
            "{step}"
        );
    }
    // Skipping holds no more than what one read brought.
    let mut codec = LspCodec::new(100);
    let mut buf = BytesMut::from(&b"Content-Length: 1000000\r\n\r\n"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Frame::Oversized { len: 1_000_000, .. }))
    ));
    for _ in 0..100 {
        buf.extend_from_slice(&[0; 10_000]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.is_empty());
    }
    buf.extend_from_slice(b"Content-Length: 1\r\n\r\n7");
    assert!(matches!(codec.decode(&mut buf), Ok(Some(Frame::Message(b))) if b == b"7"[..]));
}

#[test]
fn the_codec_refuses_bad_headers_clearly_and_reports_a_cut_message() {
    let bad = |input: &[u8]| {
        let mut buf = BytesMut::from(input);
        let e = LspCodec::new(1 << 20).decode(&mut buf).unwrap_err();
        assert!(buf.is_empty(), "the buffer dropped with the stream");
        e.to_string()
    };
    assert_eq!(
        bad(b"Content-Length: x1\r\n\r\n"),
        "an invalid Content-Length: \"x1\""
    );
    assert_eq!(
        bad(b"Content-Length: -1\r\n\r\n"),
        "an invalid Content-Length: \"-1\""
    );
    assert_eq!(
        bad(b"Content-Length: +1\r\n\r\n"),
        "an invalid Content-Length: \"+1\""
    );
    assert_eq!(
        bad(b"Content-Length: 1 2\r\n\r\n"),
        "an invalid Content-Length: \"1 2\""
    );
    assert_eq!(
        bad(b"Content-Length:\r\n\r\n"),
        "an invalid Content-Length: \"\""
    );
    assert_eq!(
        bad(b"Content-Length: 12345678901234567890\r\n\r\n"),
        "an invalid Content-Length: \"12345678901234567890\""
    );
    assert_eq!(
        bad(b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n"),
        "an invalid Content-Length: \"1 (given twice)\""
    );
    assert_eq!(
        bad(b"X-Other: 1\r\n\r\n"),
        "a message header without Content-Length"
    );
    assert_eq!(bad(b"\r\n\r\n"), "a message header without Content-Length");
    assert_eq!(bad(b"no colon\r\n\r\n"), "a bad header line: \"no colon\"");
    assert_eq!(
        bad(b"Bad Name: 1\r\n\r\n"),
        "a bad header line: \"Bad Name: 1\""
    );
    assert_eq!(
        bad(b"Content-L\xc3\xa9ngth: 1\r\n\r\n"),
        "a bad header line: \"Content-L\u{e9}ngth: 1\""
    );
    // A header with no end is refused once over the limit, not buffered on.
    let mut codec = LspCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut refused = None;
    for i in 0..100 {
        buf.extend_from_slice(b"X-Padding: 0123456789abcdef\r\n");
        match codec.decode(&mut buf) {
            Ok(None) => assert!(buf.len() <= 1024),
            Ok(Some(f)) => panic!("{f:?}"),
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (i, e) = refused.expect("refused");
    assert!(matches!(e, FrameError::HeaderTooLong { max: 1024 }), "{e}");
    assert_eq!(i, 1024 / 29, "at the first read past the limit");
    // A whole header just past the limit is refused too.
    let long = format!("X: {}\r\nContent-Length: 0\r\n\r\n", "p".repeat(1000));
    assert_eq!(
        bad(long.as_bytes()),
        "a message header longer than 1024 bytes"
    );
    // End of input inside a message.
    for (input, want) in [
        (
            &b"Content-Length: 5\r\n\r\nabc"[..],
            "end of input in a message body (3 bytes of it)",
        ),
        (
            b"Content-Len",
            "end of input in a message header (11 bytes of it)",
        ),
        (
            b"Content-Length: 5\r\n\r\n",
            "end of input in a message body (0 bytes of it)",
        ),
    ] {
        let mut buf = BytesMut::from(input);
        let mut codec = LspCodec::new(1 << 20);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert_eq!(codec.decode_eof(&mut buf).unwrap_err().to_string(), want);
    }
    let mut codec = LspCodec::new(2);
    let mut buf = BytesMut::from(&b"Content-Length: 5\r\n\r\nab"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Frame::Oversized { .. }))
    ));
    let e = codec.decode_eof(&mut buf).unwrap_err().to_string();
    assert_eq!(e, "end of input in a message body (0 bytes of it)");
}

/// Why an oversized message is a [`Frame`], not an error: after a decoding error a
/// `FramedRead` ends once and then reads before it decodes again (as tokio-util's
/// does), so a frame already buffered behind the error waits for more input to come.
/// A server answering the error and waiting for the next request would wait for good.
#[overlap::test]
async fn a_frame_buffered_behind_a_decoding_error_waits_for_more_input() {
    use overlap::codec::{FramedRead, LinesCodec};
    use overlap::io::AsyncWriteExt;
    use overlap::stream::StreamExt;
    use std::time::Duration;

    let (mut tx, rx) = overlap::io::duplex(1024);
    let mut lines = FramedRead::new(rx, LinesCodec::new_with_max_length(4));
    tx.write_all(b"toolong\nok\n").await.unwrap();
    assert!(matches!(lines.next().await, Some(Err(_))));
    assert!(lines.next().await.is_none(), "the one end after an error");
    // "ok" is in the read buffer, whole; the stream reads first.
    assert!(lines.read_buffer().ends_with(b"ok\n"));
    let waited = overlap::time::timeout(Duration::from_millis(50), lines.next()).await;
    assert!(waited.is_err(), "{waited:?}");
    tx.write_all(b"more\n").await.unwrap();
    assert_eq!(lines.next().await.unwrap().unwrap(), "ok");
    assert_eq!(lines.next().await.unwrap().unwrap(), "more");
}
