//! [`split`]: tokio's free function for halves of any stream.

use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadHalf, WriteHalf};

/// Splits a stream that reads and writes into a read half and a write half, each usable on
/// its own (in two tasks, or two branches of a `select!`), as tokio's `io::split` does.
///
/// This is futures-util's `AsyncReadExt::split` under tokio's name: the halves share the
/// stream through a lock, taken for each read or write and never held across an `.await`.
/// [`ReadHalf::reunite`] gives the stream back. For the stream types that have their own
/// (`TcpStream`, `UnixStream`), prefer their `split` (borrowed halves) or `into_split`
/// (owned ones), which need no lock.
///
/// ```
/// use overlap::io::{self, AsyncReadExt, AsyncWriteExt};
///
/// overlap::block_on(async {
///     let (near, far) = io::duplex(64);
///     let (mut read, mut write) = io::split(far);
///     let echo = overlap::spawn(async move {
///         io::copy(&mut read, &mut write).await?;
///         write.close().await
///     });
///     let (mut near_read, mut near_write) = io::split(near);
///     near_write.write_all(b"ping").await?;
///     near_write.close().await?;
///     let mut back = Vec::new();
///     near_read.read_to_end(&mut back).await?;
///     assert_eq!(back, b"ping");
///     echo.await??;
///     io::Result::Ok(())
/// })
/// .unwrap();
/// ```
pub fn split<T: AsyncRead + AsyncWrite>(stream: T) -> (ReadHalf<T>, WriteHalf<T>) {
    stream.split()
}
