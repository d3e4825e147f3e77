//! `examples/tcp_echo_acceptor.rs` on loopback: one acceptor hands connections to worker
//! runtimes on other threads through `Handle::spawn_with`, and every client gets its bytes
//! back.

mod support;
#[allow(dead_code)]
#[path = "../examples/tcp_echo_acceptor.rs"]
mod tcp_echo_acceptor;

use std::time::Duration;

use futures_util::future::join_all;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};

use support::{pattern_seeded, within};

#[test]
fn a_hundred_clients_are_echoed_by_worker_runtimes() {
    let workers = tcp_echo_acceptor::start_workers(2).unwrap();
    overlap::block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        overlap::spawn(async move { tcp_echo_acceptor::accept_loop(listener, &workers).await });
        let before = overlap::metrics().tasks_spawned;
        let clients = (0..100u32).map(|i| {
            overlap::spawn(async move {
                let mut conn = TcpStream::connect(addr).await.unwrap();
                let data = pattern_seeded(64 * 1024, i + 1);
                // Named: with `AsyncReadExt` in scope, `conn.split()` is futures' locking one.
                let (mut r, mut w) = TcpStream::split(&mut conn);
                let send = async {
                    w.write_all(&data).await.unwrap();
                    w.close().await.unwrap();
                };
                let mut back = Vec::new();
                let recv = async { r.read_to_end(&mut back).await.unwrap() };
                futures_util::join!(send, recv);
                assert!(back == data, "client {i} got other bytes back");
            })
        });
        let clients: Vec<_> = clients.collect();
        within(Duration::from_secs(60), join_all(clients), "the clients").await;
        // Only the clients ran here: every echo ran on a worker's runtime.
        assert_eq!(overlap::metrics().tasks_spawned - before, 100);
    });
}
