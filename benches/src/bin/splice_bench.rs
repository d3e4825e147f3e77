//! A TCP proxy's cost: bytes forwarded from one loopback connection to another.
//!
//! Run: `cargo run --release -p overlap-benches --bin splice_bench [MiB]` (default 512)
//!
//! A source thread writes the bytes into the proxy and a sink thread reads them out, both on
//! CPU 1; the proxy runs alone on CPU 0. Contenders: overlap's zero-copy `splice_copy`,
//! overlap's `io::copy` (futures-io, 8 KiB buffer), tokio's `io::copy` on its current-thread
//! runtime (8 KiB buffer), and the limit: a blocking thread doing nothing but `splice`
//! through a pipe. Figures are the proxy thread's CPU time and the wall time per GiB, best
//! of three interleaved runs; ratios say how many times more the contender needs than
//! overlap's `splice_copy`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use overlap_benches::{cpu_and_wall_per_gib, pin_to_cpu, print_table, thread_cpu_time};

const RUNS: usize = 3;
const CHUNK: usize = 256 * 1024;

/// One proxy: accepts one connection on the listener, connects to the sink, forwards
/// everything, and shuts the sink side down. Runs on its own thread.
type Proxy = fn(TcpListener, SocketAddr);

fn overlap_splice(front: TcpListener, sink: SocketAddr) {
    overlap::block_on(async move {
        let listener = overlap::net::TcpListener::from_std(front).unwrap();
        let (from, _) = listener.accept().await.unwrap();
        let to = overlap::net::TcpStream::connect(sink).await.unwrap();
        overlap::pipe::splice_copy(&from, &to).await.unwrap();
        to.shutdown(Shutdown::Write).unwrap();
    })
}

fn overlap_copy(front: TcpListener, sink: SocketAddr) {
    overlap::block_on(async move {
        let listener = overlap::net::TcpListener::from_std(front).unwrap();
        let (from, _) = listener.accept().await.unwrap();
        let mut to = overlap::net::TcpStream::connect(sink).await.unwrap();
        overlap::io::copy(from, &mut to).await.unwrap();
        to.shutdown(Shutdown::Write).unwrap();
    })
}

fn tokio_copy(front: TcpListener, sink: SocketAddr) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use tokio::io::AsyncWriteExt;
        front.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(front).unwrap();
        let (mut from, _) = listener.accept().await.unwrap();
        let mut to = tokio::net::TcpStream::connect(sink).await.unwrap();
        tokio::io::copy(&mut from, &mut to).await.unwrap();
        to.shutdown().await.unwrap();
    })
}

/// The limit: blocking sockets, one pipe, nothing but `splice` calls.
fn blocking_splice(front: TcpListener, sink: SocketAddr) {
    let (from, _) = front.accept().unwrap();
    let to = TcpStream::connect(sink).unwrap();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let splice = |a: i32, b: i32, len: usize| {
        // SAFETY: null offsets use the fds' own positions; no memory of ours is passed.
        let n = unsafe {
            libc::splice(
                a,
                std::ptr::null_mut(),
                b,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE,
            )
        };
        assert!(n >= 0, "splice: {}", std::io::Error::last_os_error());
        n as usize
    };
    loop {
        let n = splice(from.as_raw_fd(), fds[1], 64 * 1024);
        if n == 0 {
            break;
        }
        let mut left = n;
        while left > 0 {
            left -= splice(fds[0], to.as_raw_fd(), left);
        }
    }
    to.shutdown(Shutdown::Write).unwrap();
    // SAFETY: both fds came from pipe2 above and are closed once.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

/// One run: (proxy thread CPU, wall time) to forward `total` bytes.
fn run(proxy: Proxy, total: usize) -> (Duration, Duration) {
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let front = TcpListener::bind("127.0.0.1:0").unwrap();
    let front_addr = front.local_addr().unwrap();
    let start = Instant::now();
    let proxy = std::thread::spawn(move || {
        pin_to_cpu(0).unwrap();
        let before = thread_cpu_time();
        proxy(front, sink_addr);
        thread_cpu_time() - before
    });
    let reader = std::thread::spawn(move || {
        pin_to_cpu(1).unwrap();
        let (mut conn, _) = sink.accept().unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0;
        loop {
            match conn.read(&mut buf).unwrap() {
                0 => break got,
                n => got += n,
            }
        }
    });
    let writer = std::thread::spawn(move || {
        pin_to_cpu(1).unwrap();
        let mut conn = TcpStream::connect(front_addr).unwrap();
        let buf = vec![0x5au8; CHUNK];
        let mut sent = 0;
        while sent < total {
            let n = CHUNK.min(total - sent);
            conn.write_all(&buf[..n]).unwrap();
            sent += n;
        }
        conn.shutdown(Shutdown::Write).unwrap();
    });
    writer.join().unwrap();
    let got = reader.join().unwrap();
    let wall = start.elapsed();
    let cpu = proxy.join().unwrap();
    assert_eq!(got, total, "the proxy lost bytes");
    (cpu, wall)
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let total = mib << 20;
    let proxies: [(&str, Proxy); 4] = [
        ("overlap splice", overlap_splice),
        ("overlap copy", overlap_copy),
        ("tokio copy", tokio_copy),
        ("blocking splice", blocking_splice),
    ];
    // `SPLICE_ONLY=name` runs one contender (for strace or perf).
    let only = std::env::var("SPLICE_ONLY").ok();
    let proxies: Vec<(&str, Proxy)> = proxies
        .into_iter()
        .filter(|(name, _)| only.as_deref().is_none_or(|o| o == *name))
        .collect();
    let rows = cpu_and_wall_per_gib(&proxies, RUNS, total, "proxy CPU", |(_, p)| run(*p, total));
    println!(
        "overlap splice_bench: {mib} MiB through a loopback TCP proxy, best of {RUNS}; \
         ratio > 1 means the contender needs more than overlap's splice_copy"
    );
    let names: Vec<&str> = proxies.iter().map(|p| p.0).collect();
    print_table(&names, &rows);
}
