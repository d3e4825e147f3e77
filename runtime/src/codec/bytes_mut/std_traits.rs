//! `BytesMut`'s standard traits: slices through `Deref`, conversions from and to vectors
//! and slices, comparisons with byte strings, and a `Debug` that prints a byte string.

use std::borrow::{Borrow, BorrowMut};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::BytesMut;

impl Deref for BytesMut {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.vec[self.start..self.end]
    }
}

impl DerefMut for BytesMut {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..self.end]
    }
}

impl AsRef<[u8]> for BytesMut {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for BytesMut {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Borrow<[u8]> for BytesMut {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl BorrowMut<[u8]> for BytesMut {
    fn borrow_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Clone for BytesMut {
    /// Copies the bytes (not the consumed front).
    fn clone(&self) -> BytesMut {
        BytesMut::from(&self[..])
    }
}

impl From<&[u8]> for BytesMut {
    fn from(bytes: &[u8]) -> BytesMut {
        BytesMut::from(bytes.to_vec())
    }
}

impl From<&str> for BytesMut {
    fn from(text: &str) -> BytesMut {
        BytesMut::from(text.as_bytes())
    }
}

impl From<Vec<u8>> for BytesMut {
    /// Takes the vector's allocation, without copying.
    fn from(vec: Vec<u8>) -> BytesMut {
        BytesMut {
            end: vec.len(),
            vec,
            start: 0,
        }
    }
}

impl From<BytesMut> for Vec<u8> {
    /// The vector itself when nothing was consumed from the front; else the bytes moved
    /// to its start.
    fn from(mut buf: BytesMut) -> Vec<u8> {
        buf.compact();
        buf.vec.truncate(buf.end);
        buf.vec
    }
}

impl Extend<u8> for BytesMut {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.compact();
        self.vec.truncate(self.end);
        self.vec.extend(iter);
        self.end = self.vec.len();
    }
}

impl<'a> Extend<&'a u8> for BytesMut {
    fn extend<I: IntoIterator<Item = &'a u8>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl PartialEq for BytesMut {
    fn eq(&self, other: &BytesMut) -> bool {
        self[..] == other[..]
    }
}

impl Eq for BytesMut {}

impl std::hash::Hash for BytesMut {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self[..].hash(state);
    }
}

impl PartialEq<[u8]> for BytesMut {
    fn eq(&self, other: &[u8]) -> bool {
        self[..] == *other
    }
}

impl PartialEq<&[u8]> for BytesMut {
    fn eq(&self, other: &&[u8]) -> bool {
        self[..] == **other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for BytesMut {
    fn eq(&self, other: &[u8; N]) -> bool {
        self[..] == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for BytesMut {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self[..] == other[..]
    }
}

impl PartialEq<Vec<u8>> for BytesMut {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self[..] == other[..]
    }
}

impl PartialEq<str> for BytesMut {
    fn eq(&self, other: &str) -> bool {
        self[..] == *other.as_bytes()
    }
}

impl PartialEq<&str> for BytesMut {
    fn eq(&self, other: &&str) -> bool {
        self[..] == *other.as_bytes()
    }
}

impl PartialEq<BytesMut> for [u8] {
    fn eq(&self, other: &BytesMut) -> bool {
        *self == other[..]
    }
}

impl PartialEq<BytesMut> for &[u8] {
    fn eq(&self, other: &BytesMut) -> bool {
        **self == other[..]
    }
}

impl PartialEq<BytesMut> for Vec<u8> {
    fn eq(&self, other: &BytesMut) -> bool {
        self[..] == other[..]
    }
}

impl PartialEq<String> for BytesMut {
    fn eq(&self, other: &String) -> bool {
        self[..] == *other.as_bytes()
    }
}

// The other way round, as `bytes`' compares: `assert_eq!("line", frame)` compiles.
impl PartialEq<BytesMut> for str {
    fn eq(&self, other: &BytesMut) -> bool {
        *self.as_bytes() == other[..]
    }
}

impl PartialEq<BytesMut> for &str {
    fn eq(&self, other: &BytesMut) -> bool {
        *self.as_bytes() == other[..]
    }
}

impl PartialEq<BytesMut> for String {
    fn eq(&self, other: &BytesMut) -> bool {
        *self.as_bytes() == other[..]
    }
}

impl PartialOrd for BytesMut {
    fn partial_cmp(&self, other: &BytesMut) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BytesMut {
    /// As the byte slices compare.
    fn cmp(&self, other: &BytesMut) -> std::cmp::Ordering {
        self[..].cmp(&other[..])
    }
}

impl FromIterator<u8> for BytesMut {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> BytesMut {
        BytesMut::from(Vec::from_iter(iter))
    }
}

impl<'a> FromIterator<&'a u8> for BytesMut {
    fn from_iter<I: IntoIterator<Item = &'a u8>>(iter: I) -> BytesMut {
        iter.into_iter().copied().collect()
    }
}

impl IntoIterator for BytesMut {
    type Item = u8;
    type IntoIter = std::vec::IntoIter<u8>;

    fn into_iter(self) -> std::vec::IntoIter<u8> {
        Vec::from(self).into_iter()
    }
}

impl<'a> IntoIterator for &'a BytesMut {
    type Item = &'a u8;
    type IntoIter = std::slice::Iter<'a, u8>;

    fn into_iter(self) -> std::slice::Iter<'a, u8> {
        self.iter()
    }
}

impl fmt::Write for BytesMut {
    /// Appends the string's bytes (`write!(buf, ...)`), as `bytes`' does.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl fmt::Debug for BytesMut {
    /// As a byte string literal, `b"..."`, as `bytes`' does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"")?;
        for &b in self.iter() {
            match b {
                b'\n' => write!(f, "\\n")?,
                b'\r' => write!(f, "\\r")?,
                b'\t' => write!(f, "\\t")?,
                b'\\' | b'"' => write!(f, "\\{}", b as char)?,
                b'\0' => write!(f, "\\0")?,
                0x20..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        write!(f, "\"")
    }
}
