//! A TCP echo server: one task per connection.
//!
//! ```text
//! cargo run --release --example tcp_echo -- 127.0.0.1:7000
//! ```
//!
//! The first argument is the address to listen on (default `127.0.0.1:7000`; port 0 picks a
//! free one). It prints the address it listens on, then serves until killed. This is the
//! server the TCP benchmark measures, so it is written the plain way, not tuned.

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};

#[overlap::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    let listener = TcpListener::bind(addr.as_str()).await?;
    println!("listening on {}", listener.local_addr()?);
    serve(listener).await
}

/// Accepts connections forever, one task each.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                overlap::spawn(async move {
                    if let Err(e) = echo(stream).await {
                        eprintln!("connection error: {e}");
                    }
                });
            }
            // Out of descriptors or of kernel memory: back off and let connections close.
            Err(e) if lasting_accept_error(&e) => {
                overlap::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // Anything else (ECONNABORTED, ENOBUFS, ...) concerns one connection, not the
            // listener: report it and keep serving.
            Err(e) => eprintln!("accept error: {e}"),
        }
    }
}

/// Whether `accept` failed for want of descriptors (`EMFILE`, `ENFILE`) or of kernel memory
/// (`ENOBUFS`, `ENOMEM`): that lasts a while, so the loop backs off, where retrying at once
/// would spin.
pub fn lasting_accept_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Echoes everything `stream` sends until it closes its side.
pub async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// The arguments of the multi-threaded variants (`tcp_echo_per_core`, `tcp_echo_acceptor`,
/// which include this file): the address (default `127.0.0.1:7000`) and a thread count
/// (default: one per available CPU).
#[allow(dead_code)]
pub fn address_and_threads() -> std::io::Result<(std::net::SocketAddr, usize)> {
    use std::io::{Error, ErrorKind};
    use std::net::ToSocketAddrs;

    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".to_string());
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "no address to listen on"))?;
    let threads = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "threads: not a number"))?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    Ok((addr, threads))
}
