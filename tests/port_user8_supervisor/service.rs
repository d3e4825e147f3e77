//! One service's life: wait for the service it starts after, spawn it with its notify
//! socket in `NOTIFY_SOCKET`, log its output line by line, take its `READY=1`,
//! `WATCHDOG=1` and `STATUS=` datagrams, and restart it with backoff when it crashes (or
//! stops pinging), giving up after too many crashes in a window.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncBufReadExt, BufReader};
use overlap::net::UnixDatagram;
use overlap::process::{Child, ChildStdout, Command};
use overlap::sync::{mpsc, watch};
use overlap::task::JoinSet;
use overlap::time::{sleep_until, timeout, Instant};

use super::supervisor::{Cmd, Log, Spec, State};

/// How long an exited service's output may take to reach end of file (a background
/// process of its own may hold its pipes) before its exit is logged without it.
const DRAIN: Duration = Duration::from_secs(2);

/// What ended one run of the service.
enum End {
    /// It exited by itself (or was killed by the watchdog): a crash unless it succeeded.
    Exited(ExitStatus),
    /// Stopped on request: no crash, down until started.
    Stopped,
    /// Restarted on request (or its wait failed): no crash, started again at once.
    Again,
    /// The supervisor is going away.
    Gone,
}

/// One event of a running service.
enum Event {
    Exit(std::io::Result<ExitStatus>),
    Notify(std::io::Result<usize>),
    Watchdog,
    Cmd(Option<Cmd>),
}

