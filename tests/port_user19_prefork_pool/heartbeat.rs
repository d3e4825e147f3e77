//! The master's end of a worker's heartbeat socket: a line `ready` once the worker serves,
//! then `beat` every so often. Any line counts as a sign of life; none within the timeout
//! is a hung worker.

use std::time::Duration;

use overlap::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use overlap::stream::StreamExt;
use overlap::time::{timeout_at, Instant};

/// What the heartbeat socket said next.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// The worker serves.
    Ready,
    /// Alive, still.
    Alive,
    /// No line for the whole timeout since `since` (the last line, or the watch's start).
    Missed { since: Instant },
    /// End of file (or an error): the worker closed its end, exiting most likely.
    Closed,
}

/// Watches one worker's heartbeat lines against a timeout.
#[derive(Debug)]
pub struct Heartbeat<R> {
    lines: Lines<BufReader<R>>,
    timeout: Duration,
    last: Instant,
}

impl<R: AsyncRead + Unpin> Heartbeat<R> {
    /// Starts the clock now: a worker that never says `ready` is missed after `timeout`.
    pub fn new(reader: R, timeout: Duration) -> Heartbeat<R> {
        Heartbeat {
            lines: BufReader::new(reader).lines(),
            timeout,
            last: Instant::now(),
        }
    }

    /// The next thing the socket said, or its silence. Cancel-safe (the line state is the
    /// stream's). After `Missed` the clock starts again; after `Closed` it says `Closed`
    /// again at once, so a caller stops asking.
    pub async fn next(&mut self) -> Beat {
        match timeout_at(self.last + self.timeout, self.lines.next()).await {
            Ok(Some(Ok(line))) => {
                self.last = Instant::now();
                if line == "ready" {
                    Beat::Ready
                } else {
                    Beat::Alive
                }
            }
            Ok(None | Some(Err(_))) => Beat::Closed,
            Err(_) => {
                let since = self.last;
                self.last = Instant::now();
                Beat::Missed { since }
            }
        }
    }
}
