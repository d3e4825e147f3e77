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
            // Out of descriptors: back off and let connections close.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                overlap::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // Anything else (ECONNABORTED, ENOBUFS, ...) concerns one connection, not the
            // listener: report it and keep serving.
            Err(e) => eprintln!("accept error: {e}"),
        }
    }
}

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
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
