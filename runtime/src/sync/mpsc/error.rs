//! The errors of `mpsc`'s sends and receives (also at the channel's root, `mpsc::SendError`;
//! this path is tokio's).

use std::fmt;

#[cfg(doc)]
use super::{Receiver, Sender};

/// The receiving side is gone; the value comes back.
#[derive(PartialEq, Eq)]
pub struct SendError<T>(pub T);

/// Why [`Sender::try_send`] did not send; the value comes back either way.
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full (or its free slots are promised to waiting senders).
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why [`Sender::send_timeout`] did not send; the value comes back either way.
#[derive(PartialEq, Eq)]
pub enum SendTimeoutError<T> {
    /// No room came up in time.
    Timeout(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why [`Receiver::try_recv`] returned no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued now; senders remain.
    Empty,
    /// Nothing queued, and nothing can come: every sender is gone, or the receiver closed
    /// the channel.
    Disconnected,
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// use overlap::sync::mpsc;
    ///
    /// let (tx, _rx) = mpsc::channel(1);
    /// tx.try_send("first").unwrap();
    /// assert_eq!(tx.try_send("second").unwrap_err().into_inner(), "second");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    ///
    /// ```
    /// use overlap::sync::mpsc::error::SendTimeoutError;
    ///
    /// assert_eq!(SendTimeoutError::Timeout(7).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendTimeoutError::Timeout(v) | SendTimeoutError::Closed(v) => v,
        }
    }
}

impl TrySendError<()> {
    /// The same error, carrying `value` back.
    pub(super) fn with<U>(self, value: U) -> TrySendError<U> {
        match self {
            TrySendError::Full(()) => TrySendError::Full(value),
            TrySendError::Closed(()) => TrySendError::Closed(value),
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the receiving side is gone")
    }
}

impl<T> std::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "the channel is full",
            TrySendError::Closed(_) => "the receiver is gone",
        })
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "Timeout(..)",
            SendTimeoutError::Closed(_) => "Closed(..)",
        })
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendTimeoutError::Timeout(_) => "no room in the channel before the timeout",
            SendTimeoutError::Closed(_) => "the receiver is gone",
        })
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "no value queued",
            TryRecvError::Disconnected => {
                "no value queued and none can come (every sender gone, or the channel closed)"
            }
        })
    }
}

impl std::error::Error for TryRecvError {}
