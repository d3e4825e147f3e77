//! The daemon's main task: start-up (the notify socket, the watchdog, the pidfile, the
//! configuration, the listeners), then one `select!` loop over both listeners' accepts,
//! the control events (`SIGHUP`: reload; `SIGTERM`: drain), the watchdog's tick and the
//! connection tasks' ends; then the drain: listeners closed, idle connections told to go,
//! requests in flight given until the configured deadline, the rest cut, and an exit code.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use overlap::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use overlap::sync::mpsc;
use overlap::task::JoinSet;
use overlap::time::{self, Duration, Interval};

use super::activation::Listener;
use super::config::{self, Generation};
use super::notify::{monotonic_usec, notify, watchdog_period, Notifier};
use super::pidfile::Pidfile;
use super::service::{refuse, serve, Active, Shared, Stats};

/// Every connection drained in time.
pub const EXIT_OK: i32 = 0;
/// Start-up failed (`STATUS=` says why).
pub const EXIT_FAILED: i32 = 1;
/// The drain deadline passed and connections were cut.
pub const EXIT_CUT: i32 = 3;

/// What a signal asks of the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// `SIGHUP`.
    Reload,
    /// `SIGTERM`.
    Terminate,
}

/// What the daemon starts from: its environment, read by the caller.
#[derive(Debug)]
pub struct Setup {
    /// The adopted sockets, or why they could not be.
    pub listeners: io::Result<Vec<Listener>>,
    pub notify_socket: Option<OsString>,
    pub watchdog_usec: Option<String>,
    pub watchdog_pid: Option<String>,
    pub pid: u32,
    pub config: PathBuf,
    pub pidfile: Option<PathBuf>,
}

/// How the daemon ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    /// Connections cut at the drain deadline.
    pub cut: usize,
    /// Why start-up failed.
    pub error: Option<String>,
    /// Notifications that could not be sent.
    pub notify_failed: u64,
}

impl Outcome {
    fn failed(error: String, notify_failed: u64) -> Outcome {
        Outcome {
            code: EXIT_FAILED,
            cut: 0,
            error: Some(error),
            notify_failed,
        }
    }
}

/// Runs the daemon until `Terminate` (or the control channel closes) and the drain.
pub async fn run(
    mut setup: Setup,
    mut control: mpsc::UnboundedReceiver<Control>,
    shared: Rc<Shared>,
) -> Outcome {
    let notifier = match Notifier::new(setup.notify_socket.as_deref()) {
        Ok(n) => n,
        Err(e) => return Outcome::failed(e.to_string(), 0),
    };
    let to = notifier.as_ref();
    let started = start(&mut setup).await;
    let (tcp, unix, pidfile, config, period) = match started {
        Ok(s) => s,
        Err(e) => {
            notify(to, &format!("STATUS=failed to start: {e}")).await;
            return Outcome::failed(e.to_string(), notifier.map_or(0, |n| n.failed()));
        }
    };
    let mut current = Rc::new(Generation { number: 1, config });
    let mut watchdog = period.map(|p| time::interval_at(time::now() + p, p));
    let mut conns = JoinSet::new();
    let sockets = usize::from(tcp.is_some()) + usize::from(unix.is_some());
    let ready = format!(
        "READY=1\nSTATUS=serving {sockets} sockets, config generation 1\nMAINPID={}",
        setup.pid
    );
    notify(to, &ready).await;

    loop {
        overlap::select! {
            res = accept_tcp(&tcp) => if let Ok(stream) = res {
                admit(&mut conns, stream, &current, &shared);
            },
            res = accept_unix(&unix) => if let Ok(stream) = res {
                admit(&mut conns, stream, &current, &shared);
            },
            _ = tick(&mut watchdog) => notify(to, "WATCHDOG=1").await,
            Some(_) = conns.join_next() => {}
            ctl = control.recv() => match ctl {
                Some(Control::Reload) => current = reload(to, &setup, current).await,
                Some(Control::Terminate) | None => break,
            },
        }
    }

    // Drain: nothing new is accepted (a connect is refused from here on), idle
    // connections go at once, requests in flight get until the deadline.
    drop(tcp);
    drop(unix);
    let open = conns.len();
    notify(
        to,
        &format!("STOPPING=1\nSTATUS=draining, connections open: {open}"),
    )
    .await;
    shared.draining.cancel();
    let deadline = time::sleep(current.config.drain);
    overlap::pin_mut!(deadline);
    while !conns.is_empty() {
        overlap::select! {
            _ = &mut deadline => break,
            _ = conns.join_next() => {}
            _ = tick(&mut watchdog) => notify(to, "WATCHDOG=1").await,
        }
    }
    let cut = conns.len();
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    let (code, status) = match cut {
        0 => (EXIT_OK, "STATUS=stopped".to_owned()),
        n => (
            EXIT_CUT,
            format!("STATUS=drain deadline passed, connections cut: {n}"),
        ),
    };
    notify(to, &status).await;
    if let Some(p) = pidfile {
        let _ = p.remove().await;
    }
    Outcome {
        code,
        cut,
        error: None,
        notify_failed: notifier.map_or(0, |n| n.failed()),
    }
}

