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
//! the address it listens on, then serves until killed; a bad argument is refused with a
//! message naming it.

use std::net::SocketAddr;

use overlap::net::TcpSocket;

/// The single-threaded server, whose accept loop and echo each thread runs.
#[allow(dead_code)]
#[path = "tcp_echo.rs"]
mod tcp_echo;

fn main() -> std::io::Result<()> {
    let (addr, threads) = tcp_echo::address_and_threads("tcp_echo_per_core [ADDRESS [THREADS]]")?;
    // Bound here, so that port 0 resolves once and every thread's socket shares the port.
    let listen_error = |e| tcp_echo::about(format_args!("listen address {addr}"), e);
    let first = reuseport_socket(addr).map_err(listen_error)?;
    let addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..threads {
        sockets.push(reuseport_socket(addr).map_err(listen_error)?);
    }
    println!("listening on {addr} with {threads} threads");
    let workers: Vec<_> = sockets
        .into_iter()
        .map(|socket| std::thread::spawn(move || serve(socket)))
        .collect();
    for w in workers {
        w.join().expect("a server thread panicked")?;
    }
    Ok(())
}

fn reuseport_socket(addr: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// One thread's server: its own runtime and listener, `tcp_echo`'s accept loop.
fn serve(socket: TcpSocket) -> std::io::Result<()> {
    overlap::block_on(async { tcp_echo::serve(socket.listen(1024)?).await })
}
