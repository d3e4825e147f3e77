//! The daemon as its own process, as systemd runs it: this test binary run again with a
//! filter selecting `daemon_child`, whose `main` reads the environment a service manager
//! sets (`LISTEN_*`, `NOTIFY_SOCKET`, `WATCHDOG_*`, all unset once read so children do not
//! inherit them), adopts fds 3 and 4, turns `SIGHUP` and `SIGTERM` into control events, and
//! exits with the daemon's code. The parent side places two listeners at fds 3 and 4
//! (`dup2` in `pre_exec`) and sets `LISTEN_PID` to the child's pid through `sh -c 'exec'`.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::rc::Rc;

use overlap::process::{Child, Command};
use overlap::signal::{signal, SignalKind};
use overlap::sync::mpsc;

use super::activation::{adopt_passed, passed_fds, ActivationEnv};
use super::daemon::{run, Control, Setup};
use super::rig::Manager;
use super::service::Shared;
use super::support::TempDir;

/// Set for the child: its configuration file and pidfile, a line each.
pub const CHILD_ENV: &str = "OVERLAP_USER15_DAEMON";

/// The child's `main`: returns at once in an ordinary test run.
pub fn child_main() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (config, pidfile) = spec.split_once('\n').unwrap();
    let take = |k: &str| {
        let v = std::env::var_os(k);
        std::env::remove_var(k);
        v
    };
    take(CHILD_ENV);
    let activation = ActivationEnv::take_from_env();
    let notify_socket = take("NOTIFY_SOCKET");
    let string = |v: Option<std::ffi::OsString>| v.map(|v| v.to_string_lossy().into_owned());
    let watchdog_usec = string(take("WATCHDOG_USEC"));
    let watchdog_pid = string(take("WATCHDOG_PID"));
    let pid = std::process::id();
    let rt = overlap::Runtime::new().unwrap();
    let code = rt.block_on(async {
        // SAFETY: the fds `passed_fds` lists were placed for this process by its parent,
        // and nothing else here uses them.
        let listeners = passed_fds(&activation, pid).and_then(|p| unsafe { adopt_passed(p) });
        let (tx, rx) = mpsc::unbounded_channel();
        // Listening before the daemon says READY=1, so no signal sent after it is lost.
        let mut hup = signal(SignalKind::hangup()).unwrap();
        let mut term = signal(SignalKind::terminate()).unwrap();
        overlap::spawn(async move {
            loop {
                let ctl = overlap::select! {
                    _ = hup.recv() => Control::Reload,
                    _ = term.recv() => Control::Terminate,
                };
                if tx.send(ctl).is_err() {
                    break;
                }
            }
        });
        let setup = Setup {
            listeners,
            notify_socket,
            watchdog_usec,
            watchdog_pid,
            pid,
            config: config.into(),
            pidfile: Some(pidfile.into()),
        };
        let out = run(setup, rx, Rc::new(Shared::default())).await;
        if let Some(e) = &out.error {
            eprintln!("daemon: {e}");
        }
        out.code
    });
    std::process::exit(code);
}

/// The fds above 4 this process has without close-on-exec (inherited from whoever ran the
/// tests): a child gets them too, through no fault of the daemon's.
pub fn inheritable_fds() -> Vec<i32> {
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    // SAFETY: F_GETFD takes no pointer; a closed fd (the listing's own) fails, left out.
    let inheritable = |f: &i32| unsafe { libc::fcntl(*f, libc::F_GETFD) } == 0;
    listed
        .into_iter()
        .filter(|f| *f > 4)
        .filter(inheritable)
        .collect()
}

/// A daemon child process.
pub struct ChildDaemon {
    pub child: Child,
    pub pid: u32,
    pub tcp: SocketAddr,
    pub unix: PathBuf,
    pub pidfile: PathBuf,
    pub config: PathBuf,
}

/// How the child is told which process the sockets are for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ListenPid {
    /// Its own pid, as a service manager sets it.
    Child,
    /// Another process's (variables it inherited, not meant for it).
    Other,
}

/// Starts the daemon as a child process, sockets at fds 3 (`tcp`) and 4 (`unix`).
pub fn spawn_child(
    dir: &TempDir,
    manager: &Manager,
    config: &str,
    env: &[(&str, &str)],
    listen_pid: ListenPid,
) -> ChildDaemon {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = tcp.local_addr().unwrap();
    let unix_path = dir.join("lines.sock");
    let unix = std::os::unix::net::UnixListener::bind(&unix_path).unwrap();
    // Copies far above 4, close-on-exec, so that placing one cannot overwrite the other.
    let high = |fd: i32| {
        // SAFETY: F_DUPFD_CLOEXEC takes an integer; `fd` is open.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(dup >= 10, "{}", io::Error::last_os_error());
        // SAFETY: the fd was just made and is owned by nobody else.
        unsafe { OwnedFd::from_raw_fd(dup) }
    };
    let (a, b) = (high(tcp.as_raw_fd()), high(unix.as_raw_fd()));
    let (ra, rb) = (a.as_raw_fd(), b.as_raw_fd());
    let config_path = dir.join("daemon.conf");
    std::fs::write(&config_path, config).unwrap();
    let pidfile = dir.join("daemon.pid");
    let script = match listen_pid {
        ListenPid::Child => "LISTEN_PID=$$ exec \"$0\" \"$@\"",
        ListenPid::Other => "LISTEN_PID=1 exec \"$0\" \"$@\"",
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .arg(std::env::current_exe().unwrap())
        .args(["daemon_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!("{}\n{}", config_path.display(), pidfile.display()),
        )
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "tcp:unix")
        .env("NOTIFY_SOCKET", &manager.value)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: between fork and exec the closure only calls dup2, which is
    // async-signal-safe, on fd numbers copied into it; dup2 leaves the new fds inheritable.
    unsafe {
        cmd.as_std_mut().pre_exec(move || {
            for (from, to) in [(ra, 3), (rb, 4)] {
                if libc::dup2(from, to) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    ChildDaemon {
        child,
        pid,
        tcp: addr,
        unix: unix_path,
        pidfile,
        config: config_path,
    }
}
