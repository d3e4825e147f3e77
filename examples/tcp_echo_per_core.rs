//! The TCP echo server, thread per core: one runtime per thread, each with its own listener
//! on the same port (`SO_REUSEPORT`), so the kernel spreads connections across threads and no
//! task, waker or buffer is ever shared between them.
//!
//! ```text
//! cargo run --release --example tcp_echo_per_core -- 127.0.0.1:7000 [threads]
//! ```
//!
//! The first argument is the address to listen on (default `127.0.0.1:7000`; port 0 picks a
//! free one), the second the number of threads (default: one per available CPU). It prints
//! the address it listens on once every thread listens, then serves until killed. A bad
//! argument, or a thread that cannot start (more threads than the descriptor limit allows),
//! ends it with a message naming the cause.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Sender};

use overlap::net::TcpSocket;
use overlap::Runtime;

/// The single-threaded server, whose accept loop and echo each thread runs.
#[allow(dead_code)]
#[path = "tcp_echo.rs"]
mod tcp_echo;

fn main() -> std::process::ExitCode {
    tcp_echo::exit_code(run())
}

fn run() -> io::Result<()> {
    let (addr, threads) = tcp_echo::address_and_threads("tcp_echo_per_core [ADDRESS [THREADS]]")?;
    // Bound here, so that port 0 resolves once and every thread's socket shares the port.
    let first = reuseport_socket(addr)
        .map_err(|e| tcp_echo::about(format_args!("listen address {addr}"), e))?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for i in 1..threads {
        let socket = reuseport_socket(addr)
            .map_err(|e| tcp_echo::about(format_args!("thread {i}: listen address {addr}"), e))?;
        sockets.push(socket);
    }
    // Each thread reports once it listens, and again if it ever stops.
    let (report, reports) = channel();
    for (i, socket) in sockets.into_iter().enumerate() {
        let report = report.clone();
        std::thread::Builder::new()
            .name(format!("server-{i}"))
            .spawn(move || {
                let stopped = serve(socket, &report);
                let _ = report
                    .send(stopped.map_err(|e| tcp_echo::about(format_args!("thread {i}"), e)));
            })
            .map_err(|e| tcp_echo::about(format_args!("thread {i}"), e))?;
    }
    drop(report);
    let next = || {
        reports
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("every thread ended")))
    };
    for _ in 0..threads {
        next()?;
    }
    let plural = if threads == 1 { "" } else { "s" };
    println!("listening on {addr} with {threads} thread{plural}");
    // The threads serve for ever: only an error ends one, and with it the process.
    next()
}

fn reuseport_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// One thread's server: its own runtime and listener, `tcp_echo`'s accept loop. Says on
/// `listening` when its listener is ready.
fn serve(socket: TcpSocket, listening: &Sender<io::Result<()>>) -> io::Result<()> {
    let rt = Runtime::new().map_err(|e| tcp_echo::about("cannot start a runtime", e))?;
    rt.block_on(async {
        let listener = socket.listen(1024)?;
        let _ = listening.send(Ok(()));
        tcp_echo::serve(listener).await
    })
}
