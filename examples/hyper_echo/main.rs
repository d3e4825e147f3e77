//! hyper's HTTP/1.1 server on overlap: an echo server, one task per connection.
//!
//! ```text
//! cargo run --example hyper_echo -- 127.0.0.1:8082
//! curl -d 'hello' http://127.0.0.1:8082/     # the body comes back
//! ```
//!
//! The first argument is the address to listen on (default `127.0.0.1:8082`; port 0 picks a
//! free one); it prints the address it listens on. The second, optional, is how long a
//! connection may stay idle, no byte moving either way, in milliseconds (default 60,000):
//! then it is closed. A request's body comes back as the response body; keep-alive,
//! pipelining and bad requests (a 400) are hyper's own.
//!
//! hyper only needs its `Read`/`Write` traits on the connection: [`io::HyperIo`] provides
//! them over any futures-io stream. Tasks need not be `Send`, so `serve_connection`'s future
//! is spawned as it is. `benches/src/bin/http_bench.rs` runs this same server against hyper
//! on tokio's current-thread runtime.

mod io;
mod service;

use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use overlap::net::TcpListener;

use io::HyperIo;
use service::echo;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8082".to_string());
    let idle = match args.next() {
        Some(ms) => Duration::from_millis(ms.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("idle ms: {e}"))
        })?),
        None => Duration::from_secs(60),
    };
    overlap::block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of descriptors: back off and let connections close.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    overlap::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                // Anything else (ECONNABORTED, ...) concerns one connection.
                Err(e) => {
                    eprintln!("accept error: {e}");
                    continue;
                }
            };
            // Responses go out whole (one vectored write); no reason to wait for more.
            // (A peer that already reset makes this fail; the serve below then ends.)
            let _ = stream.set_nodelay(true);
            overlap::spawn(async move {
                // Clients hang up at the end of a run; that is not worth a line.
                let _ = http1::Builder::new()
                    .pipeline_flush(true)
                    .serve_connection(HyperIo::new(stream, idle), service_fn(echo))
                    .await;
            });
        }
    })
}
