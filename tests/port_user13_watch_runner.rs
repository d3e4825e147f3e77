//! A user's file-watching build runner (as `cargo watch`, `watchexec` or `entr`), sketched
//! as one would for tokio, then written for overlap by changing `tokio::` to `overlap::`:
//! inotify through libc in an `AsyncFd` and the parser of its records
//! (`port_user13_watch_runner/inotify.rs`), the watched tree with its ignore rules and new
//! directories (`watcher.rs`), one run of the command with its output forwarded
//! (`run.rs`), and the loop that debounces changes, starts, kills and times runs, with its
//! status, events and control socket (`runner.rs`). More tests are in `more.rs`.
//!
//! The tokio version, as sketched first:
//!
//! ```ignore
//! use tokio::io::unix::AsyncFd;
//! use tokio::io::{AsyncBufReadExt, BufReader, Interest};
//! use tokio::process::Command;
//! use tokio::sync::{broadcast, mpsc, watch};
//! use tokio::time::{sleep, Instant};
//!
//! let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
//! let inotify = AsyncFd::new(unsafe { OwnedFd::from_raw_fd(fd) })?;
//! // a batch: one read after readiness, then whatever else is queued
//! loop {
//!     let mut guard = inotify.readable().await?;
//!     match guard.try_io(|fd| read(fd.get_ref(), &mut buf)) {
//!         Ok(n) => break parse(&buf[..n?])?,
//!         Err(_would_block) => continue,
//!     }
//! }
//! while let Ok(n) = inotify.try_io(Interest::READABLE, |fd| read(fd, &mut buf)) { .. }
//! // IN_Q_OVERFLOW: rescan and run; IN_CREATE|IN_ISDIR: add a watch, report what is in it
//!
//! let debounce = sleep(Duration::ZERO);
//! tokio::pin!(debounce);
//! loop {
//!     tokio::select! {
//!         batch = watcher.next_batch() => if !batch?.changes.is_empty() {
//!             armed = true;
//!             debounce.as_mut().reset(Instant::now() + config.debounce);
//!         },
//!         _ = &mut debounce, if armed => {
//!             // queued but not read yet (the fd and the timer ready together): wait on
//!             if absorb(watcher.try_batch()?) { debounce.as_mut().reset(..); continue }
//!             armed = false;
//!             if let Some(mut old) = current.take() { old.kill().await; }  // killpg, then wait
//!             current = Some(Run::start(n, ..)?);   // Command::new("sh").arg("-c")..process_group(0)
//!         }
//!         end = async { current.as_mut().unwrap().wait().await }, if current.is_some() => ..,
//!         cmd = control.recv() => match cmd { Some(Rerun) => .., Some(Quit) | None => break },
//!     }
//! }
//! // a run's reader
//! let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
//! while let Some(line) = lines.next_line().await? {
//!     events.send(Event::Line { run, stream, text: format!("[build {run}] {line}") });
//! }
//! // a run's end: child.wait() raced against the run's sleep(timeout) in a select!
//! ```
//!
//! The tests check, with real files in a temporary tree, real children and real pipes:
//! one write giving exactly one run, its output lines with their prefix, and a second write
//! a second run; fifty files written at once giving one run naming all fifty; a burst
//! spread over time, each change read before the paused clock moves on, holding the run
//! off as long as changes keep coming (the debounce `Sleep` reset each time), a last one
//! not read yet when the debounce expires holding it off too, and then giving one; editor backups, swap files and a `target/` directory triggering nothing, a
//! run writing into `target/` not triggering itself; a new directory watched (and a tree
//! made at once, its files found by a scan of what came before its watch); a change during
//! a run killing the child and the `sleep` it started (both gone, the child reaped) before
//! the next run; in `more.rs`: a run over its time limit killed and reported, the runner
//! going on; stdout and stderr forwarded each in order, a line without its newline and
//! one that is not UTF-8 included; failing commands' exit codes and a signal reported; a
//! program that does not exist reported by name and the runner going on to run it once it
//! is there; the parser on synthetic records (an overflow, padded names, truncated
//! buffers); a real `IN_Q_OVERFLOW` (more records than `max_queued_events` written while
//! the runner cannot read) giving one run and a rescan that watches a directory made while
//! events were lost; the control socket; and a shutdown through it that leaves no child,
//! no fd (the inotify fd, pipes, pidfds, sockets) and no task.
//!
//! What porting it found missing in overlap: one behaviour that differed from tokio's.
//! `time::advance` fired the timers due inside the call, before the loop had looked at any
//! fd, where tokio's moves the clock and lets its driver poll I/O before it fires them. The
//! runner, woken by its debounce, reads what inotify has queued (`try_batch`, through
//! `AsyncFd::try_io`) before it starts a run, so that a change made as the debounce expired
//! holds the run off; on a paused clock advanced past the debounce right after a write, it
//! found the fd's readiness not seen yet and started the run without that change (the last
//! step of the spread-burst test). `advance` now only moves the clock and yields, and the
//! loop's next turn looks at I/O, then fires the timers (`tests/time_paused.rs`). Every call
//! the sketch makes has its tokio name: `AsyncFd` at `overlap::io::unix::AsyncFd` with
//! `readable()`, the guard's `try_io` and `AsyncFd::try_io(Interest::READABLE, ..)`;
//! `process::Command` with `process_group` and `kill_on_drop`, `Child` with `id`, `wait` and
//! `kill`; `Sleep::reset` on the pinned sleep, `select!` with `if` preconditions,
//! `broadcast`, `watch` (`send_modify`, `wait_for`), `mpsc`, `JoinSet`, `UnixListener`.
//!
//! What the port changed, against tokio: the guard's `try_io` hands its closure the fd's
//! inner value, where tokio's hands it the `AsyncFd` (`fd.get_ref()` in the sketch is `fd`
//! here; the README says so); `lines.next_line().await?` is `read_until` in a loop, as
//! `port_user8_supervisor` found (futures' `lines()` is a stream, and both stop at a line
//! that is not UTF-8, which a compiler's output may have); `Arc` is `Rc`. One compile error
//! the README's `select!` row does not foresee: a run's wait races `child.wait()` against
//! `deadline`, a `&mut Sleep` bound by `match &mut self.deadline { Some(deadline) => .. }`,
//! and `_ = deadline =>` is refused with E0596 ("cannot borrow `deadline` as mutable"),
//! since overlap's `select!` borrows a future given by bare name where tokio's moves the
//! reference in; `{ deadline }` moves it in, as the README says for futures that are not
//! `Unpin`.
//!
//! What the port got wrong at first was the user's, and would be in tokio: the watcher
//! took its read buffer out of `self` (`mem::take`) for the wait and put it back after, so
//! whenever `select!` dropped the batch future mid-wait (a run ending, the debounce) the
//! buffer was lost, and the next read, into an empty buffer, failed with `EINVAL`, which
//! ended the runner at its second change; the buffer now stays in `self`, borrowed.
//!
//! Neither runtime has a call to signal a child's process group: `sh -c` forks what it
//! runs, and those processes hold the pipes, so killing `sh` alone (`Child::kill`) left
//! the readers waiting for an end of file for as long as the grandchild lived. The run
//! puts the child in a group of its own (`process_group(0)`) and kills the group with
//! `libc::kill(-pid, SIGKILL)` before `Child::kill` reaps it, as watchexec does; the group
//! id is the unreaped child's pid, so it cannot name another process.

