//! Serving a file over TCP: the cost of sending its bytes to a loopback connection.
//!
//! Run: `cargo run --release -p overlap-benches --bin sendfile_bench [MiB] [DIR]` (default
//! 512 MiB in /dev/shm if present, else the temp dir; the page cache is warm)
//!
//! The sender runs alone on CPU 0, a reader thread on CPU 1 counts the bytes. Contenders:
//! overlap's `File::send_to` (`sendfile` on the blocking pool), overlap's `io::copy` from a
//! `File` into the socket, tokio's `io::copy` from a `tokio::fs::File` on its current-thread
//! runtime, and the limit: a blocking thread doing nothing but `sendfile`. Figures are the
//! process CPU time spent while sending (pool threads included) and the wall time, per GiB,
//! best of three interleaved runs; ratios say how many times more the contender needs than
//! overlap's `send_to`.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use overlap_benches::{cpu_and_wall_per_gib, pin_to_cpu, print_table, process_cpu_time};

const RUNS: usize = 3;

/// One sender: connects to `sink` and sends the whole file at `path`.
type Sender = fn(&Path, SocketAddr);

fn overlap_send_to(path: &Path, sink: SocketAddr) {
    overlap::block_on(async move {
        let mut file = overlap::fs::File::open(path).await.unwrap();
        let len = file.metadata().await.unwrap().len();
        let to = overlap::net::TcpStream::connect(sink).await.unwrap();
        assert_eq!(file.send_to(&to, 0, len).await.unwrap(), len);
    })
}

fn overlap_copy(path: &Path, sink: SocketAddr) {
    overlap::block_on(async move {
        let file = overlap::fs::File::open(path).await.unwrap();
        let mut to = overlap::net::TcpStream::connect(sink).await.unwrap();
        overlap::io::copy(file, &mut to).await.unwrap();
    })
}

fn tokio_copy(path: &Path, sink: SocketAddr) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut file = tokio::fs::File::open(path).await.unwrap();
        let mut to = tokio::net::TcpStream::connect(sink).await.unwrap();
        tokio::io::copy(&mut file, &mut to).await.unwrap();
    })
}

/// The limit: a blocking socket and nothing but `sendfile` calls.
fn blocking_sendfile(path: &Path, sink: SocketAddr) {
    let file = std::fs::File::open(path).unwrap();
    let len = file.metadata().unwrap().len();
    let to = TcpStream::connect(sink).unwrap();
    let mut off: libc::off_t = 0;
    while (off as u64) < len {
        let left = (len - off as u64).min(1 << 30) as usize;
        // SAFETY: `off` is a valid off_t the kernel advances; no buffer of ours is passed.
        let n = unsafe { libc::sendfile(to.as_raw_fd(), file.as_raw_fd(), &mut off, left) };
        assert!(n > 0, "sendfile: {}", std::io::Error::last_os_error());
    }
}

/// One run: (process CPU, wall time) to send the file at `path` of `total` bytes.
fn run(sender: Sender, path: &Path, total: usize) -> (Duration, Duration) {
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        pin_to_cpu(1).unwrap();
        let (mut conn, _) = sink.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        loop {
            match conn.read(&mut buf).unwrap() {
                0 => break got,
                n => got += n,
            }
        }
    });
    // The reader's CPU counts too, but it does the same work for every contender.
    let cpu0 = process_cpu_time();
    let start = Instant::now();
    let path = path.to_owned();
    std::thread::spawn(move || {
        pin_to_cpu(0).unwrap();
        sender(&path, sink_addr);
    })
    .join()
    .unwrap();
    let got = reader.join().unwrap();
    let (wall, cpu) = (start.elapsed(), process_cpu_time() - cpu0);
    assert_eq!(got, total, "bytes went missing");
    (cpu, wall)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(512);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        }
    });
    let total = mib << 20;
    let path = dir.join(format!("overlap-sendfile-bench-{}", std::process::id()));
    std::fs::write(&path, vec![0x5au8; total]).unwrap();
    let senders: [(&str, Sender); 4] = [
        ("overlap send_to", overlap_send_to),
        ("overlap copy", overlap_copy),
        ("tokio copy", tokio_copy),
        ("blocking sendfile", blocking_sendfile),
    ];
    let rows = cpu_and_wall_per_gib(&senders, RUNS, total, "CPU (both ends)", |(_, s)| {
        run(*s, &path, total)
    });
    let _ = std::fs::remove_file(&path);
    println!(
        "overlap sendfile_bench: a {mib} MiB file in {} to a loopback TCP reader, best of \
         {RUNS}; ratio > 1 means the contender needs more than overlap's send_to",
        dir.display()
    );
    let names: Vec<&str> = senders.iter().map(|s| s.0).collect();
    print_table(&names, &rows);
}
