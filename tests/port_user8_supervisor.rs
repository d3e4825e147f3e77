//! A user's process supervisor (a tiny s6/supervisord), sketched as one would for tokio and
//! then written for overlap.
//!
//! The tokio sketch: one task per service spawning `tokio::process::Command` with
//! `NOTIFY_SOCKET` set to a `UnixDatagram` of its own in a temp dir (`READY=1`,
//! `WATCHDOG=1`, `STATUS=...`, as `sd_notify`); its stdout and stderr read line by line
//! (`BufReader::lines`) by two tasks into one log channel, each line tagged with the
//! service's name; the task's `select!` on `child.wait()`, the notify socket, a
//! `sleep_until` watchdog deadline and a command channel; a crash restarts the service after
//! an exponential backoff, and more than N crashes in a window make it give up; a stop
//! sends SIGTERM (`child.id()` and `nix::sys::signal::kill`), waits a grace period under
//! `time::timeout`, then `child.kill()`; a `watch` channel per service gates a dependent
//! service's start on `READY=1`; the main task's `select!` on
//! `signal::unix::signal(SignalKind::hangup())` (forwarded to every child),
//! `SignalKind::terminate()` (stop everything) and a `UnixListener` control socket
//! (`status`, `stop NAME`, `start NAME`, `restart NAME`, a line each). No SIGCHLD handler:
//! each child's exit is its own `wait`.
//!
//! What the port changed, against tokio: `Child::send_signal(libc::SIGTERM)` where tokio
//! has no call and a user reaches for `kill(pid)` (overlap's goes through the pidfd, so a
//! reaped child's pid cannot hit another process); `select!` is futures' (`.fuse()` each
//! future); the log readers use `read_until` and `from_utf8_lossy` (futures' `lines`, as
//! tokio's, yields an error for a line that is no UTF-8 and drops its bytes, so the usual
//! `while let Some(line) = lines.next().await { let line = line?; .. }` stops reading at a
//! service's one bad byte, and the service then stalls on a full pipe); tasks need no
//! `Send`, so the shared state is `Rc<RefCell<..>>`.
//!
//! What overlap changed for it: a Unix bind to a path taken names the path and says a
//! socket's file outlives it (a supervisor restarted after a crash finds its sockets' files
//! left), where it said a bare "Address already in use"; and `overlap::signal`'s contract
//! names the self-pipe's fds, which the shutdown test counts from after its first `signal`.
//!
//! The services are `sh -c` scripts, or this test binary run again as a child
//! (`service_child`) where a service must send datagrams.

mod support;

#[path = "port_user8_supervisor/service.rs"]
mod service;
#[path = "port_user8_supervisor/supervisor.rs"]
mod supervisor;
#[path = "port_user8_supervisor/tests_more.rs"]
mod tests_more;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use overlap::net::UnixStream;
use overlap::sync::{mpsc, oneshot};
use overlap::task::JoinHandle;
use supervisor::{control_path, run, Spec};
use support::{within, TempDir};

const HANG: Duration = Duration::from_secs(10);
/// Set in `service_child`'s environment: what it does, a word per step.
const ACTIONS_ENV: &str = "OVERLAP_USER8_SERVICE";