mod support;

#[path = "port_user13_watch_runner/inotify.rs"]
mod inotify;
#[path = "port_user13_watch_runner/more.rs"]
mod more;
#[path = "port_user13_watch_runner/run.rs"]
mod run;
#[path = "port_user13_watch_runner/runner.rs"]
mod runner;
#[path = "port_user13_watch_runner/watcher.rs"]
mod watcher;

use std::io;
use std::path::Path;
use std::time::Duration;

use overlap::sync::{broadcast, watch};
use overlap::task::JoinHandle;
use run::{Outcome, Stream};
use runner::{runner, Config, Control, Event, Handles, State, Status};
use support::{gone, until, within, TempDir};

/// A hang guard only.
const HANG: Duration = Duration::from_secs(60);

/// What one run did, from its events.
#[derive(Debug)]
struct Report {
    pid: u32,
    changes: Vec<String>,
    out: Vec<String>,
    err: Vec<String>,
    outcome: Outcome,
}

/// A runner on a fresh tree, subscribed to.
struct Rig {
    root: TempDir,
    handles: Handles,
    events: broadcast::Receiver<Event>,
    status: watch::Receiver<Status>,
    task: JoinHandle<io::Result<()>>,
    /// Every event read so far.
    seen: Vec<Event>,
}

impl Rig {
    /// A runner of `sh -c script`, started on a tree that `prepare` fills first.
    async fn start(
        script: &str,
        prepare: impl FnOnce(&Path),
        tweak: impl FnOnce(&mut Config),
    ) -> Rig {
        let root = TempDir::new("watch-runner");
        prepare(root.path());
        let mut config = Config::sh(root.path(), script);
        tweak(&mut config);
        let (handles, fut) = runner(config);
        let events = handles.events.subscribe();
        let mut status = handles.status.clone();
        let task = overlap::spawn(fut);
        status
            .wait_for(|s| s.state != State::Starting)
            .await
            .unwrap();
        Rig {
            root,
            events,
            status,
            task,
            handles,
            seen: Vec::new(),
        }
    }

