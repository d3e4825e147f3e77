//! A user's TCP proxy, sketched as tokio's proxy example (accept, connect upstream, and
//! `copy_bidirectional`, or `into_split` and an `io::copy` per direction) and then written
//! for overlap. An upstream that upper-cases what it reads and reports the byte count at
//! end of input checks that bytes pass both ways, that a client's half-close reaches the
//! upstream, and that the proxy's byte counts are right.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use overlap::io::{self, AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::task::JoinSet;
use support::within;

const HANG: Duration = Duration::from_secs(10);

/// Upper-cases each read back to the peer; at end of input, writes how many bytes it
/// read and closes.
async fn upstream(listener: TcpListener) -> io::Result<()> {
    loop {
        let (mut conn, _) = listener.accept().await?;
        overlap::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut total = 0usize;
            loop {
                let n = conn.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                total += n;
                buf[..n].make_ascii_uppercase();
                conn.write_all(&buf[..n]).await?;
            }
            conn.write_all(format!("[{total}]").as_bytes()).await?;
            conn.close().await?;
            io::Result::Ok(())
        });
    }
}

/// The proxy, tokio-style: per connection, `copy_bidirectional`; the byte counts of each
/// finished connection go to `done`.
async fn proxy_bidirectional(
    listener: TcpListener,
    to: SocketAddr,
    done: overlap::sync::mpsc::UnboundedSender<(u64, u64)>,
) -> io::Result<()> {
    loop {
        let (mut inbound, _) = listener.accept().await?;
        let done = done.clone();
        overlap::spawn(async move {
            let mut outbound = TcpStream::connect(to).await?;
            let counts = io::copy_bidirectional(&mut inbound, &mut outbound).await?;
            let _ = done.send(counts);
            io::Result::Ok(())
        });
    }
}

/// The proxy with `into_split`: a task per direction, each closing (tokio: `shutdown`)
/// its write half when its read half ends.
async fn proxy_split(listener: TcpListener, to: SocketAddr) -> io::Result<()> {
    loop {
        let (inbound, _) = listener.accept().await?;
        overlap::spawn(async move {
            let outbound = TcpStream::connect(to).await?;
            let (mut ri, mut wi) = inbound.into_split();
            let (mut ro, mut wo) = outbound.into_split();
            let mut both = JoinSet::new();
            both.spawn(async move {
                let n = io::copy(&mut ri, &mut wo).await?;
                wo.close().await?;
                io::Result::Ok(n)
            });
            both.spawn(async move {
                let n = io::copy(&mut ro, &mut wi).await?;
                wi.close().await?;
                io::Result::Ok(n)
            });
            while let Some(r) = both.join_next().await {
                r.expect("copy task panicked")?;
            }
            io::Result::Ok(())
        });
    }
}

/// Sends `body` through the proxy at `addr` in a few writes, half-closes, and reads
/// everything back.
async fn through(addr: SocketAddr, body: &[u8]) -> Vec<u8> {
    let client = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = client.into_split();
    let body = body.to_vec();
    let writer = overlap::spawn(async move {
        for chunk in body.chunks(1000) {
            write.write_all(chunk).await.unwrap();
        }
        write.close().await.unwrap();
    });
    let mut back = Vec::new();
    within(HANG, read.read_to_end(&mut back), "reply through the proxy")
        .await
        .unwrap();
    writer.await.unwrap();
    back
}

fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
        .collect()
}

async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    overlap::spawn(upstream(listener)).detach();
    addr
}

#[overlap::test]
async fn copy_bidirectional_proxy_forwards_both_ways_and_counts_bytes() {
    let up = start_upstream().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, mut done) = overlap::sync::mpsc::unbounded_channel();
    overlap::spawn(proxy_bidirectional(listener, up, done_tx)).detach();

    for len in [0, 1, 5000, 300_000] {
        let sent = body(len);
        let back = through(addr, &sent).await;
        let trailer = format!("[{len}]");
        let mut want = sent.to_ascii_uppercase();
        want.extend_from_slice(trailer.as_bytes());
        assert_eq!(back.len(), want.len());
        assert!(back == want, "{len} bytes came back changed");
        let counts = within(HANG, done.recv(), "proxy counts").await.unwrap();
        assert_eq!(counts, (len as u64, want.len() as u64));
    }
}

#[overlap::test]
async fn split_proxy_forwards_both_ways_with_half_close() {
    let up = start_upstream().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    overlap::spawn(proxy_split(listener, up)).detach();

    // Several clients at once through the one proxy.
    let mut clients = JoinSet::new();
    for len in [0, 10, 70_000, 200_000] {
        clients.spawn(async move { (len, through(addr, &body(len)).await) });
    }
    while let Some(r) = within(HANG, clients.join_next(), "clients").await {
        let (len, back) = r.unwrap();
        let mut want = body(len).to_ascii_uppercase();
        want.extend_from_slice(format!("[{len}]").as_bytes());
        assert!(back == want, "{len} bytes came back changed");
    }
}
