//! `duplex`: a pair of connected in-memory streams, for testing protocol code without
//! sockets.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::memory_pipe::{self, read_from_pipe, write_to_pipe, Pipe, Refusals};

const REFUSALS: Refusals = Refusals {
    reader_gone: "the other end of the duplex stream is gone",
    closed: "this end of the duplex stream was closed for writing",
};

/// One end of a [`duplex`] pair: what it writes, the other end reads, and the other way
/// round. It implements futures-io's `AsyncRead` and `AsyncWrite`.
///
/// Each direction holds at most `max_buf_size` bytes; a writer finding it full waits for
/// the reader. `close` (`poll_close`) ends the writing direction: the other end reads what
/// is left, then end of file. Dropping an end closes both of its directions: the other end
/// reads what the dropped end wrote, then end of file, and its writes fail with
/// `BrokenPipe` (bytes it wrote that the dropped end never read are discarded). Not `Send`:
/// both ends belong to the tasks of one thread.
///
/// Vectored writes are native (what tokio calls `is_write_vectored`): one
/// `poll_write_vectored` copies the slices in order, as many bytes as the buffer has room
/// for, the last one partly if need be, and returns the total.
pub struct DuplexStream {
    read: Rc<RefCell<Pipe>>,
    write: Rc<RefCell<Pipe>>,
}

/// A pair of connected in-memory streams, each direction buffering up to `max_buf_size`
/// bytes (at least 1): a socket pair without sockets, for testing protocol code.
///
/// ```
/// use overlap::io::{duplex, AsyncReadExt, AsyncWriteExt};
///
/// overlap::block_on(async {
///     let (mut client, mut server) = duplex(64);
///     client.write_all(b"ping").await?;
///     let mut buf = [0u8; 4];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"ping");
///     drop(client);
///     assert_eq!(server.read(&mut buf).await?, 0, "end of file once the peer is gone");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn duplex(max_buf_size: usize) -> (DuplexStream, DuplexStream) {
    let a_to_b = Pipe::shared(max_buf_size);
    let b_to_a = Pipe::shared(max_buf_size);
    (
        DuplexStream {
            read: b_to_a.clone(),
            write: a_to_b.clone(),
        },
        DuplexStream {
            read: a_to_b,
            write: b_to_a,
        },
    )
}

read_from_pipe!(DuplexStream, read);
write_to_pipe!(DuplexStream, write, REFUSALS);

impl Drop for DuplexStream {
    fn drop(&mut self) {
        memory_pipe::close_write(&self.write);
        memory_pipe::close_read(&self.read);
    }
}

impl fmt::Debug for DuplexStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuplexStream")
            .field("readable_bytes", &self.read.borrow().len())
            .field("unread_written_bytes", &self.write.borrow().len())
            .finish()
    }
}
