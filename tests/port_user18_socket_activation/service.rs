//! The socket-activated service: takes over its passed sockets, serves a line echo on each
//! stream listener (plus `PID`, `GEN` and `SPAWN` requests) and echoes datagrams on the
//! datagram socket, pings the watchdog at half `WATCHDOG_USEC`, and answers control events
//! (the child process turns `SIGHUP`, `SIGTERM` and `SIGUSR1` into them): reload, drain,
//! or hand its open connections to the manager's fd store and stop.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::{TcpListener, UnixDatagram, UnixListener};
use overlap::sync::{mpsc, CancellationToken};
use overlap::task::JoinSet;
use overlap::time::{self, Instant};

use super::listen_fds::{adopt, hex_encode, passed_fds, Conn, Inherited, ListenEnv};
use super::notify::{monotonic_usec, Notifier};

/// Exit codes: stopped as asked; failed to start; drain deadline passed with
/// connections still open (they were cut).
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_CUT: i32 = 3;

/// The longest partial line a connection may hold (and so carry across a restart in its
/// `FDNAME`, which systemd caps at 255 bytes).
pub const MAX_LINE: usize = 100;

/// What the service manager asks, by signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// `SIGHUP`: reload (`RELOADING=1`, then `READY=1`).
    Reload,
    /// `SIGTERM`: stop accepting, let open connections finish, exit.
    Terminate,
    /// `SIGUSR1`: put every open connection in the fd store and exit, for a restart.
    Handover,
}

/// What the service reads from its environment.
pub struct Setup {
    pub listen: ListenEnv,
    pub notify_socket: Option<String>,
    pub watchdog_usec: Option<String>,
    pub watchdog_pid: Option<String>,
    pub pid: u32,
    /// How long open connections may take to finish after `SIGTERM`.
    pub drain: Duration,
    /// Fault injection: stop pinging the watchdog after this many pings.
    pub watchdog_limit: Option<u32>,
}

/// A connection taken back from its task by a handover, with its unread partial line.
type Carried = (Conn, Vec<u8>);

/// What every connection shares.
struct Ctx {
    pid: u32,
    generation: Cell<u32>,
    handover: CancellationToken,
}

/// The watchdog period for the service, half of `WATCHDOG_USEC`; `None` when the watchdog
/// is off or `WATCHDOG_PID` names another process.
pub fn watchdog_period(
    usec: Option<&str>,
    pid: Option<&str>,
    ours: u32,
) -> io::Result<Option<Duration>> {
    let Some(usec) = usec else { return Ok(None) };
    if pid.is_some_and(|p| p.parse::<u32>().ok() != Some(ours)) {
        return Ok(None);
    }
    match usec.parse::<u64>() {
        Ok(u) if u >= 2 => Ok(Some(Duration::from_micros(u / 2))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad WATCHDOG_USEC={usec:?}"),
        )),
    }
}

/// Sends `WATCHDOG=1` every `period`, the first one `period` from now; stops after
/// `limit` pings if given (a service that hangs, for the tests).
pub async fn ping_watchdog(notifier: Rc<Notifier>, period: Duration, limit: Option<u32>) {
    let mut tick = time::interval_at(Instant::now() + period, period);
    let mut sent = 0;
    while limit.is_none_or(|l| sent < l) {
        tick.tick().await;
        if notifier.send("WATCHDOG=1").await.is_err() {
            return;
        }
        sent += 1;
    }
}

