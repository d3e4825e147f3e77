//! `overlap::io::copy_bidirectional` as a TCP proxy on loopback: exact bytes both ways with
//! the half-close passed on, flushing of a buffered destination while the source is idle,
//! and a reset on one side ending the copy with an error.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::{copy_bidirectional, AsyncReadExt, AsyncWriteExt, BufWriter};
use overlap::net::{TcpListener, TcpStream};
use overlap::JoinHandle;

use support::{echo_server, pattern_seeded, tcp_pair, within};

const LIMIT: Duration = Duration::from_secs(30);

/// Reads exactly `expected` from `stream`, failing with `what` if it does not come.
async fn expect_bytes(stream: &mut TcpStream, expected: &[u8], what: &str) {
    let mut buf = vec![0u8; expected.len()];
    within(LIMIT, stream.read_exact(&mut buf), what)
        .await
        .unwrap();
    assert_eq!(buf, expected);
}

/// Accepts one client on a fresh listener and proxies it to `upstream` with
/// `copy_bidirectional`; returns the proxy's address and its outcome.
async fn proxy_once(upstream: SocketAddr) -> (SocketAddr, JoinHandle<std::io::Result<(u64, u64)>>) {
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    let task = overlap::spawn(async move {
        let (mut client, _) = front.accept().await?;
        let mut server = TcpStream::connect(upstream).await?;
        copy_bidirectional(&mut client, &mut server).await
    });
    (addr, task)
}

#[overlap::test]
async fn a_proxied_echo_keeps_every_byte_and_passes_the_half_close_on() {
    let (addr, proxy) = proxy_once(echo_server().await).await;
    let data = pattern_seeded(1 << 20, 5);
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = TcpStream::split(&mut conn);
    let (sent, got) = within(
        LIMIT,
        async {
            futures_util::join!(
                async {
                    wr.write_all(&data).await?;
                    // Only if the proxy shuts the upstream's write half does the echo server
                    // see its end of file, close, and let read_to_end below finish.
                    wr.close().await
                },
                async {
                    let mut got = Vec::new();
                    rd.read_to_end(&mut got).await.map(|_| got)
                }
            )
        },
        "the proxied echo stalled",
    )
    .await;
    sent.unwrap();
    assert!(got.unwrap() == data, "the echo differs from what was sent");
    let counts = within(LIMIT, proxy, "the proxy did not finish").await;
    assert_eq!(counts.unwrap().unwrap(), (1 << 20, 1 << 20));
}

#[overlap::test]
async fn a_buffered_destination_is_flushed_while_the_source_is_idle() {
    // client <-> proxy_in | BufWriter(proxy_out) <-> server: without a flush when the
    // client has nothing more to send, "ping" would sit in the BufWriter for ever.
    let (mut client, mut proxy_in) = tcp_pair().await;
    let (proxy_out, mut server) = tcp_pair().await;
    let proxy = overlap::spawn(async move {
        let mut proxy_out = BufWriter::with_capacity(64 << 10, proxy_out);
        copy_bidirectional(&mut proxy_in, &mut proxy_out).await
    });
    client.write_all(b"ping").await.unwrap();
    expect_bytes(&mut server, b"ping", "the bytes stayed buffered").await;
    server.write_all(b"pong!").await.unwrap();
    expect_bytes(&mut client, b"pong!", "the reply did not come back").await;
    client.close().await.unwrap();
    server.close().await.unwrap();
    let counts = within(LIMIT, proxy, "the proxy did not finish").await;
    assert_eq!(counts.unwrap().unwrap(), (4, 5));
}

#[overlap::test]
async fn a_reset_on_one_side_ends_the_copy_with_an_error() {
    let (mut client, mut proxy_in) = tcp_pair().await;
    let (mut proxy_out, server) = tcp_pair().await;
    let proxy =
        overlap::spawn(async move { copy_bidirectional(&mut proxy_in, &mut proxy_out).await });
    // The server resets its connection (linger 0 then close).
    server.set_linger(Some(Duration::ZERO)).unwrap();
    drop(server);
    // Data the proxy forwards into the reset connection fails there.
    for _ in 0..64 {
        if client.write_all(&[7u8; 16 << 10]).await.is_err() {
            break;
        }
        if proxy.is_finished() {
            break;
        }
        overlap::time::sleep(Duration::from_millis(1)).await;
    }
    let res = within(LIMIT, proxy, "the proxy did not notice the reset").await;
    let err = res
        .unwrap()
        .expect_err("a reset upstream must fail the copy");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "unexpected error: {err}"
    );
}

