//! The `Builder` of a `LengthDelimitedCodec`'s layout.

use super::LengthDelimitedCodec;
use crate::codec::{Framed, FramedRead, FramedWrite};

/// Sets up a [`LengthDelimitedCodec`]'s frame layout, as tokio-util's builder does: where
/// the length field sits (`length_field_offset` bytes into the header), how long it is
/// (1 to 8 bytes), its byte order, what to add to it to get the data's length
/// (`length_adjustment`, e.g. minus the header when the field counts it), how many bytes of
/// the header to drop before the frame is handed out (`num_skip`, by default the header up
/// to the end of the field), and the largest frame taken (8 MiB by default).
///
/// Encoding writes only the length field, then the data (no bytes for an offset), the
/// length being the data's minus `length_adjustment`.
///
/// ```
/// use overlap::codec::{BytesMut, Decoder, LengthDelimitedCodec};
///
/// // A 2-byte little-endian length after a 1-byte type, counting the whole 3-byte header
/// // (which is dropped: the data alone is handed out).
/// let mut codec = LengthDelimitedCodec::builder()
///     .length_field_offset(1)
///     .length_field_length(2)
///     .little_endian()
///     .length_adjustment(-3)
///     .new_codec();
/// let mut wire = BytesMut::from(&b"\x07\x05\x00hi\x07"[..]);
/// assert_eq!(codec.decode(&mut wire).unwrap().unwrap(), b"hi"[..]);
/// assert_eq!(wire, b"\x07"[..], "the next frame's start is left");
/// ```
///
/// The whole frame, header included, handed out: `num_skip(0)`, and the adjustment adds
/// the header's bytes when the field counts the data alone.
///
/// ```
/// use overlap::codec::{BytesMut, Decoder, LengthDelimitedCodec};
///
/// let mut codec = LengthDelimitedCodec::builder()
///     .length_field_length(2)
///     .length_adjustment(2)
///     .num_skip(0)
///     .new_codec();
/// let mut wire = BytesMut::from(&b"\x00\x02hi"[..]);
/// assert_eq!(codec.decode(&mut wire).unwrap().unwrap(), b"\x00\x02hi"[..]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Builder {
    pub(super) max_frame_len: usize,
    /// # Invariant: 1 to 8.
    pub(super) length_field_len: usize,
    pub(super) length_field_offset: usize,
    pub(super) length_adjustment: isize,
    pub(super) num_skip: Option<usize>,
    pub(super) length_field_is_big_endian: bool,
}

impl Builder {
    /// The default layout: a 4-byte big-endian length at the start, counting the data
    /// only, dropped from the frames handed out; frames of up to 8 MiB.
    pub fn new() -> Builder {
        Builder {
            max_frame_len: 8 * 1024 * 1024,
            length_field_len: 4,
            length_field_offset: 0,
            length_adjustment: 0,
            num_skip: None,
            length_field_is_big_endian: true,
        }
    }

    /// The length field is big-endian (network order; the default).
    pub fn big_endian(&mut self) -> &mut Builder {
        self.length_field_is_big_endian = true;
        self
    }

    /// The length field is little-endian.
    pub fn little_endian(&mut self) -> &mut Builder {
        self.length_field_is_big_endian = false;
        self
    }

    /// The length field is in this machine's byte order.
    pub fn native_endian(&mut self) -> &mut Builder {
        self.length_field_is_big_endian = cfg!(target_endian = "big");
        self
    }

    /// The largest frame taken: a longer one is an error, decoding (before any of it is
    /// buffered) and encoding. The length field's own value is checked, before the
    /// adjustment, as tokio-util does.
    pub fn max_frame_length(&mut self, val: usize) -> &mut Builder {
        self.max_frame_len = val;
        self
    }

    /// The length field's size in bytes, 1 to 8 (4 by default).
    ///
    /// # Panics
    /// If `val` is 0 or more than 8.
    pub fn length_field_length(&mut self, val: usize) -> &mut Builder {
        assert!(
            (1..=8).contains(&val),
            "invalid length field length: {val} (1 to 8 bytes)"
        );
        self.length_field_len = val;
        self
    }

