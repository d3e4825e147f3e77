//! The runner's loop: inotify's batches, the debounce `Sleep` reset by each change, the
//! running child, the control channel; its events (`broadcast`) and status (`watch`); the
//! control socket; and the shutdown that kills the child and closes the inotify fd.

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::{UnixListener, UnixStream};
use overlap::sync::{broadcast, mpsc, watch};
use overlap::task::JoinSet;
use overlap::time::{sleep, Instant};

use super::run::{End, Outcome, Run, Stream};
use super::watcher::{Batch, Change, Ignore, Watcher};

/// What the runner watches, what it runs, and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// The tree watched; the command runs there.
    pub root: PathBuf,
    /// The program and its arguments.
    pub command: Vec<String>,
    pub ignore: Ignore,
    /// How long the tree must stay quiet after a change before the run starts.
    pub debounce: Duration,
    /// The longest a run may take before it is killed.
    pub timeout: Option<Duration>,
    /// The word in each forwarded line's prefix: `[build 3] ...`.
    pub prefix: String,
    /// A Unix socket taking `rerun`, `status` and `quit` lines.
    pub socket: Option<PathBuf>,
}

impl Config {
    /// `sh -c script` in `root`, a 50 ms debounce, no time limit.
    pub fn sh(root: impl Into<PathBuf>, script: &str) -> Config {
        Config {
            root: root.into(),
            command: ["sh", "-c", script].map(String::from).to_vec(),
            ignore: Ignore::default(),
            debounce: Duration::from_millis(50),
            timeout: None,
            prefix: "build".into(),
            socket: None,
        }
    }
}

/// What the runner tells its subscribers, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A directory that appeared is watched now (relative to the root).
    Watching(String),
    /// Run `run` started, for these changes (`<rerun>` for a rerun asked for, `<overflow>`
    /// for events lost).
    Started {
        run: u64,
        pid: u32,
        changes: Vec<String>,
    },
    /// A line of a run's output, with its prefix.
    Line {
        run: u64,
        stream: Stream,
        text: String,
    },
    /// Run `run` ended (for a run that could not start, right after its `Started`, pid 0).
    Finished { run: u64, outcome: Outcome },
}

/// Where the runner is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Not watching yet.
    #[default]
    Starting,
    Idle,
    /// Changes seen, the debounce running (a run may be running too).
    Pending,
    Running {
        run: u64,
        pid: u32,
    },
    Stopped,
}

/// The runner's counters and state, for `watch` subscribers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    pub state: State,
    pub started: u64,
    pub finished: u64,
    /// inotify records read, and those about ignored paths.
    pub records: u64,
    pub ignored: u64,
    pub overflows: u64,
    pub watches: usize,
    pub last: Option<Outcome>,
}

/// What the control channel takes.
#[derive(Debug)]
pub enum Control {
    /// Run now (killing a run in progress), whatever changed.
    Rerun,
    Quit,
}

/// The handles a caller keeps.
#[derive(Debug)]
pub struct Handles {
    pub events: broadcast::Sender<Event>,
    pub status: watch::Receiver<Status>,
    pub control: mpsc::UnboundedSender<Control>,
}

/// The channels, and the runner's future: it ends on `Control::Quit`.
pub fn runner(config: Config) -> (Handles, impl std::future::Future<Output = io::Result<()>>) {
    let (events, _) = broadcast::channel(4096);
    let (status_tx, status) = watch::channel(Status::default());
    let (control, control_rx) = mpsc::unbounded_channel();
    let handles = Handles {
        events: events.clone(),
        status,
        control: control.clone(),
    };
    let fut = run(config, events, status_tx, control, control_rx);
    (handles, fut)
}

