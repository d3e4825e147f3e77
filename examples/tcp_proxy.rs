//! A TCP proxy that forwards bytes inside the kernel with `splice`: they never enter this
//! process's memory.
//!
//! ```text
//! cargo run --release --example tcp_echo -- 127.0.0.1:7000 &
//! cargo run --release --example tcp_proxy -- 127.0.0.1:7001 127.0.0.1:7000
//! ```
//!
//! The first argument is the address to listen on (default `127.0.0.1:7001`), the second the
//! upstream to forward every connection to (default `127.0.0.1:7000`). Each connection is one
//! `splice_bidirectional`: when one side finishes sending, the proxy passes the half-close
//! on, and the connection ends once both directions have.

use std::io;
use std::net::SocketAddr;

use overlap::net::{TcpListener, TcpStream};
use overlap::pipe::splice_bidirectional;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:7001".to_string());
    let upstream: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:7000".to_string())
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("upstream: {e}")))?;
    overlap::block_on(async {
        let listener = TcpListener::bind(listen.as_str()).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener, upstream).await
    })
}

/// Accepts connections forever and proxies each to `upstream` in its own task.
pub async fn serve(listener: TcpListener, upstream: SocketAddr) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                overlap::spawn(async move {
                    if let Err(e) = proxy(client, upstream).await {
                        eprintln!("{peer}: {e}");
                    }
                });
            }
            // Out of descriptors: back off and let connections close.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                overlap::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => eprintln!("accept error: {e}"),
        }
    }
}

/// Forwards both directions between `client` and a new connection to `upstream`; returns
/// the bytes sent each way (client to upstream, upstream to client). Both connections close
/// when this returns.
pub async fn proxy(client: TcpStream, upstream: SocketAddr) -> io::Result<(u64, u64)> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    splice_bidirectional(&client, &server).await
}