/// A stream that is always ready: reads give `left` bytes of 'x' then end of file, writes
/// take everything (and count it in `written`), except that the first `interrupts` writes
/// fail with `Interrupted`.
#[derive(Default)]
struct AlwaysReady {
    left: usize,
    written: std::rc::Rc<std::cell::Cell<usize>>,
    interrupts: usize,
}

impl overlap::io::AsyncRead for AlwaysReady {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = buf.len().min(self.left);
        buf[..n].fill(b'x');
        self.left -= n;
        std::task::Poll::Ready(Ok(n))
    }
}

impl overlap::io::AsyncWrite for AlwaysReady {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.interrupts > 0 {
            self.get_mut().interrupts -= 1;
            return std::task::Poll::Ready(Err(std::io::ErrorKind::Interrupted.into()));
        }
        self.written.set(self.written.get() + buf.len());
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[overlap::test]
async fn a_copy_between_always_ready_streams_lets_other_tasks_run() {
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let copy = {
        let ran = ran.clone();
        overlap::spawn(async move {
            let mut a = AlwaysReady {
                left: 64 << 20,
                ..AlwaysReady::default()
            };
            let mut b = AlwaysReady::default();
            let counts = copy_bidirectional(&mut a, &mut b).await.unwrap();
            (counts, ran.get())
        })
    };
    let other = {
        let ran = ran.clone();
        overlap::spawn(async move { ran.set(true) })
    };
    let (counts, other_ran_first) = copy.await.unwrap();
    other.await.unwrap();
    assert_eq!(counts, (64 << 20, 0));
    assert!(
        other_ran_first,
        "the copy kept the loop to itself until it ended"
    );
}

#[overlap::test]
async fn a_side_that_is_always_readable_does_not_starve_the_other_way() {
    // `a` never runs dry; `b` has five bytes for `a`, which must get through meanwhile.
    let mut a = AlwaysReady {
        left: usize::MAX,
        ..AlwaysReady::default()
    };
    let mut b = AlwaysReady {
        left: 5,
        ..AlwaysReady::default()
    };
    let (to_a, to_b) = (a.written.clone(), b.written.clone());
    let copy = overlap::spawn(async move { copy_bidirectional(&mut a, &mut b).await });
    while to_b.get() < 64 << 20 {
        overlap::yield_now().await;
    }
    copy.abort();
    assert_eq!(
        to_a.get(),
        5,
        "b's bytes never reached a while a kept sending"
    );
}

/// `Interrupted` from a write is retried, as from a read: it is no error.
#[overlap::test]
async fn an_interrupted_write_is_retried() {
    let mut a = AlwaysReady {
        left: 3,
        interrupts: 2,
        ..AlwaysReady::default()
    };
    let mut b = AlwaysReady {
        left: 5,
        interrupts: 1,
        ..AlwaysReady::default()
    };
    let (a_written, b_written) = (a.written.clone(), b.written.clone());
    let counts = copy_bidirectional(&mut a, &mut b).await.unwrap();
    assert_eq!(counts, (3, 5));
    assert_eq!((a_written.get(), b_written.get()), (5, 3));
}

/// Runs a one-way `copy` from a TCP stream into a `BufWriter` over another, and checks
/// that what the client sends reaches the server while the client is still open (the
/// writer is flushed whenever the reader has nothing for now, as tokio's copies do), then
/// that the copy ends with the client's end of file.
async fn check_one_way_copy_flushes_while_idle<F>(
    copy: impl FnOnce(TcpStream, BufWriter<TcpStream>) -> F,
) where
    F: std::future::Future<Output = std::io::Result<u64>> + 'static,
{
    let (mut client, proxy_in) = tcp_pair().await;
    let (proxy_out, mut server) = tcp_pair().await;
    let proxy = overlap::spawn(copy(
        proxy_in,
        BufWriter::with_capacity(64 << 10, proxy_out),
    ));
    client.write_all(b"ping").await.unwrap();
    expect_bytes(&mut server, b"ping", "the bytes stayed buffered").await;
    client.write_all(b"!").await.unwrap();
    client.close().await.unwrap();
    let copied = within(LIMIT, proxy, "the copy did not end").await;
    assert_eq!(copied.unwrap().unwrap(), 5);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"!");
}

