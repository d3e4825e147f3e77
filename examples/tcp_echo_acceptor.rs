//! The TCP echo server with one acceptor thread handing connections to worker runtimes,
//! each on its own thread: the other thread-per-core design (`tcp_echo_per_core` lets the
//! kernel spread connections with `SO_REUSEPORT` instead). Use it when one place must see
//! every connection first: to count, limit or route them.
//!
//! ```text
//! cargo run --release --example tcp_echo_acceptor -- 127.0.0.1:7000 [workers]
//! ```
//!
//! The first argument is the address to listen on (default `127.0.0.1:7000`; port 0 picks a
//! free one), the second the number of worker threads (default: one per available CPU). It
//! prints the address it listens on, then serves until killed. A bad argument, or a thread
//! that cannot start (more workers than the descriptor limit allows), ends it with a message
//! naming the cause.
//!
//! The acceptor runs its own runtime and takes each connection as a std socket, which is
//! `Send`; [`Handle::spawn_with`](overlap::Handle::spawn_with) sends the worker a closure
//! that turns it into an overlap socket on the worker's own thread and reactor.

use overlap::net::{TcpListener, TcpStream};
use overlap::{Handle, Runtime};

/// The single-threaded server, whose echo each connection runs.
#[allow(dead_code)]
#[path = "tcp_echo.rs"]
mod tcp_echo;

fn main() -> std::process::ExitCode {
    tcp_echo::exit_code(run())
}

fn run() -> std::io::Result<()> {
    let (addr, workers) = tcp_echo::address_and_threads("tcp_echo_acceptor [ADDRESS [WORKERS]]")?;
    let handles = start_workers(workers)?;
    let rt = Runtime::new().map_err(|e| tcp_echo::about("the acceptor's runtime", e))?;
    rt.block_on(async {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| tcp_echo::about(format_args!("listen address {addr}"), e))?;
        let plural = if workers == 1 { "" } else { "s" };
        println!(
            "listening on {} with {workers} worker{plural}",
            listener.local_addr()?
        );
        accept_loop(listener, &handles).await
    })
}

/// Starts `n` worker threads (at least one), each running a runtime until the process ends;
/// returns their handles, or the first worker's failure to start, naming it.
pub fn start_workers(n: usize) -> std::io::Result<Vec<Handle>> {
    (0..n.max(1))
        .map(|i| {
            let (tx, rx) = std::sync::mpsc::channel();
            let failed = |e| tcp_echo::about(format_args!("worker {i}"), e);
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || match Runtime::new() {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle()));
                        // Serve whatever the acceptor sends, forever.
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(tcp_echo::about("cannot start a runtime", e)));
                    }
                })
                .map_err(failed)?;
            rx.recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("it ended")))
                .map_err(failed)
        })
        .collect()
}

/// Accepts forever and hands each connection to the next worker in turn.
pub async fn accept_loop(listener: TcpListener, workers: &[Handle]) -> std::io::Result<()> {
    let mut short = false;
    for next in (0..workers.len()).cycle() {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                short = false;
                stream
            }
            // Out of descriptors or kernel memory: back off and let connections close.
            Err(e) if tcp_echo::lasting_accept_error(&e) => {
                tcp_echo::back_off(&e, &mut short).await;
                continue;
            }
            Err(e) => {
                tcp_echo::log(format_args!("accept error: {e}"));
                continue;
            }
        };
        // Off this runtime's reactor, as a plain (non-blocking) std socket that may cross
        // threads; the worker registers it with its own reactor.
        let std_stream = stream.into_std()?;
        drop(workers[next].spawn_with(move || async move {
            let served = match TcpStream::from_std(std_stream) {
                Ok(stream) => tcp_echo::echo(stream).await,
                Err(e) => Err(e),
            };
            if let Err(e) = served {
                tcp_echo::log(format_args!("connection error: {e}"));
            }
        }));
    }
    Ok(())
}
