//! The read end of a pipe or FIFO.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_util::io::AsyncRead;
use overlap_runtime::io::{read_into_now, ReadBufTarget};
use overlap_runtime::{AsyncFd, Direction, ReadyEvent, Registered};

use crate::sys;

/// The read end of a pipe or FIFO.
///
/// A read returns 0 (end of file) once every write end is closed and the pipe is drained, and
/// keeps returning 0 after that; unless, for a FIFO, a new writer opens it: reads then wait
/// for its data again. A short read drains the pipe, so the next read waits for the
/// next write instead of paying for an `EAGAIN`. A vectored read is one `readv` over the
/// slices. Dropping the receiver closes the fd; writers then get `BrokenPipe`.
///
/// A writer may put the pipe in packet mode (`O_DIRECT` on *its* end, which the reader
/// cannot see): then each read returns one packet, and a short read says nothing about the
/// rest. A read into a buffer smaller than the packet gets the packet's head only: the
/// kernel drops the rest of it. Such a receiver needs [`set_packet_mode`](Receiver::set_packet_mode), or the next
/// packet waits for a later write to be read.
#[derive(Debug)]
pub struct Receiver {
    fd: AsyncFd<OwnedFd>,
    /// The writer sends packets: a read ends at a packet's end, not the pipe's.
    packets: bool,
}

impl Receiver {
    /// Opens the FIFO at `path` for reading. Opening succeeds even with no writer yet; a read
    /// then waits until a writer opens it and writes (or opens it and closes it again: then
    /// it returns 0). A path that is no FIFO fails with `InvalidInput` (a Unix socket too,
    /// which the kernel refuses with `ENXIO`). Outside a runtime it fails with
    /// `ErrorKind::Other` before opening anything, so no writer waiting in `open` is let go.
    ///
    /// ```
    /// use std::ffi::CString;
    /// use overlap::io::{AsyncReadExt, AsyncWriteExt};
    /// use overlap::pipe::{Receiver, Sender};
    ///
    /// let dir = std::env::temp_dir().join(format!("overlap-doc-fifo-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("fifo");
    /// let c_path = CString::new(path.to_str().unwrap()).unwrap();
    /// // SAFETY: `c_path` is a NUL-terminated path.
    /// assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    ///
    /// overlap::block_on(async {
    ///     let mut rx = Receiver::open(&path)?; // no writer needed
    ///     let mut tx = Sender::open(&path)?; // a reader is there now
    ///     tx.write_all(b"via the FIFO").await?;
    ///     drop(tx); // the last writer gone: end of file once drained
    ///     let mut got = String::new();
    ///     rx.read_to_string(&mut got).await?;
    ///     assert_eq!(got, "via the FIFO");
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<Receiver> {
        let path = path.as_ref();
        let fd = crate::open_fifo(path, libc::O_RDONLY)?;
        // Not a FIFO, or (never for a path opened here) the wrong end: name the path too.
        Receiver::from_owned_fd(fd)
            .map_err(|e| overlap_runtime::io::with_path_context(e, "open", path, None))
    }

    /// Wraps the read end of a pipe (made non-blocking here). Fails with `InvalidInput` if
    /// `fd` is not a pipe or FIFO, is only a write end (a FIFO opened `O_RDWR` is both ends, and is accepted), or was
    /// opened with `O_PATH` (open for neither end).
    pub fn from_owned_fd(fd: OwnedFd) -> io::Result<Receiver> {
        crate::check_pipe(&fd, libc::O_RDONLY)?;
        let fd = crate::register_pipe(fd)?;
        // A FIFO whose writers all left may get a new one: end of file is not final.
        fd.set_hangup_may_end(true);
        Ok(Receiver { fd, packets: false })
    }

