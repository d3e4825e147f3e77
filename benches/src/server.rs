//! A server process under test: started pinned to CPU 0, its address read from the first
//! line it prints, its CPU time read from `/proc`, killed when dropped.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server binary.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `bin 127.0.0.1:0` on CPU 0 and waits for its `listening on ADDR` line (an
    /// `http://` before the address is allowed).
    pub fn start(bin: &Path) -> io::Result<Server> {
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg("0")
            .arg(bin)
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .map(|a| a.strip_prefix("http://").unwrap_or(a))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected server output: {line:?}")))?;
        Ok(Server { child, addr })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the server has used, in seconds: the scheduler's own nanosecond count of
    /// time on a CPU (`/proc/PID/task/*/schedstat`, first field), summed over its threads.
    ///
    /// `utime + stime` in `/proc/PID/stat` would do too, but it is sampled at the clock
    /// tick (10 ms at 100 Hz): over a one-second window that is a few percent of noise,
    /// as much as the differences being measured.
    pub fn cpu_secs(&self) -> f64 {
        let dir = format!("/proc/{}/task", self.pid());
        let mut ns: u64 = 0;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            // A thread may end between the listing and the read: it no longer counts.
            if let Ok(s) = std::fs::read_to_string(entry.path().join("schedstat")) {
                ns += s.split_whitespace().next().unwrap().parse::<u64>().unwrap();
            }
        }
        ns as f64 / 1e9
    }

    /// The server's user and system CPU time so far, in seconds, as the kernel samples them
    /// at each clock tick (`/proc/PID/stat`): coarse, but over a long enough window it says
    /// which share of [`Server::cpu_secs`] is the server's own code.
    pub fn user_system_secs(&self) -> (f64, f64) {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which may contain spaces) start at field 3.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let (utime, stime): (u64, u64) = (f[11].parse().unwrap(), f[12].parse().unwrap());
        // SAFETY: sysconf takes only an integer.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (utime as f64 / hz, stime as f64 / hz)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary at `rel` next to the running one (benchmark servers live beside the
/// benchmark), or a panic naming the build command that makes it.
pub fn sibling_bin(rel: &[&str], build: &str) -> std::path::PathBuf {
    let mut p = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    for part in rel {
        p.push(part);
    }
    assert!(p.exists(), "{} missing: {build}", p.display());
    p
}
