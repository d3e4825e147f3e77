//! The scheduler: reads `BUILD` from the build dir, checks the graph, then runs the jobs in
//! dependency order with at most `jobs` at once, skipping those up to date; on the first
//! failure it stops scheduling and (unless `keep_going`) cancels what runs; a cancellation
//! from outside (Ctrl-C) stops everything. The console (`console.log`) is written by one
//! task from whole lines, and `.build_log` is saved at the end, interrupted or not.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::sync::{mpsc, CancellationToken};
use overlap::task::JoinSet;

use super::buildfile::{self, BuildFileError, Job};
use super::job::{self, Outcome, Ran};
use super::state::{self, BuildLog};

pub const BUILD_FILE: &str = "BUILD";
pub const CONSOLE: &str = "console.log";

#[derive(Debug, Clone)]
pub struct Options {
    /// At most this many jobs at once (`-j`).
    pub jobs: usize,
    /// On a failure, let the other jobs run (`-k`) instead of cancelling them.
    pub keep_going: bool,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            jobs: 2,
            keep_going: false,
            grace: Duration::from_millis(300),
        }
    }
}

/// A scheduling event, in the runner's order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Start(String),
    End(String),
}

#[derive(Debug)]
pub struct Report {
    pub outcomes: HashMap<String, Outcome>,
    pub pids: HashMap<String, u32>,
    pub events: Vec<Event>,
    /// The most jobs the runner had running at once.
    pub peak: usize,
    pub interrupted: bool,
}

impl Report {
    pub fn outcome(&self, job: &str) -> &Outcome {
        &self.outcomes[job]
    }

    /// Jobs started, in order.
    pub fn started(&self) -> Vec<&str> {
        let names = self.events.iter().filter_map(|e| match e {
            Event::Start(n) => Some(n.as_str()),
            Event::End(_) => None,
        });
        names.collect()
    }

    pub fn succeeded(&self) -> bool {
        let ok = |o: &Outcome| matches!(o, Outcome::Succeeded | Outcome::UpToDate);
        !self.interrupted && self.outcomes.values().all(ok)
    }
}

#[derive(Debug)]
pub enum BuildError {
    File(BuildFileError),
    Io(io::Error),
}

impl From<io::Error> for BuildError {
    fn from(e: io::Error) -> BuildError {
        BuildError::Io(e)
    }
}

/// Writes whole lines to `console.log` until every sender is gone.
async fn console(path: PathBuf, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) -> io::Result<()> {
    let mut file = overlap::fs::File::create(path).await?;
    while let Some(line) = rx.recv().await {
        file.write_all(&line).await?;
    }
    file.flush().await
}

/// Runs the build in `dir` until it ends or `cancel` fires.
pub async fn build(
    dir: &Path,
    opts: &Options,
    cancel: CancellationToken,
) -> Result<Report, BuildError> {
    assert!(opts.jobs > 0);
    let text = overlap::fs::read_to_string(dir.join(BUILD_FILE)).await?;
    let jobs: Vec<Job> = buildfile::parse(&text).map_err(BuildError::File)?;
    let order = buildfile::topo_order(&jobs).map_err(BuildError::File)?;
    let index: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect();
    overlap::fs::create_dir_all(dir.join("logs")).await?;
    let mut log = BuildLog::load(dir).await?;
    let (console_tx, console_rx) = mpsc::unbounded_channel();
    let console = overlap::spawn(console(dir.join(CONSOLE), console_rx));

    let jobs_cancel = cancel.child_token();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    let mut started = vec![false; jobs.len()];
    let mut pids = HashMap::new();
    let mut events = Vec::new();
    let mut running: JoinSet<(usize, Ran)> = JoinSet::new();
    let (mut peak, mut stopping) = (0, false);
    loop {
        // Start what can start, in topological order, up to the limit.
        let mut i = 0;
        while !stopping && !cancel.is_cancelled() && running.len() < opts.jobs && i < order.len() {
            let j = order[i];
            i += 1;
            if started[j] {
                continue;
            }
            let deps: Vec<Option<&Outcome>> = jobs[j]
                .deps
                .iter()
                .map(|d| outcomes[index[d.as_str()]].as_ref())
                .collect();
            if deps.iter().any(|d| d.is_none()) {
                continue;
            }
            started[j] = true;
            let ok =
                |d: &Option<&Outcome>| matches!(d, Some(Outcome::Succeeded | Outcome::UpToDate));
            if !deps.iter().all(ok) {
                outcomes[j] = Some(Outcome::NotRun);
                i = 0; // its dependants may be decided now
                continue;
            }
            match state::up_to_date(dir, &jobs[j], &log).await {
                Ok(true) => {
                    outcomes[j] = Some(Outcome::UpToDate);
                    i = 0;
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    outcomes[j] = Some(Outcome::Error(e.to_string()));
                    if !opts.keep_going {
                        stopping = true;
                        jobs_cancel.cancel();
                    }
                    i = 0;
                    continue;
                }
            }
            events.push(Event::Start(jobs[j].name.clone()));
            let (dir, job, grace) = (dir.to_owned(), jobs[j].clone(), opts.grace);
            let (tx, token) = (console_tx.clone(), jobs_cancel.clone());
            running.spawn(async move { (j, job::run(&dir, &job, grace, tx, token).await) });
            peak = peak.max(running.len());
        }
        if running.is_empty() {
            break;
        }
        let joined = overlap::select! {
            Some(joined) = running.join_next() => joined,
            () = cancel.cancelled(), if !stopping => {
                stopping = true;
                continue;
            }
        };
        let (j, ran) = joined.expect("a job's task panicked or was aborted");
        events.push(Event::End(jobs[j].name.clone()));
        if let Some(pid) = ran.pid {
            pids.insert(jobs[j].name.clone(), pid);
        }
        if ran.outcome == Outcome::Succeeded {
            log.0
                .insert(jobs[j].name.clone(), state::command_hash(&jobs[j].cmd));
        } else {
            log.0.remove(&jobs[j].name);
            if !opts.keep_going && !stopping {
                stopping = true;
                jobs_cancel.cancel();
            }
        }
        outcomes[j] = Some(ran.outcome);
    }
    drop(console_tx);
    log.save(dir).await?;
    console.await.expect("the console task")?;
    let outcomes = jobs
        .iter()
        .zip(outcomes)
        .map(|(job, o)| (job.name.clone(), o.unwrap_or(Outcome::NotRun)))
        .collect();
    Ok(Report {
        outcomes,
        pids,
        events,
        peak,
        interrupted: cancel.is_cancelled(),
    })
}

/// [`build`], stopped by the process's SIGINT (Ctrl-C) as by a cancellation.
pub async fn build_until_ctrl_c(dir: &Path, opts: &Options) -> Result<Report, BuildError> {
    let mut sigint = overlap::signal::signal(overlap::signal::SignalKind::interrupt())?;
    let cancel = CancellationToken::new();
    let on_sigint = cancel.clone();
    let watcher = overlap::spawn(async move {
        if sigint.recv().await.is_some() {
            on_sigint.cancel();
        }
    });
    let report = build(dir, opts, cancel).await;
    watcher.abort();
    report
}
