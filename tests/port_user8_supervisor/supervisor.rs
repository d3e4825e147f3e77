//! The supervisor's frame: the services' specs and states, the control socket, signals
//! (SIGHUP forwarded to every child, SIGTERM or the caller's `shutdown` to stop them all).
//! One service's life is `service.rs`'s.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::{UnixDatagram, UnixListener, UnixStream};
use overlap::signal::unix::{signal, SignalKind};
use overlap::sync::{mpsc, oneshot, watch};
use overlap::task::JoinSet;

use super::service::supervise;

/// Where every line goes: services' output tagged with their name, and the supervisor's
/// own events tagged `supervisor`.
pub type Log = mpsc::UnboundedSender<String>;

/// The longest control line taken; a longer one ends its connection.
const MAX_LINE: u64 = 1024;

/// One service: a program, how it is restarted, what it waits for.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Ready only once it sends `READY=1` (else as soon as it runs).
    pub notify: bool,
    /// Started only once this service is ready.
    pub after: Option<String>,
    /// Killed and restarted when no `WATCHDOG=1` came for this long.
    pub watchdog: Option<Duration>,
    /// The first restart's delay, doubled for each crash after it.
    pub backoff: Duration,
    /// Given up after more crashes than this within `window`.
    pub max_crashes: usize,
    pub window: Duration,
    /// Between SIGTERM and SIGKILL on a stop.
    pub grace: Duration,
}

impl Spec {
    /// `sh -c script`, no notify, 5 ms backoff, 3 crashes in 10 s, 1 s grace.
    pub fn sh(name: &str, script: &str) -> Spec {
        let args = vec!["-c".to_owned(), script.to_owned()];
        Spec::program(name, "/bin/sh", args)
    }

    pub fn program(name: &str, program: impl Into<PathBuf>, args: Vec<String>) -> Spec {
        Spec {
            name: name.to_owned(),
            program: program.into(),
            args,
            env: Vec::new(),
            notify: false,
            after: None,
            watchdog: None,
            backoff: Duration::from_millis(5),
            max_crashes: 3,
            window: Duration::from_secs(10),
            grace: Duration::from_secs(1),
        }
    }
}

/// A service's state, as `status` shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum State {
    /// Waiting for the service it starts after.
    Waiting,
    /// Running, no `READY=1` yet.
    Starting(u32),
    Ready(u32),
    /// Crashed, waiting out its backoff.
    Backoff,
    Stopped,
    /// Crashed too often: stays down until started by hand.
    Failed,
}

impl State {
    fn show(self) -> String {
        match self {
            State::Waiting => "waiting".into(),
            State::Starting(pid) => format!("starting pid={pid}"),
            State::Ready(pid) => format!("ready pid={pid}"),
            State::Backoff => "backoff".into(),
            State::Stopped => "stopped".into(),
            State::Failed => "failed".into(),
        }
    }
}

/// What the control socket (and the signal handling) asks of a service.
#[derive(Debug)]
pub enum Cmd {
    Stop(oneshot::Sender<String>),
    Start(oneshot::Sender<String>),
    Restart(oneshot::Sender<String>),
    Signal(i32),
}

/// The supervisor's view of one service.
struct Handle {
    state: watch::Receiver<State>,
    status: Rc<RefCell<String>>,
    cmds: mpsc::UnboundedSender<Cmd>,
}

/// The notify socket of service `name` in `dir`.
pub fn notify_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.notify"))
}

/// The control socket in `dir`.
pub fn control_path(dir: &Path) -> PathBuf {
    dir.join("control")
}

