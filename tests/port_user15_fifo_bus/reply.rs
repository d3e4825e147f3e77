//! Answering a client through the reply FIFO it named: opened for writing without
//! blocking, which the kernel refuses with `ENXIO` while the client has no reader open
//! (not yet, or no more), so the open is tried again until a deadline; then written with a
//! deadline of its own, so a client that does not read is dropped, not waited on.

use std::io;
use std::path::Path;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::pipe::Sender;
use overlap::time::{sleep, timeout, Instant};

#[derive(Clone, Debug)]
pub struct ReplyLimits {
    /// How long a client has to open its reply FIFO.
    pub open_deadline: Duration,
    /// The pause between two opens refused with `ENXIO`.
    pub open_retry: Duration,
    /// How long one reply may take to write (a client reading slowly is dropped).
    pub write_deadline: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Never opened its reply FIFO in time, had none, or closed it while being answered.
    Gone,
    /// Did not read the reply within the deadline.
    TooSlow,
    /// The reply path is no FIFO (a regular file, a directory, a socket): never written.
    Refused(io::ErrorKind),
}

/// Opens `path` for writing, trying again while no reader has it open: the sender, or
/// the outcome, and how many opens `ENXIO` refused.
pub async fn open_reply(path: &Path, limits: &ReplyLimits) -> (Result<Sender, Outcome>, u64) {
    let deadline = Instant::now() + limits.open_deadline;
    let mut refused = 0;
    loop {
        match Sender::open(path) {
            Ok(tx) => return (Ok(tx), refused),
            // The error names the path, so its own `raw_os_error()` is `None`.
            Err(e) if overlap::io::raw_os_error(&e) == Some(libc::ENXIO) => {
                refused += 1;
                if Instant::now() >= deadline {
                    return (Err(Outcome::Gone), refused);
                }
                sleep(limits.open_retry).await;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (Err(Outcome::Gone), refused),
            Err(e) => return (Err(Outcome::Refused(e.kind())), refused),
        }
    }
}

/// Writes `bytes` and closes the FIFO, so that the client reads end of file after them.
pub async fn write_reply(mut tx: Sender, bytes: &[u8], limits: &ReplyLimits) -> Outcome {
    match timeout(limits.write_deadline, tx.write_all(bytes)).await {
        Ok(Ok(())) => Outcome::Delivered,
        // `BrokenPipe`: the client closed its reader while being answered.
        Ok(Err(_)) => Outcome::Gone,
        Err(_elapsed) => Outcome::TooSlow,
    }
}
