//! The write end of a pipe or FIFO.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncWrite;
use overlap_runtime::{AsyncFd, Direction, ReadyEvent, Registered};

use crate::sys;

/// The write end of a pipe or FIFO.
///
/// Writes of at most `PIPE_BUF` (4096) bytes are atomic. Writing after every read end is closed
/// fails with `BrokenPipe`. The kernel also raises `SIGPIPE` (a pipe write has no
/// `MSG_NOSIGNAL`), which does not end the process: Rust programs ignore it, and once
/// something listens for it through `overlap::signal` (`SignalKind::pipe()`), that listener
/// hears it instead. `poll_close` and dropping close the fd, which readers see as end of
/// file.
#[derive(Debug)]
pub struct Sender {
    fd: Option<AsyncFd<OwnedFd>>,
}

impl Sender {
    /// Opens the FIFO at `path` for writing. With no reader open, the kernel refuses a
    /// non-blocking open: this fails with the `ENXIO` error (`failed to open …: No such device
    /// or address`); open the [`Receiver`](crate::Receiver) first, or retry later. (A path
    /// that is no FIFO fails with `InvalidInput` instead, even where the kernel says `ENXIO`
    /// too, as for a Unix socket: no retry helps there; a directory fails with `IsADirectory`,
    /// as `open(2)` refuses to open one for writing. Outside a runtime it fails with
    /// `ErrorKind::Other` before opening anything, so the FIFO's readers see no writer come
    /// and go.) The error names the path, so read its code with `overlap::io::raw_os_error`
    /// (its own `raw_os_error()` is `None`):
    ///
    /// ```
    /// use overlap::pipe::Sender;
    /// # let dir = std::env::temp_dir().join(format!("overlap-doc-enxio-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("fifo");
    /// # let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    /// # assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    /// overlap::block_on(async {
    ///     match Sender::open(&path) {
    ///         Err(e) if overlap::io::raw_os_error(&e) == Some(libc::ENXIO) => {
    ///             // No reader yet: try again later.
    ///         }
    ///         other => panic!("a FIFO with no reader: {other:?}"),
    ///     }
    /// });
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<Sender> {
        let path = path.as_ref();
        let fd = crate::open_fifo(path, libc::O_WRONLY)?;
        // Not a FIFO, or (never for a path opened here) the wrong end: name the path too.
        Sender::from_owned_fd(fd)
            .map_err(|e| overlap_runtime::io::with_path_context(e, "open", path, None))
    }

    /// Wraps the write end of a pipe (made non-blocking here). Fails with `InvalidInput` if
    /// `fd` is not a pipe or FIFO, is only a read end (a FIFO opened `O_RDWR` is both ends, and is accepted), or was
    /// opened with `O_PATH` (open for neither end).
    pub fn from_owned_fd(fd: OwnedFd) -> io::Result<Sender> {
        crate::check_pipe(&fd, libc::O_WRONLY)?;
        Ok(Sender {
            fd: Some(crate::register_pipe(fd)?),
        })
    }

    /// Takes over the stdin pipe of a child spawned by std (tokio's
    /// `ChildStdin::from_std`; [`ChildStdin`](crate::process::ChildStdin) is this type):
    /// made non-blocking and registered with the current runtime, as
    /// [`from_owned_fd`](Sender::from_owned_fd) does. For a child that other code spawned
    /// (a crate that hands back a `std::process::Child`); one spawned here is better
    /// spawned with [`process::spawn`](crate::process::spawn), which also waits for its
    /// exit without blocking. Fails with `Other` outside a runtime, the pipe then closed.
    ///
    /// ```
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::process::{ChildStdin, ChildStdout};
    /// use std::process::{Command, Stdio};
    ///
    /// overlap::block_on(async {
    ///     let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    ///     let mut input = ChildStdin::from_std(child.stdin.take().unwrap())?;
    ///     let mut output = ChildStdout::from_std(child.stdout.take().unwrap())?;
    ///     input.write_all(b"through cat").await?;
    ///     drop(input);
    ///     let mut got = String::new();
    ///     output.read_to_string(&mut got).await?;
    ///     assert_eq!(got, "through cat");
    ///     child.wait()?; // std's wait: the child has closed its stdout, so it is ending
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn from_std(inner: std::process::ChildStdin) -> io::Result<Sender> {
        Sender::from_owned_fd(inner.into())
    }

    /// Removes the fd from the reactor and returns it (still non-blocking; to hand it to
    /// another process, use `into_blocking_fd`).
    ///
    /// # Panics
    /// If the sender was already closed with `poll_close`.
    pub fn into_owned_fd(mut self) -> OwnedFd {
        self.fd.take().expect("Sender already closed").into_inner()
    }

