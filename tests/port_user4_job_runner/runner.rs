//! The job runner itself: the program a user would ship, driven by the tests in
//! `port_user4_job_runner.rs` over its control socket.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{self, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::UnixListener;
use overlap::process::Command;
use overlap::sync::mpsc::{self, cross_thread};
use overlap::sync::Semaphore;
use overlap::task::{AbortHandle, Id, JoinError, JoinSet};
use overlap::time::timeout;

/// Where a job's reports go: the connection that asked for it (and, for a CPU job, the
/// pool thread running it).
type Reply = cross_thread::UnboundedSender<Vec<u8>>;
/// Where the sessions' requests go: the coordinator.
type Requests = mpsc::UnboundedSender<(Request, Reply)>;

fn say(reply: &Reply, line: String) {
    let _ = reply.send(line.into_bytes()); // the client may be gone: the job goes on
}

enum Job {
    /// `sh -c cmd`, `input` on its stdin, killed after `limit`.
    Shell {
        cmd: String,
        input: Vec<u8>,
        limit: Duration,
    },
    /// Counts the primes below `below` on the blocking pool, in chunks.
    Cpu { below: u64 },
}

enum Request {
    Run { id: u64, job: Job },
    Cancel { id: u64 },
    Shutdown { grace: Duration },
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn number(word: Option<&str>) -> io::Result<u64> {
    word.and_then(|w| w.parse().ok())
        .ok_or_else(|| bad("bad number"))
}

/// One request: `RUN id ms len cmd` and `len` bytes of input, `CPU id n`, `CANCEL id`,
/// `SHUTDOWN ms`. `Ok(None)` at end of input.
async fn read_request(read: &mut BufReader<OwnedReadHalf>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let (verb, rest) = line.trim_end().split_once(' ').unwrap_or((&line, ""));
    let mut w = rest.splitn(4, ' ');
    let ms = |w| number(w).map(Duration::from_millis);
    let req = match verb {
        "RUN" => {
            let (id, limit, len) = (number(w.next())?, ms(w.next())?, number(w.next())?);
            let cmd = w.next().ok_or_else(|| bad("no command"))?.to_owned();
            if len > 16 << 20 {
                return Err(bad("input too long"));
            }
            let mut input = vec![0; len as usize];
            read.read_exact(&mut input).await?;
            let job = Job::Shell { cmd, input, limit };
            Request::Run { id, job }
        }
        "CPU" => {
            let (id, below) = (number(w.next())?, number(w.next())?);
            let job = Job::Cpu { below };
            Request::Run { id, job }
        }
        "CANCEL" => Request::Cancel {
            id: number(w.next())?,
        },
        "SHUTDOWN" => Request::Shutdown {
            grace: ms(w.next())?,
        },
        _ => return Err(bad("unknown request")),
    };
    Ok(Some(req))
}

/// A connection's reader: requests to the coordinator, until end of input, a broken
/// frame, or the coordinator no longer taking any.
async fn session(read: OwnedReadHalf, reply: Reply, requests: Requests) {
    let mut read = BufReader::new(read);
    loop {
        match read_request(&mut read).await {
            Ok(Some(req)) => {
                if requests.send((req, reply.clone())).is_err() {
                    return say(&reply, "ERROR shutting down\n".into());
                }
            }
            Ok(None) => return,
            // A bad line is answered and skipped; a cut frame or a failed read ends it.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => say(&reply, format!("ERROR {e}\n")),
            Err(_) => return,
        }
    }
}

/// A connection's writer: every report, in order, until no one can send one.
async fn write_replies(
    mut write: OwnedWriteHalf,
    mut replies: cross_thread::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(frame) = replies.recv().await {
        if write.write_all(&frame).await.is_err() {
            return;
        }
    }
}

/// Takes control connections until aborted (which drops the listener).
async fn accept(listener: UnixListener, requests: Requests) {
    loop {
        let Ok((read, write)) = listener.accept().await.map(|(c, _)| c.into_split()) else {
            continue;
        };
        let (reply, replies) = cross_thread::unbounded_channel();
        overlap::spawn(write_replies(write, replies));
        overlap::spawn(session(read, reply, requests.clone()));
    }
}

fn status_word(status: ExitStatus) -> String {
    let signal = || format!("sig{}", status.signal().unwrap_or(0));
    status.code().map_or_else(signal, |code| code.to_string())
}

async fn run_shell(id: u64, cmd: String, input: Vec<u8>, limit: Duration, reply: &Reply) {
    let mut sh = Command::new("sh");
    sh.args(["-c", &cmd]).kill_on_drop(true);
    let spawned = sh
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return say(reply, format!("FAILED {id} {e}\n")),
    };
    say(reply, format!("STARTED {id} pid={}\n", child.id().unwrap()));
    let mut stdin = child.stdin.take().unwrap();
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let feed = async move {
        // A child that exits without reading all its input is not an error of the job.
        match stdin.write_all(&input).await {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    };
    // Outside the timeout: a `read_to_end` cut short keeps what it read.
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let work = async {
        let read_out = overlap::io::read_to_end(&mut stdout, &mut out);
        let read_err = overlap::io::read_to_end(&mut stderr, &mut err);
        overlap::join!(feed, read_out, read_err, child.wait())
    };
    let status = match timeout(limit, work).await {
        Ok((Ok(()), Ok(_), Ok(_), Ok(status))) => status_word(status),
        Ok((fed, read_out, read_err, status)) => {
            let e = [fed.err(), read_out.err(), read_err.err(), status.err()];
            let e = e.into_iter().flatten().next().unwrap();
            return say(reply, format!("FAILED {id} {e}\n"));
        }
        Err(_) => {
            let _ = child.kill().await;
            "timeout".into()
        }
    };
    let (o, e) = (out.len(), err.len());
    let head = format!("DONE {id} status={status} out={o} err={e}\n");
    let _ = reply.send([head.into_bytes(), out, err].concat());
}

/// Sets the flag when the job's task goes (finished or aborted), so the pool thread stops.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

async fn run_cpu(id: u64, below: u64, reply: &Reply) {
    const CHUNK: u64 = 10_000;
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    let progress = reply.clone();
    say(reply, format!("STARTED {id} cpu\n"));
    let job = overlap::spawn_blocking(move || {
        let mut primes = 0;
        for (k, start) in (0..below).step_by(CHUNK as usize).enumerate() {
            if stop.load(Ordering::Relaxed) {
                say(&progress, format!("STOPPED {id}\n"));
                return None;
            }
            let chunk = start..below.min(start + CHUNK);
            primes += chunk.filter(|&n| is_prime(n)).count();
            say(&progress, format!("PROGRESS {id} {}\n", k + 1));
        }
        Some(primes)
    });
    match job.await {
        Ok(Some(primes)) => say(reply, format!("CPU {id} primes={primes}\n")),
        Ok(None) => say(reply, format!("FAILED {id} stopped\n")),
        Err(e) => say(reply, format!("FAILED {id} {e}\n")),
    }
}

async fn run_job(id: u64, job: Job, limit: Rc<Semaphore>, reply: Reply) {
    // Queued behind the limit; a closed semaphore means shutdown.
    let Ok(_permit) = limit.acquire().await else {
        return say(&reply, format!("CANCELLED {id} shutdown\n"));
    };
    match job {
        Job::Shell { cmd, input, limit } => run_shell(id, cmd, input, limit, &reply).await,
        Job::Cpu { below } => run_cpu(id, below, &reply).await,
    }
}

/// The jobs in flight, each task with its job's id, reply channel and abort handle.
struct Runner {
    limit: Rc<Semaphore>,
    jobs: JoinSet<()>,
    by_task: HashMap<Id, (u64, Reply, AbortHandle)>,
}

impl Runner {
    fn find(&self, id: u64) -> Option<&AbortHandle> {
        self.by_task
            .values()
            .find(|job| job.0 == id)
            .map(|job| &job.2)
    }

