//! tokio's `AsyncFd` example, ported: an `AsyncTcpStream` over a non-blocking
//! `std::net::TcpStream`, imported from tokio's path `io::unix`, whose `read` and `write`
//! loop on the readiness guards' `try_io`, talking to a real loopback peer.

mod support;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use overlap::io::unix::{AsyncFd, AsyncFdReadyGuard, TryIoError};
use support::within;

const HANG: Duration = Duration::from_secs(30);

struct AsyncTcpStream {
    inner: AsyncFd<TcpStream>,
}

impl AsyncTcpStream {
    fn new(tcp: TcpStream) -> io::Result<Self> {
        tcp.set_nonblocking(true)?;
        Ok(Self {
            inner: AsyncFd::new(tcp)?,
        })
    }

    async fn read(&self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard: AsyncFdReadyGuard<'_, TcpStream> = self.inner.readable().await?;
            // tokio hands the closure the AsyncFd (`inner.get_ref().read(out)`); overlap the
            // stream itself.
            match guard.try_io(|inner| (&*inner).read(out)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.inner.writable().await?;
            let attempt: Result<io::Result<usize>, TryIoError> =
                guard.try_io(|inner| (&*inner).write(buf));
            match attempt {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

#[overlap::test]
async fn an_async_fd_stream_echoes_through_a_blocking_peer() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // The peer is plain blocking std on its own thread: it echoes until end of stream.
    let peer = std::thread::spawn(move || -> io::Result<()> {
        let (mut conn, _) = listener.accept()?;
        let mut buf = [0u8; 64];
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            conn.write_all(&buf[..n])?;
        }
    });
    let stream = AsyncTcpStream::new(TcpStream::connect(addr)?)?;
    let mut echoed = Vec::new();
    for word in [&b"overlapped"[..], b" ", b"io"] {
        let mut sent = 0;
        while sent < word.len() {
            sent += within(HANG, stream.write(&word[sent..]), "never writable").await?;
        }
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < word.len() {
            let n = within(HANG, stream.read(&mut buf[got..]), "no echo").await?;
            assert_ne!(n, 0, "the peer closed early");
            got += n;
        }
        echoed.extend_from_slice(&buf[..got]);
    }
    assert_eq!(echoed, b"overlapped io");
    stream.inner.get_ref().shutdown(std::net::Shutdown::Write)?;
    let mut rest = [0u8; 8];
    assert_eq!(within(HANG, stream.read(&mut rest), "no end").await?, 0);
    peer.join().unwrap()?;
    Ok(())
}
