//! The `Buf` methods that take bytes without panicking when too few are left
//! (`try_get_*`, `try_copy_to_slice`, with `bytes`' [`TryGetError`]), and those that
//! take a run of bytes out (`copy_to_slice`, `copy_to_bytes`).

use std::fmt;
use std::io;

use super::BytesMut;

/// A `try_get_*` found too few bytes left: `bytes`' `TryGetError`, with its fields and
/// message. Nothing was taken from the buffer. It converts into an [`io::Error`] (of
/// kind [`Other`](io::ErrorKind::Other), as `bytes`' does), so a decoder returning
/// `io::Result` can `?` it.
///
/// ```
/// use overlap::codec::{BytesMut, TryGetError};
///
/// let mut frame = BytesMut::from(&[0u8, 1, 2][..]);
/// let err = frame.try_get_u32().unwrap_err();
/// assert_eq!(err, TryGetError { requested: 4, available: 3 });
/// assert_eq!(frame.remaining(), 3); // nothing taken
/// assert_eq!(frame.try_get_u16(), Ok(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TryGetError {
    /// How many bytes the value needs.
    pub requested: usize,
    /// How many bytes were left.
    pub available: usize,
}

impl fmt::Display for TryGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Not enough bytes remaining in buffer to read value (requested {} but only {} available)",
            self.requested, self.available
        )
    }
}

impl std::error::Error for TryGetError {}

impl From<TryGetError> for io::Error {
    fn from(error: TryGetError) -> io::Error {
        io::Error::other(error)
    }
}

impl BytesMut {
    /// Removes the first `dst.len()` bytes into `dst` (`Buf::copy_to_slice`).
    ///
    /// # Panics
    /// If fewer bytes are left, as `bytes`' does (`try_copy_to_slice` says so instead).
    pub fn copy_to_slice(&mut self, dst: &mut [u8]) {
        assert!(
            self.len() >= dst.len(),
            "not enough bytes left: {} < {}",
            self.len(),
            dst.len()
        );
        dst.copy_from_slice(&self[..dst.len()]);
        self.advance(dst.len());
    }

    /// Removes the first `dst.len()` bytes into `dst`, or, with fewer left, takes nothing
    /// and says how many were missing (`Buf::try_copy_to_slice`).
    pub fn try_copy_to_slice(&mut self, dst: &mut [u8]) -> Result<(), TryGetError> {
        self.check_left(dst.len())?;
        self.copy_to_slice(dst);
        Ok(())
    }

    /// Removes the first `len` bytes as a `Vec<u8>` (`Buf::copy_to_bytes`, whose `Bytes`
    /// is a `Vec<u8>` here, as [`freeze`](BytesMut::freeze) gives).
    ///
    /// # Panics
    /// If fewer bytes are left, as `bytes`' does.
    ///
    /// ```
    /// let mut buf = overlap::codec::BytesMut::from(&b"\x00\x03abcrest"[..]);
    /// let len = buf.get_u16() as usize;
    /// assert_eq!(buf.copy_to_bytes(len), b"abc");
    /// assert_eq!(buf, b"rest"[..]);
    /// ```
    pub fn copy_to_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.copy_to_slice(&mut out);
        out
    }

    /// Removes one byte from the front, or, with none left, says so.
    pub fn try_get_u8(&mut self) -> Result<u8, TryGetError> {
        self.try_take_array::<1>().map(|[b]| b)
    }

    /// Removes one signed byte from the front, or, with none left, says so.
    pub fn try_get_i8(&mut self) -> Result<i8, TryGetError> {
        self.try_take_array().map(i8::from_be_bytes)
    }

    /// Removes the first `N` bytes as an array, or says how many were missing and takes
    /// nothing.
    pub(super) fn try_take_array<const N: usize>(&mut self) -> Result<[u8; N], TryGetError> {
        self.check_left(N)?;
        Ok(self.take_array())
    }

    /// Whether `requested` bytes are left.
    fn check_left(&self, requested: usize) -> Result<(), TryGetError> {
        if self.len() < requested {
            return Err(TryGetError {
                requested,
                available: self.len(),
            });
        }
        Ok(())
    }
}