    fn start(&mut self, id: u64, job: Job, reply: Reply) {
        if self.find(id).is_some() {
            return say(&reply, format!("ERROR job {id} exists\n"));
        }
        let job = run_job(id, job, self.limit.clone(), reply.clone());
        let task = self.jobs.spawn(job);
        self.by_task.insert(task.id(), (id, reply, task));
    }

    fn cancel(&mut self, id: u64, reply: &Reply) {
        match self.find(id) {
            Some(task) => task.abort(), // reported when the JoinSet hands it back
            None => say(reply, format!("ERROR no job {id}\n")),
        }
    }

    /// A job's task is over: a cancelled one is reported here (its child killed on drop).
    fn finished(&mut self, done: Result<(Id, ()), JoinError>, why: &str) {
        let task = match &done {
            Ok((task, ())) => *task,
            Err(e) => e.id(),
        };
        let (id, reply, _) = self.by_task.remove(&task).expect("every job is mapped");
        match done {
            Ok(_) => {}
            Err(e) if e.is_cancelled() => say(&reply, format!("CANCELLED {id} {why}\n")),
            Err(e) => say(&reply, format!("FAILED {id} {e}\n")),
        }
    }
}

/// Serves control connections on `listener`, running up to `limit` jobs at once, until a
/// `SHUTDOWN` request; then returns how many jobs ended within its grace time, and how
/// many were killed at its end.
pub async fn serve(listener: UnixListener, limit: usize) -> (usize, usize) {
    let (requests_tx, mut requests) = mpsc::unbounded_channel();
    let acceptor = overlap::spawn(accept(listener, requests_tx));
    let mut runner = Runner {
        limit: Rc::new(Semaphore::new(limit)),
        jobs: JoinSet::new(),
        by_task: HashMap::new(),
    };
    let (grace, reply) = loop {
        enum Step {
            Request(Option<(Request, Reply)>),
            Finished(Result<(Id, ()), JoinError>),
        }
        let step = {
            let next_request = requests.recv().fuse();
            // `join_next` on an empty set is ready with `None` at once: wait only on jobs.
            let jobs = &mut runner.jobs;
            let next_done = async move {
                match jobs.is_empty() {
                    true => overlap::future::pending().await,
                    false => jobs.join_next_with_id().await.unwrap(),
                }
            };
            let next_done = next_done.fuse();
            overlap::pin_mut!(next_request, next_done);
            overlap::select! {
                req = next_request => Step::Request(req),
                done = next_done => Step::Finished(done),
            }
        };
        match step {
            Step::Request(Some((Request::Run { id, job }, reply))) => runner.start(id, job, reply),
            Step::Request(Some((Request::Cancel { id }, reply))) => runner.cancel(id, &reply),
            Step::Request(Some((Request::Shutdown { grace }, reply))) => break (grace, reply),
            Step::Request(None) => unreachable!("the acceptor holds a sender"),
            Step::Finished(done) => runner.finished(done, "by request"),
        }
    };
    // Stop accepting (the listener goes with the acceptor) and taking requests (those sent
    // meanwhile are dropped); jobs still queued behind the limit give up.
    acceptor.abort();
    drop(requests);
    runner.limit.close();
    let (mut finished, mut killed) = (0, 0);
    let drained = timeout(grace, async {
        while let Some(done) = runner.jobs.join_next_with_id().await {
            finished += done.is_ok() as usize;
            runner.finished(done, "shutdown");
        }
    })
    .await;
    if drained.is_err() {
        runner.jobs.abort_all();
        while let Some(done) = runner.jobs.join_next_with_id().await {
            killed += done.is_err() as usize;
            runner.finished(done, "shutdown");
        }
    }
    say(&reply, format!("BYE finished={finished} killed={killed}\n"));
    (finished, killed)
}
