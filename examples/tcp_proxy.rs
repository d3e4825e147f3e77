//! A TCP proxy that forwards bytes inside the kernel with `splice`: they never enter this
//! process's memory.
//!
//! ```text
//! cargo run --release --example tcp_echo -- 127.0.0.1:7000 &
//! cargo run --release --example tcp_proxy -- 127.0.0.1:7001 127.0.0.1:7000
//! ```
//!
//! The first argument is the address to listen on (default `127.0.0.1:7001`), the second the
//! upstream to forward every connection to, an IP address and port (default
//! `127.0.0.1:7000`; a host name is not looked up); a bad argument is refused with a message
//! naming it, as is an upstream that is the proxy's own address. Each connection is one
//! `splice_bidirectional`: when one side finishes sending, the proxy passes the half-close
//! on, and the connection ends once both directions have. Each connection holds six
//! descriptors: connections beyond what `RLIMIT_NOFILE` allows wait in the listen backlog
//! (instead of being accepted and then reset for want of a pipe), even when the limit is
//! lowered while the proxy runs (`prlimit`); the proxy says so on stderr, once while clients
//! wait. An upstream that does not answer a connect within 5 s ends that connection. A side
//! that resets its connection ends both at once, even while the proxy only waits on the
//! other side (a client that gives up on an upstream that stopped reading):
//! `splice_bidirectional` watches an idle side for errors. The other side sees a reset too,
//! not an end of file that would pass a cut stream off as whole.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::Poll;

use overlap::net::{TcpListener, TcpStream};
use overlap::pipe::splice_bidirectional;
use overlap::sync::Notify;

fn main() -> std::process::ExitCode {
    // The error in its own words: a `main` returning it would print its `Debug` form.
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log(format_args!("error: {e}"));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let invalid = |msg| io::Error::new(io::ErrorKind::InvalidInput, msg);
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:7001".to_string());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:7000".to_string());
    if let Some(arg) = args.next() {
        return Err(invalid(format!(
            "unexpected argument {arg:?} (usage: tcp_proxy [ADDRESS [UPSTREAM]])"
        )));
    }
    let upstream: SocketAddr = upstream.parse().map_err(|_| {
        invalid(format!(
            "upstream {upstream:?}: expected an IP address and port, such as 127.0.0.1:7000"
        ))
    })?;
    overlap::block_on(async {
        let listener = TcpListener::bind(listen.as_str())
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("listen address {listen:?}: {e}")))?;
        let local = listener.local_addr()?;
        if reaches(upstream, local) {
            return Err(invalid(format!(
                "upstream {upstream} is this proxy's own address: each connection would open another"
            )));
        }
        println!("listening on {local}");
        serve(listener, upstream).await
    })
}

/// Whether connecting to `upstream` reaches the listener bound to `local`.
fn reaches(upstream: SocketAddr, local: SocketAddr) -> bool {
    let any_local = |ip: std::net::IpAddr| ip.is_loopback() || ip.is_unspecified();
    upstream.port() == local.port()
        && (upstream.ip() == local.ip()
            || (local.ip().is_unspecified() && any_local(upstream.ip())))
}

/// Descriptors each proxied connection holds: the client, the upstream socket, and a
/// private pipe (two ends) per direction.
const FDS_PER_CONN: u64 = 6;
/// Descriptors kept aside for the process itself (listener, reactor, stdio, ...).
const FD_RESERVE: u64 = 32;
/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often the descriptor limit is read again while connections wait for room: it may be
/// raised with no connection ending.
const LIMIT_RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Accepts connections forever and proxies each to `upstream` in its own task.
///
/// Only as many connections are taken in as the descriptor limit can carry whole: a
/// connection accepted when its upstream socket or pipes cannot be made would be reset,
/// where one left in the listen backlog is served once others finish. The limit is read
/// again before each accept, so one lowered while the proxy runs counts too.
pub async fn serve(listener: TcpListener, upstream: SocketAddr) -> io::Result<()> {
    let open = Rc::new((Cell::new(0usize), Notify::new()));
    // Whether clients kept waiting at the cap were told of in the log: once until the
    // backlog is found empty below the cap, however many connections end and start meanwhile.
    let mut told = false;
    loop {
        let accepted = std::future::poll_fn(|cx| {
            // Read on every wake-up, just before a connection would be taken in.
            if open.0.get() >= max_connections() {
                return Poll::Ready(None);
            }
            let accepted = listener.poll_accept(cx);
            told &= accepted.is_ready();
            accepted.map(Some)
        })
        .await;
        let Some(accepted) = accepted else {
            if !told && client_waiting(&listener) {
                told = true;
                log(format_args!(
                    "{} connections open, all the descriptor limit allows: new ones wait to \
                     be accepted until one ends",
                    open.0.get()
                ));
            }
            // A connection ending makes room, and so may a raised limit.
            let _ = overlap::time::timeout(LIMIT_RECHECK, open.1.notified()).await;
            continue;
        };
        match accepted {
            Ok((client, peer)) => {
                let slot = Slot::take(&open);
                overlap::spawn(async move {
                    // Held to the end of the task, however it ends (a panic included).
                    let _slot = slot;
                    if let Err(e) = proxy(client, upstream).await {
                        log(format_args!("{peer}: {e}"));
                    }
                });
            }
            // Out of descriptors or kernel memory: back off and let connections close.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                ) =>
            {
                overlap::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(e) => log(format_args!("accept error: {e}")),
        }
    }
}

/// One connection's place under the cap; given back (and the accept loop woken) on drop.
struct Slot(Rc<(Cell<usize>, Notify)>);

impl Slot {
    fn take(open: &Rc<(Cell<usize>, Notify)>) -> Slot {
        open.0.set(open.0.get() + 1);
        Slot(open.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0 .0.set(self.0 .0.get() - 1);
        self.0 .1.notify_one();
    }
}

/// Whether a connection waits in `listener`'s backlog, left there.
fn client_waiting(listener: &TcpListener) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and no wait.
    unsafe { libc::poll(&mut fd, 1, 0) == 1 }
}

/// Writes `line` to stderr. `eprintln!` panics where stderr cannot be written (a pipe whose
/// reader is gone), and would take the accept loop, and every connection, with it.
fn log(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(io::stderr(), "{line}");
}

/// How many connections the soft `RLIMIT_NOFILE` leaves room for (at least one).
fn max_connections() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur == libc::RLIM_INFINITY
    {
        return usize::MAX;
    }
    let n = lim.rlim_cur.saturating_sub(FD_RESERVE) / FDS_PER_CONN;
    usize::try_from(n.max(1)).unwrap_or(usize::MAX)
}

/// Forwards both directions between `client` and a new connection to `upstream`; returns
/// the bytes sent each way (client to upstream, upstream to client). Both connections close
/// when this returns: reset, when forwarding failed (one side reset its connection), so the
/// other side learns its stream was cut short instead of reading a clean end of file.
pub async fn proxy(client: TcpStream, upstream: SocketAddr) -> io::Result<(u64, u64)> {
    // An upstream that drops SYNs (down host, full backlog) would otherwise hold this
    // connection, and its descriptors, for the kernel's whole SYN retry time (~2 min),
    // long after the client gave up.
    let server = overlap::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out"))??;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let forwarded = splice_bidirectional(&client, &server).await;
    if forwarded.is_err() {
        // SO_LINGER {on, 0}: the closes below reset both connections.
        let _ = client.set_linger(Some(std::time::Duration::ZERO));
        let _ = server.set_linger(Some(std::time::Duration::ZERO));
    }
    forwarded
}
