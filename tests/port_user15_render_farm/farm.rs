//! The farm: admission (a `Semaphore` of job slots and a bounded wait queue, `BUSY` past
//! it), the cache in front, and one task per job that runs the work on the blocking pool,
//! forwards its progress, and enforces the job's timeout. The blocking work cannot be
//! interrupted: on a timeout, a client gone, or an abandon at shutdown, the task sets the
//! job's cancel flag, stops talking to the client, and waits on for the job to end (the
//! slot stays taken until it has), caching a result that came late instead of sending it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::sync::mpsc::{self, cross_thread};
use overlap::sync::{CancellationToken, OwnedSemaphorePermit, Semaphore};
use overlap::task::TaskTracker;
use overlap::time;

use super::cache::{self, Cache, Lookup};
use super::proto::{JobRequest, Reply};
use super::work::{self, JobCtx, Op, Outcome, StepHook, WorkCounters};

#[derive(Clone)]
pub struct Config {
    /// Jobs running at once (the semaphore's permits).
    pub slots: usize,
    /// Jobs waiting for a slot at most; one more gets `BUSY`.
    pub queue: usize,
    pub job_timeout: Duration,
    pub max_payload: usize,
    /// The progress channel's bound, between a job and its task.
    pub progress_capacity: usize,
    /// A test's hook, called by each job before each step.
    pub hook: Option<StepHook>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            slots: 2,
            queue: 2,
            job_timeout: Duration::from_secs(30),
            max_payload: 64 * 1024,
            progress_capacity: 4,
            hook: None,
        }
    }
}

/// The farm's counters, and its gauges at the time of the snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub pings: u64,
    pub jobs: u64,
    pub results_sent: u64,
    pub cache_hits: u64,
    pub cache_corrupt: u64,
    pub cache_errors: u64,
    pub busy: u64,
    pub timeouts: u64,
    pub panics: u64,
    pub bad_requests: u64,
    pub oversized_frames: u64,
    pub truncated_frames: u64,
    /// Jobs whose client vanished while they ran, or while they waited for a slot.
    pub client_gone: u64,
    pub client_gone_queued: u64,
    pub abandoned: u64,
    /// Results that came after their job was given up, cached and not sent.
    pub late_cached: u64,
    /// Jobs given up that then stopped at their cancel flag, their result dropped.
    pub late_discarded: u64,
    pub progress_sent: u64,
    pub progress_dropped: u64,
    pub refused_shutting_down: u64,
    // Gauges.
    pub running: u64,
    pub waiting: u64,
    pub free_slots: u64,
}

/// Why a job's task stopped waiting for its result.
enum Fate {
    Finished(Result<Outcome, overlap::task::JoinError>),
    TimedOut,
    ClientGone,
    Abandoned,
}

pub struct Farm {
    pub cfg: Config,
    cache: Cache,
    slots: Rc<Semaphore>,
    waiting: Cell<u64>,
    running: Cell<u64>,
    stats: RefCell<Stats>,
    pub work: Arc<WorkCounters>,
    /// Every job's task, for the shutdown to wait on.
    pub jobs: TaskTracker,
    /// Set at shutdown: no new job starts.
    pub stopping: CancellationToken,
    /// Set when the shutdown's deadline passed: the jobs still running are given up.
    pub abandon: CancellationToken,
}

/// Counts a waiter in the queue while it lives (a cancelled wait included).
struct Queued<'a>(&'a Cell<u64>);

