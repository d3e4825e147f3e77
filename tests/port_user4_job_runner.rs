//! A user's job runner, sketched as one would for tokio (a coordinator task taking jobs
//! from Unix-socket control connections, line-based requests with a length-prefixed input
//! for a child; each job a `sh -c` child with piped stdin, stdout and stderr, fed and read
//! concurrently with `join!` under `time::timeout` and killed past it, or a CPU job on
//! `spawn_blocking` reporting progress from the pool thread through an unbounded mpsc; a
//! `Semaphore` as the concurrency limit; the jobs in a `JoinSet`, found again by an
//! `AbortHandle` to cancel one; a graceful shutdown that stops accepting, lets the running
//! jobs finish up to a deadline and then kills the rest) and then written for overlap.
//!
//! The tests check that every kind of job reports the right bytes and statuses, a job past
//! its timeout what it wrote before it was killed (and reaped), and bad requests an error
//! each; that cancelling a running child, a CPU job and a job still queued behind the limit
//! leaves no process, zombie or descriptor behind (counted in a child process of its own,
//! with pidfds and without); and that a shutdown lets a job that finishes within the grace
//! time report, kills the one that does not, cancels the queued one, refuses new
//! connections and ends the other sessions.
//!
//! What the port changed, against tokio: `tokio::spawn` is `overlap::spawn`, and the state
//! needs no `Arc`/`Mutex` (`Rc<Semaphore>`); the reply channel is
//! `sync::mpsc::cross_thread` (tokio's mpsc is `Send` everywhere; overlap's local one is
//! not, so the pool thread's progress goes through the cross-thread one); `select!` is
//! futures' (`.fuse()` on each future, and no `, if cond` precondition: an empty `JoinSet`'s
//! `join_next` is ready with `None` at once, so the coordinator waits on it only while it
//! holds jobs); `read_to_end` is `overlap::io::read_to_end` (futures' method is quadratic
//! on a long stream; this one, dropped by the timeout, keeps what it read). The child is
//! killed by `kill_on_drop` when its job is aborted, as in tokio, and reaped in the
//! background, so no zombie remains even when nothing else is spawned. The CPU job stops
//! through a flag its task sets when dropped: aborting a running `spawn_blocking` job
//! stops nothing, here as in tokio (overlap's handle reports it cancelled at once, where
//! tokio's waits and gives the result).

mod support;

#[path = "port_user4_job_runner/runner.rs"]
mod runner;

use std::path::Path;
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::{UnixListener, UnixStream};
use runner::serve;
use support::{children, gone, open_fds, within, TempDir};

const HANG: Duration = Duration::from_secs(20);

/// The test's side of a control connection.
struct Client {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// A report: its line, and for `DONE` the child's stdout and stderr.
#[derive(Debug)]
struct Report {
    line: String,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Report {
    fn word(&self, n: usize) -> &str {
        self.line.split(' ').nth(n).unwrap_or("")
    }

    fn field(&self, name: &str) -> &str {
        let mut words = self.line.split(' ');
        let found = words.find_map(|w| w.strip_prefix(name)?.strip_prefix('='));
        found.unwrap_or_else(|| panic!("no {name} in {:?}", self.line))
    }

    fn pid(&self) -> u32 {
        self.field("pid").parse().unwrap()
    }
}

impl Client {
    async fn connect(path: &Path) -> Client {
        let (read, write) = UnixStream::connect(path).await.unwrap().into_split();
        let read = BufReader::new(read);
        Client { read, write }
    }

    async fn send(&mut self, line: &str) {
        let line = format!("{line}\n");
        self.write.write_all(line.as_bytes()).await.unwrap();
    }

    /// A `RUN` request, with `input` for the child's stdin.
    async fn run(&mut self, id: u64, ms: u64, cmd: &str, input: &[u8]) {
        let head = format!("RUN {id} {ms} {} {cmd}\n", input.len());
        let request = [head.as_bytes(), input].concat();
        self.write.write_all(&request).await.unwrap();
    }

    /// The next report, or `None` at end of file.
    async fn next(&mut self) -> Option<Report> {
        let mut line = String::new();
        let read = within(HANG, self.read.read_line(&mut line), "a report").await;
        if read.unwrap() == 0 {
            return None;
        }
        let line = line.trim_end().to_owned();
        let mut report = Report {
            line,
            out: Vec::new(),
            err: Vec::new(),
        };
        if report.word(0) == "DONE" {
            report.out = vec![0; report.field("out").parse().unwrap()];
            report.err = vec![0; report.field("err").parse().unwrap()];
            self.read.read_exact(&mut report.out).await.unwrap();
            self.read.read_exact(&mut report.err).await.unwrap();
        }
        Some(report)
    }