    fn write(&self, rel: &str, data: &str) {
        std::fs::write(self.root.join(rel), data).unwrap();
    }

    fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    async fn next(&mut self) -> Event {
        match self.events.recv().await {
            Ok(ev) => {
                self.seen.push(ev.clone());
                ev
            }
            Err(e) => panic!("the events: {e:?}"),
        }
    }

    /// Reads events up to run `n`'s end (some may have been read already): what it did.
    /// Fails if a later run started first.
    async fn run(&mut self, n: u64) -> Report {
        let ended = |e: &Event| matches!(e, Event::Finished { run, .. } if *run == n);
        while !self.seen.iter().any(ended) {
            if let Event::Started { run, .. } = self.next().await {
                assert!(run <= n, "run {run} started, waiting for run {n}");
            }
        }
        let mut report = Report {
            pid: 0,
            changes: Vec::new(),
            out: Vec::new(),
            err: Vec::new(),
            outcome: Outcome::Exited(-1),
        };
        let mut started = false;
        for ev in &self.seen {
            match ev.clone() {
                Event::Started { run, pid, changes } if run == n => {
                    (report.pid, report.changes, started) = (pid, changes, true);
                }
                Event::Line { run, stream, text } if run == n => match stream {
                    Stream::Out => report.out.push(text),
                    Stream::Err => report.err.push(text),
                },
                Event::Finished { run, outcome } if run == n => {
                    assert!(started, "run {n} ended before it started");
                    report.outcome = outcome;
                }
                _ => {}
            }
        }
        report
    }

    /// Reads events up to a line of run `n` that `pred` accepts: that line.
    async fn line(&mut self, n: u64, pred: impl Fn(&str) -> bool) -> String {
        loop {
            if let Event::Line { run, text, .. } = self.next().await {
                if run == n && pred(&text) {
                    return text;
                }
            }
        }
    }

    /// Waits until the runner is idle with `n` runs started and ended.
    async fn idle_after(&mut self, n: u64) {
        let s = self
            .status
            .wait_for(|s| s.state == State::Idle && s.finished >= n)
            .await
            .unwrap()
            .clone();
        assert_eq!((s.started, s.finished), (n, n), "{s:?}");
    }

    /// Quits through the control channel: the runner's result, and the events left.
    async fn quit(mut self) -> (TempDir, Vec<Event>) {
        self.handles.control.send(Control::Quit).unwrap();
        (&mut self.task).await.unwrap().unwrap();
        assert_eq!(self.status().state, State::Stopped);
        let mut rest = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            rest.push(ev);
        }
        (self.root, rest)
    }
}

fn started(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Started { .. }))
        .count()
}

#[overlap::test]
async fn one_write_gives_exactly_one_run_with_its_output() {
    within(
        HANG,
        async {
            let script = r#"echo hello; echo "a.txt says $(cat a.txt)""#;
            let mut rig = Rig::start(script, |_| {}, |_| {}).await;
            assert_eq!(rig.status().watches, 1);
            rig.write("a.txt", "one");
            let r = rig.run(1).await;
            assert_eq!(r.changes, ["a.txt"]);
            assert_eq!(r.out, ["[build 1] hello", "[build 1] a.txt says one"]);
            assert!(r.err.is_empty(), "{:?}", r.err);
            assert_eq!(r.outcome, Outcome::Exited(0));
            gone(r.pid, "run 1's child reaped").await;
            rig.idle_after(1).await;
            // A second write, a second run.
            rig.write("a.txt", "two");
            let r = rig.run(2).await;
            assert_eq!(r.out[1], "[build 2] a.txt says two");
            rig.idle_after(2).await;
            let (_, rest) = rig.quit().await;
            assert_eq!(started(&rest), 0, "{rest:?}");
        },
        "one write",
    )
    .await;
}

