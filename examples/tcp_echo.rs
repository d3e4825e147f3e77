//! A TCP echo server: one task per connection.
//!
//! ```text
//! cargo run --release --example tcp_echo -- 127.0.0.1:7000
//! ```
//!
//! The only argument is the address to listen on (default `127.0.0.1:7000`; port 0 picks a
//! free one). It prints the address it listens on, then serves until killed; a bad argument
//! is refused with a message naming it. This is the server the TCP benchmark measures, so it
//! is written the plain way, not tuned.

use std::io::{Error, ErrorKind};

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};

#[overlap::main]
async fn main() -> std::process::ExitCode {
    exit_code(run().await)
}

async fn run() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".to_string());
    no_more_args(args, "tcp_echo [ADDRESS]")?;
    let listener = TcpListener::bind(addr.as_str())
        .await
        .map_err(|e| about(format_args!("listen address {addr:?}"), e))?;
    println!("listening on {}", listener.local_addr()?);
    serve(listener).await
}

/// Accepts connections forever, one task each.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    // Whether the last accept failed for a lasting reason: a run of them is reported once.
    let mut short = false;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                short = false;
                overlap::spawn(async move {
                    if let Err(e) = echo(stream).await {
                        log(format_args!("connection error: {e}"));
                    }
                });
            }
            // Out of descriptors or of kernel memory: back off and let connections close.
            Err(e) if lasting_accept_error(&e) => back_off(&e, &mut short).await,
            // Anything else (ECONNABORTED, ...) concerns one connection, not the listener:
            // report it and keep serving.
            Err(e) => log(format_args!("accept error: {e}")),
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

/// Waits 10 ms after an accept failed for a lasting reason, before the next try; reports
/// the error unless `short` says the last try failed so too.
pub async fn back_off(e: &Error, short: &mut bool) {
    if !std::mem::replace(short, true) {
        log(format_args!("accept error: {e}; retrying every 10 ms"));
    }
    overlap::time::sleep(std::time::Duration::from_millis(10)).await;
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

/// What `main` returns after `res`: failure once the error is printed in its own words (a
/// `main` returning the `Result` itself would print its `Debug` form, `Custom { kind: ..`).
pub fn exit_code(res: std::io::Result<()>) -> std::process::ExitCode {
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log(format_args!("error: {e}"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `e`, of the same kind, with `what` it concerns first in its message.
pub fn about(what: impl std::fmt::Display, e: Error) -> Error {
    Error::new(e.kind(), format!("{what}: {e}"))
}

/// Refuses an argument left over after those `usage` shows.
pub fn no_more_args(mut args: impl Iterator<Item = String>, usage: &str) -> std::io::Result<()> {
    match args.next() {
        None => Ok(()),
        Some(arg) => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("unexpected argument {arg:?} (usage: {usage})"),
        )),
    }
}

/// The arguments of the multi-threaded variants (`tcp_echo_per_core`, `tcp_echo_acceptor`,
/// which include this file, `usage` showing them): the address (default `127.0.0.1:7000`)
/// and a thread count of 1 or more (default: one per available CPU).
#[allow(dead_code)]
pub fn address_and_threads(usage: &str) -> std::io::Result<(std::net::SocketAddr, usize)> {
    use std::net::ToSocketAddrs;

    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7000".to_string());
    let listen = addr
        .to_socket_addrs()
        .and_then(|mut all| {
            all.next()
                .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "no address found"))
        })
        .map_err(|e| about(format_args!("listen address {addr:?}"), e))?;
    let threads = match args.next() {
        Some(n) => match n.parse::<usize>() {
            Ok(0) => Err("there must be at least one".to_string()),
            Ok(count) => Ok(count),
            Err(e) => Err(e.to_string()),
        }
        .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("thread count {n:?}: {e}")))?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    no_more_args(args, usage)?;
    Ok((listen, threads))
}

/// Writes `line` to stderr. `eprintln!` panics where stderr cannot be written (a pipe whose
/// reader is gone), and would take the accept loop, and the server, with it.
pub fn log(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
