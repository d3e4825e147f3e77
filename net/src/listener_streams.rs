//! tokio-stream's listener wrappers: a listener owned as a [`Stream`] of accepted streams.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A [`TcpListener`] owned as a [`Stream`] of the connections it accepts
/// (tokio-stream's `TcpListenerStream`; [`TcpListener::incoming`] is the same, borrowed). It
/// never ends: an accept that fails yields its error, and the next poll accepts again (see
/// [`TcpListener`'s docs](crate::TcpListener#running-out-of-file-descriptors) for backing off
/// when descriptors run out).
///
/// ```
/// use overlap::net::{TcpListener, TcpStream};
/// use overlap::stream::wrappers::TcpListenerStream;
/// use overlap::stream::StreamExt;
///
/// overlap::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let mut accepted = TcpListenerStream::new(listener);
///     let client = TcpStream::connect(addr).await?;
///     let server_side = accepted.next().await.expect("never ends")?;
///     assert_eq!(server_side.peer_addr()?, client.local_addr()?);
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct TcpListenerStream {
    inner: TcpListener,
}

impl TcpListenerStream {
    /// Wraps `listener`.
    pub fn new(listener: TcpListener) -> TcpListenerStream {
        TcpListenerStream { inner: listener }
    }

    /// The listener back.
    pub fn into_inner(self) -> TcpListener {
        self.inner
    }
}

impl Stream for TcpListenerStream {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|(stream, _)| stream)))
    }
}

impl AsRef<TcpListener> for TcpListenerStream {
    fn as_ref(&self) -> &TcpListener {
        &self.inner
    }
}

impl AsMut<TcpListener> for TcpListenerStream {
    fn as_mut(&mut self) -> &mut TcpListener {
        &mut self.inner
    }
}

/// A [`UnixListener`] owned as a [`Stream`] of the connections it accepts
/// (tokio-stream's `UnixListenerStream`). It never ends; an accept that fails yields its
/// error.
#[derive(Debug)]
pub struct UnixListenerStream {
    inner: UnixListener,
}

impl UnixListenerStream {
    /// Wraps `listener`.
    pub fn new(listener: UnixListener) -> UnixListenerStream {
        UnixListenerStream { inner: listener }
    }

    /// The listener back.
    pub fn into_inner(self) -> UnixListener {
        self.inner
    }
}

impl Stream for UnixListenerStream {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner
            .poll_accept(cx)
            .map(|accepted| Some(accepted.map(|(stream, _)| stream)))
    }
}

impl AsRef<UnixListener> for UnixListenerStream {
    fn as_ref(&self) -> &UnixListener {
        &self.inner
    }
}

impl AsMut<UnixListener> for UnixListenerStream {
    fn as_mut(&mut self) -> &mut UnixListener {
        &mut self.inner
    }
}
