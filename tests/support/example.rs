//! Running an example binary as a real server process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// `target/<profile>/examples/<name>`, which `cargo test` builds with the tests.
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    profile_dir.join("examples").join(name)
}

/// A server example running on a free loopback port; killed when dropped.
pub struct ExampleServer {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ExampleServer {
    /// Starts `examples/<name>` on `127.0.0.1:0` and reads the address from its first line,
    /// `listening on http://ADDR` (or `listening on ADDR`).
    pub fn start(name: &str) -> ExampleServer {
        ExampleServer::start_with(name, &[])
    }

    /// Like [`start`](Self::start), with `args` after the address.
    pub fn start_with(name: &str, args: &[&str]) -> ExampleServer {
        let mut child = Command::new(example_bin(name))
            .arg("127.0.0.1:0")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run examples/{name} (built by cargo test): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.trim_start_matches("http://").parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
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
