//! `BytesMut`'s number methods, `bytes`' `Buf::get_*`/`try_get_*` and `BufMut::put_*` as
//! inherent methods: big-endian (network order), `_le` little-endian.

use super::{BytesMut, TryGetError};

/// The `put_*`/`get_*`/`try_get_*` methods of a number type, big-endian and `_le`.
macro_rules! numbers {
    ($($ty:ty: $put:ident, $put_le:ident, $get:ident, $get_le:ident, $try:ident, $try_le:ident;)*) => {
        impl BytesMut {
            $(
                #[doc = concat!("Appends a `", stringify!($ty), "`, big-endian.")]
                pub fn $put(&mut self, n: $ty) {
                    self.extend_from_slice(&n.to_be_bytes());
                }

                #[doc = concat!("Appends a `", stringify!($ty), "`, little-endian.")]
                pub fn $put_le(&mut self, n: $ty) {
                    self.extend_from_slice(&n.to_le_bytes());
                }

                #[doc = concat!("Removes a big-endian `", stringify!($ty), "` from the front.")]
                ///
                /// # Panics
                #[doc = concat!("If too few bytes are left (`", stringify!($try), "` says so instead).")]
                pub fn $get(&mut self) -> $ty {
                    <$ty>::from_be_bytes(self.take_array())
                }

                #[doc = concat!("Removes a little-endian `", stringify!($ty), "` from the front.")]
                ///
                /// # Panics
                #[doc = concat!("If too few bytes are left (`", stringify!($try_le), "` says so instead).")]
                pub fn $get_le(&mut self) -> $ty {
                    <$ty>::from_le_bytes(self.take_array())
                }

                #[doc = concat!("Removes a big-endian `", stringify!($ty), "` from the front, or, ")]
                /// with too few bytes left, takes nothing and says how many were missing.
                pub fn $try(&mut self) -> Result<$ty, TryGetError> {
                    self.try_take_array().map(<$ty>::from_be_bytes)
                }

                #[doc = concat!("Removes a little-endian `", stringify!($ty), "` from the front, or, ")]
                /// with too few bytes left, takes nothing and says how many were missing.
                pub fn $try_le(&mut self) -> Result<$ty, TryGetError> {
                    self.try_take_array().map(<$ty>::from_le_bytes)
                }
            )*
        }
    };
}

numbers! {
    u16: put_u16, put_u16_le, get_u16, get_u16_le, try_get_u16, try_get_u16_le;
    i16: put_i16, put_i16_le, get_i16, get_i16_le, try_get_i16, try_get_i16_le;
    u32: put_u32, put_u32_le, get_u32, get_u32_le, try_get_u32, try_get_u32_le;
    i32: put_i32, put_i32_le, get_i32, get_i32_le, try_get_i32, try_get_i32_le;
    u64: put_u64, put_u64_le, get_u64, get_u64_le, try_get_u64, try_get_u64_le;
    i64: put_i64, put_i64_le, get_i64, get_i64_le, try_get_i64, try_get_i64_le;
    u128: put_u128, put_u128_le, get_u128, get_u128_le, try_get_u128, try_get_u128_le;
    i128: put_i128, put_i128_le, get_i128, get_i128_le, try_get_i128, try_get_i128_le;
    f32: put_f32, put_f32_le, get_f32, get_f32_le, try_get_f32, try_get_f32_le;
    f64: put_f64, put_f64_le, get_f64, get_f64_le, try_get_f64, try_get_f64_le;
}

/// The bytes of `n` of a `nbytes`-long field, big-endian: its low `nbytes` bytes, as
/// `bytes`' `put_uint` writes them (higher bytes are dropped).
fn field_be(n: u64, nbytes: usize) -> [u8; 8] {
    assert!(nbytes <= 8, "{nbytes} bytes do not fit a u64 (at most 8)");
    n.to_be_bytes()
}

impl BytesMut {
    /// Appends one byte.
    pub fn put_u8(&mut self, n: u8) {
        self.extend_from_slice(&[n]);
    }

    /// Appends one signed byte.
    pub fn put_i8(&mut self, n: i8) {
        self.extend_from_slice(&n.to_be_bytes());
    }

    /// Removes one byte from the front.
    ///
    /// # Panics
    /// If the buffer is empty.
    pub fn get_u8(&mut self) -> u8 {
        self.take_array::<1>()[0]
    }