    /// The length field is as long as the integer type `T` (`u8`, `u16`, `u32`, `u64` or
    /// `usize`): `length_field_type::<u16>()` is `length_field_length(2)`, as in
    /// tokio-util.
    ///
    /// ```
    /// use overlap::codec::{BytesMut, Encoder, LengthDelimitedCodec};
    ///
    /// let mut codec = LengthDelimitedCodec::builder()
    ///     .length_field_type::<u16>()
    ///     .new_codec();
    /// let mut wire = BytesMut::new();
    /// codec.encode(&b"hello world"[..], &mut wire).unwrap();
    /// assert_eq!(wire, b"\x00\x0bhello world"[..]);
    /// ```
    pub fn length_field_type<T: LengthFieldType>(&mut self) -> &mut Builder {
        self.length_field_length(std::mem::size_of::<T>())
    }

    /// How many bytes of the header come before the length field (0 by default).
    pub fn length_field_offset(&mut self, val: usize) -> &mut Builder {
        self.length_field_offset = val;
        self
    }

    /// What to add to the length field's value to get the number of bytes to take after
    /// the `num_skip` dropped ones (0 by default): negative when the field counts a header
    /// that is dropped, positive when it counts the data alone and the header is kept.
    pub fn length_adjustment(&mut self, val: isize) -> &mut Builder {
        self.length_adjustment = val;
        self
    }

    /// How many bytes to drop from the start of each frame before handing it out (by
    /// default the offset and the field: the data alone is handed out).
    pub fn num_skip(&mut self, val: usize) -> &mut Builder {
        self.num_skip = Some(val);
        self
    }

    /// A codec with this layout.
    pub fn new_codec(&self) -> LengthDelimitedCodec {
        let mut builder = *self;
        builder.clip_max_frame_len();
        LengthDelimitedCodec {
            builder,
            state: super::DecodeState::Head,
        }
    }

    /// A [`FramedRead`] of `upstream` with a codec of this layout.
    pub fn new_read<T>(&self, upstream: T) -> FramedRead<T, LengthDelimitedCodec> {
        FramedRead::new(upstream, self.new_codec())
    }

    /// A [`FramedWrite`] to `inner` with a codec of this layout.
    pub fn new_write<T>(&self, inner: T) -> FramedWrite<T, LengthDelimitedCodec> {
        FramedWrite::new(inner, self.new_codec())
    }

    /// A [`Framed`] over `inner` with a codec of this layout.
    pub fn new_framed<T>(&self, inner: T) -> Framed<T, LengthDelimitedCodec> {
        Framed::new(inner, self.new_codec())
    }

    /// The bytes to have before the length can be read (or `num_skip`, if more).
    pub(super) fn num_head_bytes(&self) -> usize {
        (self.length_field_offset + self.length_field_len).max(self.num_skip.unwrap_or(0))
    }

    pub(super) fn get_num_skip(&self) -> usize {
        self.num_skip
            .unwrap_or(self.length_field_offset + self.length_field_len)
    }

    /// Lowers the maximum to the largest frame the length field can express (its largest
    /// value, adjusted), as tokio-util does.
    pub(super) fn clip_max_frame_len(&mut self) {
        let field_max = match 1u64.checked_shl(8 * self.length_field_len as u32) {
            Some(shl) => shl - 1,
            None => u64::MAX,
        };
        let allowed = field_max.saturating_add_signed(self.length_adjustment as i64);
        if self.max_frame_len as u64 > allowed {
            self.max_frame_len = usize::try_from(allowed).unwrap_or(usize::MAX);
        }
    }
}

/// The integer types [`Builder::length_field_type`] takes the length field's size from:
/// `u8`, `u16`, `u32`, `u64` and `usize` (sealed: no other type can be one).
pub trait LengthFieldType: sealed::Sealed {}

mod sealed {
    /// Keeps [`LengthFieldType`](super::LengthFieldType) to the integer types here.
    pub trait Sealed {}
}

macro_rules! length_field_types {
    ($($ty:ty),*) => {
        $(
            impl sealed::Sealed for $ty {}
            impl LengthFieldType for $ty {}
        )*
    };
}

length_field_types!(u8, u16, u32, u64, usize);

impl Default for Builder {
    fn default() -> Builder {
        Builder::new()
    }
}
