//! The tiny service manager: binds the sockets itself (TCP on loopback, a Unix stream
//! listener at a path, a Unix datagram socket, a Unix listener in the abstract namespace),
//! starts the service with them at fds 3.. (`LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES`),
//! and reads its notify socket (a path or an abstract `@name`): each datagram's sender is
//! checked by `SCM_CREDENTIALS` against the main pid, `FDSTORE=1` fds are kept for the next
//! instance, and a watchdog that stops pinging is reported.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{
    SocketAddr, UnixDatagram as StdUnixDatagram, UnixListener as StdUnixListener,
};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::time::Duration;

use overlap::net::UnixDatagram;
use overlap::process::{Child, Command};
use overlap::time::{self, Instant};

/// The environment variable that makes the test binary the service (see `service_main`).
pub const SERVICE_ENV: &str = "OVERLAP_USER18_SERVICE";

/// The sockets the manager holds for the service, across its restarts.
#[derive(Debug)]
pub struct Sockets {
    pub tcp: std::net::TcpListener,
    pub unix: StdUnixListener,
    pub unix_path: PathBuf,
    pub dgram: StdUnixDatagram,
    pub dgram_path: PathBuf,
    pub abstract_listener: StdUnixListener,
    /// The abstract name, without its leading NUL.
    pub abstract_name: String,
}

impl Sockets {
    /// Binds all four in `dir` (blocking, as a manager's are; the service makes them
    /// non-blocking when it adopts them).
    pub fn bind(dir: &std::path::Path, tag: &str) -> io::Result<Sockets> {
        let unix_path = dir.join("echo.sock");
        let dgram_path = dir.join("echo.dgram");
        let abstract_name = format!("overlap-user18-{tag}-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(abstract_name.as_bytes())?;
        Ok(Sockets {
            tcp: std::net::TcpListener::bind("127.0.0.1:0")?,
            unix: StdUnixListener::bind(&unix_path)?,
            unix_path,
            dgram: StdUnixDatagram::bind(&dgram_path)?,
            dgram_path,
            abstract_listener: StdUnixListener::bind_addr(&addr)?,
            abstract_name,
        })
    }

    /// All four, named as the service expects them.
    pub fn all(&self) -> Vec<(BorrowedFd<'_>, String)> {
        use std::os::fd::AsFd;
        vec![
            (self.tcp.as_fd(), "tcp".into()),
            (self.unix.as_fd(), "unix".into()),
            (self.dgram.as_fd(), "dgram".into()),
            (self.abstract_listener.as_fd(), "abstract".into()),
        ]
    }
}

/// Whose pid `LISTEN_PID` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenPid {
    /// The service's own, as a manager sets it (through `sh -c 'LISTEN_PID=$$ exec ..'`:
    /// the pid is known only after the fork, where no environment can be built safely).
    Own,
    /// Another process's: variables inherited, not meant for the service.
    Other(u32),
}

/// How to start the service.
#[derive(Debug)]
pub struct Start<'a> {
    pub fds: Vec<(BorrowedFd<'a>, String)>,
    pub listen_pid: ListenPid,
    pub watchdog_usec: Option<u64>,
    pub env: Vec<(&'static str, String)>,
}

/// One notification, from a process the kernel vouched for.
#[derive(Debug)]
pub struct Notice {
    pub pid: i32,
    pub text: String,
}

impl Notice {
    /// The value of `key`, if the message set it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
    }
}

/// A watchdog that went without a ping for its whole timeout.
#[derive(Debug, PartialEq, Eq)]
pub struct Stalled {
    pub pings: u32,
    pub last_ping: Instant,
    pub noticed: Instant,
}

/// The manager's notify socket and fd store.
#[derive(Debug)]
pub struct Manager {
    sock: UnixDatagram,
    /// `NOTIFY_SOCKET`'s value for the service.
    pub value: String,
    /// Messages refused, with why (another pid's, malformed).
    pub rejected: Vec<String>,
    /// The fd store: fds the service asked to keep, with their `FDNAME`s.
    pub store: Vec<(String, OwnedFd)>,
}

impl Manager {
    /// A notify socket bound at `path`.
    pub fn at_path(path: PathBuf) -> io::Result<Manager> {
        let sock = UnixDatagram::bind(&path)?;
        Manager::new(sock, path.to_string_lossy().into_owned())
    }

    /// A notify socket in the abstract namespace, `NOTIFY_SOCKET=@name`.
    pub fn abstract_named(name: &str) -> io::Result<Manager> {
        let sock = UnixDatagram::bind(format!("\0{name}"))?;
        Manager::new(sock, format!("@{name}"))
    }

    fn new(sock: UnixDatagram, value: String) -> io::Result<Manager> {
        sock.set_passcred(true)?;
        Ok(Manager {
            sock,
            value,
            rejected: Vec::new(),
            store: Vec::new(),
        })
    }

