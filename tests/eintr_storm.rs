//! An EINTR storm: a handler installed without `SA_RESTART`, and a thread signalling every
//! 50 µs or so, while the runtime runs a workload of every kind of I/O it offers. Every
//! syscall may then fail with `EINTR`; no user may see `Interrupted`, nor lose or gain a
//! byte, nor wait forever, and timers may not fire early.
//! Each test runs in a child process of its own (the handler is process-wide).

mod support;

use std::io::SeekFrom;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use overlap::fs::{self, File};
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{RecvBatch, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};
use overlap::pipe::{pipe, splice_copy};
use overlap::process::Command;
use overlap::time::{sleep, timeout};
use support::{pass_through, pattern_seeded, run_in_child, tcp_pair, within, TempDir};

const HANG: Duration = Duration::from_secs(30);
const MIB: usize = 1 << 20;

/// Signals handled, in all and on the runtime's thread.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
static ON_RUNTIME: AtomicUsize = AtomicUsize::new(0);
static RUNTIME_TID: AtomicI32 = AtomicI32::new(0);

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
    if gettid() == RUNTIME_TID.load(Ordering::Relaxed) {
        ON_RUNTIME.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whom the storm hits.
#[derive(Clone, Copy)]
enum Target {
    /// The runtime's thread alone (`tgkill`).
    RuntimeThread,
    /// Every thread of the process in turn (the blocking pool's too), and the process as a
    /// whole (`kill(getpid())`).
    Everyone,
}

/// Installs the counting handler for SIGUSR1 without `SA_RESTART`, and starts the storm.
fn storm(target: Target) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    // SAFETY: a zeroed sigaction is "no flags, empty mask"; the handler only touches atomics
    // and calls gettid, which are async-signal-safe.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    RUNTIME_TID.store(gettid(), Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let runtime = gettid();
    let t = std::thread::spawn(move || {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let me = gettid();
        let mut round = 0u32;
        while !flag.load(Ordering::Relaxed) {
            let tids: Vec<i32> = match target {
                Target::RuntimeThread => vec![runtime],
                Target::Everyone => std::fs::read_dir("/proc/self/task")
                    .unwrap()
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .filter(|&tid| tid != me)
                    .collect(),
            };
            for tid in tids {
                // SAFETY: tgkill takes integers; a thread that has ended gives ESRCH.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
            }
            round += 1;
            if matches!(target, Target::Everyone) && round % 4 == 0 {
                // SAFETY: kill takes integers; the handler is installed process-wide.
                unsafe { libc::kill(pid, libc::SIGUSR1) };
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    });
    (stop, t)
}

/// Runs the whole workload under a storm aimed at `target`.
fn run_storm(target: Target) {
    let (stop, pester) = storm(target);
    overlap::block_on(async {
        within(HANG, workload(), "the workload hung under the storm").await;
    });
    stop.store(true, Ordering::Relaxed);
    pester.join().unwrap();
    assert!(
        ON_RUNTIME.load(Ordering::Relaxed) > 100,
        "few signals reached the runtime thread, so little was tested"
    );
    if matches!(target, Target::Everyone) {
        assert!(SIGNALS.load(Ordering::Relaxed) > ON_RUNTIME.load(Ordering::Relaxed));
    }
}

async fn workload() {
    timers().await;
    tcp().await;
    udp().await;
    unix().await;
    pipes().await;
    files().await;
    processes().await;
    threads().await;
}

/// Sleeps and timeouts end at or after their deadline, and an idle loop under the storm
/// wakes about once per signal, not more.
async fn timers() {
    for _ in 0..10 {
        let start = Instant::now();
        sleep(Duration::from_millis(3)).await;
        assert!(start.elapsed() >= Duration::from_millis(3));
        let start = Instant::now();
        let res = timeout(Duration::from_millis(2), std::future::pending::<()>()).await;
        assert!(res.is_err());
        assert!(start.elapsed() >= Duration::from_millis(2));
    }
    // First with no fd registered (the loop sleeps on a futex), then with one (in epoll).
    idle_wakes_follow_signals().await;
    let _registered = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    idle_wakes_follow_signals().await;
}

/// Over 100 ms of idle sleep, the loop wakes at most about once per signal it gets.
async fn idle_wakes_follow_signals() {
    let waits = |m: overlap::RuntimeMetrics| m.epoll_waits + m.futex_sleeps;
    let (before, signals) = (
        waits(overlap::metrics()),
        ON_RUNTIME.load(Ordering::Relaxed),
    );
    sleep(Duration::from_millis(100)).await;
    let waits = waits(overlap::metrics()) - before;
    let signals = (ON_RUNTIME.load(Ordering::Relaxed) - signals) as u64;
    assert!(
        waits <= 2 * signals + 20,
        "{waits} sleeps for {signals} signals in 100 ms: the loop spins"
    );
}

/// 2 MiB each way through a TCP echo, accepting and connecting under the storm (by name too,
/// which resolves on the pool), then half-close.
async fn tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = overlap::spawn(async move {
        for _ in 0..2 {
            let (conn, _) = listener.accept().await.unwrap();
            let (mut rd, mut wr) = conn.split();
            let n = overlap::io::copy(&mut rd, &mut wr).await.unwrap();
            wr.close().await.unwrap();
            assert_eq!(n, 2 * MIB as u64);
        }
    });
    for addr in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let mut conn = TcpStream::connect(addr.as_str()).await.unwrap();
        let data = pattern_seeded(2 * MIB, 1);
        let got = write_and_read_back(&mut conn, &data).await;
        assert!(got == data, "TCP echo changed the bytes");
    }
    server.await.unwrap();
}

