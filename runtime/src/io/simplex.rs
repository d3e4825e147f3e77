//! `simplex`: a one-way in-memory pipe, and `SimplexStream`, its unsplit form.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::memory_pipe::{self, read_from_pipe, write_to_pipe, Pipe, Refusals};

const REFUSALS: Refusals = Refusals {
    reader_gone: "the reading end of the simplex stream is gone",
    closed: "the simplex stream was closed for writing",
};

/// A one-way in-memory pipe buffering up to `max_buf_size` bytes (at least 1): what the
/// [`SimplexWriter`] writes, the [`SimplexReader`] reads, in order. tokio's `io::simplex`,
/// for handing a producer and a consumer each their end, or testing code that reads or
/// writes without a real pipe.
///
/// A writer finding the buffer full waits for the reader. Closing the writer
/// (`close`, tokio's `shutdown`) or dropping it ends the stream: the reader reads what is
/// left, then end of file. Dropping the reader makes later writes fail with
/// [`BrokenPipe`](std::io::ErrorKind::BrokenPipe) and discards what it had not read. (tokio
/// gives the halves of one `SimplexStream` as `ReadHalf`/`WriteHalf`, where a dropped
/// writer leaves the reader waiting; these are types of their own so that it does not.)
/// Neither end is `Send`: both belong to the tasks of one thread.
///
/// ```
/// use overlap::io::{simplex, AsyncReadExt, AsyncWriteExt};
///
/// overlap::block_on(async {
///     let (mut rx, mut tx) = simplex(16);
///     let producer = overlap::spawn(async move {
///         for line in ["one\n", "two\n", "three\n"] {
///             tx.write_all(line.as_bytes()).await?; // waits while 16 bytes are unread
///         }
///         std::io::Result::Ok(()) // tx dropped here: the reader gets end of file
///     });
///     let mut all = String::new();
///     rx.read_to_string(&mut all).await?;
///     producer.await??;
///     assert_eq!(all, "one\ntwo\nthree\n");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn simplex(max_buf_size: usize) -> (SimplexReader, SimplexWriter) {
    let pipe = Pipe::shared(max_buf_size);
    (SimplexReader { pipe: pipe.clone() }, SimplexWriter { pipe })
}

/// The reading end of a [`simplex`] pipe: `AsyncRead`. Dropping it makes the writer's
/// later writes fail with `BrokenPipe`.
pub struct SimplexReader {
    pipe: Rc<RefCell<Pipe>>,
}

/// The writing end of a [`simplex`] pipe: `AsyncWrite`. Closing or dropping it gives the
/// reader end of file once it has read what was written.
pub struct SimplexWriter {
    pipe: Rc<RefCell<Pipe>>,
}

/// A one-way in-memory buffer that one value both writes into and reads from, tokio's
/// `SimplexStream`: bytes written come back out of reads, in order, at most
/// `max_buf_size` of them (at least 1) held at once.
///
/// Alone it is a bounded byte queue; split with [`io::split`](super::split) its halves
/// are a producer's and a consumer's ends, as tokio's `simplex` gives them (prefer
/// [`simplex`], whose writer gives end of file when dropped). A read finding it empty
/// waits for a write, unless it was closed (`close`, tokio's `shutdown`): then it is end
/// of file once empty, and writes fail with `BrokenPipe`.
///
/// ```
/// use overlap::io::{AsyncReadExt, AsyncWriteExt, SimplexStream};
///
/// overlap::block_on(async {
///     let mut queue = SimplexStream::new_unsplit(8);
///     assert_eq!(queue.write(b"0123456789").await?, 8, "only what fits");
///     let mut four = [0u8; 4];
///     queue.read_exact(&mut four).await?;
///     assert_eq!(&four, b"0123");
///     queue.close().await?;
///     let mut rest = Vec::new();
///     queue.read_to_end(&mut rest).await?;
///     assert_eq!(rest, b"4567");
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub struct SimplexStream {
    pipe: Rc<RefCell<Pipe>>,
}

impl SimplexStream {
    /// A buffer holding at most `max_buf_size` bytes (at least 1), both ends in one value.
    pub fn new_unsplit(max_buf_size: usize) -> SimplexStream {
        SimplexStream {
            pipe: Pipe::shared(max_buf_size),
        }
    }
}

read_from_pipe!(SimplexReader, pipe);
read_from_pipe!(SimplexStream, pipe);
write_to_pipe!(SimplexWriter, pipe, REFUSALS);
write_to_pipe!(SimplexStream, pipe, REFUSALS);

impl Drop for SimplexReader {
    fn drop(&mut self) {
        memory_pipe::close_read(&self.pipe);
    }
}

impl Drop for SimplexWriter {
    fn drop(&mut self) {
        memory_pipe::close_write(&self.pipe);
    }
}

/// `Debug` showing how many bytes wait to be read.
macro_rules! debug_unread {
    ($ty:ident) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("unread_bytes", &self.pipe.borrow().len())
                    .finish()
            }
        }
    };
}

debug_unread!(SimplexReader);
debug_unread!(SimplexWriter);
debug_unread!(SimplexStream);
