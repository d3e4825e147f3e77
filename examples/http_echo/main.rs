//! An HTTP/1.1 echo server: one task per connection, keep-alive and pipelining.
//!
//! ```text
//! cargo run --example http_echo -- 127.0.0.1:8080
//! curl -d 'hello' http://127.0.0.1:8080/     # the body comes back
//! curl http://127.0.0.1:8080/some/path       # no body: the request head comes back
//! ```
//!
//! The first argument is the address to listen on (default `127.0.0.1:8080`; port 0 picks a
//! free one). `--body-memory=SIZE` (bytes, or with a `K`, `M` or `G` suffix; default 256M)
//! bounds the memory all request bodies may hold at once, which also caps one body. It prints the address it listens on, then serves until Ctrl-C or `SIGTERM`:
//! then it stops accepting, closes idle connections, gives those in the middle of a request
//! up to 5 s to finish it (answered with `Connection: close`; a body still waiting for room
//! in the body memory gets a 503 at once), and exits with status 0.
//!
//! - A request with a body (a `Content-Length` above 0, or `Transfer-Encoding: chunked`,
//!   even with no chunk) is answered with that body and its `Content-Type`; one without
//!   (`Content-Length: 0` included), with its own head as `text/plain`
//!   (field values byte for byte; `charset=utf-8` only when they are UTF-8). `HEAD` gets the
//!   headers only. `Expect: 100-continue` is honoured.
//! - Bad input gets a 4xx or 5xx with a one-line reason, then the connection is closed: 400
//!   (malformed, a fragment in the target or a `*` not for `OPTIONS`, a `Host` missing,
//!   repeated or invalid, both `Content-Length` and `Transfer-Encoding`, a
//!   `Transfer-Encoding` whose last coding is not `chunked`, a control byte in the request
//!   line, refused as soon as it arrives, a chunk-size line over 4 KiB, chunk extensions
//!   over 16 KiB in one body), 408 (a head or body that stalls), 413 (body over 8 MiB), 414
//!   (request line over 16 KiB, its line end not counted), 417, 431 (a head, or a
//!   chunked body's trailers, over 16 KiB or with more than 64 fields), 501 (a transfer
//!   coding before `chunked`, or `CONNECT`), 505 (a version `HTTP/x.y` other than 1.0 and
//!   1.1: httparse reads no other, so a future HTTP/1.2 gets it too, where RFC 9110 §6.2
//!   would have it served as 1.1; anything else in the version's place, such as `http/1.1`
//!   or a PROXY protocol line, is a malformed request line, a 400).
//! - A connection idle for 60 s between requests (or before its first) is closed, at once
//!   if the server is out of descriptors, to make room for new ones; one whose client stops
//!   reading its answers for 10 s is reset. Answers to pipelined requests go out together,
//!   but once 64 KiB are held back (the answer that crossed the mark included, so at most
//!   one answer more) they are written before the next request is read: a client that sends without reading meets
//!   back-pressure, not a growing server.
//! - Each body is held whole while it is echoed, so the bodies of all connections together
//!   share the `--body-memory` budget (bodies up to 64 KiB aside): one with a
//!   `Content-Length` waits for room (and for its `100 Continue`), up to the body timeout,
//!   then gets a 503; a chunked one gets a 503 as soon as it finds no room. While bodies
//!   wait, one holding room must arrive at 64 KiB/s at least (408 otherwise), and its echo
//!   be read as fast (else the connection is reset), so slow senders and readers cannot
//!   keep the room (see `memory.rs`). A 503 says `Retry-After: 1`.

mod conn;
mod date;
mod memory;
mod request;

use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::select;
use overlap::net::{TcpListener, TcpStream};
use overlap::signal::{signal, SignalKind};
use overlap::task::TaskTracker;
use overlap::time::{sleep, timeout};

/// How long open connections may go on after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(5);

/// The default of `--body-memory`.
const BODY_MEMORY: u64 = 256 << 20;

fn main() -> std::process::ExitCode {
    // The error in its own words: a `main` returning it would print its `Debug` form.
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log(format_args!("error: {e}"));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let (addr, body_memory) = parse_args(std::env::args().skip(1))?;
    memory::give_bodies_back();
    overlap::block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        // Listening for the signals before announcing the address: a supervisor that reads
        // the line and signals at once is never met by the default action.
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        println!("listening on http://{}", listener.local_addr()?);
        let open = Rc::new(Open::new(body_memory));
        let mut limits = request::Limits::default();
        // A body the whole budget cannot hold would wait for ever.
        limits.max_body = limits.max_body.min(open.memory.capacity());
        let limits = Rc::new(limits);
        {
            let accept = pin!(accept_loop(&listener, &limits, &open));
            let stop = pin!(async {
                select(pin!(interrupt.recv()), pin!(terminate.recv())).await;
            });
            select(accept, stop).await;
        }
        // The accept loop is gone. Idle connections close now; those in the middle of a
        // request finish it, for a while, and close after it.
        open.drain.start();
        // Closing the listener would reset the connections still waiting to be accepted,
        // with the requests they already sent: they are taken in first, and drained alike.
        let drained = async {
            accept_backlog(listener, &limits, &open).await;
            open.tracker.close();
            open.tracker.wait().await;
        };
        if timeout(DRAIN, drained).await.is_err() {
            log(format_args!(
                "{} connections still open after {DRAIN:?}; closing them",
                open.tracker.len()
            ));
        }
        Ok(())
    })
}