/// The service's main: returns its exit code.
pub async fn run(setup: Setup, mut control: mpsc::UnboundedReceiver<Control>) -> i32 {
    let notifier = match Notifier::new(setup.notify_socket.as_deref()) {
        Ok(n) => Rc::new(n),
        Err(e) => {
            eprintln!("service: {e}");
            return EXIT_FAILED;
        }
    };
    let _ = notifier
        .send("STATUS=starting\nEXTEND_TIMEOUT_USEC=5000000")
        .await;
    let period = watchdog_period(
        setup.watchdog_usec.as_deref(),
        setup.watchdog_pid.as_deref(),
        setup.pid,
    );
    let started = period.and_then(|p| Ok((p, take_sockets(&setup.listen, setup.pid)?)));
    let (period, sockets) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = notifier
                .send(&format!("STATUS=failed: {e}\nERRNO={}", libc::EINVAL))
                .await;
            return EXIT_FAILED;
        }
    };
    let ctx = Rc::new(Ctx {
        pid: setup.pid,
        generation: Cell::new(1),
        handover: CancellationToken::new(),
    });
    let (conn_tx, mut conn_rx) = mpsc::unbounded_channel();
    let mut accepts = JoinSet::new();
    let mut conns = JoinSet::new();
    let (mut listening, mut restored) = (0, 0);
    for socket in sockets {
        listening += 1;
        match socket {
            Inherited::Tcp(l) => drop(accepts.spawn(accept_tcp(l, conn_tx.clone()))),
            Inherited::Unix(l) => drop(accepts.spawn(accept_unix(l, conn_tx.clone()))),
            Inherited::Datagram(d) => drop(accepts.spawn(echo_datagrams(d))),
            Inherited::Conn(c, pending) => {
                (listening, restored) = (listening - 1, restored + 1);
                conns.spawn(serve(c, pending, ctx.clone()));
            }
        }
    }
    drop(conn_tx);
    let status = |g| format!("STATUS=serving {listening} sockets, generation {g}");
    let _ = notifier
        .send(&format!(
            "READY=1\n{}, {restored} connections restored\nMAINPID={}",
            status(1),
            setup.pid
        ))
        .await;
    if let Some(p) = period {
        overlap::spawn(ping_watchdog(notifier.clone(), p, setup.watchdog_limit));
    }
    let ctl = loop {
        overlap::select! {
            Some(c) = conn_rx.recv() => drop(conns.spawn(serve(c, Vec::new(), ctx.clone()))),
            Some(_) = conns.join_next() => {}
            ctl = control.recv() => match ctl {
                Some(Control::Reload) => {
                    let usec = monotonic_usec();
                    let _ = notifier.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}")).await;
                    ctx.generation.set(ctx.generation.get() + 1);
                    let _ = notifier.send(&format!("READY=1\n{}", status(ctx.generation.get()))).await;
                }
                other => break other.unwrap_or(Control::Terminate),
            },
        }
    };
    // Stop accepting; connections the accept tasks took are still served or stored.
    accepts.abort_all();
    while accepts.join_next().await.is_some() {}
    while let Ok(c) = conn_rx.try_recv() {
        conns.spawn(serve(c, Vec::new(), ctx.clone()));
    }
    if ctl == Control::Handover {
        return hand_over(&notifier, &ctx, conns).await;
    }
    let open = conns.len();
    let _ = notifier
        .send(&format!("STOPPING=1\nSTATUS=draining {open} connections"))
        .await;
    let drained = time::timeout(setup.drain, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    if drained.is_ok() {
        EXIT_OK
    } else {
        EXIT_CUT
    }
}

/// Puts every open connection in the manager's fd store, one `FDSTORE=1` datagram each
/// named `conn` (`conn-<hex>` with the bytes of a partial line it had read), then says
/// `STOPPING=1`.
async fn hand_over(
    notifier: &Notifier,
    ctx: &Ctx,
    mut conns: JoinSet<io::Result<Option<Carried>>>,
) -> i32 {
    ctx.handover.cancel();
    let mut stored = 0;
    while let Some(done) = conns.join_next().await {
        let Ok(Ok(Some((conn, pending)))) = done else {
            continue;
        };
        let name = match pending.is_empty() {
            true => "conn".to_owned(),
            false => format!("conn-{}", hex_encode(&pending)),
        };
        let fd: BorrowedFd<'_> = match &conn {
            Conn::Tcp(s) => s.as_fd(),
            Conn::Unix(s) => s.as_fd(),
        };
        let msg = format!("FDSTORE=1\nFDNAME={name}");
        if notifier.send_with_fds(&msg, &[fd]).await.is_ok() {
            stored += 1;
        }
    }
    let _ = notifier
        .send(&format!(
            "STOPPING=1\nSTATUS=handed over {stored} connections"
        ))
        .await;
    EXIT_OK
}

