//! `io::InspectReader` and `io::InspectWriter` (tokio-util's): the closure sees every byte
//! that went through, once and in order, over real TCP, with partial and vectored writes,
//! failures, end of file, the other direction passed through, and a lying inner stream.

mod support;

use std::cell::RefCell;
use std::io::{self, ErrorKind, IoSlice};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::io::{AsyncRead, AsyncWrite};
use overlap::future::FutureExt;
use overlap::io::{copy, duplex, AsyncReadExt, AsyncWriteExt, InspectReader, InspectWriter};
use overlap::{block_on, spawn};
use support::{pattern_seeded, tcp_pair, within};

const HANG: Duration = Duration::from_secs(30);

/// The chunks a closure was shown, in order.
type Chunks = Rc<RefCell<Vec<Vec<u8>>>>;

/// A closure recording each chunk it is shown.
fn recorder() -> (Chunks, impl FnMut(&[u8])) {
    let chunks = Rc::new(RefCell::new(Vec::new()));
    let sink = chunks.clone();
    (chunks, move |c: &[u8]| sink.borrow_mut().push(c.to_vec()))
}

/// Four mebibytes read off a TCP socket through an `InspectReader`: what the closure saw,
/// joined, is exactly what was read; no chunk is empty.
#[test]
fn an_inspect_reader_sees_every_byte_read_from_tcp_once() {
    block_on(async {
        let (mut a, b) = tcp_pair().await;
        let data = pattern_seeded(4 << 20, 11);
        let sent = data.clone();
        let writer = spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.close().await.unwrap();
        });
        let (chunks, f) = recorder();
        let mut reader = InspectReader::new(b, f);
        let mut got = Vec::new();
        within(HANG, reader.read_to_end(&mut got), "the read stalled")
            .await
            .unwrap();
        writer.await.unwrap();
        assert!(got == data, "bytes changed in transit");
        let chunks = chunks.borrow();
        assert!(chunks.iter().all(|c| !c.is_empty()), "an empty chunk shown");
        assert!(chunks.concat() == data, "the closure saw other bytes");
    });
}

/// `copy` into a TCP socket through an `InspectWriter`, the peer reading slowly enough for
/// writes to be cut short: the closure sees each byte that went out exactly once.
#[test]
fn an_inspect_writer_sees_what_tcp_took_once_through_partial_writes() {
    block_on(async {
        let (a, mut b) = tcp_pair().await;
        let data = pattern_seeded(8 << 20, 12);
        let (chunks, f) = recorder();
        let mut writer = InspectWriter::new(a, f);
        let reader = spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1000];
            loop {
                let n = b.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
                overlap::yield_now().await;
            }
        });
        let mut src = &data[..];
        let n = within(HANG, copy(&mut src, &mut writer), "the copy stalled")
            .await
            .unwrap();
        assert_eq!(n, data.len() as u64);
        writer.close().await.unwrap();
        let got = within(HANG, reader, "the reader stalled").await.unwrap();
        assert!(got == data, "bytes changed in transit");
        let chunks = chunks.borrow();
        assert!(chunks.concat() == data, "the closure saw other bytes");
    });
}

/// A write the buffer takes part of shows only that part; the rest is shown when a later
/// write takes it, and a write that waits shows nothing.
#[test]
fn a_partial_write_shows_only_the_bytes_taken() {
    block_on(async {
        let (near, mut far) = duplex(4);
        let (chunks, f) = recorder();
        let mut writer = InspectWriter::new(near, f);
        assert_eq!(writer.write(b"abcdef").await.unwrap(), 4);
        assert!(writer.write(b"ef").now_or_never().is_none(), "full: waits");
        assert_eq!(*chunks.borrow(), vec![b"abcd".to_vec()]);
        let mut four = [0u8; 4];
        far.read_exact(&mut four).await.unwrap();
        assert_eq!(writer.write(b"ef").await.unwrap(), 2);
        assert_eq!(*chunks.borrow(), vec![b"abcd".to_vec(), b"ef".to_vec()]);
    });
}

