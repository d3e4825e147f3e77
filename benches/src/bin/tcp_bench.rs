//! TCP echo ping-pong: overlap vs idiomatic tokio (current-thread) vs idiomatic smol
//! (`LocalExecutor` on async-io) vs a hand-written epoll loop (the readiness model's limit) vs
//! a hand-written io_uring loop (what a completion model reaches), all as separate server
//! processes pinned to CPU 0, driven by this process pinned to CPU 1.
//!
//! ```text
//! cargo build --release -p overlap --example tcp_echo -p overlap-benches --bins
//! # servers: target/release/examples/tcp_echo, target/release/tcp_echo_{tokio,smol,epoll,uring}
//! target/release/tcp_bench [seconds per run, default 1] [runs, default 3]
//! ```
//!
//! For each message size (64 B, 4 KiB) and connection count (1, 50, 500), each connection
//! sends a message, waits for the whole echo, and sends the next. Per row:
//! - round trips per second;
//! - the **server's CPU time per round trip** (the scheduler's nanosecond runtime from
//!   `/proc/PID/task/*/schedstat` over the window): with two cores the load generator
//!   saturates first, so this is the figure that compares servers;
//! - the share of that time spent in user space (tick-sampled `utime` against `stime`): what
//!   is left for a runtime to save once the kernel's share is fixed;
//! - p99 round-trip latency seen by the client;
//! - syscalls per round trip, counted by `perf stat -e raw_syscalls:sys_enter` on the server
//!   in a separate window (skipped if `perf` is missing).
//!
//! Each figure is the best of N runs (servers interleaved, so background load hits them
//! alike). Ratios are against tokio: below 1 means fewer resources than tokio.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use overlap_benches::pin_to_cpu;
use overlap_benches::server::{sibling_bin, Server};

const SERVERS: [&str; 5] = ["overlap", "tokio", "smol", "epoll", "uring"];

/// One client connection of the load generator.
struct Conn {
    stream: TcpStream,
    got: usize,
    sent_at: Option<Instant>,
}

/// A single-threaded, level-triggered epoll client driving every connection.
struct Load {
    ep: RawFd,
    conns: Vec<Conn>,
    msg: Vec<u8>,
    buf: Vec<u8>,
    events: Vec<libc::epoll_event>,
}

impl Load {
    fn new(addr: SocketAddr, conns: usize, size: usize) -> io::Result<Load> {
        // SAFETY: epoll_create1 takes only a flag.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut v = Vec::with_capacity(conns);
        for i in 0..conns {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            stream.set_nonblocking(true)?;
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: `ev` is a valid epoll_event for the call.
            let rc =
                unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut ev) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            v.push(Conn {
                stream,
                got: 0,
                sent_at: None,
            });
        }
        Ok(Load {
            ep,
            conns: v,
            msg: (0..size).map(|i| i as u8).collect(),
            buf: vec![0u8; size.max(64 * 1024)],
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
        })
    }

    fn send(conn: &mut Conn, msg: &[u8]) {
        conn.stream.write_all(msg).expect("send to server");
        conn.sent_at = Some(Instant::now());
        conn.got = 0;
    }

    /// Runs ping-pong until `until`, then waits for every outstanding echo without sending
    /// more, so the count covers exactly the server work done. Returns round trips.
    fn run(&mut self, until: Instant, mut lat: Option<&mut Vec<u64>>) -> u64 {
        for c in &mut self.conns {
            Self::send(c, &self.msg);
        }
        let mut outstanding = self.conns.len();
        let mut trips = 0;
        while outstanding > 0 {
            let sending = Instant::now() < until;
            // SAFETY: `events` is a writable array of the length passed.
            let n = unsafe {
                libc::epoll_wait(
                    self.ep,
                    self.events.as_mut_ptr(),
                    self.events.len() as i32,
                    100,
                )
            };
            for i in 0..n.max(0) as usize {
                let idx = self.events[i].u64 as usize;
                let conn = &mut self.conns[idx];
                loop {
                    let want = self.msg.len() - conn.got;
                    match conn.stream.read(&mut self.buf[..want]) {
                        Ok(0) => panic!("server closed the connection"),
                        Ok(k) => conn.got += k,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("read from server: {e}"),
                    }
                    if conn.got == self.msg.len() {
                        let sent = conn.sent_at.take().expect("a request was outstanding");
                        if let Some(l) = lat.as_deref_mut() {
                            l.push(sent.elapsed().as_nanos() as u64);
                        }
                        trips += 1;
                        if sending {
                            Self::send(conn, &self.msg);
                        } else {
                            outstanding -= 1;
                        }
                        break;
                    }
                }
            }
        }
        trips
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // SAFETY: `ep` is our epoll fd, closed once here.
        unsafe { libc::close(self.ep) };
    }
}