    /// Removes the fd from the reactor and returns it in blocking mode, ready for code
    /// that expects an ordinary pipe: another process's stdout or stderr, or a blocking
    /// thread. See [`Receiver::into_blocking_fd`](crate::Receiver::into_blocking_fd) for
    /// why; the `TryFrom<Sender> for Stdio` conversion does this for you.
    ///
    /// Fails with `BrokenPipe` if the sender was already closed with `poll_close`.
    pub fn into_blocking_fd(mut self) -> io::Result<OwnedFd> {
        let fd = self
            .fd
            .take()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "pipe sender is closed"))?
            .into_inner();
        sys::set_nonblocking_to(fd.as_raw_fd(), false)?;
        Ok(fd)
    }

    /// Waits until the pipe may be writable: there is room, or every reader has gone (a
    /// write then fails with `BrokenPipe`). It writes nothing; follow it with
    /// [`try_write`](Self::try_write), which may still say `WouldBlock` (another writer
    /// filled the room first, or the wake was spurious): that clears the readiness, so the
    /// next wait sleeps until a reader makes room.
    ///
    /// Cancel-safe: dropped while it waits, it has written nothing. Fails with `BrokenPipe`
    /// once the sender was closed with `poll_close`.
    pub async fn writable(&self) -> io::Result<()> {
        self.fd()?.writable().await.map(drop)
    }

    /// Writes what fits in the pipe now, without waiting: the bytes written (a write of at
    /// most `PIPE_BUF` bytes goes whole or not at all), `WouldBlock` if nothing fits (or
    /// the pipe is not known to be writable: a new sender is not, until the loop has seen
    /// its first edge), `BrokenPipe` once every reader has gone (or the sender was
    /// closed). An empty `buf` is `Ok(0)` at once, without a syscall, in any state. Pairs
    /// with [`writable`](Self::writable):
    ///
    /// ```
    /// use std::io::{self, ErrorKind};
    /// use overlap::io::AsyncReadExt;
    ///
    /// overlap::block_on(async {
    ///     let (tx, mut rx) = overlap::pipe::pipe()?;
    ///     let n = loop {
    ///         tx.writable().await?;
    ///         match tx.try_write(b"no waiting") {
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
    ///             res => break res?,
    ///         }
    ///     };
    ///     let mut got = vec![0u8; n];
    ///     rx.read_exact(&mut got).await?;
    ///     assert_eq!(got, b"no waiting");
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.fd()?
            .try_io(Direction::Write, |fd| sys::write(fd.as_raw_fd(), buf))
    }

    /// Like [`try_write`](Self::try_write), writing `bufs` in order with one `writev` (up to
    /// 1024 slices, from the first non-empty one). It may write only part of the data.
    /// Slices that are all empty write nothing: `Ok(0)`, without a syscall, in any state.
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
            return Ok(0);
        };
        let bufs = &bufs[first..];
        self.fd()?
            .try_io(Direction::Write, |fd| sys::writev(fd.as_raw_fd(), bufs))
    }

    fn fd(&self) -> io::Result<&AsyncFd<OwnedFd>> {
        self.fd
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "pipe sender is closed"))
    }

    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(RawFd) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let fd = self.fd()?;
        loop {
            let mut guard = ready!(fd.poll_write_ready(cx))?;
            match guard.try_io(|inner| op(inner.as_raw_fd())) {
                Ok(res) => return Poll::Ready(res),
                Err(_would_block) => continue,
            }
        }
    }
}

/// The write end as a child process's stdout or stderr, in blocking mode (see
/// [`Sender::into_blocking_fd`]).
///
/// ```
/// use std::process::Stdio;
/// use overlap::io::AsyncReadExt;
/// use overlap::process::Command;
///
/// overlap::block_on(async {
///     let (tx, mut rx) = overlap::pipe::pipe()?;
///     let mut child = Command::new("echo").arg("through a pipe").stdout(Stdio::try_from(tx)?).spawn()?;
///     let mut text = String::new();
///     rx.read_to_string(&mut text).await?;
///     assert_eq!(text, "through a pipe\n");
///     child.wait().await?;
///     # Ok::<(), std::io::Error>(())
/// }).unwrap();
/// ```
impl TryFrom<Sender> for std::process::Stdio {
    type Error = io::Error;

    fn try_from(tx: Sender) -> io::Result<std::process::Stdio> {
        Ok(tx.into_blocking_fd()?.into())
    }
}

impl AsyncWrite for Sender {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.poll_write_with(cx, |fd| sys::write(fd, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // From the first non-empty slice: `writev` takes at most 1024, and a longer run of
        // empty ones would read as a write of nothing.
        let first = bufs.iter().position(|b| !b.is_empty());
        let Some(first) = first else {
            return Poll::Ready(Ok(0));
        };
        let bufs = &bufs[first..];
        self.poll_write_with(cx, |fd| sys::writev(fd, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Pipe writes go straight to the kernel: nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.fd = None;
        Poll::Ready(Ok(()))
    }
}

impl Registered for Sender {
    /// Fails with `BrokenPipe` once the sender was closed with `poll_close`, and with
    /// `InvalidInput` for [`Direction::Read`]: a write end never becomes readable, so
    /// waiting for it would never end (say, a `splice` given it as its source).
    fn poll_readiness(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<ReadyEvent>> {
        if dir == Direction::Read {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pipe's write end cannot be read from",
            )));
        }
        self.fd()?.poll_readiness(cx, dir)
    }

    fn clear_readiness(&self, event: ReadyEvent) {
        if let Some(fd) = &self.fd {
            fd.clear_readiness(event)
        }
    }
}

impl AsRawFd for Sender {
    /// After `poll_close` this is -1, on which every syscall fails with `EBADF`: generic
    /// code that only holds the fd number reports an error instead of panicking.
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

impl AsFd for Sender {
    /// # Panics
    /// If the sender was already closed with `poll_close`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("Sender already closed")
            .get_ref()
            .as_fd()
    }
}