/// Accepts forever, one task per connection; `open` tracks the tasks still running.
async fn accept_loop(listener: &TcpListener, limits: &Rc<request::Limits>, open: &Rc<Open>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => spawn_conn(stream, peer, limits, open),
            // Out of descriptors: idle connections make room, the others may close meanwhile.
            Err(e) if out_of_fds(&e) => {
                open.drain.close_idle();
                sleep(FD_BACKOFF).await;
            }
            // Out of kernel memory for sockets: it lasts, so back off (retrying at once
            // would spin).
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS | libc::ENOMEM)) => {
                sleep(FD_BACKOFF).await;
            }
            // Anything else (ECONNABORTED, ...) concerns one connection: keep serving.
            Err(e) => log(format_args!("accept error: {e}")),
        }
    }
}

/// Accepts the connections the kernel has completed, then closes the listener. Asks the
/// kernel, not the event loop, which may not have seen them yet. Out of descriptors, it
/// waits for the draining connections to free theirs (a listener closed then would reset
/// the rest, requests and all): the caller bounds the wait.
async fn accept_backlog(listener: TcpListener, limits: &Rc<request::Limits>, open: &Rc<Open>) {
    let Ok(listener) = listener.into_std() else {
        return;
    };
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                match TcpStream::from_std(stream) {
                    Ok(stream) => spawn_conn(stream, peer, limits, open),
                    Err(e) => log(format_args!("{peer}: {e}")),
                }
                // Clients that keep connecting keep the backlog full: let the connections
                // taken in, and the caller's bound, run meanwhile.
                overlap::yield_now().await;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
            Err(e) if out_of_fds(&e) => sleep(FD_BACKOFF).await,
            // WouldBlock: the backlog is empty.
            Err(_) => return,
        }
    }
}

/// Serves one connection in a task of its own, tracked in `open`.
fn spawn_conn(stream: TcpStream, peer: SocketAddr, limits: &Rc<request::Limits>, open: &Rc<Open>) {
    let limits = limits.clone();
    let task_open = open.clone();
    open.tracker.spawn(async move {
        let open = task_open;
        match conn::serve(stream, &limits, &open.drain, &open.memory).await {
            // Clients that hang up or reset (load generators do at the end of a run) are
            // routine, not errors worth a line.
            Err(e) if !routine(&e) => log(format_args!("{peer}: {e}")),
            _ => {}
        }
    });
}

/// What the connections share: the tracker of their tasks, which the shutdown closes and
/// waits on (a task counts until it ends, however it ends), the drain, and the memory for
/// their request bodies.
struct Open {
    tracker: TaskTracker,
    /// Started on shutdown, for every connection.
    drain: conn::Drain,
    /// The memory their request bodies share.
    memory: memory::BodyMemory,
}

impl Open {
    fn new(body_memory: u64) -> Open {
        Open {
            tracker: TaskTracker::new(),
            drain: conn::Drain::default(),
            memory: memory::BodyMemory::new(body_memory),
        }
    }
}

/// How long accepting pauses when the process is out of descriptors.
const FD_BACKOFF: Duration = Duration::from_millis(10);

/// `accept` failed for want of a descriptor (the process's or the system's limit).
fn out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Writes `line` to stderr. `eprintln!` panics where stderr cannot be written (a pipe whose
/// reader is gone), and would fail the shutdown, or the accept loop and every connection.
fn log(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn routine(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    matches!(e.kind(), BrokenPipe | ConnectionReset | UnexpectedEof)
}

/// The listen address and the body memory budget, from the command line.
fn parse_args(args: impl Iterator<Item = String>) -> std::io::Result<(String, u64)> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
    let (mut addr, mut body_memory) = (None, BODY_MEMORY);
    for arg in args {
        if let Some(size) = arg.strip_prefix("--body-memory=") {
            body_memory = parse_size(size).ok_or_else(|| {
                invalid(format!(
                    "--body-memory: expected a size in bytes such as 1048576 or 256M, got {size:?}"
                ))
            })?;
        } else if arg.starts_with("--") || addr.is_some() {
            return Err(invalid(format!(
                "unexpected argument {arg:?} (usage: http_echo [ADDRESS] [--body-memory=SIZE])"
            )));
        } else {
            addr = Some(arg);
        }
    }
    let addr = addr.unwrap_or_else(|| "127.0.0.1:8080".to_string());
    Ok((addr, body_memory))
}

/// `1048576`, `1024K`, `256M`, `1G`: a positive size in bytes.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.as_bytes().last()? {
        b'K' | b'k' => (&text[..text.len() - 1], 1 << 10),
        b'M' | b'm' => (&text[..text.len() - 1], 1 << 20),
        b'G' | b'g' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()?
        .checked_mul(unit)
        .filter(|&n| n > 0)
}
