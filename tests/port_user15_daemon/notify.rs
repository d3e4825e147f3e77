//! `sd_notify` as a user writes it: datagrams of newline-separated `KEY=VALUE` assignments
//! to the Unix datagram socket named by `NOTIFY_SOCKET` (a path, or an abstract name
//! written with a leading `@`), and `sd_watchdog_enabled`'s reading of `WATCHDOG_USEC` and
//! `WATCHDOG_PID`. A notification that cannot be sent is counted, not fatal: the daemon
//! serves on without its manager hearing, as `sd_notify`'s callers do.

use std::cell::Cell;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use overlap::net::UnixDatagram;

/// How long a notification may wait for room in the manager's queue.
const SEND_LIMIT: Duration = Duration::from_secs(5);

/// The socket address `NOTIFY_SOCKET` names: an absolute path, or `@name` for the
/// abstract name `name` (a leading NUL byte for the kernel, and for overlap's `send_to`).
pub fn notify_addr(value: &OsStr) -> io::Result<PathBuf> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => Ok(PathBuf::from(value)),
        Some(b'@') if bytes.len() > 1 => {
            let mut name = vec![0u8];
            name.extend_from_slice(&bytes[1..]);
            Ok(PathBuf::from(OsStr::from_bytes(&name)))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NOTIFY_SOCKET={value:?}: neither an absolute path nor an @abstract name"),
        )),
    }
}

/// The watchdog's ping period, half of `WATCHDOG_USEC`, if the watchdog is on for process
/// `pid`: `None` when `WATCHDOG_USEC` is unset, or `WATCHDOG_PID` names another process.
pub fn watchdog_period(
    usec: Option<&str>,
    watchdog_pid: Option<&str>,
    pid: u32,
) -> io::Result<Option<Duration>> {
    let Some(usec) = usec else { return Ok(None) };
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    if let Some(p) = watchdog_pid {
        let p: u32 = p
            .parse()
            .map_err(|_| bad(format!("WATCHDOG_PID={p:?} is no pid")))?;
        if p != pid {
            return Ok(None);
        }
    }
    match usec.parse::<u64>() {
        Ok(us) if us > 0 => Ok(Some(Duration::from_micros(us) / 2)),
        _ => Err(bad(format!("WATCHDOG_USEC={usec:?} is no positive number"))),
    }
}

/// The connection to the service manager.
pub struct Notifier {
    sock: UnixDatagram,
    addr: PathBuf,
    failed: Cell<u64>,
}

impl Notifier {
    /// A notifier for `NOTIFY_SOCKET`'s value, or `None` when it is unset or empty (not
    /// run by a manager that listens).
    pub fn new(value: Option<&OsStr>) -> io::Result<Option<Notifier>> {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(Notifier {
            addr: notify_addr(value)?,
            sock: UnixDatagram::unbound()?,
            failed: Cell::new(0),
        }))
    }

    /// Sends one datagram of assignments (`"READY=1\nSTATUS=..."`); a failure (the
    /// manager gone, its queue full for [`SEND_LIMIT`]) is counted.
    pub async fn notify(&self, state: &str) {
        let sent =
            overlap::time::timeout(SEND_LIMIT, self.sock.send_to(state.as_bytes(), &self.addr));
        match sent.await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => self.failed.set(self.failed.get() + 1),
        }
    }

    /// How many notifications could not be sent.
    pub fn failed(&self) -> u64 {
        self.failed.get()
    }
}

/// `notify` on an optional notifier.
pub async fn notify(to: Option<&Notifier>, state: &str) {
    if let Some(n) = to {
        n.notify(state).await;
    }
}

/// `CLOCK_MONOTONIC` in microseconds, for `RELOADING=1`'s `MONOTONIC_USEC` (systemd's
/// `Type=notify-reload` wants it; `overlap::time::Instant`, like std's, cannot give it).
pub fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let res = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(res, 0, "clock_gettime(CLOCK_MONOTONIC)");
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
