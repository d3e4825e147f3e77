//! `BytesMut`: the growable byte buffer the codecs read into and encode into, with the part
//! of the `bytes` crate's API that decoders use.

mod numbers;
mod std_traits;
mod try_get;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::io::AsyncRead;

pub use try_get::TryGetError;

/// A growable byte buffer that is cheap to consume from the front: the part of the `bytes`
/// crate's `BytesMut` (and its `Buf`/`BufMut` number methods) that decoders and encoders
/// use, so a tokio-util codec ports with its imports changed.
///
/// It is a `Vec<u8>` and an offset: the bytes before the offset were consumed
/// ([`advance`](BytesMut::advance), [`split_to`](BytesMut::split_to), the `get_*` methods)
/// and their room is given back when room is next needed (a read into the buffer, a `put`,
/// a `reserve`), by moving the bytes left to the front: what is left then is usually a
/// partial frame, so consuming a buffer frame by frame moves almost nothing, never a
/// memmove of the whole buffer per frame.
///
/// Unlike `bytes`' buffer, no two buffers share memory: [`split_to`](BytesMut::split_to)
/// and [`split_off`](BytesMut::split_off) copy the bytes they return (a frame's length,
/// once), where `bytes` hands out a view of the same allocation. [`split`](BytesMut::split)
/// of a buffer with nothing consumed moves the allocation out without copying.
/// [`freeze`](BytesMut::freeze) gives a `Vec<u8>` (there is no `Bytes` type).
///
/// The number methods read and write big-endian (network order), the `_le` ones
/// little-endian; a `get_*` with too few bytes left panics, as `bytes`' does.
///
/// ```
/// use overlap::codec::BytesMut;
///
/// let mut buf = BytesMut::with_capacity(64);
/// buf.put_u16(5);
/// buf.put_slice(b"hello");
/// buf.put_u8(b'!');
/// assert_eq!(buf.len(), 8);
///
/// let len = buf.get_u16() as usize;
/// let word = buf.split_to(len);
/// assert_eq!(word, b"hello"[..]);
/// assert_eq!(buf.get_u8(), b'!');
/// assert!(buf.is_empty());
/// ```
#[derive(Default)]
pub struct BytesMut {
    /// The buffer's bytes are `vec[start..end]`; `vec[end..]` is room a read already
    /// zeroed (or used before), kept so the next read need not zero it again.
    vec: Vec<u8>,
    /// # Invariant: `start <= end <= vec.len()`, and `start == end == 0` when empty.
    start: usize,
    end: usize,
}

impl BytesMut {
    /// An empty buffer, with no allocation.
    ///
    /// ```
    /// let buf = overlap::codec::BytesMut::new();
    /// assert!(buf.is_empty());
    /// ```
    pub fn new() -> BytesMut {
        BytesMut::default()
    }

    /// An empty buffer with room for `capacity` bytes.
    ///
    /// ```
    /// let buf = overlap::codec::BytesMut::with_capacity(100);
    /// assert!(buf.capacity() >= 100);
    /// ```
    pub fn with_capacity(capacity: usize) -> BytesMut {
        BytesMut {
            vec: Vec::with_capacity(capacity),
            start: 0,
            end: 0,
        }
    }

    /// The number of bytes in the buffer.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many bytes the buffer holds without allocating (bytes consumed from its front
    /// and not yet given back excluded).
    pub fn capacity(&self) -> usize {
        self.vec.capacity() - self.start
    }

    /// Makes room for at least `additional` more bytes, first by giving back the consumed
    /// front, then by growing.
    ///
    /// ```
    /// use overlap::codec::BytesMut;
    ///
    /// let mut buf = BytesMut::from(&b"0123456789"[..]);
    /// buf.advance(8);
    /// buf.reserve(100);
    /// assert!(buf.capacity() - buf.len() >= 100);
    /// assert_eq!(buf, b"89"[..]);
    /// ```
    pub fn reserve(&mut self, additional: usize) {
        if self.vec.capacity() - self.end >= additional {
            return;
        }
        self.compact();
        // `Vec::reserve` counts from the vector's length, which may include zeroed room.
        let wanted = self.end + additional;
        if wanted > self.vec.capacity() {
            self.vec.reserve(wanted - self.vec.len());
        }
    }

