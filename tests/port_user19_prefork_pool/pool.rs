//! The pool as its user holds it: the settings, the events it reports, the errors it
//! gives, and the handle that asks the master task for its pids, a graceful reload or a
//! shutdown.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use overlap::sync::{mpsc, oneshot};
use overlap::task::JoinHandle;

use super::launch::{Listeners, WorkerSpec};
use super::master::Master;

/// The pool's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many workers (slots).
    pub workers: usize,
    /// How each is started.
    pub worker: WorkerSpec,
    /// No heartbeat line for this long: the worker is hung, its group killed.
    pub beat_timeout: Duration,
    /// How long a reload lets old workers finish before their groups are killed.
    pub graceful: Duration,
    /// The first pause before restarting a slot after a failure (doubled each failure in
    /// a row, up to `backoff_max`).
    pub backoff_first: Duration,
    /// The longest pause before a restart.
    pub backoff_max: Duration,
    /// Failures in a row of a slot, none of them getting ready, before the pool gives up.
    pub start_attempts: u32,
    /// Also listen on `dir/pool.sock`.
    pub unix_dir: Option<PathBuf>,
    /// Reap orphans reparented to the master (when it made itself a subreaper).
    pub reap_orphans: bool,
}

impl Config {
    /// `workers` workers with settings fit for tests: heartbeats every 50 ms, a generous
    /// 30 s heartbeat timeout (no healthy worker is ever missed), short back-off.
    pub fn new(workers: usize) -> Config {
        Config {
            workers,
            worker: WorkerSpec {
                max_requests: None,
                beat_interval: Duration::from_millis(50),
                extra_env: Vec::new(),
            },
            beat_timeout: Duration::from_secs(30),
            graceful: Duration::from_secs(20),
            backoff_first: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
            start_attempts: 3,
            unix_dir: None,
            reap_orphans: false,
        }
    }
}

/// Why a worker exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// It ended on its own, unasked (a crash, a kill from outside): restarted after the
    /// slot's back-off.
    Crashed,
    /// It exited before it ever got ready.
    FailedToStart,
    /// Its heartbeat stopped and the master killed its group.
    Hung,
    /// It served its `max_requests` and asked to be replaced: replaced at once.
    Recycled,
    /// The master retired it (reload or shutdown).
    Retired,
}

/// What the master reports, in the order it happened.
#[derive(Debug)]
pub enum Event {
    /// A worker said `ready`; `generation` counts reloads from 1.
    Ready {
        slot: usize,
        pid: u32,
        generation: u32,
    },
    /// A worker's heartbeat stopped: its group is being killed.
    HeartbeatMissed { slot: usize, pid: u32 },
    /// A worker exited and was reaped, what was left of its group killed, with its stderr.
    Exited {
        slot: usize,
        pid: u32,
        status: ExitStatus,
        reason: ExitReason,
        stderr: String,
    },
    /// A process the master did not spawn (a dead worker's orphan), reaped.
    OrphanReaped { pid: u32, status: ExitStatus },
}

/// Why the pool stopped or could not start.
#[derive(Debug)]
pub enum PoolError {
    /// Binding, or the master's own signal listener.
    Io(io::Error),
    /// A slot failed `attempts` times in a row without a worker getting ready.
    WontStart {
        slot: usize,
        attempts: u32,
        last_status: Option<ExitStatus>,
        stderr: String,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Io(e) => write!(f, "prefork pool: {e}"),
            PoolError::WontStart {
                slot,
                attempts,
                last_status,
                stderr,
            } => {
                write!(
                    f,
                    "worker slot {slot} failed to start {attempts} times in a row"
                )?;
                if let Some(s) = last_status {
                    write!(f, " (last: {s})")?;
                }
                match stderr.lines().last() {
                    Some(line) => write!(f, ": {line}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One worker retired by a reload or shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    /// The slot it served.
    pub slot: usize,
    /// Its pid (reaped: no longer its).
    pub pid: u32,
    /// How it ended: 0 if it finished, `SIGKILL` if the deadline came first.
    pub status: ExitStatus,
}

/// What a reload did.
#[derive(Debug)]
pub struct ReloadReport {
    /// The old workers, as they exited, by slot.
    pub old: Vec<Retired>,
    /// The new workers' pids, by slot.
    pub new: Vec<u32>,
}

/// What a request to the master task carries.
#[derive(Debug)]
pub enum Control {
    /// The serving workers' pids, by slot.
    Pids(oneshot::Sender<Vec<u32>>),
    /// A graceful reload.
    Reload(oneshot::Sender<Result<ReloadReport, PoolError>>),
    /// A graceful shutdown, with a deadline: the master task ends after it.
    Shutdown {
        deadline: Duration,
        done: oneshot::Sender<Vec<Retired>>,
    },
}

/// A running pool: its addresses, and the master task.
#[derive(Debug)]
pub struct Pool {
    /// The TCP listener's address.
    pub tcp_addr: SocketAddr,
    /// The Unix listener's path, if there is one.
    pub unix_path: Option<PathBuf>,
    ctl: mpsc::UnboundedSender<Control>,
    master: JoinHandle<Result<(), PoolError>>,
}

impl Pool {
    /// Binds the listeners, starts the master and its workers, and returns once every
    /// worker is ready, or with the error that stopped the pool first. What happens to the
    /// workers goes to `events`, from the first start on.
    pub async fn start(
        cfg: Config,
        events_tx: mpsc::UnboundedSender<Event>,
    ) -> Result<Pool, PoolError> {
        let listeners = Listeners::bind(cfg.unix_dir.as_deref()).map_err(PoolError::Io)?;
        let tcp_addr = listeners.tcp.local_addr().map_err(PoolError::Io)?;
        let unix_path = listeners.unix.as_ref().map(|(_, p)| p.clone());
        let (ctl, ctl_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        let master = Master::new(cfg, listeners, events_tx).map_err(PoolError::Io)?;
        let master = overlap::spawn(master.run(ctl_rx, ready_tx));
        match ready_rx.await {
            Ok(()) => Ok(Pool {
                tcp_addr,
                unix_path,
                ctl,
                master,
            }),
            // The master ended before every worker got ready: its error says why.
            Err(_) => Err(match master.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => PoolError::Io(io::Error::other("master stopped while starting")),
                Err(e) => PoolError::Io(io::Error::other(e.to_string())),
            }),
        }
    }

    /// The serving workers' pids, by slot (`0` for a slot between workers).
    pub async fn pids(&self) -> Vec<u32> {
        let (tx, rx) = oneshot::channel();
        self.ctl.send(Control::Pids(tx)).expect("master running");
        rx.await.expect("master answers")
    }

    /// A graceful reload: a new worker per slot first, ready, then the old ones retired.
    pub async fn reload(&self) -> Result<ReloadReport, PoolError> {
        let (tx, rx) = oneshot::channel();
        self.ctl.send(Control::Reload(tx)).expect("master running");
        rx.await.expect("master answers")
    }

    /// A graceful shutdown: every worker is asked to finish, and those still running after
    /// `deadline` are killed with their groups. Returns how each ended, by slot.
    pub async fn shutdown(self, deadline: Duration) -> Vec<Retired> {
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Control::Shutdown { deadline, done: tx })
            .expect("master running");
        let retired = rx.await.expect("master answers");
        self.master.await.expect("master task").expect("clean stop");
        retired
    }
}
