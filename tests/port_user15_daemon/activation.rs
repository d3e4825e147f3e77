//! Socket activation as a user writes it (`sd_listen_fds_with_names`): the listening
//! sockets a service manager passed from fd 3 on, counted by `LISTEN_FDS`, meant for the
//! process in `LISTEN_PID`, named by `LISTEN_FDNAMES` (`:`-separated). Each is made
//! close-on-exec as it is taken (so no child the daemon spawns inherits it), then adopted
//! by its name: `tcp` as a `TcpListener`, `unix` as a `UnixListener`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use overlap::net::{TcpListener, UnixListener};

/// The first fd passed (`SD_LISTEN_FDS_START`).
pub const FIRST_FD: RawFd = 3;

/// The three variables, as the process found them.
#[derive(Clone, Debug, Default)]
pub struct ActivationEnv {
    pub listen_pid: Option<String>,
    pub listen_fds: Option<String>,
    pub listen_fdnames: Option<String>,
}

impl ActivationEnv {
    /// Reads the variables and unsets them (children must not think the fds are theirs).
    pub fn take_from_env() -> ActivationEnv {
        let var = |k: &str| std::env::var(k).ok();
        let env = ActivationEnv {
            listen_pid: var("LISTEN_PID"),
            listen_fds: var("LISTEN_FDS"),
            listen_fdnames: var("LISTEN_FDNAMES"),
        };
        for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(k);
        }
        env
    }
}

/// The fds passed to process `pid` with their names: none when `LISTEN_PID` is unset or
/// names another process (the variables were inherited, not meant for us);
/// `InvalidInput` when the count or the names are malformed.
pub fn passed_fds(env: &ActivationEnv, pid: u32) -> io::Result<Vec<(RawFd, String)>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    match env.listen_pid.as_deref().map(str::parse::<u32>) {
        None => return Ok(Vec::new()),
        Some(Ok(p)) if p == pid => {}
        Some(Ok(_)) => return Ok(Vec::new()),
        Some(Err(_)) => return Err(bad(format!("LISTEN_PID={:?} is no pid", env.listen_pid))),
    }
    let count = env.listen_fds.as_deref().unwrap_or("");
    let n: usize = count
        .parse()
        .map_err(|_| bad(format!("LISTEN_FDS={count:?} is no count")))?;
    let names: Vec<String> = match &env.listen_fdnames {
        Some(names) => names.split(':').map(str::to_owned).collect(),
        None => vec!["unknown".to_owned(); n],
    };
    if names.len() != n {
        return Err(bad(format!(
            "LISTEN_FDNAMES names {} sockets, LISTEN_FDS passes {n}",
            names.len()
        )));
    }
    Ok((FIRST_FD..).zip(names).collect())
}

/// A listener the daemon serves.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// Makes `fd` close-on-exec.
pub fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFD and F_SETFD take integers; `fd` is open while borrowed.
    let res = unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        if flags < 0 {
            flags
        } else {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, flags | libc::FD_CLOEXEC)
        }
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Adopts one passed socket by its name; the error names the socket.
pub fn adopt(fd: OwnedFd, name: &str) -> io::Result<Listener> {
    set_cloexec(&fd)?;
    let raw = fd.as_raw_fd();
    let context =
        |e: io::Error| io::Error::new(e.kind(), format!("socket {name:?} (fd {raw}): {e}"));
    match name {
        "tcp" => TcpListener::try_from(fd)
            .map(Listener::Tcp)
            .map_err(context),
        "unix" => UnixListener::try_from(fd)
            .map(Listener::Unix)
            .map_err(context),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket {name:?} (fd {raw}): only \"tcp\" and \"unix\" are served"),
        )),
    }
}

/// In a socket-activated process: takes the fds `passed_fds` lists and adopts them.
///
/// # Safety
/// The fds listed must be this process's to own (a service manager passed them), and
/// nothing else in the process may use them.
pub unsafe fn adopt_passed(passed: Vec<(RawFd, String)>) -> io::Result<Vec<Listener>> {
    let owned: Vec<(OwnedFd, String)> = passed
        .into_iter()
        // SAFETY: the caller owns each fd listed, and gives them up here.
        .map(|(fd, name)| (unsafe { OwnedFd::from_raw_fd(fd) }, name))
        .collect();
    owned
        .into_iter()
        .map(|(fd, name)| adopt(fd, &name))
        .collect()
}
