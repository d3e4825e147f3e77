//! Running an example binary as a real server process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `target/<profile>/examples/<name>`, which `cargo test` builds with the tests.
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

/// The lines `pipe` (a server's stderr) gives, read by a thread of their own, as they come; none
/// for `None` (a pipe left unread, or closed).
pub fn stderr_lines(pipe: Option<std::process::ChildStderr>) -> std::sync::mpsc::Receiver<String> {
    let (lines, said) = std::sync::mpsc::channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                if lines.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
    }
    said
}

/// A server example running on a free loopback port; killed when dropped.
pub struct ExampleServer {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ExampleServer {
    /// Starts `examples/<name>` on `127.0.0.1:0` and reads the address from its first line,
    /// `listening on http://ADDR` (or `listening on ADDR`, maybe with more words after it).
    pub fn start(name: &str) -> ExampleServer {
        ExampleServer::start_with(name, &[])
    }

    /// Like [`start`](Self::start), with `args` after the address.
    pub fn start_with(name: &str, args: &[&str]) -> ExampleServer {
        ExampleServer::start_with_stderr(name, args, Stdio::inherit())
    }

    /// Like [`start_with`](Self::start_with), its stderr going to `stderr` (piped: taken
    /// from `child`).
    pub fn start_with_stderr(name: &str, args: &[&str], stderr: Stdio) -> ExampleServer {
        let mut child = Command::new(example_bin(name))
            .arg("127.0.0.1:0")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("run examples/{name} (built by cargo test): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // The address may be followed by more words ("with 2 threads").
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.trim_start_matches("http://").parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line: {line:?}");
        };
        ExampleServer { child, addr }
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What an example that ran to its end left: how it exited and what it printed.
pub struct ExampleRun {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for ExampleRun {
    /// Shows the start of stderr only: many threads' panics would bury the failure.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut stderr: String = self.stderr.chars().take(1500).collect();
        if stderr.len() < self.stderr.len() {
            stderr.push_str("...");
        }
        f.debug_struct("ExampleRun")
            .field("status", &self.status)
            .field("stdout", &self.stdout)
            .field("stderr", &stderr)
            .finish()
    }
}

/// Runs `examples/<name>` with `args` (and nothing more) until it exits; fails the test,
/// killing it, if it still runs after 10 s (a server that took a bad argument serves on).
pub fn run_example(name: &str, args: &[&str]) -> ExampleRun {
    let mut cmd = Command::new(example_bin(name));
    cmd.args(args);
    run_to_end(name, cmd)
}

/// As [`run_example`], started under a descriptor limit (soft and hard) of `nofile`, set
/// by `prlimit` before it runs.
pub fn run_example_with_nofile(name: &str, nofile: u64, args: &[&str]) -> ExampleRun {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={nofile}"))
        .arg("--")
        .arg(example_bin(name))
        .args(args);
    run_to_end(name, cmd)
}

fn run_to_end(name: &str, mut cmd: Command) -> ExampleRun {
    use std::io::Read;

    let mut child = cmd
        .stdin(Stdio::null())
        // A panic's message without its backtrace, to keep a failure's report short.
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run examples/{name}: {e}"));
    // Both read to the end on threads of their own, so a full pipe never holds it up.
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (stdout.join().unwrap(), stderr.join().unwrap());
            panic!("examples/{name} still ran after 10 s; stdout {out:?}, stderr {err:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ExampleRun {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
