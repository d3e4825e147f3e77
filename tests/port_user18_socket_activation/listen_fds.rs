//! The service's side of socket activation, what `sd_listen_fds_with_names` does for C
//! programs: `LISTEN_PID` must be this process (else the fds are another's and are left
//! alone), `LISTEN_FDS` fds start at 3, `LISTEN_FDNAMES` names them (colon-separated); the
//! variables are removed so children do not inherit them, and each fd is made
//! close-on-exec. Each fd is then checked against what its name promises (`SO_DOMAIN`,
//! `SO_TYPE`, `SO_ACCEPTCONN`) and adopted as an overlap socket.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use overlap::net::{TcpListener, TcpStream, UnixDatagram, UnixListener, UnixStream};

/// The first fd a service manager passes (after stdin, stdout, stderr).
pub const FIRST_FD: RawFd = 3;

/// The activation variables as the service found them.
#[derive(Clone, Debug, Default)]
pub struct ListenEnv {
    pub pid: Option<String>,
    pub fds: Option<String>,
    pub names: Option<String>,
}

impl ListenEnv {
    /// Reads `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` and removes them from the
    /// environment, as `sd_listen_fds(1)` does (call it before any thread reads the env).
    pub fn take_from_env() -> ListenEnv {
        let take = |k: &str| {
            let v = std::env::var(k).ok();
            std::env::remove_var(k);
            v
        };
        ListenEnv {
            pid: take("LISTEN_PID"),
            fds: take("LISTEN_FDS"),
            names: take("LISTEN_FDNAMES"),
        }
    }
}

/// Why the passed fds cannot be used; its `Display` is the service's `STATUS=` line.
#[derive(Debug, PartialEq, Eq)]
pub enum ActivationError {
    /// No `LISTEN_FDS`: not socket-activated.
    NotActivated,
    /// `LISTEN_PID` names another process: the variables were inherited, not meant for us.
    OtherPid { listen_pid: String, ours: u32 },
    /// A variable that does not parse.
    Malformed { var: &'static str, value: String },
    /// `LISTEN_FDNAMES` has another count of names than `LISTEN_FDS`.
    NameCount { fds: usize, names: usize },
    /// An fd is not the socket its name says.
    WrongKind {
        fd: RawFd,
        name: String,
        expected: &'static str,
        found: String,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::NotActivated => write!(f, "no sockets passed (LISTEN_FDS unset)"),
            ActivationError::OtherPid { listen_pid, ours } => write!(
                f,
                "LISTEN_PID={listen_pid} is not this process ({ours}): the passed fds are not ours, ignored"
            ),
            ActivationError::Malformed { var, value } => write!(f, "bad {var}={value:?}"),
            ActivationError::NameCount { fds, names } => {
                write!(f, "LISTEN_FDNAMES has {names} names for {fds} fds")
            }
            ActivationError::WrongKind {
                fd,
                name,
                expected,
                found,
            } => write!(f, "fd {fd} ({name:?}) is {found}, expected {expected}"),
        }
    }
}

impl From<ActivationError> for io::Error {
    fn from(e: ActivationError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
    }
}

/// The fds passed to process `ours`, with their names (`"unknown"` where none is given,
/// as systemd says), not yet taken over.
pub fn passed_fds(env: &ListenEnv, ours: u32) -> Result<Vec<(RawFd, String)>, ActivationError> {
    let Some(fds) = &env.fds else {
        return Err(ActivationError::NotActivated);
    };
    let listen_pid = env.pid.clone().unwrap_or_default();
    match listen_pid.parse::<u32>() {
        Ok(pid) if pid == ours => {}
        Ok(_) => return Err(ActivationError::OtherPid { listen_pid, ours }),
        Err(_) => {
            return Err(ActivationError::Malformed {
                var: "LISTEN_PID",
                value: listen_pid,
            })
        }
    }
    let count: usize =
        fds.parse()
            .ok()
            .filter(|n| *n <= 64)
            .ok_or_else(|| ActivationError::Malformed {
                var: "LISTEN_FDS",
                value: fds.clone(),
            })?;
    let names: Vec<String> = match &env.names {
        Some(n) => n.split(':').map(str::to_owned).collect(),
        None => vec!["unknown".to_owned(); count],
    };
    if names.len() != count {
        return Err(ActivationError::NameCount {
            fds: count,
            names: names.len(),
        });
    }
    Ok((FIRST_FD..).zip(names).collect())
}

