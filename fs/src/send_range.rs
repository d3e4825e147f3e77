//! The loop of [`File::send_to`](crate::File::send_to) and
//! [`PositionalFile::send_to`](crate::PositionalFile::send_to): wait for room at the
//! destination, then a `sendfile` run on the pool, until the range is sent or the file ends.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use overlap_runtime::{own_waits, Direction, Registered};

use crate::sys::{self, Sent};

/// Sends up to `len` bytes from `offset` to `to`, one `run(dest, at, left)` (a `sendfile`
/// run on the pool, to `dest`, a duplicate of `to`'s fd) per socket buffer's worth.
/// `named` names the file in errors. Returns how many bytes went.
pub(crate) async fn send_range<D: Registered + ?Sized>(
    to: &D,
    offset: u64,
    len: u64,
    named: impl Fn(io::Error) -> io::Error,
    mut run: impl AsyncFnMut(Arc<OwnedFd>, u64, u64) -> io::Result<Sent>,
) -> io::Result<u64> {
    let mut dest: Option<Arc<OwnedFd>> = None;
    let mut sent = 0u64;
    while sent < len {
        // Readiness first: a destination that cannot take bytes (a closed pipe sender)
        // reports its error here.
        let event = own_waits(|cx| to.poll_readiness(cx, Direction::Write))
            .await
            .map_err(&named)?;
        let dest = match &dest {
            Some(d) => Arc::clone(d),
            None => {
                let dup = sys::dup(to.as_raw_fd()).map_err(&named)?;
                Arc::clone(dest.insert(Arc::new(dup)))
            }
        };
        let ran = run(dest, offset + sent, len - sent).await;
        match ran.map_err(|e| named(refused_destination(e)))? {
            Sent::Done(n) => return Ok(sent + n),
            Sent::Full(n) => {
                sent += n;
                to.clear_readiness(event);
            }
        }
    }
    Ok(sent)
}

/// `EINVAL` from `sendfile` means a destination it cannot write to: says so.
fn refused_destination(e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(libc::EINVAL) {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the kernel cannot sendfile to this kind of fd ({e})"),
        )
    } else {
        e
    }
}
