//! Behaviours checked by tokio's `io` integration tests, ported to overlap's own I/O code:
//! `io::copy`, `io::copy_buf`, `io::copy_bidirectional` and `io::duplex`. The futures-util
//! combinators run over overlap's `File` and `DuplexStream` are in `port_tokio_io_util.rs`.
//!
//! - `io_copy.rs`: `copy`, `proxy`; plus a writer that takes nothing (`WriteZero`), an
//!   empty source (the writer is still flushed) and `copy_buf` from a `File`.
//! - `io_copy_bidirectional.rs`: `test_basic_transfer`, `test_transfer_after_close`,
//!   `immediate_exit_on_write_error`, `immediate_exit_on_read_error`; plus one side closing
//!   long before the other has finished.
//! - `io_mem_stream.rs`: `ping_pong`, `across_tasks`, `disconnect`, `disconnect_reader`,
//!   `max_write_size`; plus a writer blocked on a full buffer woken by the reader's drop,
//!   and writes after this end's own close.
//! - `io_repeat.rs`, `io_sink.rs`, `io_empty.rs` (futures-util's `repeat`, `sink`, `empty`)
//!   as the source or destination of `io::copy`.
//!
//! Skipped: the cooperative-budget tests (`copy_is_cooperative`,
//! `copy_bidirectional_is_cooperative`, `duplex_is_cooperative`) are in
//! `io_copy_bidirectional.rs` and `io_duplex.rs`; `io_copy.rs`'s `copy_buf` test of a
//! `BufReader` flush while idle is there too.

mod support;

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::fs::File;
use overlap::future::FutureExt;
use overlap::io::{
    copy, copy_bidirectional, copy_buf, duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
    ErrorKind,
};
use support::{pattern, within, TempDir};

const HANG: Duration = Duration::from_secs(10);

/// A writer that takes no byte, and counts its flushes.
#[derive(Default)]
struct Full {
    flushes: Rc<Cell<usize>>,
}

impl AsyncWrite for Full {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(0))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flushes.set(self.flushes.get() + 1);
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A stream whose reads fail and whose writes are taken and dropped.
struct Broken;

impl AsyncRead for Broken {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::new(ErrorKind::ConnectionReset, "broken")))
    }
}

impl AsyncWrite for Broken {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[overlap::test]
async fn copy_moves_a_file_through_a_small_duplex_byte_for_byte() {
    let dir = TempDir::new("port-io-copy");
    let data = pattern(3 * 1024 * 1024 + 17);
    std::fs::write(dir.join("src"), &data).unwrap();
    let (mut tx, mut rx) = duplex(1000);
    let reader = overlap::spawn(async move {
        let mut got = Vec::new();
        // overlap's read_to_end: futures-util's zero-fills the spare room after each
        // `Pending`, quadratic over 3 MiB in 1000-byte steps.
        overlap::io::read_to_end(&mut rx, &mut got).await.unwrap();
        got
    });
    let file = File::open(dir.join("src")).await.unwrap();
    let n = within(HANG, copy(file, &mut tx), "copy stalled").await;
    assert_eq!(n.unwrap(), data.len() as u64);
    drop(tx);
    assert!(reader.await.unwrap() == data);

    // copy_buf takes the File's own buffer, and a File as the destination too.
    let mut out = File::create(dir.join("dst")).await.unwrap();
    let src = File::open(dir.join("src")).await.unwrap();
    assert_eq!(copy_buf(src, &mut out).await.unwrap(), data.len() as u64);
    // The copy flushed at the end: the bytes are in the file before any flush of ours.
    assert!(std::fs::read(dir.join("dst")).unwrap() == data);
}

#[overlap::test]
async fn copy_into_a_writer_that_takes_nothing_is_write_zero() {
    let mut full = Full::default();
    let err = copy(&b"abc"[..], &mut full).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriteZero, "{err}");
    let err = copy_buf(&b"abc"[..], &mut full).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriteZero, "{err}");
    // Nothing to copy: nothing written, and still flushed, once per copy.
    let flushes = full.flushes.clone();
    flushes.set(0);
    assert_eq!(copy(overlap::io::empty(), &mut full).await.unwrap(), 0);
    assert_eq!(copy_buf(&b""[..], &mut full).await.unwrap(), 0);
    assert_eq!(flushes.get(), 2);
}

#[overlap::test]
async fn copy_from_repeat_into_sink_counts_every_byte() {
    let source = overlap::io::repeat(7).take(1_000_003);
    let n = copy(source, &mut overlap::io::sink()).await.unwrap();
    assert_eq!(n, 1_000_003);
}

#[overlap::test]
async fn copy_proxies_a_duplex_in_both_directions_with_two_copies() {
    let (mut client, server) = duplex(64);
    let (mut server_read, mut server_write) = server.split();
    let echo = overlap::spawn(async move { copy(&mut server_read, &mut server_write).await });
    let data = pattern(10_000);
    let (mut client_read, mut client_write) = (&mut client).split();
    let send = async {
        client_write.write_all(&data).await.unwrap();
        client_write.close().await.unwrap();
    };
    let mut got = Vec::new();
    let recv = client_read.read_to_end(&mut got);
    within(HANG, overlap::future::join(send, recv), "echo stalled")
        .await
        .1
        .unwrap();
    assert!(got == data);
    assert_eq!(echo.await.unwrap().unwrap(), data.len() as u64);
}

