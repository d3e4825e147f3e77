//! Syscalls per echo round trip: one `recv` and one `send` each, no `EAGAIN` reads, and
//! `epoll_wait`s shared between connections.
//!
//! The server runs on the runtime (this thread); the clients are plain blocking threads, so
//! the per-thread counters of `count-syscalls` and the runtime's metrics see the server only.

use std::io::{Read, Write};
use std::thread;

mod support;

use overlap::net::{syscall_counts, TcpListener};
use support::echo_until_eof;

/// Runs `conns` blocking clients doing `rounds` round trips of `size` bytes each against an
/// echo server on the runtime. Returns (recv, send, epoll_wait) per round trip.
fn measure(conns: usize, rounds: usize, size: usize) -> (f64, f64, f64) {
    overlap::block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<_> = (0..conns)
            .map(|c| {
                thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_nodelay(true).unwrap();
                    let msg = vec![c as u8; size];
                    let mut back = vec![0u8; size];
                    for _ in 0..rounds {
                        s.write_all(&msg).unwrap();
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg);
                    }
                })
            })
            .collect();

        let mut conns_v = Vec::new();
        for _ in 0..conns {
            let (conn, _) = listener.accept().await.unwrap();
            conn.set_nodelay(true).unwrap();
            conns_v.push(conn);
        }
        let before = (syscall_counts(), overlap::metrics());
        let handlers: Vec<_> = conns_v
            .into_iter()
            .map(|conn| overlap::spawn(echo_until_eof(conn)))
            .collect();
        for h in handlers {
            h.await.unwrap();
        }
        let after = (syscall_counts(), overlap::metrics());
        for c in clients {
            c.join().unwrap();
        }
        let trips = (conns * rounds) as f64;
        let recv = (after.0.recv - before.0.recv) as f64;
        let send = (after.0.send - before.0.send) as f64;
        let waits = (after.1.epoll_waits - before.1.epoll_waits) as f64;
        // One EOF read per connection is not part of any round trip.
        ((recv - conns as f64) / trips, send / trips, waits / trips)
    })
}

#[test]
fn one_recv_and_one_send_per_round_trip() {
    let (recv, send, waits) = measure(1, 2000, 64);
    println!("1 conn, 64 B: recv {recv:.3} send {send:.3} epoll_wait {waits:.3} per round trip");
    // A short read clears readiness, so no recv ever returns EAGAIN.
    assert_eq!(recv, 1.0);
    assert_eq!(send, 1.0);
    // With one connection each round trip needs its own wait (no sharing possible).
    assert!(waits <= 1.05, "epoll_wait per round trip: {waits}");
}

#[test]
fn epoll_waits_are_shared_between_connections() {
    let (recv, send, waits) = measure(16, 300, 4096);
    println!("16 conns, 4 KiB: recv {recv:.3} send {send:.3} epoll_wait {waits:.3} per round trip");
    // A 4 KiB message may arrive in two segments (two reads), rarely; never an EAGAIN loop.
    assert!(recv <= 1.05, "recv per round trip: {recv}");
    assert_eq!(send, recv, "every read is echoed by exactly one send");
    assert!(waits <= 1.0, "epoll_wait per round trip: {waits}");
}
