//! `File::send_to`: file bytes to a socket or pipe with `sendfile(2)`, on the pool.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use overlap_runtime::Registered;

use super::File;
use crate::error::for_file;
use crate::job::spawn;
use crate::send_range::send_range;
use crate::sys;

impl File {
    /// Sends up to `len` bytes of the file, starting at `offset`, to `to` (a socket or a
    /// pipe on the reactor) with `sendfile(2)`: the kernel copies them from the page cache,
    /// and they never pass through user memory. This is Linux's answer to Windows'
    /// `TransmitFile`. Returns how many bytes went: fewer than `len` only when the file
    /// ends first (0 if `offset` is at or past its end).
    ///
    /// Bytes written to this `File` and not yet flushed are written out first, so they are
    /// sent too. The file's own position does not move.
    ///
    /// Reading the file may wait for the disk, so each `sendfile` run happens on the
    /// blocking pool, with its own duplicate of `to`'s fd; the event loop only waits for
    /// `to` to have room. One run sends until `to` is full, so a large file costs one pool
    /// trip per socket buffer's worth, not per call.
    ///
    /// # The file changing meanwhile
    /// The kernel queues the page cache's own pages, not a copy of them: bytes overwritten or
    /// cut off by a truncation after they were sent, but before the peer has them (on
    /// loopback, before the peer has read them), may reach it changed, or as zeros. A file
    /// that shrinks during the call makes the count short. To replace a file while it may be
    /// sent, write the new one beside it and [`rename`](crate::rename) it over the old: the
    /// old file's pages stay as they were.
    ///
    /// # Errors
    /// Errors name the file (`failed to send /x/y: Broken pipe`). A destination the kernel
    /// cannot `sendfile` to gives `InvalidInput`, and so does a file whose file system
    /// cannot feed it (some of `/proc`'s, whose size says 0 though a read finds bytes:
    /// read those instead); a directory opened as this `File` gives `IsADirectory`, as a
    /// read of it does, a `File` opened for writing only (`append` or `write` without
    /// `read`, as a log's writer opens it) gives `InvalidInput` saying it is not open for
    /// reading (open the path again with `File::open` to send it), and a datagram socket
    /// never connected gives `NotConnected`. After an error, the bytes sent before it
    /// are not reported. Like `splice`, `sendfile` has no `MSG_NOSIGNAL`: sending to a
    /// socket whose peer is gone also raises `SIGPIPE`, which Rust programs ignore by
    /// default.
    ///
    /// # Cancellation
    /// Dropping the future stops the send, but a pool run already in flight finishes in the
    /// background: its bytes may still reach `to` after the future is gone (they are the
    /// file's next bytes, in order). The next `send_to` on this `File` waits for that run
    /// first, so its own bytes follow them. The run holds its own fd for `to`, so closing
    /// `to` meanwhile is safe; the connection then stays open until that run ends.
    ///
    /// ```
    /// use overlap::io::AsyncReadExt;
    /// use overlap::net::UnixStream;
    /// # let path = std::env::temp_dir().join(format!("overlap-doc-send-{}", std::process::id()));
    ///
    /// overlap::block_on(async {
    ///     overlap::fs::write(&path, "served by the kernel").await?;
    ///     let mut file = overlap::fs::File::open(&path).await?;
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let n = file.send_to(&a, 10, 100).await?;
    ///     assert_eq!(n, 10); // the file ends first
    ///     let mut got = vec![0; 10];
    ///     b.read_exact(&mut got).await?;
    ///     assert_eq!(got, b"the kernel");
    ///     # overlap::fs::remove_file(&path).await?;
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn send_to<D: Registered + ?Sized>(
        &mut self,
        to: &D,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        self.settle().await?;
        if len == 0 {
            return Ok(0);
        }
        // A dropped call's run may still be sending, on another pool thread: let it finish
        // (its result was wanted by nobody), so that the two runs' bytes do not mix.
        if let Some(earlier) = self.send_run.as_mut() {
            let _ = earlier.await;
            self.send_run = None;
        }
        let path = self.path.clone();
        let named = |e| for_file(e, "send", path.as_deref());
        let (file, run_slot) = (&self.std, &mut self.send_run);
        let run = async |dest: Arc<OwnedFd>, at: u64, left: u64| {
            let file = file.clone();
            // Kept in the `File` while it runs: if this future is dropped, the next call
            // finds it there.
            let run = run_slot.insert(spawn(move || {
                sys::sendfile(file.as_raw_fd(), dest.as_raw_fd(), at, left)
            }));
            let ran = run.await;
            *run_slot = None;
            ran
        };
        send_range(to, offset, len, named, run).await
    }
}
