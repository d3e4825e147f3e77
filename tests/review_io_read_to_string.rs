//! `io::read_to_string`: as std's, a string keeps its text when the stream's bytes are not
//! UTF-8 (futures-util's method empties it), gets the bytes read before a reader's error
//! when they are UTF-8, and is whole again when the future is dropped half-way.

mod support;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::io::AsyncRead;
use futures_util::FutureExt;
use overlap::io::{read_to_string, AsyncWriteExt};
use overlap::net::UnixStream;
use support::within;

const HANG: Duration = Duration::from_secs(10);

#[overlap::test]
async fn bytes_that_are_not_utf8_leave_the_string_as_it_was() {
    let (mut near, mut far) = UnixStream::pair().unwrap();
    near.write_all(b"ok \xff\xfe").await.unwrap();
    near.close().await.unwrap();
    let mut text = String::from("kept: ");
    let err = within(HANG, read_to_string(&mut far, &mut text), "read_to_string")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
    assert_eq!(
        text, "kept: ",
        "the string's text was lost or half-appended"
    );
}

#[overlap::test]
async fn a_character_split_between_two_reads_arrives_whole() {
    let (mut near, mut far) = UnixStream::pair().unwrap();
    let writer = overlap::spawn(async move {
        // "é" is 0xc3 0xa9: the first read ends inside it.
        near.write_all(b"caf\xc3").await.unwrap();
        overlap::time::sleep(Duration::from_millis(20)).await;
        near.write_all(b"\xa9!").await.unwrap();
        near.close().await.unwrap();
    });
    let mut text = String::from("> ");
    let n = within(HANG, read_to_string(&mut far, &mut text), "read_to_string")
        .await
        .unwrap();
    assert_eq!((n, text.as_str()), (6, "> café!"));
    writer.await.unwrap();
}

/// A real socket (non-blocking) with `sent` written to it, read until it has nothing left
/// for now: then the read fails with "link down" if `fail`, else it waits (and is never
/// woken: the tests drop it then).
struct Drained {
    sock: std::os::unix::net::UnixStream,
    _peer: std::os::unix::net::UnixStream,
    fail: bool,
}

fn drained(sent: &[u8], fail: bool) -> Drained {
    let (mut peer, sock) = std::os::unix::net::UnixStream::pair().unwrap();
    io::Write::write_all(&mut peer, sent).unwrap();
    sock.set_nonblocking(true).unwrap();
    Drained {
        sock,
        _peer: peer,
        fail,
    }
}

impl AsyncRead for Drained {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match io::Read::read(&mut self.sock, out) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.fail => {
                Poll::Ready(Err(io::Error::other("link down")))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            res => Poll::Ready(res),
        }
    }
}

#[overlap::test]
async fn a_reader_error_appends_the_text_read_before_it_only_if_it_is_utf8() {
    for (sent, expect) in [(&b"abc"[..], "> abc"), (&b"ab\xc3"[..], "> ")] {
        let mut reader = drained(sent, true);
        let mut text = String::from("> ");
        let err = within(HANG, read_to_string(&mut reader, &mut text), "read")
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "link down");
        assert_eq!(text, expect, "after {sent:?}");
    }
}

#[overlap::test]
async fn a_dropped_read_gives_the_string_back() {
    for (sent, expect) in [(&b"abc"[..], "> abc"), (&b"ab\xc3"[..], "> ")] {
        let mut reader = drained(sent, false);
        let mut text = String::from("> ");
        // Polled once: it reads what was sent, then waits for more, and is dropped.
        assert!(read_to_string(&mut reader, &mut text)
            .now_or_never()
            .is_none());
        assert_eq!(text, expect, "after {sent:?}");
    }
}