/// A client and a server joined by `copy_bidirectional` over two duplex pairs.
struct Proxied {
    client: overlap::io::DuplexStream,
    server: overlap::io::DuplexStream,
    proxy: overlap::JoinHandle<io::Result<(u64, u64)>>,
}

fn proxied(size: usize) -> Proxied {
    let (client, mut near) = duplex(size);
    let (mut far, server) = duplex(size);
    let proxy = overlap::spawn(async move { copy_bidirectional(&mut near, &mut far).await });
    Proxied {
        client,
        server,
        proxy,
    }
}

#[overlap::test]
async fn copy_bidirectional_passes_bytes_both_ways_and_counts_them() {
    let Proxied {
        mut client,
        mut server,
        proxy,
    } = proxied(16);
    let mut buf = [0; 5];
    client.write_all(b"hello").await.unwrap();
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    server.write_all(b"world!").await.unwrap();
    let mut back = [0; 6];
    client.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"world!");
    drop(client);
    drop(server);
    let counts = within(HANG, proxy, "proxy did not end").await;
    assert_eq!(counts.unwrap().unwrap(), (5, 6));
}

#[overlap::test]
async fn one_side_closing_early_leaves_the_other_way_running() {
    let Proxied {
        mut client,
        mut server,
        proxy,
    } = proxied(8);
    client.write_all(b"request").await.unwrap();
    client.close().await.unwrap();
    // The server sees the request, then the close passed on as its end of file.
    let mut request = Vec::new();
    within(HANG, server.read_to_end(&mut request), "no end of file")
        .await
        .unwrap();
    assert_eq!(request, b"request");
    // Long after, a reply much bigger than the buffers still gets through.
    let reply = pattern(100_000);
    let send = async {
        server.write_all(&reply).await.unwrap();
        server.close().await.unwrap();
    };
    let mut got = Vec::new();
    let recv = overlap::io::read_to_end(&mut client, &mut got);
    within(HANG, overlap::future::join(send, recv), "reply stalled")
        .await
        .1
        .unwrap();
    assert!(got == reply);
    let counts = within(HANG, proxy, "proxy did not end").await;
    assert_eq!(counts.unwrap().unwrap(), (7, reply.len() as u64));
}

#[overlap::test]
async fn a_write_error_on_either_side_ends_the_copy_at_once() {
    let Proxied {
        mut client,
        server,
        proxy,
    } = proxied(8);
    // The server goes: the next byte to it fails, while the way back still waits for data.
    drop(server);
    client.write_all(b"x").await.unwrap();
    let res = within(HANG, proxy, "the write error did not end the copy").await;
    let err = res.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    // The proxy's ends are gone with it: the client reads the end and cannot write.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    let err = client.write_all(b"y").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

#[overlap::test]
async fn a_read_error_ends_the_copy_while_the_other_way_waits() {
    let (_client, mut near) = duplex(8);
    let mut broken = Broken;
    let copied = copy_bidirectional(&mut near, &mut broken);
    let err = within(HANG, copied, "the read error did not end the copy")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
}

#[overlap::test]
async fn duplex_ping_pong_across_tasks() {
    let (mut a, mut b) = duplex(2);
    let pong = overlap::spawn(async move {
        let mut buf = [0; 4];
        for _ in 0..100 {
            b.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            b.write_all(b"pong").await.unwrap();
        }
    });
    let mut buf = [0; 4];
    for _ in 0..100 {
        a.write_all(b"ping").await.unwrap();
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    }
    within(HANG, pong, "pong stalled").await.unwrap();
}

#[overlap::test]
async fn duplex_write_takes_at_most_the_room_left() {
    let (mut a, mut b) = duplex(32);
    assert_eq!(a.write(&[1; 64]).await.unwrap(), 32);
    assert!(a.write(&[2; 1]).now_or_never().is_none(), "full");
    // A zero-length write on a full buffer is not a wait.
    assert_eq!(a.write(&[]).now_or_never().unwrap().unwrap(), 0);
    let mut buf = [0; 10];
    assert_eq!(b.read(&mut buf).await.unwrap(), 10);
    assert_eq!(a.write(&[3; 64]).await.unwrap(), 10);
}

#[overlap::test]
async fn duplex_peer_gone_ends_reads_after_the_buffered_bytes_and_fails_writes() {
    let (mut a, mut b) = duplex(32);
    a.write_all(b"last words").await.unwrap();
    drop(a);
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    assert_eq!(
        b.read(&mut [0; 4]).await.unwrap(),
        0,
        "stays at end of file"
    );
    let err = b.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    // Even an empty write says so.
    let err = b.write(&[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

#[overlap::test]
async fn a_writer_waiting_on_a_full_buffer_fails_when_the_reader_goes() {
    let (mut a, b) = duplex(4);
    let writer = overlap::spawn(async move { a.write_all(b"more than four").await });
    support::settle().await;
    assert!(!writer.is_finished(), "the writer waits for room");
    drop(b);
    let res = within(HANG, writer, "the writer was not woken").await;
    let err = res.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

#[overlap::test]
async fn duplex_writes_after_its_own_close_fail_but_the_other_way_goes_on() {
    let (mut a, mut b) = duplex(16);
    a.write_all(b"before").await.unwrap();
    a.close().await.unwrap();
    a.close().await.unwrap();
    a.flush().await.unwrap();
    let err = a.write(b"after").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    let mut got = Vec::new();
    b.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"before");
    b.write_all(b"reply").await.unwrap();
    let mut reply = [0; 5];
    a.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"reply");
}
