//! Dead-peer detection on a TCP connection: keep-alive timing (`TCP_KEEPIDLE`,
//! `TCP_KEEPINTVL`, `TCP_KEEPCNT`) and the user timeout (`TCP_USER_TIMEOUT`), under
//! socket2's names. tokio has only `SO_KEEPALIVE` on and off.

use std::io;
use std::time::Duration;

use super::{TcpSocket, TcpStream};
use crate::sys::Socket;

/// The longest keep-alive idle time or interval the kernel takes, in seconds.
const MAX_KEEPALIVE_SECS: u64 = 32767;
/// The most keep-alive probes the kernel sends before giving up.
const MAX_KEEPALIVE_RETRIES: u32 = 127;

/// Keep-alive timing for [`TcpStream::set_tcp_keepalive`] (socket2's `TcpKeepalive`): how
/// long a connection stays idle before the kernel probes the peer, how long between probes,
/// and how many unanswered probes fail the connection. What is left unset keeps the
/// system's default (`net.ipv4.tcp_keepalive_time`, 7200 s; `_intvl`, 75 s; `_probes`, 9).
///
/// The kernel counts the times in whole seconds, 1 to 32767: a fraction rounds up, and a
/// time of zero or past that is refused with `InvalidInput`, as are retries outside 1 to
/// 127. A peer that is gone fails the connection after about `time + interval × retries`:
/// the next read or write then returns a `TimedOut` error.
///
/// ```
/// use std::time::Duration;
/// use overlap::net::{TcpKeepalive, TcpListener, TcpStream};
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let stream = TcpStream::connect(listener.local_addr()?).await?;
///     // Probe after 30 s idle, every 5 s, and give up after 4 unanswered probes.
///     let keepalive = TcpKeepalive::new()
///         .with_time(Duration::from_secs(30))
///         .with_interval(Duration::from_secs(5))
///         .with_retries(4);
///     stream.set_tcp_keepalive(&keepalive)?;
///     assert!(stream.keepalive()?);
///     assert_eq!(stream.keepalive_time()?, Duration::from_secs(30));
///     assert_eq!(stream.keepalive_retries()?, 4);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpKeepalive {
    time: Option<Duration>,
    interval: Option<Duration>,
    retries: Option<u32>,
}

impl TcpKeepalive {
    /// Keep-alive on, with the system's timing.
    pub const fn new() -> TcpKeepalive {
        TcpKeepalive {
            time: None,
            interval: None,
            retries: None,
        }
    }

    /// How long the connection is idle before the first probe (`TCP_KEEPIDLE`).
    pub const fn with_time(self, time: Duration) -> TcpKeepalive {
        TcpKeepalive {
            time: Some(time),
            ..self
        }
    }

    /// How long between probes that go unanswered (`TCP_KEEPINTVL`).
    pub const fn with_interval(self, interval: Duration) -> TcpKeepalive {
        TcpKeepalive {
            interval: Some(interval),
            ..self
        }
    }

    /// How many unanswered probes fail the connection (`TCP_KEEPCNT`).
    pub const fn with_retries(self, retries: u32) -> TcpKeepalive {
        TcpKeepalive {
            retries: Some(retries),
            ..self
        }
    }
}

/// Whole seconds for a keep-alive option, a fraction rounded up, in the kernel's range.
fn keepalive_secs(what: &str, d: Duration) -> io::Result<libc::c_int> {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    if secs == 0 || secs > MAX_KEEPALIVE_SECS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a keep-alive {what} is 1 to {MAX_KEEPALIVE_SECS} seconds, not {d:?}"),
        ));
    }
    Ok(secs as libc::c_int)
}

fn set_keepalive(sock: &Socket, keepalive: &TcpKeepalive) -> io::Result<()> {
    // Every value is checked before anything is set: a refused one changes nothing.
    let time = keepalive
        .time
        .map(|d| keepalive_secs("time", d))
        .transpose()?;
    let interval = keepalive
        .interval
        .map(|d| keepalive_secs("interval", d))
        .transpose()?;
    if let Some(n) = keepalive.retries {
        if n == 0 || n > MAX_KEEPALIVE_RETRIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("keep-alive retries are 1 to {MAX_KEEPALIVE_RETRIES}, not {n}"),
            ));
        }
    }
    if let Some(secs) = time {
        sock.setsockopt(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
    }
    if let Some(secs) = interval {
        sock.setsockopt(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs)?;
    }
    if let Some(n) = keepalive.retries {
        sock.setsockopt(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, n as libc::c_int)?;
    }
    sock.set_flag(libc::SOL_SOCKET, libc::SO_KEEPALIVE, true)
}