    /// Removes one signed byte from the front.
    ///
    /// # Panics
    /// If the buffer is empty.
    pub fn get_i8(&mut self) -> i8 {
        i8::from_be_bytes(self.take_array())
    }

    /// Appends the low `nbytes` bytes of `n`, big-endian (`BufMut::put_uint`): a length
    /// field of 3 bytes is `put_uint(len, 3)`.
    ///
    /// # Panics
    /// If `nbytes` is more than 8.
    ///
    /// ```
    /// let mut buf = overlap::codec::BytesMut::new();
    /// buf.put_uint(0x01_0203, 3);
    /// assert_eq!(buf, b"\x01\x02\x03"[..]);
    /// assert_eq!(buf.get_uint(3), 0x01_0203);
    /// ```
    pub fn put_uint(&mut self, n: u64, nbytes: usize) {
        self.extend_from_slice(&field_be(n, nbytes)[8 - nbytes..]);
    }

    /// Appends the low `nbytes` bytes of `n`, little-endian (`BufMut::put_uint_le`).
    ///
    /// # Panics
    /// If `nbytes` is more than 8.
    pub fn put_uint_le(&mut self, n: u64, nbytes: usize) {
        assert!(nbytes <= 8, "{nbytes} bytes do not fit a u64 (at most 8)");
        self.extend_from_slice(&n.to_le_bytes()[..nbytes]);
    }

    /// Appends the low `nbytes` bytes of `n`, big-endian (`BufMut::put_int`).
    ///
    /// # Panics
    /// If `nbytes` is more than 8.
    pub fn put_int(&mut self, n: i64, nbytes: usize) {
        self.put_uint(n as u64, nbytes);
    }

    /// Appends the low `nbytes` bytes of `n`, little-endian (`BufMut::put_int_le`).
    ///
    /// # Panics
    /// If `nbytes` is more than 8.
    pub fn put_int_le(&mut self, n: i64, nbytes: usize) {
        self.put_uint_le(n as u64, nbytes);
    }

    /// Removes a big-endian unsigned number of `nbytes` bytes from the front
    /// (`Buf::get_uint`).
    ///
    /// # Panics
    /// If `nbytes` is more than 8, or fewer bytes are left.
    pub fn get_uint(&mut self, nbytes: usize) -> u64 {
        let field = self.take_field(nbytes);
        field.iter().fold(0, |n, &b| (n << 8) | u64::from(b))
    }

    /// Removes a little-endian unsigned number of `nbytes` bytes from the front
    /// (`Buf::get_uint_le`).
    ///
    /// # Panics
    /// If `nbytes` is more than 8, or fewer bytes are left.
    pub fn get_uint_le(&mut self, nbytes: usize) -> u64 {
        let field = self.take_field(nbytes);
        field.iter().rev().fold(0, |n, &b| (n << 8) | u64::from(b))
    }

    /// Removes a big-endian signed number of `nbytes` bytes from the front, its sign
    /// extended (`Buf::get_int`).
    ///
    /// # Panics
    /// If `nbytes` is more than 8, or fewer bytes are left.
    pub fn get_int(&mut self, nbytes: usize) -> i64 {
        sign_extend(self.get_uint(nbytes), nbytes)
    }

    /// Removes a little-endian signed number of `nbytes` bytes from the front, its sign
    /// extended (`Buf::get_int_le`).
    ///
    /// # Panics
    /// If `nbytes` is more than 8, or fewer bytes are left.
    pub fn get_int_le(&mut self, nbytes: usize) -> i64 {
        sign_extend(self.get_uint_le(nbytes), nbytes)
    }

    /// Removes the first `nbytes` (at most 8) bytes.
    fn take_field(&mut self, nbytes: usize) -> Vec<u8> {
        assert!(nbytes <= 8, "{nbytes} bytes do not fit a u64 (at most 8)");
        self.copy_to_bytes(nbytes)
    }
}

/// `n`, the value of an `nbytes`-long two's complement field, as an `i64`.
fn sign_extend(n: u64, nbytes: usize) -> i64 {
    if nbytes == 0 {
        return 0;
    }
    let shift = 64 - 8 * nbytes as u32;
    ((n << shift) as i64) >> shift
}
