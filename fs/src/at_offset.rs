//! The `pread`/`pwrite` loops that [`File`](crate::File)'s positional calls and
//! [`PositionalFile`](crate::PositionalFile) run on a pool thread.

use std::fs::File as StdFile;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use crate::sys;

/// Reads into `buf` at `offset` without moving the fd's offset (`pread`), retrying on
/// `EINTR`; with `exact`, reads on until `buf` is full or the file ends. Returns the count.
pub(crate) fn read_at(
    file: &StdFile,
    buf: &mut [u8],
    offset: u64,
    exact: bool,
) -> io::Result<usize> {
    // `offset` is at most `i64::MAX` and `done` fits in a `usize`: no overflow.
    read_loop(file, buf.len(), exact, |done| {
        file.read_at(&mut buf[done..], offset + done as u64)
    })
}

/// Reads up to `len` bytes at `offset` into `buf`'s spare capacity (which must hold them),
/// after the bytes it has, as [`read_at`] does: nothing is zeroed first, and only the
/// pages the reads reach are touched. Returns the count, which `buf`'s length grew by.
pub(crate) fn read_to_spare_at(
    file: &StdFile,
    buf: &mut Vec<u8>,
    len: usize,
    offset: u64,
    exact: bool,
) -> io::Result<usize> {
    let fd = file.as_raw_fd();
    read_loop(file, len, exact, |done| {
        sys::pread_to_spare(fd, buf, len - done, offset + done as u64)
    })
}

/// The loop of a positional read of `len` bytes: `read_one(done)` reads the rest from
/// `done` bytes in. Stops at the end of the file, or after one read unless `exact`.
fn read_loop(
    file: &StdFile,
    len: usize,
    exact: bool,
    mut read_one: impl FnMut(usize) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut done = 0;
    while done < len {
        match read_one(done) {
            Ok(0) => break,
            Ok(n) if exact => done += n,
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sys::wait_fd(file.as_raw_fd(), libc::POLLIN)?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Writes `buf` at `offset` without moving the fd's offset (`pwrite`), retrying on `EINTR`;
/// with `all`, writes on until all of `buf` is written. Returns the count.
pub(crate) fn write_at(file: &StdFile, buf: &[u8], offset: u64, all: bool) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.write_at(&buf[done..], offset + done as u64) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) if all => done += n,
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sys::wait_fd(file.as_raw_fd(), libc::POLLOUT)?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Fills `buf` from `offset` on through `read`, one call per `chunk` bytes (each call to
/// fill its part or stop at the end of the file). Returns `Some(at)` if the file ended
/// first, `at` being where the bytes read stopped.
pub(crate) async fn read_exact_in_chunks(
    mut buf: &mut [u8],
    mut offset: u64,
    chunk: usize,
    mut read: impl AsyncFnMut(&mut [u8], u64) -> io::Result<usize>,
) -> io::Result<Option<u64>> {
    while !buf.is_empty() {
        let n = buf.len().min(chunk);
        let (part, rest) = buf.split_at_mut(n);
        let got = read(part, offset).await?;
        if got < n {
            return Ok(Some(offset + got as u64));
        }
        buf = rest;
        offset += n as u64;
    }
    Ok(None)
}

/// Writes all of `buf` at `offset` on through `write`, one call per `chunk` bytes (each
/// call to write all of its part).
pub(crate) async fn write_all_in_chunks(
    mut buf: &[u8],
    mut offset: u64,
    chunk: usize,
    mut write: impl AsyncFnMut(&[u8], u64) -> io::Result<usize>,
) -> io::Result<()> {
    while !buf.is_empty() {
        let n = buf.len().min(chunk);
        write(&buf[..n], offset).await?;
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// The error of a `read_exact_at` of `len` bytes from `start` whose bytes stopped at `at`:
/// it says where the file ended, and which range was asked for.
pub(crate) fn ended_before(start: u64, len: usize, at: u64) -> io::Error {
    let end = start.saturating_add(len as u64);
    let msg = if at > start {
        format!(
            "the file ends at offset {at}, before offset {end} \
             (the end of the {len} bytes asked for from offset {start})"
        )
    } else {
        format!(
            "the file ends at or before offset {start}, \
             where the {len} bytes asked for start (up to offset {end})"
        )
    };
    io::Error::new(io::ErrorKind::UnexpectedEof, msg)
}