/// A vectored write cut short in its third slice shows the first two whole and the part
/// of the third that was taken, slice by slice.
#[test]
fn a_vectored_write_shows_each_slice_up_to_what_was_taken() {
    block_on(async {
        let (near, mut far) = duplex(8);
        let (chunks, f) = recorder();
        let mut writer = InspectWriter::new(near, f);
        let slices = [
            IoSlice::new(b"abc"),
            IoSlice::new(b""),
            IoSlice::new(b"de"),
            IoSlice::new(b"fghij"),
        ];
        assert_eq!(writer.write_vectored(&slices).await.unwrap(), 8);
        let expected: Vec<Vec<u8>> = vec![b"abc".to_vec(), b"de".to_vec(), b"fgh".to_vec()];
        assert_eq!(*chunks.borrow(), expected);
        let mut got = [0u8; 8];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"abcdefgh");
    });
}

/// A write that fails and a read at end of file show nothing.
#[test]
fn failures_and_end_of_file_show_nothing() {
    block_on(async {
        let (near, far) = duplex(8);
        let (written, f) = recorder();
        let mut writer = InspectWriter::new(near, f);
        drop(far);
        let err = writer.write(b"lost").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
        assert!(written.borrow().is_empty(), "a failed write was shown");

        let (mut near, far) = duplex(8);
        near.write_all(b"xy").await.unwrap();
        near.close().await.unwrap();
        let (read, f) = recorder();
        let mut reader = InspectReader::new(far, f);
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 2);
        assert_eq!(reader.read(&mut buf).await.unwrap(), 0);
        assert_eq!(
            *read.borrow(),
            vec![b"xy".to_vec()],
            "end of file was shown"
        );
    });
}

/// Each wrapper passes the other direction through unseen: an `InspectReader` over a TCP
/// stream writes, an `InspectWriter` reads, and `into_inner` gives the stream back.
#[test]
fn the_other_direction_goes_through_unseen() {
    block_on(async {
        let (a, mut b) = tcp_pair().await;
        let (seen_by_reader, f) = recorder();
        let mut both = InspectReader::new(a, f);
        both.write_all(b"request").await.unwrap();
        let mut req = [0u8; 7];
        b.read_exact(&mut req).await.unwrap();
        b.write_all(b"reply").await.unwrap();
        let mut reply = [0u8; 5];
        both.read_exact(&mut reply).await.unwrap();
        assert_eq!(*seen_by_reader.borrow(), vec![b"reply".to_vec()]);

        let (seen_by_writer, f) = recorder();
        let mut both = InspectWriter::new(both.into_inner(), f);
        b.write_all(b"more").await.unwrap();
        let mut more = [0u8; 4];
        both.read_exact(&mut more).await.unwrap();
        both.write_all(b"ok").await.unwrap();
        let mut ok = [0u8; 2];
        b.read_exact(&mut ok).await.unwrap();
        assert_eq!((&more, &ok), (b"more", b"ok"));
        assert_eq!(*seen_by_writer.borrow(), vec![b"ok".to_vec()]);
    });
}

/// A stream that claims to have moved more bytes than it was given.
struct Overclaiming;

impl AsyncRead for Overclaiming {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        out.fill(b'r');
        Poll::Ready(Ok(out.len() + 3))
    }
}

impl AsyncWrite for Overclaiming {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len() + 3))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A lying inner stream does not make the wrappers panic: the closure is shown the buffer,
/// and the claim goes on to the caller, whose `copy` refuses it.
#[test]
fn an_overclaiming_inner_stream_is_reported_not_a_panic() {
    block_on(async {
        let (seen, f) = recorder();
        let mut writer = InspectWriter::new(Overclaiming, f);
        assert_eq!(writer.write(b"abc").await.unwrap(), 6, "the claim goes on");
        assert_eq!(*seen.borrow(), vec![b"abc".to_vec()]);
        let mut src = &b"0123456789"[..];
        let err = copy(&mut src, &mut writer).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);

        let (seen, f) = recorder();
        let mut reader = InspectReader::new(Overclaiming, f);
        let mut buf = [0u8; 4];
        assert_eq!(reader.read(&mut buf).await.unwrap(), 7);
        assert_eq!(*seen.borrow(), vec![b"rrrr".to_vec()]);
    });
}
