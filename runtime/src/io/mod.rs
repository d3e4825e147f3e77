//! I/O helpers beyond what `futures-util` offers; the facade's `overlap::io` re-exports them
//! next to futures-util's traits.

mod buf_stream;
mod copy;
mod copy_bidirectional;
mod duplex;
mod inspect;
mod int;
mod join;
mod memory_pipe;
mod path_error;
mod read_buf;
mod read_to_end;
mod read_to_string;
mod simplex;
mod split;
mod stdio;
mod unblock;
mod write_buf;

pub use crate::reactor::{Interest, Ready};
pub use buf_stream::BufStream;
pub use copy::{copy, copy_buf};
pub use copy_bidirectional::{copy_bidirectional, copy_bidirectional_with_sizes};
pub use duplex::{duplex, DuplexStream};
pub use inspect::{InspectReader, InspectWriter};
pub use int::{AsyncReadIntExt, AsyncWriteIntExt, ReadInt, WriteInt};
pub use join::{join, Join};
pub use path_error::{raw_os_error, with_path_context};
pub use read_buf::{
    read_into_now, receive_into, receive_into_now, AsyncReadBufExt, ReadBuf, ReadBufTarget,
};
pub use read_to_end::{read_to_end, ReadToEnd};
pub use read_to_string::{read_to_string, ReadToString};
pub use simplex::{simplex, SimplexReader, SimplexStream, SimplexWriter};
pub use split::split;
pub use stdio::{stderr, stdin, stdout, Stderr, Stdin, Stdout};
pub use unblock::Unblock;
pub use write_buf::{AsyncWriteBufExt, WriteAllBuf, WriteBuf, WriteBufSource};

/// Copies read-ahead bytes `buf[*pos..]` into `out` as far as they fit, advancing `pos`;
/// returns how many. The readers that fetch ahead on the blocking pool share it.
fn copy_read_ahead(buf: &[u8], pos: &mut usize, out: &mut [u8]) -> usize {
    let n = out.len().min(buf.len() - *pos);
    out[..n].copy_from_slice(&buf[*pos..*pos + n]);
    *pos += n;
    n
}