fn seconds(sock: &Socket, name: libc::c_int) -> io::Result<Duration> {
    let secs: libc::c_int = sock.getsockopt(libc::IPPROTO_TCP, name)?;
    Ok(Duration::from_secs(secs.max(0) as u64))
}

fn retries(sock: &Socket) -> io::Result<u32> {
    let n: libc::c_int = sock.getsockopt(libc::IPPROTO_TCP, libc::TCP_KEEPCNT)?;
    Ok(n.max(0) as u32)
}

fn set_user_timeout(sock: &Socket, timeout: Option<Duration>) -> io::Result<()> {
    let ms = match timeout {
        None => 0,
        Some(d) => {
            // Milliseconds, a fraction rounded up, so that a tiny timeout is not "none".
            let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 > 0);
            libc::c_int::try_from(ms).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "a TCP user timeout is at most {} ms, not {d:?}",
                        libc::c_int::MAX
                    ),
                )
            })?
        }
    };
    sock.setsockopt(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)
}

fn user_timeout(sock: &Socket) -> io::Result<Option<Duration>> {
    let ms: libc::c_int = sock.getsockopt(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT)?;
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

impl TcpStream {
    /// Turns keep-alive on (`SO_KEEPALIVE`) with the timing of `keepalive` (see
    /// [`TcpKeepalive`]); a value out of the kernel's range is refused with `InvalidInput`
    /// before anything changes.
    pub fn set_tcp_keepalive(&self, keepalive: &TcpKeepalive) -> io::Result<()> {
        set_keepalive(self.io.get_ref(), keepalive)
    }

    /// How long the connection is idle before the first keep-alive probe (`TCP_KEEPIDLE`;
    /// the system's default unless set).
    pub fn keepalive_time(&self) -> io::Result<Duration> {
        seconds(self.io.get_ref(), libc::TCP_KEEPIDLE)
    }

    /// How long between unanswered keep-alive probes (`TCP_KEEPINTVL`).
    pub fn keepalive_interval(&self) -> io::Result<Duration> {
        seconds(self.io.get_ref(), libc::TCP_KEEPINTVL)
    }

    /// How many unanswered keep-alive probes fail the connection (`TCP_KEEPCNT`).
    pub fn keepalive_retries(&self) -> io::Result<u32> {
        retries(self.io.get_ref())
    }

    /// Sets `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged (or the peer's
    /// receive window stay shut, its window probes unanswered by any room) before the
    /// kernel fails the connection, where it would otherwise retransmit for about 15
    /// minutes. The next read or write then returns a `TimedOut` error. `None` (or zero)
    /// restores the system's behaviour; the kernel counts milliseconds, a fraction rounds
    /// up, and more than `i32::MAX` ms is refused with `InvalidInput`. With keep-alive on,
    /// it also bounds how long unanswered probes may go on.
    pub fn set_tcp_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        set_user_timeout(self.io.get_ref(), timeout)
    }

    /// The `TCP_USER_TIMEOUT` setting, `None` if unset.
    pub fn tcp_user_timeout(&self) -> io::Result<Option<Duration>> {
        user_timeout(self.io.get_ref())
    }
}

impl TcpSocket {
    /// [`TcpStream::set_tcp_keepalive`], before the socket connects or listens. A listener
    /// made from it passes the timing on to the connections it accepts.
    pub fn set_tcp_keepalive(&self, keepalive: &TcpKeepalive) -> io::Result<()> {
        set_keepalive(&self.sock, keepalive)
    }

    /// The `TCP_KEEPIDLE` setting (see [`TcpStream::keepalive_time`]).
    pub fn keepalive_time(&self) -> io::Result<Duration> {
        seconds(&self.sock, libc::TCP_KEEPIDLE)
    }

    /// The `TCP_KEEPINTVL` setting (see [`TcpStream::keepalive_interval`]).
    pub fn keepalive_interval(&self) -> io::Result<Duration> {
        seconds(&self.sock, libc::TCP_KEEPINTVL)
    }

    /// The `TCP_KEEPCNT` setting (see [`TcpStream::keepalive_retries`]).
    pub fn keepalive_retries(&self) -> io::Result<u32> {
        retries(&self.sock)
    }

    /// [`TcpStream::set_tcp_user_timeout`], before the socket connects or listens; it
    /// then bounds the connect's own retransmissions of the SYN too.
    pub fn set_tcp_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        set_user_timeout(&self.sock, timeout)
    }

    /// The `TCP_USER_TIMEOUT` setting, `None` if unset.
    pub fn tcp_user_timeout(&self) -> io::Result<Option<Duration>> {
        user_timeout(&self.sock)
    }
}