async fn run(
    config: Config,
    events: broadcast::Sender<Event>,
    status: watch::Sender<Status>,
    control_tx: mpsc::UnboundedSender<Control>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> io::Result<()> {
    let status = Rc::new(status);
    let mut watcher = Watcher::new(&config.root, config.ignore.clone())?;
    let mut sockets = JoinSet::new();
    if let Some(path) = &config.socket {
        let listener = UnixListener::bind(path)?;
        sockets.spawn(serve(listener, control_tx, status.subscribe()));
    }
    status.send_modify(|s| {
        s.state = State::Idle;
        s.watches = watcher.watches();
    });
    let debounce = sleep(Duration::ZERO);
    overlap::pin!(debounce);
    let mut armed = false;
    let mut pending: BTreeSet<Change> = BTreeSet::new();
    let mut current: Option<Run> = None;
    let mut n = 0;
    let start = |n: u64, why: BTreeSet<Change>, current: &mut Option<Run>| {
        let changes = why
            .into_iter()
            .map(|c| match c {
                Change::Path(p) => p,
                Change::Overflow => "<overflow>".into(),
            })
            .collect();
        let limit = config.timeout;
        let started = Run::start(
            n,
            &config.command,
            &config.root,
            &config.prefix,
            limit,
            &events,
        );
        let pid = started.as_ref().map_or(0, |r| r.pid);
        let _ = events.send(Event::Started {
            run: n,
            pid,
            changes,
        });
        status.send_modify(|s| s.started += 1);
        match started {
            Ok(run) => *current = Some(run),
            Err(e) => {
                let why = format!("cannot run `{}`: {e}", config.command[0]);
                finished(&events, &status, n, Outcome::SpawnFailed(why));
            }
        }
    };
    let result = loop {
        overlap::select! {
            batch = watcher.next_batch() => {
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(e) => break Err(e),
                };
                if absorb(batch, &watcher, &events, &status, &mut pending) {
                    armed = true;
                    debounce.as_mut().reset(Instant::now() + config.debounce);
                    status.send_modify(|s| s.state = State::Pending);
                }
            }
            _ = &mut debounce, if armed => {
                // Changes queued but not read yet (the timer and the inotify fd were ready
                // together) hold the run off as any change does.
                let late = match watcher.try_batch() {
                    Ok(batch) => batch,
                    Err(e) => break Err(e),
                };
                if absorb(late, &watcher, &events, &status, &mut pending) {
                    debounce.as_mut().reset(Instant::now() + config.debounce);
                    continue;
                }
                armed = false;
                if let Some(mut old) = current.take() {
                    stop(&mut old, &events, &status).await;
                }
                n += 1;
                start(n, std::mem::take(&mut pending), &mut current);
                set_state(&status, &current);
            }
            end = async { current.as_mut().expect("a run").wait().await }, if current.is_some() => {
                let mut done = current.take().expect("a run");
                let outcome = match end {
                    End::Exited(status) => Run::outcome(status),
                    End::TimedOut => {
                        let _ = done.kill().await;
                        Outcome::TimedOut
                    }
                };
                done.drain().await;
                finished(&events, &status, done.n, outcome);
                if !armed {
                    set_state(&status, &current);
                }
            }
            cmd = control.recv() => match cmd {
                Some(Control::Rerun) => {
                    armed = false;
                    if let Some(mut old) = current.take() {
                        stop(&mut old, &events, &status).await;
                    }
                    n += 1;
                    let mut why = std::mem::take(&mut pending);
                    why.insert(Change::Path("<rerun>".into()));
                    start(n, why, &mut current);
                    set_state(&status, &current);
                }
                Some(Control::Quit) | None => break Ok(()),
            },
        }
    };
    // Shutdown: the child killed and reaped, the inotify fd closed, the socket gone.
    if let Some(mut old) = current.take() {
        stop(&mut old, &events, &status).await;
    }
    drop(watcher);
    sockets.shutdown().await;
    if let Some(path) = &config.socket {
        let _ = std::fs::remove_file(path);
    }
    status.send_modify(|s| s.state = State::Stopped);
    result
}

/// Takes in a batch: its new watches announced, its counts added, its changes made
/// pending. Whether it had any change.
fn absorb(
    batch: Batch,
    watcher: &Watcher,
    events: &broadcast::Sender<Event>,
    status: &watch::Sender<Status>,
    pending: &mut BTreeSet<Change>,
) -> bool {
    for dir in &batch.watched {
        let _ = events.send(Event::Watching(dir.clone()));
    }
    status.send_modify(|s| {
        s.records += batch.records;
        s.ignored += batch.ignored;
        s.overflows += batch.changes.contains(&Change::Overflow) as u64;
        s.watches = watcher.watches();
    });
    let changed = !batch.changes.is_empty();
    pending.extend(batch.changes);
    changed
}

/// Kills a run for a newer one (or the shutdown), and reports it.
async fn stop(run: &mut Run, events: &broadcast::Sender<Event>, status: &watch::Sender<Status>) {
    let outcome = match run.kill().await {
        Ok(_) => Outcome::Superseded,
        Err(e) => Outcome::SpawnFailed(format!("could not kill run {}: {e}", run.n)),
    };
    run.drain().await;
    finished(events, status, run.n, outcome);
}

fn finished(
    events: &broadcast::Sender<Event>,
    status: &watch::Sender<Status>,
    run: u64,
    outcome: Outcome,
) {
    status.send_modify(|s| {
        s.finished += 1;
        s.last = Some(outcome.clone());
    });
    let _ = events.send(Event::Finished { run, outcome });
}

fn set_state(status: &watch::Sender<Status>, current: &Option<Run>) {
    let state = match current {
        Some(run) => State::Running {
            run: run.n,
            pid: run.pid,
        },
        None => State::Idle,
    };
    status.send_modify(|s| s.state = state);
}

/// The control socket: a line in, a line out, until the client closes.
async fn serve(
    listener: UnixListener,
    control: mpsc::UnboundedSender<Control>,
    status: watch::Receiver<Status>,
) {
    let mut sessions = JoinSet::new();
    loop {
        overlap::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    sessions.spawn(session(stream, control.clone(), status.clone()));
                }
            }
            Some(_) = sessions.join_next() => {}
        }
    }
}

async fn session(
    stream: UnixStream,
    control: mpsc::UnboundedSender<Control>,
    status: watch::Receiver<Status>,
) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let answer = match line.trim() {
            "rerun" => {
                let _ = control.send(Control::Rerun);
                "ok".to_string()
            }
            "quit" => {
                let _ = control.send(Control::Quit);
                "bye".to_string()
            }
            "status" => {
                let s = status.borrow().clone();
                format!(
                    "{:?} started={} finished={}",
                    s.state, s.started, s.finished
                )
            }
            other => format!("error: unknown command {other:?}"),
        };
        wr.write_all(format!("{answer}\n").as_bytes()).await?;
    }
}