    /// Reports up to the first whose line starts with `prefix`, progress lines left out;
    /// the last is that one.
    async fn until(&mut self, prefix: &str) -> Vec<Report> {
        self.until_all(&[prefix]).await
    }

    /// The first report whose line starts with `prefix`.
    async fn last(&mut self, prefix: &str) -> Report {
        self.until(prefix).await.pop().unwrap()
    }

    /// Reports up to those starting with each of `prefixes`, in any order (the last is the
    /// last one found), progress lines left out.
    async fn until_all(&mut self, prefixes: &[&str]) -> Vec<Report> {
        let mut got: Vec<Report> = Vec::new();
        let mut missing = prefixes.to_vec();
        while !missing.is_empty() {
            let report = self.next().await;
            let report = report.unwrap_or_else(|| panic!("no {missing:?} in {got:?}"));
            missing.retain(|p| !report.line.starts_with(p));
            if report.word(0) != "PROGRESS" {
                got.push(report);
            }
        }
        got
    }
}

/// The server on a fresh socket in `dir`, and a client of it.
async fn start(dir: &TempDir, limit: usize) -> (overlap::task::JoinHandle<(usize, usize)>, Client) {
    let path = dir.join("jobs.sock");
    let server = overlap::spawn(serve(UnixListener::bind(&path).unwrap(), limit));
    (server, Client::connect(&path).await)
}

fn find<'a>(reports: &'a [Report], prefix: &str) -> &'a Report {
    let found = reports.iter().find(|r| r.line.starts_with(prefix));
    found.unwrap_or_else(|| panic!("no {prefix:?} in {reports:?}"))
}

#[overlap::test]
async fn jobs_report_output_status_and_timeouts_and_bad_requests_get_errors() {
    let dir = TempDir::new("job-runner-basic");
    let (server, mut client) = start(&dir, 3).await;
    let input = support::pattern(1 << 20);
    client.run(1, 10_000, "cat", &input).await;
    client.send("RUN 2 10000 0 yes | head -c 300000").await;
    client.send("RUN 3 10000 0 echo oops >&2; exit 3").await;
    client.send("CPU 4 50000").await;
    // `exec`: the shell's own process is the job, with no grandchild left holding the pipes.
    client
        .send("RUN 5 1500 0 echo partial; exec sleep 10")
        .await;
    client.send("FROB 6").await;
    client.send("RUN x 1 true").await;
    // Five results and two errors, in whatever order the jobs end.
    let mut reports = Vec::new();
    let results = |all: &[Report]| all.iter().filter(|r| r.word(0) != "STARTED").count();
    while results(&reports) < 7 {
        reports.extend(client.until("").await);
    }
    let cat = find(&reports, "DONE 1 ");
    assert_eq!((cat.field("status"), cat.out == input), ("0", true));
    assert_eq!(find(&reports, "DONE 2 ").out, b"y\n".repeat(150_000));
    let failed = find(&reports, "DONE 3 ");
    assert_eq!(
        (failed.field("status"), failed.err.as_slice()),
        ("3", &b"oops\n"[..])
    );
    assert_eq!(find(&reports, "CPU 4 ").line, "CPU 4 primes=5133");
    // Killed at its timeout and reaped, with what it wrote before.
    let late = find(&reports, "DONE 5 ");
    assert_eq!(late.field("status"), "timeout");
    assert_eq!(late.out, b"partial\n");
    gone(find(&reports, "STARTED 5 ").pid(), "the timed-out child").await;
    let errors = reports.iter().filter(|r| r.word(0) == "ERROR");
    let errors: Vec<_> = errors.map(|r| &r.line).collect();
    assert_eq!(errors, ["ERROR unknown request", "ERROR bad number"]);

    // A connection whose input ends within a request's input ends alone.
    let mut cut = Client::connect(&dir.join("jobs.sock")).await;
    cut.send("RUN 1 1000 100 cat\nonly part").await;
    cut.write.close().await.unwrap();
    let end = cut.next().await;
    assert!(end.is_none(), "the session ends with its input: {end:?}");
    client.send("RUN 6 1000 99999999999 cat").await;
    assert_eq!(client.last("ERROR").await.line, "ERROR input too long");
    let bad = b"RUN 7 1000 0 echo \xff\n";
    client.write.write_all(bad).await.unwrap();
    let not_utf8 = client.last("ERROR").await.line;
    assert_eq!(not_utf8, "ERROR stream did not contain valid UTF-8");
    client.send("RUN 8 1000 0 echo \0").await;
    let said = "argument 2 \"echo \\0\" contains a NUL byte, which cannot be passed to a program";
    assert_eq!(
        client.last("FAILED 8").await.line,
        format!("FAILED 8 {said}")
    );
    client.run(9, 1000, "cat", b"a\0b").await;
    assert_eq!(client.last("DONE 9").await.out, b"a\0b");

    client.send("SHUTDOWN 1000").await;
    assert_eq!(client.last("BYE").await.line, "BYE finished=0 killed=0");
    assert_eq!(within(HANG, server, "shutdown").await.unwrap(), (0, 0));
}

