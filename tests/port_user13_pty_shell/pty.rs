//! The pseudo-terminal, from raw libc: the pair opened with `posix_openpt`, `grantpt`,
//! `unlockpt` and `ptsname_r`, the master non-blocking and close-on-exec in an `AsyncFd`
//! (tokio: `tokio::io::unix::AsyncFd`), read and written through `readable()`/`writable()`
//! and the guard's `try_io`; and the shell on the slave side, in a session of its own with
//! the slave as its controlling terminal.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use overlap::io::unix::AsyncFd;
use overlap::process::{Child, Command};

use super::proto::Exit;

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A new pseudo-terminal pair: (master, non-blocking; slave), both close-on-exec.
pub fn open_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: posix_openpt takes no pointers.
    let raw = check(unsafe { libc::posix_openpt(flags) })?;
    // SAFETY: `raw` was just opened and nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: grantpt and unlockpt take the master's fd, open for the whole call.
    check(unsafe { libc::grantpt(raw) })?;
    // SAFETY: as above.
    check(unsafe { libc::unlockpt(raw) })?;
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is writable for the length given.
    let rc = unsafe { libc::ptsname_r(raw, name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated path.
    let path: CString = unsafe { CStr::from_ptr(name.as_ptr()) }.to_owned();
    // SAFETY: `path` is a valid C string for the whole call.
    let slave = check(unsafe { libc::open(path.as_ptr(), flags) })?;
    // SAFETY: `slave` was just opened and nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    // SAFETY: F_GETFL/F_SETFL take and return plain ints.
    let fl = check(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(raw, libc::F_SETFL, fl | libc::O_NONBLOCK) })?;
    Ok((master, slave))
}

/// Sets the terminal's size on `fd` (either side); the kernel sends `SIGWINCH` to the
/// terminal's foreground process group.
pub fn set_size(fd: &impl AsRawFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `size` is a valid winsize that the kernel only reads during the call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) }).map(drop)
}

/// The master side, on the reactor.
pub struct Pty {
    fd: AsyncFd<File>,
}

impl Pty {
    pub fn new(master: OwnedFd) -> io::Result<Pty> {
        Ok(Pty {
            fd: AsyncFd::new(File::from(master))?,
        })
    }

    /// Reads what the terminal wrote; `Ok(0)` once every slave fd has closed (the shell
    /// and all it started have gone), which the master reports as `EIO`: the normal end.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            // tokio: `guard.try_io(|inner| inner.get_ref().read(buf))`
            match guard.try_io(|mut file| file.read(buf)) {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data` to the terminal's input, waiting while its buffer is full
    /// (the shell not reading): the backpressure that reaches the client's socket.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|mut file| file.write(data)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        set_size(self.fd.get_ref(), rows, cols)
    }
}

/// What runs on the slave side, and how it starts.
#[derive(Debug, Clone)]
pub struct ShellCommand {
    pub program: String,
    pub args: Vec<String>,
    pub rows: u16,
    pub cols: u16,
}

impl Default for ShellCommand {
    fn default() -> ShellCommand {
        ShellCommand {
            program: "/bin/sh".into(),
            args: vec!["-i".into()],
            rows: 24,
            cols: 80,
        }
    }
}

/// A shell on a terminal of its own.
pub struct Shell {
    pub pty: Pty,
    pub child: Child,
    pub pid: u32,
}

impl Shell {
    pub fn spawn(what: &ShellCommand) -> io::Result<Shell> {
        let (master, slave) = open_pair()?;
        set_size(&master, what.rows, what.cols)?;
        let mut cmd = Command::new(&what.program);
        cmd.args(&what.args)
            .env("TERM", "dumb")
            .env("PS1", "$ ")
            .env_remove("ENV")
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave))
            .kill_on_drop(true);
        // SAFETY: between fork and exec the closure calls only signal, setsid and ioctl,
        // which are async-signal-safe, and allocates nothing (last_os_error reads errno).
        unsafe {
            cmd.pre_exec(|| {
                // A disposition the server inherited as ignored (started with `nohup`, or
                // with `&` from a script, which ignores SIGINT and SIGQUIT) would pass to
                // the shell, which keeps it ignored for its jobs: Ctrl-C and the hang-up
                // would do nothing. Handlers are reset by exec; ignored ones are not.
                for sig in 1..32 {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                // fd 0 is the slave by now: make it the new session's controlling tty.
                if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        // The builder holds the slave's three fds: kept, the master would never see EIO.
        drop(cmd);
        let pid = child.id().expect("just spawned");
        Ok(Shell {
            pty: Pty::new(master)?,
            child,
            pid,
        })
    }

    /// Ends the session from this side: `SIGHUP` to the shell's process group, the
    /// master closed (the kernel hangs the terminal up, which signals its foreground
    /// group too), then after `grace` `SIGKILL`; the shell is reaped either way.
    pub async fn hang_up(self, grace: Duration) -> io::Result<ExitStatus> {
        let Shell {
            pty,
            mut child,
            pid,
        } = self;
        signal_group(pid, libc::SIGHUP);
        drop(pty);
        match overlap::time::timeout(grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                signal_group(pid, libc::SIGKILL);
                child.wait().await
            }
        }
    }
}

/// Sends `sig` to the process group `pgid` (the shell leads its own); a group already
/// gone is no error. Only called before the shell is reaped, so `pgid` is still its own.
fn signal_group(pgid: u32, sig: libc::c_int) {
    // SAFETY: kill takes no pointers; a negative pid names a process group.
    unsafe { libc::kill(-(pgid as libc::pid_t), sig) };
}

pub fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Code(-1),
    }
}