    /// Empties the buffer, keeping its allocation.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Keeps the first `len` bytes and drops the rest; nothing happens if the buffer is
    /// shorter.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len;
            if len == 0 {
                self.clear();
            }
        }
    }

    /// Appends `bytes`.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.vec.truncate(self.end);
        self.vec.extend_from_slice(bytes);
        self.end = self.vec.len();
    }

    /// Appends `bytes` (`BufMut::put_slice`).
    pub fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    /// Removes the first `at` bytes and returns them; `self` keeps the rest. The returned
    /// bytes are copied into a buffer of their own (`bytes`' split is zero-copy).
    ///
    /// # Panics
    /// If `at > self.len()`.
    ///
    /// ```
    /// use overlap::codec::BytesMut;
    ///
    /// let mut buf = BytesMut::from(&b"head:body"[..]);
    /// let head = buf.split_to(5);
    /// assert_eq!((head, buf), (b"head:"[..].into(), b"body"[..].into()));
    /// ```
    pub fn split_to(&mut self, at: usize) -> BytesMut {
        assert!(
            at <= self.len(),
            "split_to out of bounds: {} > {}",
            at,
            self.len()
        );
        let front = BytesMut::from(&self[..at]);
        self.advance(at);
        front
    }

    /// Removes the bytes from `at` on and returns them (copied); `self` keeps the first
    /// `at`. An `at` past the bytes but within the capacity, as `bytes` allows, leaves
    /// `self` as it is and returns an empty buffer.
    ///
    /// # Panics
    /// If `at > self.capacity()`.
    ///
    /// ```
    /// use overlap::codec::BytesMut;
    ///
    /// let mut buf = BytesMut::from(&b"head:body"[..]);
    /// let body = buf.split_off(5);
    /// assert_eq!((buf, body), (b"head:"[..].into(), b"body"[..].into()));
    /// ```
    pub fn split_off(&mut self, at: usize) -> BytesMut {
        assert!(
            at <= self.capacity(),
            "split_off out of bounds: {} > {}",
            at,
            self.capacity()
        );
        if at >= self.len() {
            // Past the bytes, as `bytes`' does: `self` keeps them all, the rest is empty.
            return BytesMut::new();
        }
        let back = BytesMut::from(&self[at..]);
        self.truncate(at);
        back
    }

    /// Appends `other`'s bytes (`bytes`' `unsplit`, which undoes a `split_off`; here a
    /// copy, or a move of `other`'s allocation when `self` is empty).
    ///
    /// ```
    /// use overlap::codec::BytesMut;
    ///
    /// let mut buf = BytesMut::from("head:body");
    /// let body = buf.split_off(5);
    /// buf.unsplit(body);
    /// assert_eq!(buf, "head:body");
    /// ```
    pub fn unsplit(&mut self, other: BytesMut) {
        if self.is_empty() {
            *self = other;
        } else {
            self.extend_from_slice(&other);
        }
    }

    /// Appends a copy of the bytes in `range` of the buffer
    /// (`bytes`' `extend_from_within`).
    ///
    /// # Panics
    /// If `range` is out of the buffer's bounds.
    pub fn extend_from_within(&mut self, range: impl std::ops::RangeBounds<usize>) {
        let start = match range.start_bound() {
            std::ops::Bound::Included(&n) => n,
            std::ops::Bound::Excluded(&n) => n + 1,
            std::ops::Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            std::ops::Bound::Included(&n) => n + 1,
            std::ops::Bound::Excluded(&n) => n,
            std::ops::Bound::Unbounded => self.len(),
        };
        assert!(
            start <= end && end <= self.len(),
            "extend_from_within out of bounds: {start}..{end} of {}",
            self.len()
        );
        let copy = self[start..end].to_vec();
        self.extend_from_slice(&copy);
    }

    /// A buffer of `len` zero bytes.
    pub fn zeroed(len: usize) -> BytesMut {
        BytesMut::from(vec![0; len])
    }

    /// Sets the length to `new_len`: a longer buffer is filled with `value`, a shorter one
    /// truncated.
    pub fn resize(&mut self, new_len: usize, value: u8) {
        if new_len <= self.len() {
            self.truncate(new_len);
        } else {
            self.put_bytes(value, new_len - self.len());
        }
    }

    /// Appends `count` bytes of `value` (`BufMut::put_bytes`).
    pub fn put_bytes(&mut self, value: u8, count: usize) {
        self.reserve(count);
        self.vec.truncate(self.end);
        self.vec.resize(self.end + count, value);
        self.end = self.vec.len();
    }

    /// The number of bytes left to consume: the length (`Buf::remaining`).
    pub fn remaining(&self) -> usize {
        self.len()
    }

    /// Whether any byte is left to consume (`Buf::has_remaining`).
    pub fn has_remaining(&self) -> bool {
        !self.is_empty()
    }

    /// The bytes left to consume, as one slice (`Buf::chunk`).
    pub fn chunk(&self) -> &[u8] {
        self
    }

    /// Takes all the bytes, leaving `self` empty. A buffer with nothing consumed from its
    /// front gives its allocation away without copying (and `self` starts with none).
    ///
    /// ```
    /// use overlap::codec::BytesMut;
    ///
    /// let mut buf = BytesMut::from(&b"all of it"[..]);
    /// let taken = buf.split();
    /// assert_eq!(taken, b"all of it"[..]);
    /// assert!(buf.is_empty());
    /// ```
    pub fn split(&mut self) -> BytesMut {
        self.compact();
        self.vec.truncate(self.end);
        std::mem::take(self)
    }

    /// Drops the first `n` bytes (`Buf::advance`).
    ///
    /// # Panics
    /// If `n > self.len()`.
    pub fn advance(&mut self, n: usize) {
        assert!(
            n <= self.len(),
            "advance out of bounds: {} > {}",
            n,
            self.len()
        );
        self.start += n;
        if self.start == self.end {
            self.clear();
        }
        // Otherwise the consumed room waits for the next `reserve`, which moves what is
        // left then (a frame's remainder, usually) instead of the whole buffer now.
    }

    /// Moves the bytes to the front of the vector, giving back the consumed room.
    fn compact(&mut self) {
        if self.start > 0 {
            self.vec.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The bytes, as a `Vec<u8>` (`bytes`' `freeze` gives a `Bytes`; here it is the vector
    /// itself, without copying when nothing was consumed from the front).
    pub fn freeze(self) -> Vec<u8> {
        self.into()
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self[..].to_vec()
    }

    /// Reads from `io` into the spare room: at least `min_room` bytes of room are made
    /// first, and at most `max` are offered. Safe code must hand a reader initialised
    /// memory: room is zeroed the first time it is offered and kept initialised after, so
    /// a peer trickling a byte per read does not cost a zeroing of the room each time.
    /// The codecs' read path.
    pub(crate) fn poll_read_from<T: AsyncRead + ?Sized>(
        &mut self,
        io: Pin<&mut T>,
        cx: &mut Context<'_>,
        min_room: usize,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        self.reserve(min_room);
        let room = (self.vec.capacity() - self.end).min(max);
        if self.vec.len() < self.end + room {
            // Only room no read had before is zeroed.
            self.vec.resize(self.end + room, 0);
        }
        let result = io.poll_read(cx, &mut self.vec[self.end..self.end + room]);
        if let Poll::Ready(Ok(n)) = &result {
            self.end += (*n).min(room);
        }
        result
    }

    /// Removes the first `N` bytes as an array.
    pub(super) fn take_array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        self.copy_to_slice(&mut out);
        out
    }
}
