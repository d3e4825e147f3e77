//! The master task: one worker per slot, each followed by a `launch::watch` task that
//! reports to it; restarts with the slot's back-off, replacement on recycling, the graceful
//! reload (new workers ready first, then the old ones told to finish) and the shutdown
//! (told to finish, then killed with their groups at the deadline), and, as a subreaper,
//! the reaping of orphans its dead workers left.

use std::collections::HashMap;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use overlap::process::reap_orphans;
use overlap::signal::{signal, Signal, SignalKind};
use overlap::sync::{mpsc, oneshot};
use overlap::time::{sleep_until, Instant};

use super::backoff::Backoff;
use super::launch::{spawn_worker, watch, Cmd, Listeners, Report};
use super::pool::{Config, Control, Event, ExitReason, PoolError, ReloadReport, Retired};
use super::protocol::EXIT_RECYCLE;

/// What reaches the master's loop besides control requests.
enum Msg {
    Worker(u64, Report),
    Restart(usize),
}

/// A running worker, as the master knows it.
struct Worker {
    slot: usize,
    pid: u32,
    generation: u32,
    ready: bool,
    hung: bool,
    /// Told to finish (reload or shutdown): not restarted when it exits.
    retiring: bool,
    cmds: mpsc::UnboundedSender<Cmd>,
}

/// One slot: its current worker, and its failures.
struct Slot {
    current: Option<u64>,
    backoff: Backoff,
}

/// The master's state; see the module docs.
pub struct Master {
    cfg: Config,
    listeners: Listeners,
    events: mpsc::UnboundedSender<Event>,
    /// Reports of the watches and restart timers, in one queue.
    msgs: mpsc::UnboundedReceiver<Msg>,
    /// Handed to each watch (forwarded into `msgs`).
    reports_tx: mpsc::UnboundedSender<(u64, Report)>,
    /// Handed to each restart timer.
    internal_tx: mpsc::UnboundedSender<Msg>,
    /// Every worker not yet reaped, by id, retiring ones included.
    workers: HashMap<u64, Worker>,
    slots: Vec<Slot>,
    next_id: u64,
    /// Counts reloads, from 1.
    generation: u32,
    /// Cleared by a shutdown (and by giving up): exits are no longer replaced.
    restarting: bool,
    /// Why the pool must stop, once it must.
    failed: Option<PoolError>,
    /// Set while a reload or shutdown collects the retired workers' exits.
    retired: Vec<Retired>,
    sigchld: Option<Signal>,
}

impl Master {
    /// A master with no worker yet; `run` starts them.
    pub fn new(
        cfg: Config,
        listeners: Listeners,
        events: mpsc::UnboundedSender<Event>,
    ) -> io::Result<Master> {
        let (internal_tx, msgs) = mpsc::unbounded_channel();
        // The watches' reports join the same queue, through a forwarding task.
        let (reports_tx, mut reports) = mpsc::unbounded_channel::<(u64, Report)>();
        let forward = internal_tx.clone();
        overlap::spawn(async move {
            while let Some((id, r)) = reports.recv().await {
                if forward.send(Msg::Worker(id, r)).is_err() {
                    return;
                }
            }
        });
        // Listening before any worker exists, so no orphan's SIGCHLD is missed.
        let sigchld = match cfg.reap_orphans {
            true => Some(signal(SignalKind::child())?),
            false => None,
        };
        let slots = (0..cfg.workers)
            .map(|_| Slot {
                current: None,
                backoff: Backoff::new(cfg.backoff_first, cfg.backoff_max),
            })
            .collect();
        Ok(Master {
            cfg,
            listeners,
            events,
            msgs,
            reports_tx,
            internal_tx,
            workers: HashMap::new(),
            slots,
            next_id: 0,
            generation: 1,
            restarting: true,
            failed: None,
            retired: Vec::new(),
            sigchld,
        })
    }

    /// Starts every slot, says so on `ready` once all are ready, then serves control
    /// requests until a shutdown (or the pool's handle is dropped, which shuts down too).
    pub async fn run(
        mut self,
        mut ctl: mpsc::UnboundedReceiver<Control>,
        ready: oneshot::Sender<()>,
    ) -> Result<(), PoolError> {
        for slot in 0..self.slots.len() {
            self.launch(slot);
        }
        let all_ready = self.pump_until(|m| m.all_ready()).await;
        if !all_ready {
            let err = self
                .failed
                .take()
                .expect("pumping stops early only on failure");
            self.shutdown(self.cfg.graceful).await;
            return Err(err);
        }
        let _ = ready.send(());
        loop {
            let req = overlap::select! {
                m = self.msgs.recv() => {
                    self.on_msg(m.expect("the master holds a sender"));
                    None
                }
                _ = next_sigchld(&mut self.sigchld) => {
                    self.reap();
                    None
                }
                c = ctl.recv() => Some(c),
            };
            if let Some(err) = self.failed.take() {
                self.shutdown(self.cfg.graceful).await;
                return Err(err);
            }
            match req {
                None => {}
                Some(Some(Control::Pids(tx))) => drop(tx.send(self.pids())),
                Some(Some(Control::Reload(tx))) => {
                    let report = self.reload().await;
                    let _ = tx.send(report);
                }
                Some(Some(Control::Shutdown { deadline, done })) => {
                    let retired = self.shutdown(deadline).await;
                    let _ = done.send(retired);
                    return Ok(());
                }
                Some(None) => {
                    self.shutdown(self.cfg.graceful).await;
                    return Ok(());
                }
            }
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .map(|s| s.current.map_or(0, |id| self.workers[&id].pid))
            .collect()
    }

    fn all_ready(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.current.is_some_and(|id| self.workers[&id].ready))
    }