    /// Starts the service: this test binary again, running only `service_process`.
    pub fn start(&self, start: Start<'_>) -> io::Result<Child> {
        // Copies far above the target numbers, so placing one cannot overwrite another.
        let mut high = Vec::new();
        for (fd, _) in &start.fds {
            // SAFETY: F_DUPFD_CLOEXEC takes an integer; `fd` is open (borrowed).
            let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100) };
            if dup < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: the fd was just made and is owned by nobody else.
            high.push(unsafe { OwnedFd::from_raw_fd(dup) });
        }
        let raw: Vec<i32> = high.iter().map(|f| f.as_raw_fd()).collect();
        let names: Vec<&str> = start.fds.iter().map(|(_, n)| n.as_str()).collect();
        let script = match start.listen_pid {
            ListenPid::Own => "LISTEN_PID=$$ exec \"$0\" \"$@\"".to_owned(),
            ListenPid::Other(pid) => format!("LISTEN_PID={pid} exec \"$0\" \"$@\""),
        };
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .arg(std::env::current_exe()?)
            .args([
                "service_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVICE_ENV, "1")
            .env("LISTEN_FDS", raw.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"))
            .env("NOTIFY_SOCKET", &self.value)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(usec) = start.watchdog_usec {
            cmd.env("WATCHDOG_USEC", usec.to_string());
        }
        for (k, v) in &start.env {
            cmd.env(k, v);
        }
        // SAFETY: between fork and exec the closure only calls dup2, async-signal-safe, on
        // fd numbers copied into it (the Vec is moved in whole, not allocated there);
        // dup2 leaves the new fds inheritable.
        unsafe {
            cmd.as_std_mut().pre_exec(move || {
                for (i, from) in raw.iter().enumerate() {
                    if libc::dup2(*from, 3 + i as i32) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn();
        drop(high);
        child
    }

    /// The next notification from `pid`. Others' (checked by `SCM_CREDENTIALS`, as
    /// systemd's `NotifyAccess=main`) are refused and their fds closed, as are malformed
    /// ones; `FDSTORE=1` fds from `pid` go into the store.
    pub async fn next_from(&mut self, pid: u32) -> io::Result<Notice> {
        let mut buf = vec![0u8; 4096];
        loop {
            let mut fds = Vec::new();
            let (n, cred) = self.sock.recv_with_fds_and_cred(&mut buf, &mut fds).await?;
            let sender = cred.map(|c| c.pid);
            if sender != Some(pid as i32) {
                self.rejected.push(format!(
                    "from pid {sender:?}, not the main pid {pid}: ignored"
                ));
                continue;
            }
            let text = match std::str::from_utf8(&buf[..n]) {
                Ok(t) if t.lines().all(|l| l.contains('=')) => t.to_owned(),
                _ => {
                    self.rejected.push(format!(
                        "malformed: {:?}",
                        String::from_utf8_lossy(&buf[..n])
                    ));
                    continue;
                }
            };
            let notice = Notice {
                pid: pid as i32,
                text,
            };
            if notice.get("FDSTORE") == Some("1") {
                let name = notice.get("FDNAME").unwrap_or("stored").to_owned();
                self.store
                    .extend(fds.into_iter().map(|fd| (name.clone(), fd)));
            }
            return Ok(notice);
        }
    }

    /// Waits for a notice from `pid` setting `key`, returning it and the texts of those
    /// that came before it.
    pub async fn until(&mut self, pid: u32, key: &str) -> io::Result<(Notice, Vec<String>)> {
        let mut before = Vec::new();
        loop {
            let n = self.next_from(pid).await?;
            if n.get(key).is_some() {
                return Ok((n, before));
            }
            before.push(n.text);
        }
    }

    /// Supervises `pid`'s watchdog: `Ok` with the count once `pings` have come, each
    /// within `timeout` of the last (or of the call), else `Stalled`.
    pub async fn watch(
        &mut self,
        pid: u32,
        timeout: Duration,
        pings: u32,
    ) -> io::Result<Result<u32, Stalled>> {
        let mut last_ping = Instant::now();
        let mut got = 0;
        while got < pings {
            match time::timeout_at(last_ping + timeout, self.next_from(pid)).await {
                Err(_) => {
                    return Ok(Err(Stalled {
                        pings: got,
                        last_ping,
                        noticed: Instant::now(),
                    }))
                }
                Ok(n) => {
                    if n?.get("WATCHDOG") == Some("1") {
                        got += 1;
                        last_ping = Instant::now();
                    }
                }
            }
        }
        Ok(Ok(got))
    }

    /// Takes the fd store for the next instance, named for `LISTEN_FDNAMES`.
    pub fn take_store(&mut self) -> Vec<(String, OwnedFd)> {
        std::mem::take(&mut self.store)
    }
}