async fn write_and_read_back(conn: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let (mut rd, mut wr) = conn.split();
    let write = async {
        wr.write_all(data).await.unwrap();
        wr.close().await.unwrap();
    };
    let read = async {
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        got
    };
    futures_util::join!(write, read).1
}

async fn udp() {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = b.local_addr().unwrap();
    let mut buf = [0u8; 64];
    for i in 0..200u32 {
        a.send_to(&i.to_le_bytes(), to).await.unwrap();
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&i.to_le_bytes()[..], a.local_addr().unwrap())
        );
    }
    let mut batch = RecvBatch::new(16, 64);
    for round in 0..50u32 {
        let bodies: Vec<[u8; 4]> = (0..16).map(|i| (round * 16 + i).to_le_bytes()).collect();
        let queue: Vec<(&[u8], _)> = bodies.iter().map(|d| (&d[..], to)).collect();
        let mut sent = 0;
        while sent < queue.len() {
            sent += a.send_batch(&queue[sent..]).await.unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 16 {
            b.recv_batch(&mut batch).await.unwrap();
            got.extend(batch.iter().map(|d| d.data.to_vec()));
        }
        let want: Vec<Vec<u8>> = bodies.iter().map(|d| d.to_vec()).collect();
        assert_eq!(got, want);
    }
}

async fn unix() {
    let (a, mut b) = UnixStream::pair().unwrap();
    pass_through(a, &mut b, &pattern_seeded(MIB, 2), "a Unix stream").await;
    let (x, y) = UnixDatagram::pair().unwrap();
    let mut buf = [0u8; 16];
    for i in 0..500u32 {
        x.send(&i.to_le_bytes()).await.unwrap();
        let n = y.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &i.to_le_bytes());
    }
}

/// 2 MiB through a pipe, `splice_copy` between TCP connections, and `sendfile`.
async fn pipes() {
    let (tx, mut rx) = pipe().unwrap();
    let data = pattern_seeded(2 * MIB, 3);
    pass_through(tx, &mut rx, &data, "a pipe").await;

    let (client, proxy_in) = tcp_pair().await;
    let (proxy_out, mut server) = tcp_pair().await;
    let proxy = overlap::spawn(async move {
        let n = splice_copy(&proxy_in, &proxy_out).await.unwrap();
        proxy_out.shutdown(Shutdown::Write).unwrap();
        n
    });
    pass_through(client, &mut server, &data, "splice_copy").await;
    assert_eq!(proxy.await.unwrap(), data.len() as u64);

    let dir = TempDir::new("eintr-sendfile");
    let path = dir.join("big");
    std::fs::write(&path, &data).unwrap();
    let mut file = File::open(&path).await.unwrap();
    let (a, mut b) = tcp_pair().await;
    let reader = overlap::spawn(async move {
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        got
    });
    let n = file.send_to(&a, 0, data.len() as u64).await.unwrap();
    assert_eq!(n, data.len() as u64);
    a.shutdown(Shutdown::Write).unwrap();
    assert!(reader.await.unwrap() == data, "sendfile changed the bytes");
}

