//! The workers' line protocol: one request per line, one answer line each (`SLEEP` two),
//! and the clear `ERR ..` line every bad request gets.
//!
//! | request    | answer                                              |
//! |------------|-----------------------------------------------------|
//! | `PID`      | the worker's pid                                    |
//! | `ECHO x`   | `x`                                                 |
//! | `SLEEP ms` | `SLEEPING ms` at once, `SLEPT ms` after `ms` ms     |
//! | `SPAWN`    | `SPAWNED pid` of a `sleep 1000` in the worker's group |
//! | `CRASH`    | none: the worker exits with [`EXIT_CRASH`]          |
//! | `HANG`     | none: the worker's thread stops, heartbeats too     |

use std::fmt;

/// A worker's exit code after `CRASH`.
pub const EXIT_CRASH: i32 = 3;
/// A worker's exit code after its `max_requests`-th answer: recycle me.
pub const EXIT_RECYCLE: i32 = 10;
/// A worker's exit code when its environment is unusable (it never served).
pub const EXIT_BAD_SETUP: i32 = 2;
/// The longest request line, newline excluded.
pub const MAX_LINE: usize = 1024;

/// One parsed request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `PID`
    Pid,
    /// `ECHO x`, with `x`
    Echo(String),
    /// `SLEEP ms`, in milliseconds
    Sleep(u64),
    /// `SPAWN`
    Spawn,
    /// `CRASH`
    Crash,
    /// `HANG`
    Hang,
}

/// Why a request line was refused; its `Display` is the `ERR ..` line's text.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// No such command (or one that takes no argument, given one): the whole line.
    Unknown(String),
    /// `ECHO` or `SLEEP` alone.
    MissingArgument(&'static str),
    /// `SLEEP`'s argument, not a number of milliseconds up to a minute.
    NotMilliseconds(String),
    /// Bytes that are no UTF-8.
    NotUtf8,
    /// An empty line.
    Empty,
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::Unknown(verb) => write!(
                f,
                "unknown command {verb:?} (try PID, ECHO, SLEEP, SPAWN, CRASH, HANG)"
            ),
            BadRequest::MissingArgument(verb) => write!(f, "{verb} wants an argument"),
            BadRequest::NotMilliseconds(arg) => {
                write!(f, "SLEEP wants milliseconds (0..=60000), got {arg:?}")
            }
            BadRequest::NotUtf8 => write!(f, "request is not UTF-8"),
            BadRequest::Empty => write!(f, "empty request"),
        }
    }
}

/// Parses one line (without its newline; a trailing `\r` is allowed, as telnet sends).
pub fn parse(line: &[u8]) -> Result<Request, BadRequest> {
    let line = std::str::from_utf8(line).map_err(|_| BadRequest::NotUtf8)?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (verb, arg) = match line.split_once(' ') {
        Some((v, a)) => (v, Some(a)),
        None => (line, None),
    };
    let no_arg = |req| match arg {
        None => Ok(req),
        Some(_) => Err(BadRequest::Unknown(line.to_owned())),
    };
    match verb {
        "" => Err(BadRequest::Empty),
        "PID" => no_arg(Request::Pid),
        "SPAWN" => no_arg(Request::Spawn),
        "CRASH" => no_arg(Request::Crash),
        "HANG" => no_arg(Request::Hang),
        "ECHO" => match arg {
            Some(a) if !a.is_empty() => Ok(Request::Echo(a.to_owned())),
            _ => Err(BadRequest::MissingArgument("ECHO")),
        },
        "SLEEP" => {
            let arg = arg.ok_or(BadRequest::MissingArgument("SLEEP"))?;
            match arg.parse::<u64>() {
                Ok(ms) if ms <= 60_000 => Ok(Request::Sleep(ms)),
                _ => Err(BadRequest::NotMilliseconds(arg.to_owned())),
            }
        }
        other => Err(BadRequest::Unknown(other.to_owned())),
    }
}