/// The passed sockets, taken over.
fn take_sockets(env: &ListenEnv, pid: u32) -> io::Result<Vec<Inherited>> {
    let passed = passed_fds(env, pid)?;
    let mut out = Vec::new();
    let mut passed = passed.into_iter();
    while let Some((fd, name)) = passed.next() {
        // SAFETY: `passed_fds` listed fds placed for this process, each taken once here.
        match unsafe { adopt(fd, &name) } {
            Ok(s) => out.push(s),
            Err(e) => {
                // Close the rest too: they are ours and nothing will use them.
                for (rest, name) in passed {
                    // SAFETY: as above; adopting closes the fd whatever it finds.
                    drop(unsafe { adopt(rest, &name) });
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Hands each accepted TCP connection to the main loop.
async fn accept_tcp(l: TcpListener, to: mpsc::UnboundedSender<Conn>) {
    while let Ok((s, _)) = l.accept().await {
        if to.send(Conn::Tcp(s)).is_err() {
            return;
        }
    }
}

/// Hands each accepted Unix connection to the main loop.
async fn accept_unix(l: UnixListener, to: mpsc::UnboundedSender<Conn>) {
    while let Ok((s, _)) = l.accept().await {
        if to.send(Conn::Unix(s)).is_err() {
            return;
        }
    }
}

/// Sends each datagram back to its sender, if the sender is bound to a path.
async fn echo_datagrams(d: UnixDatagram) {
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = d.recv_from(&mut buf).await {
        if let Some(path) = from.as_pathname() {
            let _ = d.send_to(&buf[..n], path).await;
        }
    }
}

/// Serves one connection; `Some` with the stream and its unread partial line when a
/// handover took it, `None` when it ended.
async fn serve(conn: Conn, pending: Vec<u8>, ctx: Rc<Ctx>) -> io::Result<Option<Carried>> {
    Ok(match conn {
        Conn::Tcp(s) => serve_stream(s, pending, &ctx)
            .await?
            .map(|(s, p)| (Conn::Tcp(s), p)),
        Conn::Unix(s) => serve_stream(s, pending, &ctx)
            .await?
            .map(|(s, p)| (Conn::Unix(s), p)),
    })
}

/// The line echo on one stream, answering each complete line in order.
async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    mut pending: Vec<u8>,
    ctx: &Ctx,
) -> io::Result<Option<(S, Vec<u8>)>> {
    let mut buf = [0u8; 512];
    loop {
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            let reply = answer(&line[..i], ctx).await;
            s.write_all(&reply).await?;
        }
        if pending.len() > MAX_LINE {
            s.write_all(b"ERR line too long\n").await?;
            return Ok(None);
        }
        // A read dropped by the handover has taken no bytes (overlap's reads are
        // cancel-safe), so nothing is lost between this instance and the next.
        let n = overlap::select! {
            n = s.read(&mut buf) => n?,
            _ = ctx.handover.cancelled() => return Ok(Some((s, pending))),
        };
        if n == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

/// The reply to one request line (without its newline).
async fn answer(line: &[u8], ctx: &Ctx) -> Vec<u8> {
    let mut reply = match line {
        b"PID" => ctx.pid.to_string().into_bytes(),
        b"GEN" => ctx.generation.get().to_string().into_bytes(),
        b"SPAWN" => spawn_report().await.into_bytes(),
        echo => echo.to_vec(),
    };
    reply.push(b'\n');
    reply
}

/// What a child of the service inherits: the activation variables (`unset` when gone) and
/// which of fds 3..=6 it holds (where a manager passes four; none once they are
/// close-on-exec; higher ones are the test runner's, inherited by any child).
async fn spawn_report() -> String {
    let script = "printf '%s:%s:%s' \"${LISTEN_PID-unset}\" \"${LISTEN_FDS-unset}\" \
                  \"${LISTEN_FDNAMES-unset}\"; printf ' fds'; \
                  for f in 3 4 5 6; do [ -e /proc/self/fd/$f ] && printf ' %s' $f; done; true";
    match overlap::process::Command::new("/bin/sh")
        .args(["-c", script])
        .output()
        .await
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("ERR spawn: {e}"),
    }
}