/// Reads, writes and seeks on a `File` (on the pool), and `read_dir`.
async fn files() {
    let dir = TempDir::new("eintr-fs");
    let path = dir.join("f");
    let data = pattern_seeded(MIB, 4);
    let mut f = File::create(&path).await.unwrap();
    for chunk in data.chunks(100_000) {
        f.write_all(chunk).await.unwrap();
    }
    f.flush().await.unwrap();
    assert_eq!(f.seek(SeekFrom::Start(1000)).await.unwrap(), 1000);
    f.write_all(b"patched").await.unwrap();
    f.flush().await.unwrap();
    drop(f);
    let mut want = data.clone();
    want[1000..1007].copy_from_slice(b"patched");
    let mut f = File::open(&path).await.unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).await.unwrap();
    assert!(got == want, "the file changed");
    assert_eq!(f.seek(SeekFrom::Start(998)).await.unwrap(), 998);
    let mut nine = [0u8; 9];
    f.read_exact(&mut nine).await.unwrap();
    assert_eq!(&nine, &want[998..1007]);
    assert!(fs::read(&path).await.unwrap() == want);
    for i in 0..50 {
        fs::write(dir.join(&format!("e{i}")), b"x").await.unwrap();
    }
    let mut entries = fs::read_dir(dir.path()).await.unwrap();
    let mut n = 0;
    while let Some(_e) = entries.next_entry().await.unwrap() {
        n += 1;
    }
    assert_eq!(n, 51);
    fifo_through_a_file(&dir).await;
}

/// A `File` on a FIFO that a slow writer feeds: its pool thread blocks in `read` (and first
/// in `open`), where a signal does interrupt.
async fn fifo_through_a_file(dir: &TempDir) {
    let path = dir.join("fifo");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let data = pattern_seeded(256 * 1024, 6);
    let (sent, at) = (data.clone(), path.clone());
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let mut w = std::fs::OpenOptions::new().write(true).open(at).unwrap();
        for chunk in sent.chunks(2048) {
            std::io::Write::write_all(&mut w, chunk).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut f = File::open(&path).await.unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).await.unwrap();
    writer.join().unwrap();
    assert!(got == data, "the FIFO changed the bytes");
}

async fn processes() {
    let mut child = Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    pass_through(stdin, &mut stdout, &pattern_seeded(MIB / 2, 5), "cat").await;
    assert!(child.wait().await.unwrap().success());
    for _ in 0..5 {
        let out = Command::new("sh")
            .args(["-c", "sleep 0.01; echo out; echo err >&2"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            (&out.stdout[..], &out.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
    }
}

/// `spawn_blocking`, cross-thread `Handle::spawn`, and wakes from other threads.
async fn threads() {
    let jobs: Vec<_> = (0..32u64)
        .map(|i| {
            overlap::spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(2));
                i * i
            })
        })
        .collect();
    for (i, job) in jobs.into_iter().enumerate() {
        assert_eq!(job.await.unwrap(), (i * i) as u64);
    }
    let handle = overlap::Handle::current();
    let remote = std::thread::spawn(move || {
        (0..100u64)
            .map(|i| handle.spawn(async move { i + 1 }))
            .collect::<Vec<_>>()
    });
    let tasks = overlap::spawn_blocking(move || remote.join().unwrap())
        .await
        .unwrap();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    assert_eq!(sum, 5050);
    // Wakes from another thread (the eventfd path): each step waits for the next.
    let state: Arc<std::sync::Mutex<(u32, Option<std::task::Waker>)>> = Arc::default();
    let remote = state.clone();
    let sender = std::thread::spawn(move || {
        for _ in 0..200 {
            let waker = {
                let mut g = remote.lock().unwrap();
                g.0 += 1;
                g.1.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    for i in 1..=200u32 {
        std::future::poll_fn(|cx| {
            let mut g = state.lock().unwrap();
            if g.0 >= i {
                return std::task::Poll::Ready(());
            }
            g.1 = Some(cx.waker().clone());
            std::task::Poll::Pending
        })
        .await;
    }
    sender.join().unwrap();
}

#[test]
fn a_storm_on_the_runtime_thread_changes_nothing() {
    run_in_child("a_storm_on_the_runtime_thread_changes_nothing", || {
        run_storm(Target::RuntimeThread)
    });
}

#[test]
fn a_storm_on_every_thread_and_the_process_changes_nothing() {
    run_in_child(
        "a_storm_on_every_thread_and_the_process_changes_nothing",
        || run_storm(Target::Everyone),
    );
}