#[overlap::test]
async fn io_copy_flushes_a_buffered_writer_while_the_source_is_idle() {
    check_one_way_copy_flushes_while_idle(|from, mut to| async move {
        overlap::io::copy(from, &mut to).await
    })
    .await;
}

#[overlap::test]
async fn io_copy_buf_flushes_a_buffered_writer_while_the_source_is_idle() {
    check_one_way_copy_flushes_while_idle(|from, mut to| async move {
        overlap::io::copy_buf(overlap::io::BufReader::new(from), &mut to).await
    })
    .await;
}

#[overlap::test]
async fn io_copy_between_always_ready_streams_lets_other_tasks_run() {
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let copy = {
        let ran = ran.clone();
        overlap::spawn(async move {
            let a = AlwaysReady {
                left: 64 << 20,
                ..AlwaysReady::default()
            };
            let mut b = AlwaysReady::default();
            let n = overlap::io::copy(a, &mut b).await.unwrap();
            (n, ran.get())
        })
    };
    let other = {
        let ran = ran.clone();
        overlap::spawn(async move { ran.set(true) })
    };
    let (n, other_ran_first) = copy.await.unwrap();
    other.await.unwrap();
    assert_eq!(n, 64 << 20);
    assert!(
        other_ran_first,
        "the copy kept the loop to itself until it ended"
    );
}

/// A stream that notes the largest buffer a read was given.
struct Largest<S> {
    inner: S,
    largest: usize,
}

impl<S: futures_util::io::AsyncRead + Unpin> futures_util::io::AsyncRead for Largest<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.largest = self.largest.max(buf.len());
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: futures_util::io::AsyncWrite + Unpin> futures_util::io::AsyncWrite for Largest<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// tokio's `copy_bidirectional_with_sizes`: each direction reads through a buffer of the
/// size given (a proxy of many connections trims them, one carrying TLS records widens
/// them), and every byte still arrives, the half-closes passed on.
#[overlap::test]
async fn copy_bidirectional_with_sizes_reads_through_buffers_of_the_sizes_given() {
    let (mut client, proxy_in) = overlap::io::duplex(64 * 1024);
    let (proxy_out, mut server) = overlap::io::duplex(64 * 1024);
    let proxy = overlap::spawn(async move {
        let mut a = Largest {
            inner: proxy_in,
            largest: 0,
        };
        let mut b = Largest {
            inner: proxy_out,
            largest: 0,
        };
        let res = overlap::io::copy_bidirectional_with_sizes(&mut a, &mut b, 100, 20_000).await;
        (res, a.largest, b.largest)
    });
    let up = pattern_seeded(100_000, 1);
    let down = pattern_seeded(50_000, 2);
    let client_side = async {
        client.write_all(&up).await?;
        client.close().await?;
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.map(|_| got)
    };
    let server_side = async {
        let mut got = Vec::new();
        server.read_to_end(&mut got).await?;
        server.write_all(&down).await?;
        server.close().await.map(|()| got)
    };
    let (back, there) = within(
        LIMIT,
        async { futures_util::join!(client_side, server_side) },
        "the copy",
    )
    .await;
    assert!(there.unwrap() == up && back.unwrap() == down);
    let (res, a_largest, b_largest) = within(LIMIT, proxy, "the proxy").await.unwrap();
    assert_eq!(res.unwrap(), (100_000, 50_000));
    assert_eq!((a_largest, b_largest), (100, 20_000));
}

/// A size of 0 would read nothing and take it for the end of the stream: refused at once.
#[overlap::test]
async fn copy_bidirectional_with_a_zero_size_is_refused() {
    let (mut a, mut a_peer) = overlap::io::duplex(64);
    let (mut b, _b_peer) = overlap::io::duplex(64);
    a_peer.write_all(b"kept").await.unwrap();
    for (there, back) in [(0, 8), (8, 0)] {
        let err = overlap::io::copy_bidirectional_with_sizes(&mut a, &mut b, there, back)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    }
    // Nothing was read.
    drop(a_peer);
    let mut got = Vec::new();
    a.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"kept");
}