pub async fn supervise(
    spec: Spec,
    notify: UnixDatagram,
    state: watch::Sender<State>,
    mut after: Option<watch::Receiver<State>>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    log: Log,
    status: Rc<RefCell<String>>,
) {
    let name = spec.name.clone();
    let say = |line: String| {
        let _ = log.send(format!("supervisor: {name} {line}"));
    };
    let mut wanted = true;
    let mut crashes: VecDeque<Instant> = VecDeque::new();
    let mut readers = JoinSet::new();
    loop {
        // Down until started by hand.
        while !wanted {
            match cmds.recv().await {
                Some(Cmd::Start(reply) | Cmd::Restart(reply)) => {
                    crashes.clear();
                    wanted = true;
                    let _ = reply.send(format!("starting {name}"));
                }
                Some(Cmd::Stop(reply)) => {
                    let _ = reply.send(format!("{name} is not running"));
                }
                Some(Cmd::Signal(_)) => {}
                None => return,
            }
        }
        if let Some(dep) = &mut after {
            state.send_replace(State::Waiting);
            let ready = |s: &State| matches!(s, State::Ready(_));
            let ev = overlap::select! {
                r = dep.wait_for(ready).fuse() => r.is_ok(),
                cmd = cmds.recv().fuse() => match cmd {
                    Some(Cmd::Stop(reply)) => {
                        let _ = reply.send(format!("stopped {name}: was waiting"));
                        wanted = false;
                        continue;
                    }
                    Some(Cmd::Start(reply) | Cmd::Restart(reply)) => {
                        let _ = reply.send(format!("{name} is waiting for its dependency"));
                        continue;
                    }
                    Some(Cmd::Signal(_)) => continue,
                    None => return,
                },
            };
            if !ev {
                return; // the dependency's supervisor is gone
            }
        }
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(
                "NOTIFY_SOCKET",
                notify.local_addr().unwrap().as_pathname().unwrap(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let end = match cmd.spawn() {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                for (pipe, tag) in [(child.stdout.take(), ""), (child.stderr.take(), "[err]")] {
                    let pipe = pipe.expect("piped");
                    readers.spawn(forward(pipe, format!("{name}{tag}"), log.clone()));
                }
                status.borrow_mut().clear();
                state.send_replace(if spec.notify {
                    State::Starting(pid)
                } else {
                    State::Ready(pid)
                });
                say(format!("started pid={pid}"));
                let end = run_once(
                    &spec, &mut child, pid, &notify, &state, &mut cmds, &status, &say,
                )
                .await;
                // The run's output first, then its exit.
                let drained = timeout(DRAIN, async {
                    while readers.join_next().await.is_some() {}
                });
                if drained.await.is_err() {
                    say("left its output open after it exited".into());
                }
                if let End::Exited(st) = end {
                    say(format!("exited: {}", describe(st)));
                }
                end
            }
            Err(e) => {
                say(format!("failed to start: {e}"));
                End::Exited(ExitStatus::from_raw(127 << 8))
            }
        };
        match end {
            End::Gone => break,
            End::Stopped => {
                wanted = false;
                continue;
            }
            End::Again => continue,
            End::Exited(st) if st.success() => {
                state.send_replace(State::Stopped);
                wanted = false;
                continue;
            }
            End::Exited(_) => {}
        }
        let now = Instant::now();
        crashes.push_back(now);
        while crashes.front().is_some_and(|&t| now - t > spec.window) {
            crashes.pop_front();
        }
        let n = crashes.len();
        if n > spec.max_crashes {
            say(format!("gave up after {n} crashes in {:?}", spec.window));
            state.send_replace(State::Failed);
            wanted = false;
            continue;
        }
        let delay = spec.backoff * 2u32.pow(n as u32 - 1);
        say(format!("restart {n} in {delay:?}"));
        state.send_replace(State::Backoff);
        let deadline = Instant::now() + delay;
        loop {
            let cmd = overlap::select! {
                _ = sleep_until(deadline).fuse() => break,
                cmd = cmds.recv().fuse() => cmd,
            };
            match cmd {
                Some(Cmd::Stop(reply)) => {
                    let _ = reply.send(format!("stopped {name}: was in backoff"));
                    state.send_replace(State::Stopped);
                    wanted = false;
                    break;
                }
                Some(Cmd::Start(reply) | Cmd::Restart(reply)) => {
                    let _ = reply.send(format!("starting {name}"));
                    break;
                }
                Some(Cmd::Signal(_)) => {}
                None => return,
            }
        }
    }
    while readers.join_next().await.is_some() {}
}

/// One run, from its start to its end; the child is reaped when this returns.
#[allow(clippy::too_many_arguments)]
async fn run_once(
    spec: &Spec,
    child: &mut Child,
    pid: u32,
    notify: &UnixDatagram,
    state: &watch::Sender<State>,
    cmds: &mut mpsc::UnboundedReceiver<Cmd>,
    status: &RefCell<String>,
    say: &impl Fn(String),
) -> End {
    let name = &spec.name;
    // Armed at the start, or for a notify service at its `READY=1` (as systemd's
    // `WatchdogSec=`), so a slow start is no missed ping.
    let arm = |w: Duration| Instant::now() + w;
    let mut watchdog = spec.watchdog.filter(|_| !spec.notify).map(arm);
    let mut pings = 0u32;
    let mut buf = [0u8; 4096];
    loop {
        let ev = overlap::select! {
            st = child.wait().fuse() => Event::Exit(st),
            n = notify.recv(&mut buf).fuse() => Event::Notify(n),
            _ = at(watchdog).fuse() => Event::Watchdog,
            cmd = cmds.recv().fuse() => Event::Cmd(cmd),
        };
        match ev {
            Event::Exit(Ok(st)) => return End::Exited(st),
            Event::Exit(Err(e)) => {
                say(format!("wait failed: {e}"));
                return End::Again;
            }
            Event::Notify(Ok(n)) => {
                for field in parse_notify(&buf[..n]) {
                    match field {
                        Ok(Field::Ready) => {
                            if !matches!(*state.borrow(), State::Ready(_)) {
                                state.send_replace(State::Ready(pid));
                                watchdog = spec.watchdog.map(arm);
                                say("ready".into());
                            }
                        }
                        Ok(Field::Watchdog) => {
                            pings += 1;
                            watchdog = spec.watchdog.map(arm);
                        }
                        Ok(Field::Status(text)) => *status.borrow_mut() = text,
                        Err(e) => say(format!("notify: {e}")),
                    }
                }
            }
            Event::Notify(Err(e)) => say(format!("notify socket: {e}")),
            Event::Watchdog => {
                let w = spec.watchdog.unwrap_or_default();
                say(format!(
                    "watchdog: no WATCHDOG=1 for {w:?} after {pings} pings, killing"
                ));
                let st = match child.kill().await {
                    Ok(()) => child.try_wait().ok().flatten(),
                    Err(_) => None,
                };
                return End::Exited(st.unwrap_or(ExitStatus::from_raw(libc::SIGKILL)));
            }
            Event::Cmd(Some(Cmd::Signal(sig))) => {
                if let Err(e) = child.send_signal(sig) {
                    say(format!("signal {sig}: {e}"));
                }
            }
            Event::Cmd(Some(Cmd::Start(reply))) => {
                let _ = reply.send(format!("{name} is already running pid={pid}"));
            }
            Event::Cmd(Some(Cmd::Stop(reply))) => {
                let how = terminate(child, spec.grace).await;
                state.send_replace(State::Stopped);
                let _ = reply.send(format!("stopped {name}: {how}"));
                return End::Stopped;
            }
            Event::Cmd(Some(Cmd::Restart(reply))) => {
                let how = terminate(child, spec.grace).await;
                let _ = reply.send(format!("restarting {name}: {how}"));
                return End::Again;
            }
            Event::Cmd(None) => {
                terminate(child, spec.grace).await;
                return End::Gone;
            }
        }
    }
}

/// SIGTERM, then SIGKILL if the child is still there after `grace`: how it ended.
async fn terminate(child: &mut Child, grace: Duration) -> String {
    if let Err(e) = child.send_signal(libc::SIGTERM) {
        return format!("SIGTERM failed: {e}");
    }
    match timeout(grace, child.wait()).await {
        Ok(Ok(st)) => describe(st),
        Ok(Err(e)) => format!("wait failed: {e}"),
        Err(_) => match child.kill().await {
            Ok(()) => format!("killed by SIGKILL after {grace:?} grace"),
            Err(e) => format!("SIGKILL failed: {e}"),
        },
    }
}

pub fn describe(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (_, Some(sig)) => format!("signal {sig}"),
        _ => format!("{st}"),
    }
}