    /// Spawns a worker for `slot`; a spawn that fails counts as a failed start.
    fn launch(&mut self, slot: usize) {
        match spawn_worker(&self.listeners, &self.cfg.worker) {
            Ok((child, beats)) => {
                let id = self.next_id;
                self.next_id += 1;
                let pid = child.id().expect("just spawned");
                let (cmds, cmds_rx) = mpsc::unbounded_channel();
                overlap::spawn(watch(
                    id,
                    child,
                    beats,
                    self.cfg.beat_timeout,
                    cmds_rx,
                    self.reports_tx.clone(),
                ));
                self.workers.insert(
                    id,
                    Worker {
                        slot,
                        pid,
                        generation: self.generation,
                        ready: false,
                        hung: false,
                        retiring: false,
                        cmds,
                    },
                );
                self.slots[slot].current = Some(id);
            }
            Err(e) => self.start_failed(slot, None, format!("spawn: {e}")),
        }
    }

    /// Counts a failed start of `slot`: gives up after `start_attempts` in a row, else
    /// restarts it after the back-off.
    fn start_failed(&mut self, slot: usize, last_status: Option<ExitStatus>, stderr: String) {
        let pause = self.slots[slot].backoff.failed();
        let attempts = self.slots[slot].backoff.failures();
        if attempts >= self.cfg.start_attempts {
            self.failed.get_or_insert(PoolError::WontStart {
                slot,
                attempts,
                last_status,
                stderr,
            });
            self.restarting = false;
            return;
        }
        self.restart_after(slot, pause);
    }

    fn restart_after(&mut self, slot: usize, pause: Duration) {
        let tx = self.internal_tx.clone();
        overlap::spawn(async move {
            overlap::time::sleep(pause).await;
            let _ = tx.send(Msg::Restart(slot));
        });
    }

    fn on_msg(&mut self, msg: Msg) {
        let (id, report) = match msg {
            Msg::Restart(slot) => {
                if self.restarting && self.slots[slot].current.is_none() {
                    self.launch(slot);
                }
                return;
            }
            Msg::Worker(id, report) => (id, report),
        };
        match report {
            Report::Ready => {
                let w = self.workers.get_mut(&id).expect("reports end with Exited");
                w.ready = true;
                self.slots[w.slot].backoff.succeeded();
                let (slot, pid, generation) = (w.slot, w.pid, w.generation);
                self.emit(Event::Ready {
                    slot,
                    pid,
                    generation,
                });
            }
            Report::HeartbeatMissed => {
                let w = self.workers.get_mut(&id).expect("reports end with Exited");
                w.hung = true;
                let (slot, pid) = (w.slot, w.pid);
                self.emit(Event::HeartbeatMissed { slot, pid });
            }
            Report::Exited { status, stderr } => {
                let w = self.workers.remove(&id).expect("one Exited per worker");
                self.exited(id, w, status, stderr);
            }
        }
    }