#[overlap::test]
async fn fifty_files_written_at_once_give_one_run() {
    within(
        HANG,
        async {
            let mut rig = Rig::start("ls | wc -l", |_| {}, |_| {}).await;
            // No await between the writes: every record is queued before the runner reads.
            for i in 0..50 {
                rig.write(&format!("f{i:02}.rs"), "x");
            }
            let r = rig.run(1).await;
            let names: Vec<String> = (0..50).map(|i| format!("f{i:02}.rs")).collect();
            assert_eq!(r.changes, names);
            assert_eq!(r.out, ["[build 1] 50"]);
            rig.idle_after(1).await;
            assert_eq!(rig.status().records, 150, "create, modify, close each");
            let (_, rest) = rig.quit().await;
            assert_eq!(started(&rest), 0, "{rest:?}");
        },
        "fifty writes",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_burst_spread_over_time_holds_the_run_off_then_gives_one() {
    within(
        Duration::from_secs(3600),
        async {
            let mut rig = Rig::start(
                "ls | wc -l",
                |_| {},
                |c| c.debounce = Duration::from_secs(1),
            )
            .await;
            for i in 0..49 {
                let records = rig.status().records;
                rig.write(&format!("f{i:02}"), "x");
                // The runner has read it before the clock moves on.
                until(|| rig.status().records > records, "the change read").await;
                assert_eq!(rig.status().state, State::Pending);
                // Less than the debounce each time; twenty-five seconds in all.
                overlap::time::advance(Duration::from_millis(500)).await;
                assert_eq!(rig.status().started, 0, "a run during the burst");
            }
            // The last one is not read before the debounce expires: the timer and the
            // inotify fd are ready together, and the change still holds the run off.
            rig.write("f49", "x");
            overlap::time::advance(Duration::from_millis(600)).await;
            until(|| rig.status().records == 150, "the last change read").await;
            assert_eq!(rig.status().started, 0, "a run without the last change");
            assert_eq!(rig.status().state, State::Pending);
            overlap::time::advance(Duration::from_secs(1)).await;
            until(|| rig.status().started == 1, "the run").await;
            // The child runs on the real clock.
            overlap::time::resume();
            let r = rig.run(1).await;
            assert_eq!(r.changes.len(), 50);
            assert_eq!(r.out, ["[build 1] 50"]);
            rig.idle_after(1).await;
            let (_, rest) = rig.quit().await;
            assert_eq!(started(&rest), 0, "{rest:?}");
        },
        "the spread burst",
    )
    .await;
}

#[overlap::test]
async fn ignored_files_trigger_nothing() {
    within(
        HANG,
        async {
            let script = "echo built > target/out; echo done";
            let mkdirs = |root: &Path| std::fs::create_dir_all(root.join("target/debug")).unwrap();
            let mut rig = Rig::start(script, mkdirs, |_| {}).await;
            assert_eq!(rig.status().watches, 1, "target/ is not watched");
            rig.write("main.rs~", "backup");
            rig.write(".main.rs.swp", "swap");
            rig.write("target/debug/app", "binary");
            std::fs::create_dir(rig.root.join("sub")).unwrap();
            std::fs::create_dir(rig.root.join("sub/target")).unwrap();
            rig.write("sub/target/x", "y");
            // Read: three records for each ignored file (none for what is under a `target/`,
            // which has no watch).
            until(|| rig.status().ignored >= 6, "the ignored records").await;
            let s = rig.status();
            // `sub` is a change; wait for its run, then nothing else.
            assert_eq!(s.state, State::Pending);
            let r = rig.run(1).await;
            assert_eq!(r.changes, ["sub"]);
            rig.idle_after(1).await;
            assert_eq!(rig.status().watches, 2, "sub/ but not sub/target/");
            // Only ignored ones now: no run.
            let ignored = rig.status().ignored;
            rig.write("sub/notes.txt~", "z");
            rig.write("sub/target/y", "y");
            until(|| rig.status().ignored >= ignored + 3, "more ignored").await;
            assert_eq!(rig.status().state, State::Idle);
            // The run wrote into target/: that did not trigger it again either.
            rig.write("lib.rs", "real");
            let r = rig.run(2).await;
            assert_eq!(r.changes, ["lib.rs"]);
            assert_eq!(r.out, ["[build 2] done"]);
            rig.idle_after(2).await;
            let (root, rest) = rig.quit().await;
            assert_eq!(started(&rest), 0, "{rest:?}");
            assert_eq!(
                std::fs::read_to_string(root.join("target/out")).unwrap(),
                "built\n"
            );
        },
        "the ignored files",
    )
    .await;
}

#[overlap::test]
async fn new_directories_are_watched() {
    within(
        HANG,
        async {
            let mut rig = Rig::start("true", |_| {}, |_| {}).await;
            std::fs::create_dir(rig.root.join("src")).unwrap();
            assert_eq!(rig.next().await, Event::Watching("src".into()));
            assert_eq!(rig.run(1).await.changes, ["src"]);
            rig.idle_after(1).await;
            rig.write("src/lib.rs", "x");
            assert_eq!(rig.run(2).await.changes, ["src/lib.rs"]);
            rig.idle_after(2).await;
            // A tree made at once: its file was written before the deepest watch existed,
            // and the scan that follows each new watch reports it.
            std::fs::create_dir_all(rig.root.join("a/b/c")).unwrap();
            rig.write("a/b/c/deep.rs", "x");
            let r = rig.run(3).await;
            assert_eq!(r.changes, ["a", "a/b", "a/b/c", "a/b/c/deep.rs"]);
            let watching: Vec<_> = rig
                .seen
                .iter()
                .filter_map(|e| match e {
                    Event::Watching(d) => Some(d.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(watching, ["src", "a", "a/b", "a/b/c"]);
            rig.idle_after(3).await;
            assert_eq!(rig.status().watches, 5);
            rig.write("a/b/c/later.rs", "x");
            assert_eq!(rig.run(4).await.changes, ["a/b/c/later.rs"]);
            // A watched directory removed: its watch goes with it.
            rig.idle_after(4).await;
            std::fs::remove_dir_all(rig.root.join("a")).unwrap();
            let r = rig.run(5).await;
            assert!(r.changes.contains(&"a".to_string()), "{:?}", r.changes);
            rig.idle_after(5).await;
            until(|| rig.status().watches == 2, "the removed watches").await;
            rig.quit().await;
        },
        "the new directories",
    )
    .await;
}

/// Whether process `pid` is gone, or a zombie no longer ours (left to init to reap).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z'),
    }
}

/// The pid in a `[build n] sleeper PID` line.
fn sleeper(line: &str) -> u32 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[overlap::test]
async fn a_change_during_a_run_kills_the_child_and_runs_again() {
    within(
        HANG,
        async {
            let script = "echo start; sleep 30 & echo sleeper $!; wait";
            let mut rig = Rig::start(script, |_| {}, |_| {}).await;
            rig.write("a", "1");
            let line = rig.line(1, |l| l.contains("sleeper")).await;
            let (first, first_sleeper) = match rig.status().state {
                State::Running { run: 1, pid } => (pid, sleeper(&line)),
                other => panic!("{other:?}"),
            };
            rig.write("b", "2");
            let r = rig.run(1).await;
            assert_eq!(r.outcome, Outcome::Superseded);
            assert_eq!(r.pid, first);
            // The child is reaped (no zombie of ours), the sleep it started killed with it.
            gone(first, "run 1's child reaped").await;
            until(|| dead(first_sleeper), "run 1's sleep killed").await;
            assert!(!support::children()
                .split_whitespace()
                .any(|p| p == first.to_string()));
            let line = rig.line(2, |l| l.contains("sleeper")).await;
            let second_sleeper = sleeper(&line);
            let s = rig.status();
            assert!(matches!(s.state, State::Running { run: 2, .. }), "{s:?}");
            assert_eq!((s.started, s.finished), (2, 1));
            // Quitting kills run 2 the same way.
            let (_, rest) = rig.quit().await;
            let ended = Event::Finished {
                run: 2,
                outcome: Outcome::Superseded,
            };
            assert!(rest.contains(&ended), "{rest:?}");
            until(|| dead(second_sleeper), "run 2's sleep killed").await;
        },
        "the change mid-run",
    )
    .await;
}