/// Cancelling a running child, a running CPU job and a job queued behind the limit ends
/// each, and leaves no process, zombie or descriptor behind.
#[test]
fn cancelled_jobs_leave_no_process_zombie_or_fd() {
    support::run_in_child("cancelled_jobs_leave_no_process_zombie_or_fd", cancel_jobs);
}

/// As [`cancelled_jobs_leave_no_process_zombie_or_fd`], where `pidfd_open` is denied (a
/// seccomp profile, an old kernel): the children's exits are seen through `SIGCHLD`.
#[test]
fn cancelled_jobs_leave_nothing_behind_without_pidfds() {
    support::run_in_child("cancelled_jobs_leave_nothing_behind_without_pidfds", || {
        support::seccomp::deny(&[(libc::SYS_pidfd_open, libc::ENOSYS)]);
        cancel_jobs();
    });
}

fn cancel_jobs() {
    overlap::block_on(async {
        let dir = TempDir::new("job-runner-cancel");
        let (server, mut client) = start(&dir, 2).await;
        // The first job warms up what the runtime keeps (pool thread, signal pipe...).
        client.send("RUN 1 10000 0 true").await;
        client.until("DONE 1").await;
        overlap::time::sleep(Duration::from_millis(20)).await;
        let fds = open_fds();
        client.send("RUN 2 10000 0 exec sleep 10").await;
        let pid = client.last("STARTED 2").await.pid();
        client.send(&format!("CPU 3 {}", u64::MAX / 2)).await;
        client.until("PROGRESS 3").await;
        client.send("RUN 4 10000 0 echo never").await; // queued: two jobs run
        client.send("CANCEL 4").await;
        let queued = client.last("CANCELLED 4").await.line;
        assert_eq!(queued, "CANCELLED 4 by request");
        client.send("CANCEL 2").await;
        client.until("CANCELLED 2").await;
        gone(pid, "the cancelled child").await;
        client.send("CANCEL 3").await;
        // The task is cancelled; the pool thread sees it at its next chunk.
        let stops = ["STOPPED 3", "CANCELLED 3 by request"];
        let cpu = client.until_all(&stops).await;
        assert_eq!(cpu.len(), 2, "{cpu:?}");
        client.send("CANCEL 2").await;
        assert_eq!(client.last("ERROR").await.line, "ERROR no job 2");
        assert_eq!(children(), "", "no child left, not even a zombie");
        // The child's pipes went with its task, its pidfd once it was reaped.
        assert_eq!(open_fds(), fds);
        client.send("SHUTDOWN 0").await;
        client.until("BYE").await;
        within(HANG, server, "shutdown").await.unwrap();
    });
}

#[overlap::test]
async fn shutdown_lets_jobs_finish_within_the_grace_and_kills_the_rest() {
    let dir = TempDir::new("job-runner-shutdown");
    let gate = dir.join("gate");
    support::mkfifo(&gate);
    let (server, mut client) = start(&dir, 2).await;
    let mut other = Client::connect(&dir.join("jobs.sock")).await;
    let gated = format!(
        "RUN 1 10000 0 read x < {}; echo finished $x",
        gate.display()
    );
    client.send(&gated).await;
    client.send("RUN 2 10000 0 exec sleep 10").await;
    client.send("RUN 3 10000 0 echo queued").await;
    let first = client.last("STARTED").await;
    let second = client.last("STARTED").await;
    client.send("SHUTDOWN 1500").await;
    // The gated job may end now; the sleeper outlives the grace.
    overlap::fs::write(&gate, "go\n").await.unwrap();
    let reports = client.until("BYE").await;
    assert_eq!(find(&reports, "DONE 1").out, b"finished go\n");
    find(&reports, "CANCELLED 2 shutdown");
    find(&reports, "CANCELLED 3 shutdown");
    let started = reports.iter().filter(|r| r.word(0) == "STARTED");
    assert_eq!(started.count(), 0, "{reports:?}");
    let summary = within(HANG, server, "shutdown").await.unwrap();
    // Job 3 gave up its place in the queue within the grace, too.
    assert_eq!(summary, (2, 1));
    gone(first.pid(), "the finished child").await;
    gone(second.pid(), "the killed child").await;
    // No new connection is taken, and the other session is told and ended.
    assert!(UnixStream::connect(dir.join("jobs.sock")).await.is_err());
    other.send("RUN 9 10000 0 true").await;
    assert_eq!(other.next().await.unwrap().line, "ERROR shutting down");
    assert!(other.next().await.is_none());
}