impl<'a> Queued<'a> {
    fn new(count: &'a Cell<u64>) -> Queued<'a> {
        count.set(count.get() + 1);
        Queued(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Farm {
    pub fn new(cfg: Config, cache: Cache) -> Rc<Farm> {
        Rc::new(Farm {
            slots: Rc::new(Semaphore::new(cfg.slots)),
            cfg,
            cache,
            waiting: Cell::new(0),
            running: Cell::new(0),
            stats: RefCell::new(Stats::default()),
            work: Arc::new(WorkCounters::default()),
            jobs: TaskTracker::new(),
            stopping: CancellationToken::new(),
            abandon: CancellationToken::new(),
        })
    }

    pub fn note(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut self.stats.borrow_mut());
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.borrow().clone();
        s.running = self.running.get();
        s.waiting = self.waiting.get();
        s.free_slots = self.slots.available_permits() as u64;
        s
    }

    pub fn running(&self) -> u64 {
        self.running.get()
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// One job, from its request to its last reply (and, given up, to its end).
    pub async fn serve_job(
        self: Rc<Self>,
        req: JobRequest,
        out: mpsc::Sender<Reply>,
        gone: CancellationToken,
    ) {
        let id = req.id;
        self.note(|s| s.jobs += 1);
        let error = |message: String| Reply::Error { id, message };
        if self.stopping.is_cancelled() {
            self.note(|s| s.refused_shutting_down += 1);
            let _ = out.send(error("shutting down".into())).await;
            return;
        }
        let op = match Op::parse(&req.op, &req.payload) {
            Ok(op) => op,
            Err(message) => {
                self.note(|s| s.bad_requests += 1);
                let _ = out.send(error(message)).await;
                return;
            }
        };
        let key = cache::key(&req.op, &req.payload);
        match self.cache.get(&key).await {
            Ok(Lookup::Hit(data)) => {
                self.note(|s| {
                    s.cache_hits += 1;
                    s.results_sent += 1;
                });
                let _ = out
                    .send(Reply::Result {
                        id,
                        cached: true,
                        data,
                    })
                    .await;
                return;
            }
            Ok(Lookup::Miss) => {}
            Ok(Lookup::Corrupt(_)) => self.note(|s| s.cache_corrupt += 1),
            Err(_) => self.note(|s| s.cache_errors += 1),
        }
        let Some(permit) = self.admit(id, &out, &gone).await else {
            return;
        };
        self.run(key, op, id, permit, out, gone).await;
    }

    /// A slot at once, or a place in the queue, or `BUSY`. `None` when the job will not run
    /// (its reply, if any, sent).
    async fn admit(
        &self,
        id: u32,
        out: &mpsc::Sender<Reply>,
        gone: &CancellationToken,
    ) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.waiting.get() >= self.cfg.queue as u64 {
            self.note(|s| s.busy += 1);
            let _ = out.send(Reply::Busy { id }).await;
            return None;
        }
        let _queued = Queued::new(&self.waiting);
        overlap::select! {
            permit = self.slots.clone().acquire_owned() => Some(permit.expect("never closed")),
            _ = gone.cancelled() => {
                self.note(|s| s.client_gone_queued += 1);
                None
            }
            _ = self.stopping.cancelled() => {
                self.note(|s| s.refused_shutting_down += 1);
                let message = "shutting down".to_string();
                let _ = out.send(Reply::Error { id, message }).await;
                None
            }
        }
    }

    async fn run(
        &self,
        key: String,
        op: Op,
        id: u32,
        permit: OwnedSemaphorePermit,
        out: mpsc::Sender<Reply>,
        gone: CancellationToken,
    ) {
        let cancel = Arc::new(AtomicBool::new(false));
        let (progress_tx, mut progress) = cross_thread::channel(self.cfg.progress_capacity);
        let ctx = JobCtx {
            cancel: cancel.clone(),
            progress: progress_tx,
            hook: self.cfg.hook.clone(),
            counters: self.work.clone(),
        };
        self.running.set(self.running.get() + 1);
        let mut handle = overlap::spawn_blocking(move || work::run(&op, ctx));
        let deadline = time::sleep(self.cfg.job_timeout);
        overlap::pin_mut!(deadline);
        let forward = |done, total| match out.try_send(Reply::Progress { id, done, total }) {
            Ok(()) => self.note(|s| s.progress_sent += 1),
            Err(_) => self.note(|s| s.progress_dropped += 1),
        };
        let fate = loop {
            overlap::select! {
                biased;
                res = &mut handle => break Fate::Finished(res),
                Some((done, total)) = progress.recv() => forward(done, total),
                _ = &mut deadline => break Fate::TimedOut,
                _ = gone.cancelled() => break Fate::ClientGone,
                _ = self.abandon.cancelled() => break Fate::Abandoned,
            }
        };
        if let Fate::Finished(res) = fate {
            self.running.set(self.running.get() - 1);
            drop(permit);
            // Progress the job sent before it returned, not yet forwarded.
            while let Ok((done, total)) = progress.try_recv() {
                forward(done, total);
            }
            let reply = match res {
                Ok(Outcome::Done(data)) => {
                    if self.cache.put(&key, &data).await.is_err() {
                        self.note(|s| s.cache_errors += 1);
                    }
                    self.note(|s| s.results_sent += 1);
                    Reply::Result {
                        id,
                        cached: false,
                        data,
                    }
                }
                Ok(Outcome::Cancelled { at_step }) => Reply::Error {
                    id,
                    message: format!("cancelled at step {at_step}"),
                },
                Err(e) => {
                    self.note(|s| s.panics += 1);
                    let message = match e.try_into_panic() {
                        Ok(payload) => panic_text(payload),
                        Err(e) => e.to_string(),
                    };
                    Reply::Error {
                        id,
                        message: format!("job panicked: {message}"),
                    }
                }
            };
            overlap::select! {
                _ = out.send(reply) => {}
                _ = gone.cancelled() => {}
            }
            return;
        }
        // Given up: the job is told to stop, the client told (or not: it is gone), and the
        // task waits on without the client, holding the slot, until the job ends.
        cancel.store(true, Ordering::SeqCst);
        let reply = match fate {
            Fate::TimedOut => {
                self.note(|s| s.timeouts += 1);
                Some(Reply::Timeout { id })
            }
            Fate::Abandoned => {
                self.note(|s| s.abandoned += 1);
                let message = "abandoned at shutdown".to_string();
                Some(Reply::Error { id, message })
            }
            Fate::ClientGone => {
                self.note(|s| s.client_gone += 1);
                None
            }
            Fate::Finished(_) => unreachable!(),
        };
        if let Some(reply) = reply {
            overlap::select! {
                _ = out.send(reply) => {}
                _ = gone.cancelled() => {}
            }
        }
        drop(progress); // the job's blocking_send fails from now on, instead of waiting
        drop(out); // the connection's writer need not wait for this task
        let late = handle.await;
        self.running.set(self.running.get() - 1);
        drop(permit);
        match late {
            Ok(Outcome::Done(data)) => {
                if self.cache.put(&key, &data).await.is_ok() {
                    self.note(|s| s.late_cached += 1);
                } else {
                    self.note(|s| s.cache_errors += 1);
                }
            }
            Ok(Outcome::Cancelled { .. }) => self.note(|s| s.late_discarded += 1),
            Err(_) => self.note(|s| s.panics += 1),
        }
    }
}

/// The message of a job's panic.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "(not a string)".into()),
    }
}