    /// Takes over the stdout or stderr pipe of a child spawned by std (tokio's
    /// `ChildStdout::from_std` and `ChildStderr::from_std`, one method here since
    /// [`ChildStdout`](crate::process::ChildStdout) and
    /// [`ChildStderr`](crate::process::ChildStderr) are both this type): made non-blocking
    /// and registered with the current runtime, as
    /// [`from_owned_fd`](Receiver::from_owned_fd) does. For a child that other code spawned;
    /// one spawned here is better spawned with [`process::spawn`](crate::process::spawn).
    /// Fails with `Other` outside a runtime, the pipe then closed.
    ///
    /// ```
    /// use overlap::io::AsyncReadExt;
    /// use overlap::process::ChildStderr;
    /// use std::process::{Command, Stdio};
    ///
    /// overlap::block_on(async {
    ///     let mut child = Command::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped()).spawn()?;
    ///     let mut errors = ChildStderr::from_std(child.stderr.take().unwrap())?;
    ///     let mut got = String::new();
    ///     errors.read_to_string(&mut got).await?;
    ///     assert_eq!(got, "oops\n");
    ///     child.wait()?;
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn from_std(inner: impl crate::process::StdChildOutput) -> io::Result<Receiver> {
        Receiver::from_owned_fd(inner.into())
    }

    /// Says whether the writer uses packet mode (`O_DIRECT` on its end; see the type's
    /// docs): when on, only `EAGAIN` tells a read that the pipe is empty, at the cost of one
    /// more `read` per wait.
    pub fn set_packet_mode(&mut self, on: bool) {
        self.packets = on;
    }

    /// Waits until the pipe may be readable: data is there, or every writer has gone (a
    /// read then returns 0). It reads nothing; follow it with [`try_read`](Self::try_read),
    /// which may still say `WouldBlock` (another reader got there first, or the wake was
    /// spurious): that clears the readiness, so the next wait sleeps until the next write.
    ///
    /// Cancel-safe: dropped while it waits, it has read nothing. Each return spends a unit of
    /// the task's cooperative budget, so a loop that never meets `Pending` still lets the
    /// other tasks run now and then.
    ///
    /// Fails with an `Other` error outside the runtime the pipe was registered with.
    pub async fn readable(&self) -> io::Result<()> {
        self.fd.readable().await.map(drop)
    }

    /// [`try_read`](Self::try_read) appending to a `BytesMut` or `Vec<u8>` (tokio's
    /// `try_read_buf`), with the room of `AsyncReadBufExt::read_buf` (a full buffer is
    /// given 64 bytes, a `Vec` at most 64 KiB of its spare capacity): `WouldBlock` if
    /// nothing is there, `Ok(0)` at end of file; the buffer keeps its earlier bytes.
    pub fn try_read_buf<B: ReadBufTarget>(&self, buf: &mut B) -> io::Result<usize> {
        read_into_now(buf, |room| self.try_read(room))
    }

