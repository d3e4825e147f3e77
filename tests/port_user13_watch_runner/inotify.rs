//! inotify through libc, as the user wrote it: `inotify_init1(IN_NONBLOCK | IN_CLOEXEC)`,
//! `inotify_add_watch`, and the fd in an `AsyncFd` read with the `readable()` + `try_io`
//! guard loop; and the parser of the `inotify_event` records a read returns.

use std::ffi::{CString, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use overlap::io::unix::AsyncFd;
use overlap::io::Interest;

/// What each directory is watched for: anything that changes a file in it, or it.
pub const WATCH_MASK: u32 = libc::IN_CREATE
    | libc::IN_MODIFY
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_ONLYDIR
    | libc::IN_EXCL_UNLINK;

/// The fixed part of an `inotify_event`: `wd`, `mask`, `cookie`, `len`.
pub const HEADER: usize = 16;

/// One `inotify_event` record.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    /// The watch it came from (-1 for `IN_Q_OVERFLOW`).
    pub wd: i32,
    pub mask: u32,
    pub cookie: u32,
    /// The file's name within the watched directory (none for events on the directory).
    pub name: Option<OsString>,
}

impl RawEvent {
    pub fn is(&self, bits: u32) -> bool {
        self.mask & bits != 0
    }
}

/// A buffer that is not a whole number of well-formed records.
#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// Fewer than 16 bytes left for a header, at this offset.
    ShortHeader(usize),
    /// A record whose name runs past the end of the buffer, at this offset.
    ShortName(usize),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::ShortHeader(at) => write!(f, "a truncated inotify header at byte {at}"),
            ParseError::ShortName(at) => write!(f, "an inotify name past the end at byte {at}"),
        }
    }
}

impl std::error::Error for ParseError {}

fn word(buf: &[u8], at: usize) -> [u8; 4] {
    buf[at..at + 4].try_into().unwrap()
}

/// Parses the records of one read. The name is NUL-padded to `len` bytes (a multiple of
/// the header's alignment); the padding is cut.
pub fn parse(buf: &[u8]) -> Result<Vec<RawEvent>, ParseError> {
    let mut events = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        if buf.len() - at < HEADER {
            return Err(ParseError::ShortHeader(at));
        }
        let wd = i32::from_ne_bytes(word(buf, at));
        let mask = u32::from_ne_bytes(word(buf, at + 4));
        let cookie = u32::from_ne_bytes(word(buf, at + 8));
        let len = u32::from_ne_bytes(word(buf, at + 12)) as usize;
        let start = at + HEADER;
        if buf.len() - start < len {
            return Err(ParseError::ShortName(at));
        }
        let raw = &buf[start..start + len];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let name = (end > 0).then(|| OsString::from_vec(raw[..end].to_vec()));
        events.push(RawEvent {
            wd,
            mask,
            cookie,
            name,
        });
        at = start + len;
    }
    Ok(events)
}

/// Encodes one record as the kernel would (for the parser's tests): the name NUL-padded to
/// a multiple of 16 bytes.
pub fn encode(wd: i32, mask: u32, cookie: u32, name: &str) -> Vec<u8> {
    let len = if name.is_empty() {
        0
    } else {
        (name.len() + 1).div_ceil(16) * 16
    };
    let mut out = Vec::with_capacity(HEADER + len);
    out.extend_from_slice(&wd.to_ne_bytes());
    out.extend_from_slice(&mask.to_ne_bytes());
    out.extend_from_slice(&cookie.to_ne_bytes());
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(name.as_bytes());
    out.resize(HEADER + len, 0);
    out
}

/// An inotify instance on the reactor.
#[derive(Debug)]
pub struct Inotify {
    fd: AsyncFd<OwnedFd>,
}

fn check(res: libc::c_int) -> io::Result<libc::c_int> {
    if res < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res)
    }
}

/// read(2) on the inotify fd.
fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl Inotify {
    pub fn new() -> io::Result<Inotify> {
        // SAFETY: inotify_init1 takes flags only; the result is checked before it is owned.
        let fd = check(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
        // SAFETY: `fd` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Inotify {
            fd: AsyncFd::new(fd)?,
        })
    }

    /// Watches `dir`; the watch descriptor (the same one again for a path already
    /// watched).
    pub fn add_watch(&self, dir: &Path, mask: u32) -> io::Result<i32> {
        let path = CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: `path` is a NUL-terminated string that outlives the call; the kernel
        // only reads it.
        check(unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), mask) })
    }

    /// Waits until events are queued and reads them: at least one record. Cancel-safe: the
    /// only wait is for readiness, and a read's records are returned at once.
    pub async fn read_events(&self, buf: &mut [u8]) -> io::Result<Vec<RawEvent>> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| read(fd, buf)) {
                Ok(Ok(n)) => return parse(&buf[..n]).map_err(invalid),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads what is queued now without waiting: `None` once nothing is (the readiness
    /// then cleared, so the next `read_events` waits for new events).
    pub fn try_read_events(&self, buf: &mut [u8]) -> io::Result<Option<Vec<RawEvent>>> {
        match self.fd.try_io(Interest::READABLE, |fd| read(fd, buf)) {
            Ok(n) => parse(&buf[..n]).map(Some).map_err(invalid),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn invalid(e: ParseError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