type Started = (
    Option<TcpListener>,
    Option<UnixListener>,
    Option<Pidfile>,
    config::Config,
    Option<Duration>,
);

/// Start-up: the watchdog's period, the configuration, the listeners (one of each kind at
/// most, one at least), then the pidfile (last, so a failure leaves none).
async fn start(setup: &mut Setup) -> io::Result<Started> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let period = watchdog_period(
        setup.watchdog_usec.as_deref(),
        setup.watchdog_pid.as_deref(),
        setup.pid,
    )?;
    let config = config::load(&setup.config)
        .await
        .map_err(|e| bad(format!("config: {e}")))?;
    let (mut tcp, mut unix) = (None, None);
    for listener in std::mem::replace(&mut setup.listeners, Ok(Vec::new()))? {
        match listener {
            Listener::Tcp(l) if tcp.is_none() => tcp = Some(l),
            Listener::Unix(l) if unix.is_none() => unix = Some(l),
            Listener::Tcp(_) => return Err(bad("a second tcp socket".into())),
            Listener::Unix(_) => return Err(bad("a second unix socket".into())),
        }
    }
    if tcp.is_none() && unix.is_none() {
        return Err(bad("no sockets passed (LISTEN_FDS)".into()));
    }
    let pidfile = match &setup.pidfile {
        Some(path) => Some(Pidfile::create(path, setup.pid).await?),
        None => None,
    };
    Ok((tcp, unix, pidfile, config, period))
}

/// Counts a new connection in and spawns its task: served, or refused over the limit.
fn admit<S>(conns: &mut JoinSet<()>, stream: S, current: &Rc<Generation>, shared: &Rc<Shared>)
where
    S: overlap::io::AsyncRead + overlap::io::AsyncWrite + Unpin + 'static,
{
    let stats = &shared.stats;
    Stats::add(&stats.accepted, 1);
    if stats.active.get() as usize >= current.config.max_conns {
        conns.spawn(refuse(stream, shared.clone()));
        return;
    }
    Stats::add(&stats.active, 1);
    conns.spawn(serve(stream, current.clone(), Active(shared.clone())));
}

/// `SIGHUP`: reads the configuration again. A good one serves new connections from now
/// on (those open keep theirs); a bad one is reported and the old one kept.
async fn reload(to: Option<&Notifier>, setup: &Setup, current: Rc<Generation>) -> Rc<Generation> {
    notify(
        to,
        &format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()),
    )
    .await;
    match config::load(&setup.config).await {
        Ok(config) => {
            let number = current.number + 1;
            notify(
                to,
                &format!("READY=1\nSTATUS=reloaded, config generation {number}"),
            )
            .await;
            Rc::new(Generation { number, config })
        }
        Err(e) => {
            let n = current.number;
            let status =
                format!("READY=1\nSTATUS=reload failed, keeping config generation {n}: {e}");
            notify(to, &status).await;
            current
        }
    }
}

/// The next connection of a listener that may be gone (then never).
async fn accept_tcp(l: &Option<TcpListener>) -> io::Result<TcpStream> {
    match l {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// As [`accept_tcp`], for the Unix listener.
async fn accept_unix(l: &Option<UnixListener>) -> io::Result<UnixStream> {
    match l {
        Some(l) => l.accept().await.map(|(s, _)| s),
        None => std::future::pending().await,
    }
}

/// The watchdog's next tick, or never when it is off.
async fn tick(watchdog: &mut Option<Interval>) {
    match watchdog {
        Some(w) => {
            w.tick().await;
        }
        None => std::future::pending().await,
    }
}
