//! Framing: tokio-util's `codec` module for futures-io streams. A [`Decoder`] turns the
//! bytes a reader gives into frames and an [`Encoder`] turns items into bytes;
//! [`FramedRead`] makes a reader and a decoder a `Stream` of frames, [`FramedWrite`] a
//! writer and an encoder a `Sink` of items, and [`Framed`] one stream both ways. The codecs
//! of tokio-util come with it: [`BytesCodec`], [`LinesCodec`], [`AnyDelimiterCodec`] and
//! [`LengthDelimitedCodec`].
//!
//! A tokio program's framing code ports by changing its imports: `tokio_util::codec` is
//! `overlap::codec`, `bytes::BytesMut` is [`overlap::codec::BytesMut`](BytesMut) (the
//! `bytes` crate is not used: [`BytesMut`] is overlap's own, with the part of its API that
//! codecs use, the `Buf`/`BufMut` methods being inherent: `get_*`, `try_get_*` (with
//! [`TryGetError`]) and `put_*` for every number type `bytes` has, `remaining`,
//! `copy_to_slice`, `copy_to_bytes`), and the `Stream`/`Sink` extension traits are
//! `overlap::stream::StreamExt` and `overlap::sink::SinkExt`. tokio-util's
//! `udp::UdpFramed`, a UDP socket framed by a codec, is `overlap::udp::UdpFramed`.
//!
//! The rules, as tokio-util's:
//! - Reading: a `FramedRead` reads more only when `decode` finds no whole frame in what it
//!   has; at end of file it calls `decode_eof` until that finds none, then the stream ends.
//!   An error (the decoder's or the reader's) is given out once, then the stream gives
//!   `None`. Polled on, it reads on, as tokio-util's (a line already buffered behind a
//!   too-long one comes with the next read); after an error of `decode_eof` it decodes
//!   on what is left instead, where tokio-util's drops it, so the frames given out do not
//!   depend on how the reads were split.
//! - Writing: `start_send` encodes the item into the write buffer; `poll_ready` writes the
//!   buffer out first once it holds the backpressure boundary (8 KiB by default) or more,
//!   so a sender to a peer that does not read stops there; `poll_flush` writes it all and
//!   flushes the writer, and `poll_close` flushes then closes it (a socket's write side is
//!   shut down, so the peer reads end of file).
//! - Cancellation: `next()`, `send()`, `feed()` and `flush()` may be dropped at any point
//!   and lose nothing: bytes read and not decoded stay in the read buffer, bytes encoded
//!   and not written in the write buffer. An item given to `send` was encoded once
//!   `poll_ready` said ready; a `send` dropped before that never took its item.
//! - `EAGAIN` and `EINTR` never surface: overlap's streams wait and retry inside.
//!
//! ```
//! use overlap::codec::{Framed, LengthDelimitedCodec};
//! use overlap::net::UnixStream;
//! use overlap::sink::SinkExt;
//! use overlap::stream::StreamExt;
//!
//! overlap::block_on(async {
//!     let (a, b) = UnixStream::pair()?;
//!     let mut a = Framed::new(a, LengthDelimitedCodec::new());
//!     let mut b = Framed::new(b, LengthDelimitedCodec::new());
//!     a.send(vec![7u8; 100_000]).await?;
//!     let frame = b.next().await.unwrap()?;
//!     assert_eq!(frame.len(), 100_000);
//!     SinkExt::<Vec<u8>>::close(&mut a).await?; // the peer's stream ends
//!     assert!(b.next().await.is_none());
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```

mod any_delimiter_codec;
mod bytes_codec;
mod bytes_mut;
mod delimiter_scan;
mod framed;
mod framed_impl;
mod framed_read;
mod framed_write;
pub mod length_delimited;
mod lines_codec;
mod reader_stream;
mod traits;

pub use any_delimiter_codec::{AnyDelimiterCodec, AnyDelimiterCodecError};
pub use bytes_codec::BytesCodec;
pub use bytes_mut::{BytesMut, TryGetError};
pub use framed::{Framed, FramedParts};
pub use framed_read::FramedRead;
pub use framed_write::FramedWrite;
pub use length_delimited::{LengthDelimitedCodec, LengthDelimitedCodecError};
pub use lines_codec::{LinesCodec, LinesCodecError};
pub use reader_stream::ReaderStream;
pub use traits::{Decoder, Encoder};