/// Runs `specs` until SIGTERM or `shutdown`, then stops every service (the last first)
/// and returns once all are down and their output is logged.
pub async fn run(
    specs: Vec<Spec>,
    dir: &Path,
    log: Log,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let control = UnixListener::bind(control_path(dir))?;
    let mut handles: BTreeMap<String, Handle> = BTreeMap::new();
    let mut services = JoinSet::new();
    for spec in specs {
        let path = notify_path(dir, &spec.name);
        let notify = UnixDatagram::bind(&path)?;
        let (state, state_rx) = watch::channel(State::Waiting);
        let after = match &spec.after {
            Some(dep) => Some(
                handles
                    .get(dep)
                    .ok_or_else(|| no_service(dep))?
                    .state
                    .clone(),
            ),
            None => None,
        };
        let (cmds, cmds_rx) = mpsc::unbounded_channel();
        let status = Rc::new(RefCell::new(String::new()));
        let name = spec.name.clone();
        let handle = Handle {
            state: state_rx,
            status: status.clone(),
            cmds,
        };
        handles.insert(name, handle);
        let (log, path) = (log.clone(), path.clone());
        services.spawn(async move {
            supervise(spec, notify, state, after, cmds_rx, log, status).await;
            let _ = std::fs::remove_file(path);
        });
    }
    let handles = Rc::new(handles);
    let mut sessions = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown.fuse());
    loop {
        overlap::select! {
            _ = hup.recv().fuse() => {
                let _ = log.send("supervisor: SIGHUP, forwarded".into());
                for h in handles.values() {
                    let _ = h.cmds.send(Cmd::Signal(libc::SIGHUP));
                }
            }
            _ = term.recv().fuse() => break,
            _ = shutdown => break,
            conn = control.accept().fuse() => match conn {
                Ok((conn, _)) => {
                    sessions.spawn(session(conn, handles.clone()));
                }
                // Out of fds, say: the others go on.
                Err(e) => { let _ = log.send(format!("supervisor: accept: {e}")); }
            },
        }
    }
    let _ = log.send("supervisor: shutting down".into());
    drop(sessions);
    drop(control);
    let _ = std::fs::remove_file(control_path(dir));
    for h in handles.values().rev() {
        let (tx, rx) = oneshot::channel();
        if h.cmds.send(Cmd::Stop(tx)).is_ok() {
            if let Ok(reply) = rx.await {
                let _ = log.send(format!("supervisor: {reply}"));
            }
        }
    }
    drop(handles);
    while services.join_next().await.is_some() {}
    let _ = log.send("supervisor: down".into());
    Ok(())
}

fn no_service(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no service {name:?}"))
}

/// One control connection: a command per line, a reply per command (`status` a line per
/// service, then `end`).
async fn session(conn: UnixStream, services: Rc<BTreeMap<String, Handle>>) {
    let (read, mut write) = conn.into_split();
    let mut read = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let mut limited = (&mut read).take(MAX_LINE + 1);
        let reply = match limited.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) if line.last() != Some(&b'\n') && line.len() as u64 > MAX_LINE => {
                let reply = format!("error: line longer than {MAX_LINE} bytes\n");
                let _ = write.write_all(reply.as_bytes()).await;
                return;
            }
            Ok(_) => match std::str::from_utf8(&line) {
                Ok(text) => answer(text.trim_end(), &services).await,
                Err(_) => "error: not UTF-8".to_owned(),
            },
        };
        if write
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn answer(line: &str, services: &BTreeMap<String, Handle>) -> String {
    let mut words = line.split_whitespace();
    let (verb, name, rest) = (words.next(), words.next(), words.next());
    let make: fn(oneshot::Sender<String>) -> Cmd = match (verb, name, rest) {
        (Some("status"), None, _) => {
            let mut out = String::new();
            for (name, h) in services {
                let state = h.state.borrow().show();
                let status = h.status.borrow();
                out.push_str(&format!("{name} {state} status={status:?}\n"));
            }
            return out + "end";
        }
        (Some("stop"), Some(_), None) => Cmd::Stop,
        (Some("start"), Some(_), None) => Cmd::Start,
        (Some("restart"), Some(_), None) => Cmd::Restart,
        (Some(v @ ("stop" | "start" | "restart")), _, _) => {
            return format!("error: usage: {v} NAME");
        }
        _ => {
            return format!(
                "error: unknown command {line:?} (status, stop NAME, start NAME, restart NAME)"
            );
        }
    };
    let name = name.unwrap_or_default();
    let Some(h) = services.get(name) else {
        return format!("error: no service {name:?}");
    };
    let (tx, rx) = oneshot::channel();
    if h.cmds.send(make(tx)).is_err() {
        return format!("error: {name} is shutting down");
    }
    rx.await
        .unwrap_or_else(|_| format!("error: {name} is shutting down"))
}
