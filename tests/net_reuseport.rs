//! Thread per core: runtimes on two threads, each with its own `SO_REUSEPORT` listener on one
//! loopback port (as in `examples/tcp_echo_per_core.rs`). The kernel spreads connections
//! across both, and each thread serves its own with no shared state.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpSocket;

const THREADS: usize = 2;
const CLIENTS: usize = 64;

fn reuseport_socket(addr: SocketAddr) -> TcpSocket {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseport(true).unwrap();
    socket.bind(addr).unwrap();
    socket
}

/// Accepts and echoes until `stop`; returns how many connections this thread served.
fn serve(socket: TcpSocket, listening: Arc<AtomicUsize>, stop: Arc<AtomicBool>) -> usize {
    overlap::block_on(async move {
        let listener = socket.listen(128).unwrap();
        listening.fetch_add(1, Ordering::SeqCst);
        let mut served = 0;
        while !stop.load(Ordering::SeqCst) {
            let accept = overlap::time::timeout(Duration::from_millis(20), listener.accept());
            let Ok(res) = accept.await else { continue };
            let (mut stream, _) = res.unwrap();
            served += 1;
            overlap::spawn(async move {
                let mut buf = [0u8; 64];
                loop {
                    let n = stream.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    stream.write_all(&buf[..n]).await.unwrap();
                }
            });
        }
        served
    })
}

#[test]
fn reuseport_listeners_on_two_runtimes_share_the_connections() {
    let first = reuseport_socket("127.0.0.1:0".parse().unwrap());
    let addr = first.local_addr().unwrap();
    let mut sockets = vec![first];
    sockets.extend((1..THREADS).map(|_| reuseport_socket(addr)));

    let listening = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let servers: Vec<_> = sockets
        .into_iter()
        .map(|s| {
            let (listening, stop) = (listening.clone(), stop.clone());
            std::thread::spawn(move || serve(s, listening, stop))
        })
        .collect();
    // Only listening sockets join the port's group: wait for all of them.
    while listening.load(Ordering::SeqCst) < THREADS {
        std::thread::sleep(Duration::from_millis(1));
    }

    let mut clients: Vec<std::net::TcpStream> = (0..CLIENTS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = format!("hello {i:03}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut back = [0u8; 9];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, msg.as_bytes());
    }
    drop(clients);

    stop.store(true, Ordering::SeqCst);
    let served: Vec<usize> = servers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(served.iter().sum::<usize>(), CLIENTS, "{served:?}");
    // The kernel hashes each connection to a listener: with 64 connections, one thread
    // getting none has odds of 2^-63.
    assert!(served.iter().all(|&n| n > 0), "{served:?}");
}