/// Counts the server's syscalls (`perf stat`) while the load runs for `dur`.
fn syscalls_per_trip(server: &Server, load: &mut Load, dur: Duration) -> Option<f64> {
    let mut perf = Command::new("perf")
        .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p"])
        .arg(server.pid().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    // Let perf attach; the server is idle meanwhile (blocked in epoll_wait).
    std::thread::sleep(Duration::from_millis(300));
    let trips = load.run(Instant::now() + dur, None);
    std::thread::sleep(Duration::from_millis(50));
    // SAFETY: kill takes only integers; the pid is our child's.
    unsafe { libc::kill(perf.id() as i32, libc::SIGINT) };
    let mut err = String::new();
    perf.stderr.take()?.read_to_string(&mut err).ok()?;
    perf.wait().ok()?;
    let count: f64 = err
        .lines()
        .find(|l| l.contains("raw_syscalls:sys_enter"))?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some(count / trips as f64)
}

/// The figures of one server for one row: each the best over the repetitions.
#[derive(Clone, Copy)]
struct Figures {
    trips_per_sec: f64,
    cpu_us_per_trip: f64,
    /// The share of the server's CPU time spent in user space (its own code), in percent.
    user_pct: f64,
    p99_us: f64,
    syscalls: Option<f64>,
}

impl Figures {
    fn best(self, o: Figures) -> Figures {
        Figures {
            trips_per_sec: self.trips_per_sec.max(o.trips_per_sec),
            cpu_us_per_trip: self.cpu_us_per_trip.min(o.cpu_us_per_trip),
            user_pct: if o.cpu_us_per_trip < self.cpu_us_per_trip {
                o.user_pct
            } else {
                self.user_pct
            },
            p99_us: self.p99_us.min(o.p99_us),
            syscalls: self.syscalls.or(o.syscalls),
        }
    }
}

fn measure(bin: &Path, conns: usize, size: usize, secs: f64, count: bool) -> io::Result<Figures> {
    let server = Server::start(bin)?;
    let mut load = Load::new(server.addr, conns, size)?;
    load.run(Instant::now() + Duration::from_millis(300), None); // warm-up

    let mut lat = Vec::with_capacity(1 << 20);
    let cpu0 = server.cpu_secs();
    let (user0, sys0) = server.user_system_secs();
    let t0 = Instant::now();
    let trips = load.run(t0 + Duration::from_secs_f64(secs), Some(&mut lat));
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = server.cpu_secs() - cpu0;
    let (user1, sys1) = server.user_system_secs();
    let (user, sys) = (user1 - user0, sys1 - sys0);
    lat.sort_unstable();
    let p99 = lat[(lat.len() * 99 / 100).min(lat.len() - 1)] as f64 / 1e3;

    let syscalls = if count {
        syscalls_per_trip(&server, &mut load, Duration::from_secs(1))
    } else {
        None
    };
    Ok(Figures {
        trips_per_sec: trips as f64 / elapsed,
        cpu_us_per_trip: cpu * 1e6 / trips as f64,
        user_pct: 100.0 * user / (user + sys).max(f64::MIN_POSITIVE),
        p99_us: p99,
        syscalls,
    })
}

fn bins() -> Vec<(&'static str, PathBuf)> {
    const BUILD: &str =
        "cargo build --release -p overlap --example tcp_echo -p overlap-benches --bins";
    let paths = [
        sibling_bin(&["examples", "tcp_echo"], BUILD),
        sibling_bin(&["tcp_echo_tokio"], BUILD),
        sibling_bin(&["tcp_echo_smol"], BUILD),
        sibling_bin(&["tcp_echo_epoll"], BUILD),
        sibling_bin(&["tcp_echo_uring"], BUILD),
    ];
    let mut bins: Vec<_> = SERVERS.iter().copied().zip(paths).collect();
    // io_uring may be disabled (sysctl, seccomp): the comparison goes on without it.
    if let Err(e) = Server::start(&bins[4].1) {
        println!("io_uring loop skipped: it could not start here ({e})");
        bins.truncate(4);
    }
    bins
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--load") {
        // Load only, against a server started by hand (for profiling it):
        // tcp_bench --load ADDR CONNS SIZE SECS
        let v: Vec<String> = args.skip(1).collect();
        let addr: SocketAddr = v[0].parse().expect("address");
        let mut load = Load::new(addr, v[1].parse().unwrap(), v[2].parse().unwrap())?;
        let t0 = Instant::now();
        let mut lat = Vec::new();
        let trips = load.run(
            t0 + Duration::from_secs_f64(v[3].parse().unwrap()),
            Some(&mut lat),
        );
        lat.sort();
        println!(
            "{:.0} round trips/s p50 {:.1} p99 {:.1} p999 {:.1}",
            trips as f64 / t0.elapsed().as_secs_f64(),
            lat[lat.len() / 2] as f64 / 1e3,
            lat[lat.len() * 99 / 100] as f64 / 1e3,
            lat[lat.len() * 999 / 1000] as f64 / 1e3
        );
        return Ok(());
    }
    let secs: f64 = args
        .next()
        .map_or(1.0, |s| s.parse().expect("seconds per run"));
    let reps: usize = args.next().map_or(3, |s| s.parse().expect("repetitions"));
    pin_to_cpu(1)?;
    let bins = bins();
    println!(
        "TCP echo ping-pong, servers on CPU 0, load on CPU 1, best of {reps} runs of {secs} s \
         (servers interleaved)"
    );
    println!(
        "{:>5} {:>5} {:>8} {:>9} {:>10} {:>6} {:>9} {:>10} {:>10} {:>10}",
        "size",
        "conns",
        "server",
        "rt/s",
        "cpu µs/rt",
        "user%",
        "p99 µs",
        "syscall/rt",
        "cpu/tokio",
        "p99/tokio"
    );
    let mut ratios = Vec::new();
    // The hand-written epoll loop is the raw-syscall limit: no runtime can do much better.
    let mut limit_ratios = Vec::new();
    let mut smol_ratios = Vec::new();
    // The io_uring loop: what a completion model reaches, which no epoll reactor can.
    let mut uring_ratios = Vec::new();
    for size in [64usize, 4096] {
        for conns in [1usize, 50, 500] {
            let mut best: Vec<Option<Figures>> = vec![None; bins.len()];
            for rep in 0..reps {
                // Rotate the order so no server always runs right after the same one.
                for k in 0..bins.len() {
                    let i = (k + rep) % bins.len();
                    let f = measure(&bins[i].1, conns, size, secs, rep == 0)?;
                    best[i] = Some(best[i].map_or(f, |b| b.best(f)));
                }
            }
            let best: Vec<Figures> = best.into_iter().map(Option::unwrap).collect();
            let tokio = best[1];
            for ((name, _), r) in bins.iter().zip(&best) {
                let sys = r.syscalls.map_or("n/a".to_string(), |s| format!("{s:.3}"));
                println!(
                    "{:>5} {:>5} {:>8} {:>9.0} {:>10.3} {:>6.1} {:>9.1} {:>10} {:>10.3} {:>10.3}",
                    size,
                    conns,
                    name,
                    r.trips_per_sec,
                    r.cpu_us_per_trip,
                    r.user_pct,
                    r.p99_us,
                    sys,
                    r.cpu_us_per_trip / tokio.cpu_us_per_trip,
                    r.p99_us / tokio.p99_us
                );
            }
            ratios.push(best[0].cpu_us_per_trip / tokio.cpu_us_per_trip);
            smol_ratios.push(best[2].cpu_us_per_trip / tokio.cpu_us_per_trip);
            limit_ratios.push(best[3].cpu_us_per_trip / tokio.cpu_us_per_trip);
            if let Some(uring) = best.get(4) {
                uring_ratios.push(uring.cpu_us_per_trip / tokio.cpu_us_per_trip);
            }
        }
    }
    let geo = |v: &[f64]| (v.iter().map(|r| r.ln()).sum::<f64>() / v.len() as f64).exp();
    print!(
        "server CPU per round trip against tokio, geometric mean: overlap {:.3}, smol {:.3}, \
         hand-written epoll loop (the limit) {:.3}",
        geo(&ratios),
        geo(&smol_ratios),
        geo(&limit_ratios),
    );
    if !uring_ratios.is_empty() {
        print!(", hand-written io_uring loop {:.3}", geo(&uring_ratios));
    }
    println!();
    Ok(())
}