/// A service that sends notify datagrams, run as this binary again. Steps: `say:TEXT`
/// prints `svc: TEXT`; `ready`, `ping`, `status:TEXT` send `READY=1`, `WATCHDOG=1`,
/// `STATUS=TEXT`; `pause:MS` sleeps; `await:PATH` waits until the file exists; `hang`
/// sleeps for ever.
#[test]
fn service_child() {
    use std::io::Write;
    let Ok(actions) = std::env::var(ACTIONS_ENV) else {
        return; // an ordinary test run
    };
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let to = std::env::var("NOTIFY_SOCKET").unwrap();
    let send = |msg: &str| sock.send_to(msg.as_bytes(), &to).map(drop).unwrap();
    for step in actions.split(' ') {
        let (verb, arg) = step.split_once(':').unwrap_or((step, ""));
        match verb {
            "say" => {
                let mut out = std::io::stdout();
                writeln!(out, "svc: {arg}").unwrap();
                out.flush().unwrap();
            }
            "ready" => send("READY=1"),
            "ping" => send("WATCHDOG=1"),
            "status" => send(&format!("STATUS={arg}")),
            "pause" => std::thread::sleep(Duration::from_millis(arg.parse().unwrap())),
            "await" => {
                while !Path::new(arg).exists() {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            "hang" => loop {
                std::thread::sleep(Duration::from_secs(1));
            },
            _ => panic!("no step {step:?}"),
        }
    }
}

/// A `service_child` service doing `actions`.
fn child_service(name: &str, actions: &str) -> Spec {
    let args = [
        "service_child",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ];
    let args = args.iter().map(|s| s.to_string()).collect();
    let mut spec = Spec::program(name, std::env::current_exe().unwrap(), args);
    spec.env.push((ACTIONS_ENV.into(), actions.into()));
    spec.notify = true;
    spec
}

/// A running supervisor, its log, and a way to stop it.
struct Running {
    dir: TempDir,
    log: mpsc::UnboundedReceiver<String>,
    /// Every log line so far.
    lines: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Running {
    fn start(name: &str, specs: Vec<Spec>) -> Running {
        let dir = TempDir::new(name);
        let (log_tx, log) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let path = dir.path().to_owned();
        let task = overlap::spawn(async move {
            run(specs, &path, log_tx, async move {
                let _ = stopped.await;
            })
            .await
        });
        Running {
            dir,
            log,
            lines: Vec::new(),
            stop: Some(stop),
            task,
        }
    }

    /// Reads the log up to the first line (from line `from` on) that `pred` accepts: its
    /// index.
    async fn until_from(&mut self, from: usize, pred: impl Fn(&str) -> bool) -> usize {
        if let Some(i) = self.lines[from.min(self.lines.len())..]
            .iter()
            .position(|l| pred(l))
        {
            return from + i;
        }
        loop {
            let what = format!("a log line, after {:?}", self.lines);
            let line = within(HANG, self.log.recv(), &what).await;
            let line = line.expect("the log ended");
            self.lines.push(line);
            if pred(self.lines.last().unwrap()) {
                return self.lines.len() - 1;
            }
        }
    }

    /// As `until_from(0, ..)` for a line equal to `line`.
    async fn until(&mut self, line: &str) -> usize {
        self.until_from(0, |l| l == line).await
    }

    fn control(&self) -> PathBuf {
        control_path(self.dir.path())
    }

    /// Stops the supervisor; the whole log.
    async fn shut_down(mut self) -> Vec<String> {
        let _ = self.stop.take().unwrap().send(());
        within(HANG, &mut self.task, "the supervisor's shutdown")
            .await
            .unwrap()
            .unwrap();
        while let Ok(line) = self.log.try_recv() {
            self.lines.push(line);
        }
        self.lines
    }
}

/// A control connection.
struct Control {
    read: BufReader<overlap::net::unix::OwnedReadHalf>,
    write: overlap::net::unix::OwnedWriteHalf,
}

impl Control {
    async fn connect(path: &Path) -> Control {
        let (read, write) = UnixStream::connect(path).await.unwrap().into_split();
        let read = BufReader::new(read);
        Control { read, write }
    }

    /// Sends `bytes` as they are; the reply's next line.
    async fn send_raw(&mut self, bytes: &[u8]) -> String {
        self.write.write_all(bytes).await.unwrap();
        self.line().await
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = within(HANG, self.read.read_line(&mut line), "a reply").await;
        read.unwrap();
        line.trim_end().to_owned()
    }

    /// One command; its reply, `status`'s lines joined by `|`.
    async fn ask(&mut self, cmd: &str) -> String {
        let first = self.send_raw(format!("{cmd}\n").as_bytes()).await;
        if cmd != "status" {
            return first;
        }
        let mut all = vec![first];
        while all.last().unwrap() != "end" {
            all.push(self.line().await);
        }
        all.pop();
        all.join("|")
    }
}

/// The lines of `log` tagged `tag: `, without the tag.
fn tagged<'a>(log: &'a [String], tag: &str) -> Vec<&'a str> {
    let tag = format!("{tag}: ");
    log.iter().filter_map(|l| l.strip_prefix(&tag)).collect()
}

#[overlap::test]
async fn logs_of_two_services_interleave_by_line_never_torn_or_lost() {
    // 300 lines of 100 bytes each, and a last one with no newline; one on stderr.
    let script = |c: &str| {
        format!(
            "i=0; while [ $i -lt 300 ]; do printf '{c}%04d%096d\\n' $i $i; i=$((i+1)); done; \
             echo oops >&2; printf 'tail {c}'"
        )
    };
    let specs = vec![Spec::sh("a", &script("a")), Spec::sh("b", &script("b"))];
    let mut sup = Running::start("user8-logs", specs);
    sup.until("supervisor: a exited: exit 0").await;
    sup.until("supervisor: b exited: exit 0").await;
    let log = sup.shut_down().await;
    for c in ["a", "b"] {
        let mut want: Vec<String> = (0..300).map(|i| format!("{c}{i:04}{i:096}")).collect();
        want.push(format!("tail {c}"));
        assert_eq!(
            tagged(&log, c),
            want,
            "service {c}'s lines, in order and whole"
        );
        assert_eq!(tagged(&log, &format!("{c}[err]")), ["oops"]);
        // A clean exit is no crash: no restart.
        let started = format!("supervisor: {c} started pid=");
        assert_eq!(log.iter().filter(|l| l.starts_with(&started)).count(), 1);
    }
}

#[overlap::test]
async fn a_crashing_service_restarts_with_backoff_and_gives_up_after_n() {
    let mut sup = Running::start("user8-crash", vec![Spec::sh("c", "echo boom; exit 3")]);
    let gave_up = sup
        .until("supervisor: c gave up after 4 crashes in 10s")
        .await;
    let mut ctl = Control::connect(&sup.control()).await;
    assert_eq!(ctl.ask("status").await, "c failed status=\"\"");
    let log = sup.shut_down().await;
    let events: Vec<&str> = log[..=gave_up]
        .iter()
        .map(|l| match l.split_once(" pid=") {
            Some((start, _)) => start,
            None => l,
        })
        .collect();
    let run = [
        "supervisor: c started",
        "c: boom",
        "supervisor: c exited: exit 3",
    ];
    let mut want = Vec::new();
    for delay in ["5ms", "10ms", "20ms"] {
        want.extend(run);
        want.push(match delay {
            "5ms" => "supervisor: c restart 1 in 5ms",
            "10ms" => "supervisor: c restart 2 in 10ms",
            _ => "supervisor: c restart 3 in 20ms",
        });
    }
    want.extend(run);
    want.push("supervisor: c gave up after 4 crashes in 10s");
    assert_eq!(events, want);
}