async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Copies one pipe of the child into the log, a line at a time, tagged with `tag`. Bytes
/// that are no UTF-8 are replaced, not a reason to stop reading; a last line without its
/// newline is logged as it is.
async fn forward(pipe: ChildStdout, tag: String, log: Log) {
    let mut pipe = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match pipe.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let _ = log.send(format!("{tag}: {}", text.trim_end_matches('\n')));
            }
            Err(e) => {
                let _ = log.send(format!("supervisor: {tag} output: {e}"));
                return;
            }
        }
    }
}

/// One assignment of a notify datagram.
#[derive(Debug, PartialEq)]
pub enum Field {
    Ready,
    Watchdog,
    Status(String),
}

/// The assignments of a datagram, a line each (as `sd_notify`'s): an error for each that
/// is not understood, so a bad one is reported and the good ones still count.
pub fn parse_notify(datagram: &[u8]) -> Vec<Result<Field, String>> {
    let Ok(text) = std::str::from_utf8(datagram) else {
        return vec![Err(format!("bad message {datagram:?}: not UTF-8"))];
    };
    if text.trim().is_empty() {
        return vec![Err("bad message \"\": empty".into())];
    }
    let field = |line: &str| match line.split_once('=') {
        Some(("READY", "1")) => Ok(Field::Ready),
        Some(("WATCHDOG", "1")) => Ok(Field::Watchdog),
        Some(("STATUS", text)) => Ok(Field::Status(text.to_owned())),
        _ => Err(format!("bad message {line:?}")),
    };
    text.lines().filter(|l| !l.is_empty()).map(field).collect()
}
