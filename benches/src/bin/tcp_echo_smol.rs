//! The TCP echo server of `examples/tcp_echo.rs` on smol's stack (async-executor's
//! `LocalExecutor` driven by async-io's reactor), written the idiomatic way
//! (`AsyncReadExt::read`, `write_all`). A peer in `tcp_bench`.

use std::net::{SocketAddr, TcpListener, TcpStream};

use async_executor::LocalExecutor;
use async_io::Async;
use futures_lite::{AsyncReadExt, AsyncWriteExt};

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7000".to_string())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let ex = LocalExecutor::new();
    async_io::block_on(ex.run(async {
        let listener = Async::<TcpListener>::bind(addr)?;
        println!("listening on {}", listener.get_ref().local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            ex.spawn(async move {
                if let Err(e) = echo(stream).await {
                    eprintln!("connection error: {e}");
                }
            })
            .detach();
        }
    }))
}

async fn echo(mut stream: Async<TcpStream>) -> std::io::Result<()> {
    stream.get_ref().set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