    fn exited(&mut self, id: u64, w: Worker, status: io::Result<ExitStatus>, stderr: String) {
        let Ok(status) = status else {
            // Reaped by code outside overlap (a stray `waitpid(-1)`): no status to report,
            // but the slot is free all the same.
            eprintln!(
                "prefork master: worker {} (slot {}) was reaped elsewhere",
                w.pid, w.slot
            );
            if self.slots[w.slot].current == Some(id) {
                self.slots[w.slot].current = None;
                if self.restarting {
                    let pause = self.slots[w.slot].backoff.failed();
                    self.restart_after(w.slot, pause);
                }
            }
            return;
        };
        let reason = if w.retiring {
            self.retired.push(Retired {
                slot: w.slot,
                pid: w.pid,
                status,
            });
            ExitReason::Retired
        } else if w.hung {
            ExitReason::Hung
        } else if !w.ready {
            ExitReason::FailedToStart
        } else if status.code() == Some(EXIT_RECYCLE) {
            ExitReason::Recycled
        } else {
            ExitReason::Crashed
        };
        self.emit(Event::Exited {
            slot: w.slot,
            pid: w.pid,
            status,
            reason,
            stderr: stderr.clone(),
        });
        let slot = w.slot;
        if self.slots[slot].current != Some(id) {
            return; // retired: a newer worker has the slot
        }
        self.slots[slot].current = None;
        if !self.restarting {
            return;
        }
        match reason {
            ExitReason::Recycled => self.launch(slot),
            ExitReason::FailedToStart => self.start_failed(slot, Some(status), stderr),
            _ => {
                let pause = self.slots[slot].backoff.failed();
                self.restart_after(slot, pause);
            }
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    /// Reaps the orphans reparented here, reporting each.
    fn reap(&mut self) {
        for (pid, status) in reap_orphans().unwrap_or_default() {
            self.emit(Event::OrphanReaped { pid, status });
        }
    }

    /// Handles messages (and SIGCHLD) until `done` holds (`true`) or the pool fails
    /// (`false`).
    async fn pump_until(&mut self, done: fn(&Master) -> bool) -> bool {
        while !done(self) {
            if self.failed.is_some() {
                return false;
            }
            self.pump_one(None).await;
        }
        true
    }

    /// New workers for every slot, ready, then the old ones told to finish (and killed
    /// with their groups after `graceful`).
    async fn reload(&mut self) -> Result<ReloadReport, PoolError> {
        self.generation += 1;
        let old = self.retire_all();
        for slot in 0..self.slots.len() {
            self.launch(slot);
        }
        if !self.pump_until(|m| m.all_ready()).await {
            return Err(self
                .failed
                .take()
                .expect("pumping stops early only on failure"));
        }
        let new = self.pids();
        let mut retired = self.finish(old, self.cfg.graceful).await;
        retired.sort_by_key(|r| r.slot);
        Ok(ReloadReport { old: retired, new })
    }

    /// Tells every worker to finish, kills what is left at `deadline`, and, as a
    /// subreaper, reaps what their groups left until no child is left (or `graceful`
    /// more has passed).
    async fn shutdown(&mut self, deadline: Duration) -> Vec<Retired> {
        self.restarting = false;
        let all = self.retire_all();
        let mut retired = self.finish(all, deadline).await;
        retired.sort_by_key(|r| r.slot);
        if self.sigchld.is_some() {
            let give_up = Instant::now() + self.cfg.graceful;
            self.reap();
            while has_children() && Instant::now() < give_up {
                overlap::select! {
                    _ = next_sigchld(&mut self.sigchld) => self.reap(),
                    _ = sleep_until(give_up) => {}
                }
            }
        }
        retired
    }

    /// Marks every current worker retiring and frees its slot; returns their ids.
    fn retire_all(&mut self) -> Vec<u64> {
        let mut old = Vec::new();
        for slot in &mut self.slots {
            if let Some(id) = slot.current.take() {
                old.push(id);
            }
        }
        self.retired.clear();
        // Workers already retiring (a reload's stragglers) are waited for too.
        for (id, w) in &mut self.workers {
            w.retiring = true;
            if !old.contains(id) {
                old.push(*id);
            }
        }
        old
    }

    /// `SIGTERM` to `ids`, then `SIGKILL` to the groups of those still running after
    /// `grace`; returns once all have exited, with how.
    async fn finish(&mut self, ids: Vec<u64>, grace: Duration) -> Vec<Retired> {
        for id in &ids {
            if let Some(w) = self.workers.get(id) {
                let _ = w.cmds.send(Cmd::Term);
            }
        }
        let gone = |m: &Master, ids: &[u64]| ids.iter().all(|id| !m.workers.contains_key(id));
        let deadline = Instant::now() + grace;
        while !gone(self, &ids) && Instant::now() < deadline {
            self.pump_one(Some(deadline)).await;
        }
        for id in &ids {
            if let Some(w) = self.workers.get(id) {
                let _ = w.cmds.send(Cmd::Kill);
            }
        }
        while !gone(self, &ids) {
            self.pump_one(None).await;
        }
        std::mem::take(&mut self.retired)
    }

    /// Handles one message or SIGCHLD, or returns at `deadline`.
    async fn pump_one(&mut self, deadline: Option<Instant>) {
        overlap::select! {
            m = self.msgs.recv() => self.on_msg(m.expect("the master holds a sender")),
            _ = next_sigchld(&mut self.sigchld) => self.reap(),
            _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {}
        }
    }
}

/// The next SIGCHLD; never, when the master reaps no orphans.
async fn next_sigchld(sig: &mut Option<Signal>) {
    match sig {
        Some(s) => drop(s.recv().await),
        None => std::future::pending().await,
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Whether this process has a child left (zombies included), in any of its threads.
fn has_children() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("children")).is_ok_and(|c| !c.trim().is_empty())
    })
}