/// One socket taken over, by what its name said it is.
#[derive(Debug)]
pub enum Inherited {
    /// `tcp*`: a listening TCP socket.
    Tcp(TcpListener),
    /// `unix*` or `abstract*`: a listening Unix stream socket.
    Unix(UnixListener),
    /// `dgram*`: a Unix datagram socket.
    Datagram(UnixDatagram),
    /// `conn*`: a client connection the last instance left in the fd store, with the
    /// bytes of a partial line it had read (hex in the name after `conn-`).
    Conn(Conn, Vec<u8>),
}

/// A client connection, TCP or Unix.
#[derive(Debug)]
pub enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl AsRawFd for Conn {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// An integer socket option of `fd`, or `None` if `fd` is no socket.
fn sockopt(fd: RawFd, name: libc::c_int) -> Option<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live locals of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(v)
}

/// What `fd` is, in words, and its (domain, type, listening).
fn describe(fd: RawFd) -> (String, Option<(libc::c_int, libc::c_int, bool)>) {
    let (Some(domain), Some(ty), Some(acc)) = (
        sockopt(fd, libc::SO_DOMAIN),
        sockopt(fd, libc::SO_TYPE),
        sockopt(fd, libc::SO_ACCEPTCONN),
    ) else {
        return ("not a socket".into(), None);
    };
    let family = match domain {
        libc::AF_UNIX => "Unix",
        libc::AF_INET | libc::AF_INET6 => "IP",
        _ => "other-family",
    };
    let kind = match (ty, acc != 0) {
        (libc::SOCK_STREAM, true) => "listening stream socket",
        (libc::SOCK_STREAM, false) => "connected stream socket",
        (libc::SOCK_DGRAM, _) => "datagram socket",
        _ => "socket of another type",
    };
    (format!("a {family} {kind}"), Some((domain, ty, acc != 0)))
}

/// Makes `fd` close-on-exec, so children of the service do not hold the sockets.
fn set_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_SETFD takes an integer; `fd` is open.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes over `fd` named `name`, checking it is what the name says. Must run inside a
/// runtime.
///
/// # Safety
/// `fd` must be an open fd owned by nobody else in this process (one `passed_fds` listed).
pub unsafe fn adopt(fd: RawFd, name: &str) -> io::Result<Inherited> {
    // SAFETY: the caller hands the fd over.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_cloexec(&owned)?;
    let (found, kind) = describe(fd);
    let wrong = |expected| ActivationError::WrongKind {
        fd,
        name: name.to_owned(),
        expected,
        found: found.clone(),
    };
    let stream_listener = Some((libc::SOCK_STREAM, true));
    let got = kind.map(|(d, t, l)| (d == libc::AF_UNIX, (t, l)));
    Ok(if name.starts_with("tcp") {
        if got != Some((false, (libc::SOCK_STREAM, true))) {
            return Err(wrong("a listening TCP socket").into());
        }
        Inherited::Tcp(TcpListener::try_from(owned)?)
    } else if name.starts_with("unix") || name.starts_with("abstract") {
        if got.map(|g| g.0) != Some(true) || got.map(|g| Some(g.1)) != Some(stream_listener) {
            return Err(wrong("a listening Unix stream socket").into());
        }
        Inherited::Unix(UnixListener::try_from(owned)?)
    } else if name.starts_with("dgram") {
        if got.map(|g| (g.0, g.1 .0)) != Some((true, libc::SOCK_DGRAM)) {
            return Err(wrong("a Unix datagram socket").into());
        }
        Inherited::Datagram(UnixDatagram::try_from(owned)?)
    } else if let Some(rest) = name.strip_prefix("conn") {
        let pending = rest
            .strip_prefix('-')
            .map(hex_decode)
            .unwrap_or(Some(Vec::new()))
            .ok_or_else(|| wrong("a connection name with hex bytes after \"conn-\""))?;
        let conn = match got {
            Some((false, (libc::SOCK_STREAM, false))) => Conn::Tcp(TcpStream::try_from(owned)?),
            Some((true, (libc::SOCK_STREAM, false))) => Conn::Unix(UnixStream::try_from(owned)?),
            _ => return Err(wrong("a connected stream socket").into()),
        };
        Inherited::Conn(conn, pending)
    } else {
        return Err(wrong("a socket named tcp*, unix*, abstract*, dgram* or conn*").into());
    })
}

/// Lowercase hex of `bytes` (the pending bytes of a stored connection, in its `FDNAME`).
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes `hex_encode` wrote, or `None` for anything else.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