    /// Reads what the pipe holds now, without waiting: the bytes read, `Ok(0)` at end of
    /// file (every writer gone and the pipe drained), or `WouldBlock` if the pipe is empty
    /// (or not known to be readable: a new receiver is not, until the loop has seen its
    /// first edge). An empty `buf` is `Ok(0)` at once, without a syscall. Pairs with
    /// [`readable`](Self::readable):
    ///
    /// ```
    /// use std::io::{self, ErrorKind};
    /// use overlap::io::AsyncWriteExt;
    ///
    /// overlap::block_on(async {
    ///     let (mut tx, rx) = overlap::pipe::pipe()?;
    ///     let mut buf = [0u8; 16];
    ///     assert_eq!(rx.try_read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    ///     tx.write_all(b"ready").await?;
    ///     let n = loop {
    ///         rx.readable().await?;
    ///         match rx.try_read(&mut buf) {
    ///             Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
    ///             res => break res?,
    ///         }
    ///     };
    ///     assert_eq!(&buf[..n], b"ready");
    ///     io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.fd
            .try_io(Direction::Read, |fd| sys::read(fd.as_raw_fd(), buf))
    }

    /// Like [`try_read`](Self::try_read), filling `bufs` in order with one `readv` (up to
    /// 1024 slices, from the first non-empty one). Slices that are all empty read nothing:
    /// `Ok(0)`, without a syscall.
    pub fn try_read_vectored(&self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
            return Ok(0);
        };
        let bufs = &mut bufs[first..];
        self.fd
            .try_io(Direction::Read, |fd| sys::readv(fd.as_raw_fd(), bufs))
    }

    /// Removes the fd from the reactor and returns it (still non-blocking; to hand it to
    /// another process, use `into_blocking_fd`).
    pub fn into_owned_fd(self) -> OwnedFd {
        self.fd.into_inner()
    }

    /// Removes the fd from the reactor and returns it in blocking mode, ready for code
    /// that expects an ordinary pipe: another process's stdin, or a blocking thread.
    ///
    /// `O_NONBLOCK` belongs to the pipe end's open file description, which a child
    /// process inherits with the fd: handed over still non-blocking, it would make the
    /// child's reads fail with `EAGAIN` ("Resource temporarily unavailable"). The
    /// `TryFrom<Receiver> for Stdio` conversion does this for you.
    pub fn into_blocking_fd(self) -> io::Result<OwnedFd> {
        let fd = self.into_owned_fd();
        sys::set_nonblocking_to(fd.as_raw_fd(), false)?;
        Ok(fd)
    }
}

/// The read end as a child process's stdin, in blocking mode (see
/// [`Receiver::into_blocking_fd`]): how one child's output feeds the next.
///
/// ```
/// use std::process::Stdio;
/// use overlap::process::Command;
///
/// overlap::block_on(async {
///     let mut producer = Command::new("echo").arg("hello").stdout(Stdio::piped()).spawn()?;
///     let out = producer.stdout.take().expect("stdout is piped");
///     let shout = Command::new("tr")
///         .args(["a-z", "A-Z"])
///         .stdin(Stdio::try_from(out)?)
///         .output()
///         .await?;
///     assert_eq!(shout.stdout, b"HELLO\n");
///     producer.wait().await?;
///     # Ok::<(), std::io::Error>(())
/// }).unwrap();
/// ```
impl TryFrom<Receiver> for std::process::Stdio {
    type Error = io::Error;

    fn try_from(rx: Receiver) -> io::Result<std::process::Stdio> {
        Ok(rx.into_blocking_fd()?.into())
    }
}

impl Receiver {
    /// A read of `len` bytes by `read` (a `read` or a `readv`), waiting for readiness.
    fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        mut read: impl FnMut(RawFd) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        if len == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match guard.try_io(|fd| read(fd.as_raw_fd())) {
                Ok(Ok(n)) => {
                    if n > 0 && n < len && !self.packets {
                        // A short read means the pipe is empty now: wait for the next edge.
                        guard.clear_ready_after_short_io();
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncRead for Receiver {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.poll_read_with(cx, len, |fd| sys::read(fd, buf))
    }

    /// One `readv` filling `bufs` in order (up to 1024 slices, from the first non-empty one).
    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .position(|b| !b.is_empty())
            .unwrap_or(bufs.len());
        let bufs = &mut bufs[first..];
        let len: usize = bufs.iter().take(1024).map(|b| b.len()).sum();
        self.poll_read_with(cx, len, |fd| sys::readv(fd, bufs))
    }
}

impl Registered for Receiver {
    /// Fails with `InvalidInput` for [`Direction::Write`]: a read end never becomes
    /// writable, so waiting for it would never end (say, a `splice` given it as its
    /// destination).
    fn poll_readiness(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<ReadyEvent>> {
        if dir == Direction::Write {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a pipe's read end cannot be written to",
            )));
        }
        self.fd.poll_readiness(cx, dir)
    }

    fn clear_readiness(&self, event: ReadyEvent) {
        self.fd.clear_readiness(event)
    }
}

impl AsRawFd for Receiver {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}
