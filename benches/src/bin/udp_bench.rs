//! UDP echo: the server's CPU time per datagram, for overlap's `recv_batch`/`send_batch`
//! (`recvmmsg`/`sendmmsg`), overlap's `recv_from`/`send_to`, tokio's `recv_from`/`send_to`
//! (current-thread; tokio has no batch API), and a blocking thread calling
//! `recvmmsg`/`sendmmsg` itself (the raw-syscall limit).
//!
//! Run: `cargo run --release -p overlap-benches --bin udp_bench [datagrams per run] [runs]`
//!
//! Each server runs on a thread pinned to CPU 0 and echoes a fixed number of 64-byte
//! datagrams; the load, on CPU 1, keeps 32 datagrams in flight on each of 4 sockets (as
//! peers of a DNS or game server would), refilling its window if loss stalls it. The figure
//! is the server thread's own CPU time divided by the datagrams it echoed, best of N runs,
//! servers interleaved. Ratios are against tokio: below 1 means less CPU than tokio.

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::net::{RecvBatch, UdpSocket};
use overlap_benches::{pin_to_cpu, thread_cpu_time};

const SIZE: usize = 64;
const SOCKETS: usize = 4;
const WINDOW: usize = 32;

/// Echoes `n` datagrams arriving on `sock` with overlap's batch calls.
async fn overlap_batch(sock: UdpSocket, n: usize) {
    let mut batch = RecvBatch::new(32, 2048);
    let mut done = 0;
    while done < n {
        sock.recv_batch(&mut batch).await.unwrap();
        let replies: Vec<(&[u8], SocketAddr)> = batch.iter().map(|d| (d.data, d.from)).collect();
        let mut rest = &replies[..];
        while !rest.is_empty() {
            let sent = sock.send_batch(rest).await.unwrap();
            rest = &rest[sent..];
        }
        done += replies.len();
    }
}

/// Echoes `n` datagrams one syscall each, on overlap.
async fn overlap_single(sock: UdpSocket, n: usize) {
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        let (len, from) = sock.recv_from(&mut buf).await.unwrap();
        sock.send_to(&buf[..len], from).await.unwrap();
    }
}

/// The same on tokio, written the usual way.
async fn tokio_single(sock: tokio::net::UdpSocket, n: usize) {
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        let (len, from) = sock.recv_from(&mut buf).await.unwrap();
        sock.send_to(&buf[..len], from).await.unwrap();
    }
}

/// The raw limit: a blocking socket, `recvmmsg` (waiting for the first datagram) and
/// `sendmmsg` straight back, no runtime at all.
fn raw_batch(sock: StdUdp, n: usize) {
    const B: usize = 32;
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; 2048]; B];
    // SAFETY: all-zero sockaddr_storage, iovec and mmsghdr are valid empty values.
    let mut addrs: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; B];
    let mut done = 0;
    while done < n {
        // SAFETY: as above.
        let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; B];
        // SAFETY: as above.
        let mut hdrs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; B];
        for i in 0..B {
            iovs[i].iov_base = bufs[i].as_mut_ptr().cast();
            iovs[i].iov_len = bufs[i].len();
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every header points at its own buffer and address storage, all alive and
        // unmoved for the call.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                B as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        assert!(got > 0, "recvmmsg: {}", std::io::Error::last_os_error());
        let got = got as usize;
        for h in hdrs.iter_mut().take(got) {
            // Send back what arrived: the same buffer, its length, the same address.
            // SAFETY: msg_iov points at this header's iovec (set above).
            unsafe { (*h.msg_hdr.msg_iov).iov_len = h.msg_len as usize };
        }
        let mut sent = 0;
        while sent < got {
            // SAFETY: as for recvmmsg; the kernel only reads the headers here.
            let k =
                unsafe { libc::sendmmsg(fd, hdrs[sent..].as_mut_ptr(), (got - sent) as u32, 0) };
            assert!(k > 0, "sendmmsg: {}", std::io::Error::last_os_error());
            sent += k as usize;
        }
        done += got;
    }
}

/// Keeps `WINDOW` datagrams in flight on each of `SOCKETS` sockets to `to` until `stop`.
fn load(to: SocketAddr, stop: Arc<AtomicBool>) {
    pin_to_cpu(1).expect("pin the load to cpu 1");
    overlap::block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..SOCKETS {
            let stop = stop.clone();
            tasks.push(overlap::spawn(async move {
                let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let payload = [7u8; SIZE];
                let window: Vec<(&[u8], SocketAddr)> = vec![(&payload[..], to); WINDOW];
                let mut batch = RecvBatch::new(WINDOW, 2048);
                let mut in_flight = 0;
                while !stop.load(Ordering::Relaxed) {
                    while in_flight < WINDOW {
                        in_flight += sock
                            .send_batch(&window[..WINDOW - in_flight])
                            .await
                            .unwrap();
                    }
                    match overlap::time::timeout(
                        Duration::from_millis(20),
                        sock.recv_batch(&mut batch),
                    )
                    .await
                    {
                        Ok(got) => in_flight -= got.unwrap().min(in_flight),
                        // Lost datagrams (a full buffer drops them): refill the window.
                        Err(_) => in_flight = 0,
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// Runs `server` (bound to its own socket, on CPU 0) against the load; returns the server's
/// CPU time per datagram in ns.
fn measure(n: usize, server: impl FnOnce(StdUdp, usize) + Send + 'static) -> f64 {
    let sock = StdUdp::bind("127.0.0.1:0").unwrap();
    let to = sock.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let srv = std::thread::spawn(move || {
        pin_to_cpu(0).expect("pin the server to cpu 0");
        let start = thread_cpu_time();
        server(sock, n);
        thread_cpu_time() - start
    });
    let s = stop.clone();
    let client = std::thread::spawn(move || load(to, s));
    let cpu = srv.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    cpu.as_nanos() as f64 / n as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(300_000, |s| s.parse().expect("datagrams"));
    let runs: usize = args.next().map_or(3, |s| s.parse().expect("runs"));
    type Server = fn(StdUdp, usize);
    let servers: [(&str, Server); 4] = [
        ("overlap recv_batch/send_batch", |s, n| {
            s.set_nonblocking(true).unwrap();
            overlap::block_on(
                async move { overlap_batch(UdpSocket::from_std(s).unwrap(), n).await },
            )
        }),
        ("overlap recv_from/send_to", |s, n| {
            s.set_nonblocking(true).unwrap();
            overlap::block_on(
                async move { overlap_single(UdpSocket::from_std(s).unwrap(), n).await },
            )
        }),
        ("tokio recv_from/send_to", |s, n| {
            s.set_nonblocking(true).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                tokio_single(tokio::net::UdpSocket::from_std(s).unwrap(), n).await
            })
        }),
        ("blocking recvmmsg/sendmmsg (limit)", raw_batch),
    ];
    let mut best = [f64::MAX; 4];
    for _ in 0..runs {
        for (i, (_, server)) in servers.iter().enumerate() {
            best[i] = best[i].min(measure(n, *server));
        }
    }
    println!(
        "UDP echo of {SIZE}-byte datagrams, {SOCKETS} peers x {WINDOW} in flight, server on CPU 0, \
         load on CPU 1; best of {runs} runs of {n} datagrams"
    );
    println!("{:<36} {:>14} {:>10}", "server", "cpu ns/dgram", "vs tokio");
    let tokio = best[2];
    for (i, (name, _)) in servers.iter().enumerate() {
        println!("{:<36} {:>14.0} {:>9.2}x", name, best[i], best[i] / tokio);
    }
}
