//! The `Decoder` and `Encoder` traits, tokio-util's, over [`BytesMut`].

use std::io;

use super::{BytesMut, Framed};

/// Turns bytes into frames: tokio-util's `Decoder`, over overlap's [`BytesMut`].
///
/// [`FramedRead`](super::FramedRead) (or [`Framed`]) calls [`decode`](Decoder::decode) with
/// everything read and not yet decoded; it reads more only when `decode` returns
/// `Ok(None)`, and calls it again as soon as more bytes came. A decoder removes a frame's
/// bytes from the front of `src` (with [`split_to`](BytesMut::split_to) or
/// [`advance`](BytesMut::advance)) and leaves a partial frame where it is; it may keep its
/// own state between calls (how far it already searched, a header it parsed). At end of
/// stream [`decode_eof`](Decoder::decode_eof) is called until it returns `Ok(None)`.
///
/// ```
/// use overlap::codec::{BytesMut, Decoder};
///
/// /// Frames of one length byte and that many bytes.
/// struct Short;
///
/// impl Decoder for Short {
///     type Item = Vec<u8>;
///     type Error = std::io::Error;
///
///     fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, Self::Error> {
///         match src.first() {
///             Some(&n) if src.len() > n as usize => {
///                 src.advance(1);
///                 Ok(Some(src.split_to(n as usize).to_vec()))
///             }
///             _ => Ok(None), // not all there yet
///         }
///     }
/// }
///
/// let mut buf = BytesMut::from(&b"\x02hi\x03yo"[..]);
/// assert_eq!(Short.decode(&mut buf).unwrap(), Some(b"hi".to_vec()));
/// assert_eq!(Short.decode(&mut buf).unwrap(), None);
/// // At end of stream, a partial frame is an error.
/// assert!(Short.decode_eof(&mut buf).is_err());
/// ```
pub trait Decoder {
    /// The frames decoded.
    type Item;
    /// The error of a frame that cannot be decoded; an I/O error of the stream beneath
    /// converts into it.
    type Error: From<io::Error>;

    /// Decodes a frame from the front of `src`, if all of it is there: `Ok(Some(frame))`
    /// having removed its bytes, or `Ok(None)` to have more read first.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error>;

    /// Decodes a frame at end of stream: the default calls [`decode`](Decoder::decode) and,
    /// if that finds no frame while bytes remain, fails with an `io::Error` ("bytes
    /// remaining on stream", kind `Other`), as tokio-util's does.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(io::Error::other("bytes remaining on stream").into()),
        }
    }

    /// This codec over `io`, both ways: `Framed::new(io, self)`.
    fn framed<T>(self, io: T) -> Framed<T, Self>
    where
        Self: Sized,
    {
        Framed::new(io, self)
    }
}

/// Turns frames into bytes: tokio-util's `Encoder`, over overlap's [`BytesMut`].
///
/// [`FramedWrite`](super::FramedWrite) (or [`Framed`]) calls [`encode`](Encoder::encode)
/// for each item sent, appending its bytes to the write buffer, which it writes out later.
///
/// ```
/// use overlap::codec::{BytesMut, Encoder};
///
/// struct Short;
///
/// impl Encoder<&[u8]> for Short {
///     type Error = std::io::Error;
///
///     fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), Self::Error> {
///         let n = u8::try_from(item.len()).map_err(std::io::Error::other)?;
///         dst.put_u8(n);
///         dst.put_slice(item);
///         Ok(())
///     }
/// }
///
/// let mut buf = BytesMut::new();
/// Short.encode(&b"hi"[..], &mut buf).unwrap();
/// assert_eq!(buf, b"\x02hi"[..]);
/// ```
pub trait Encoder<Item> {
    /// The error of an item that cannot be encoded; an I/O error of the stream beneath
    /// converts into it.
    type Error: From<io::Error>;

    /// Appends `item`'s bytes to `dst`.
    fn encode(&mut self, item: Item, dst: &mut BytesMut) -> Result<(), Self::Error>;
}
