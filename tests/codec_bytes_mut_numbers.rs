//! `overlap::codec::BytesMut`'s number methods against the `bytes` crate's `Buf`/`BufMut`,
//! the model a ported codec was written for: every type `bytes` has (`u8` … `u128`, `i8` …
//! `i128`, `f32`, `f64`), big- and little-endian, give the same bytes and read them back
//! alike; `try_get_*` refuses a short buffer as `bytes`' does, taking nothing; and the
//! `Buf` names a decoder checks lengths with (`remaining`, `has_remaining`,
//! `copy_to_slice`) are there.

use bytes::{Buf, BufMut};
use overlap::codec::{BytesMut, TryGetError};

/// Writes one value of each type with both crates, compares the bytes, reads them back
/// with both and compares the values.
macro_rules! same_as_bytes {
    ($($ty:ty: $v:expr, $put:ident, $put_le:ident, $get:ident, $get_le:ident, $try:ident, $try_le:ident;)*) => {$({
        let v: $ty = $v;
        let mut ours = BytesMut::new();
        let mut model = bytes::BytesMut::new();
        ours.$put(v);
        ours.$put_le(v);
        model.$put(v);
        model.$put_le(v);
        assert_eq!(&ours[..], &model[..], "{} bytes", stringify!($ty));
        let mut copy = ours.clone();
        assert_eq!(ours.$get(), model.$get(), "{}", stringify!($get));
        assert_eq!(ours.$get_le(), model.$get_le(), "{}", stringify!($get_le));
        assert!(!ours.has_remaining());
        assert_eq!(copy.$try().unwrap(), v, "{}", stringify!($try));
        assert_eq!(copy.$try_le().unwrap(), v, "{}", stringify!($try_le));
        assert_eq!(copy.remaining(), 0);
    })*};
}

#[test]
fn every_number_method_writes_and_reads_what_bytes_does() {
    same_as_bytes! {
        u16: 0xBEEF, put_u16, put_u16_le, get_u16, get_u16_le, try_get_u16, try_get_u16_le;
        i16: -2, put_i16, put_i16_le, get_i16, get_i16_le, try_get_i16, try_get_i16_le;
        u32: 0xDEAD_BEEF, put_u32, put_u32_le, get_u32, get_u32_le, try_get_u32, try_get_u32_le;
        i32: -70_000, put_i32, put_i32_le, get_i32, get_i32_le, try_get_i32, try_get_i32_le;
        u64: u64::MAX - 7, put_u64, put_u64_le, get_u64, get_u64_le, try_get_u64, try_get_u64_le;
        i64: i64::MIN + 3, put_i64, put_i64_le, get_i64, get_i64_le, try_get_i64, try_get_i64_le;
        u128: u128::MAX / 3, put_u128, put_u128_le, get_u128, get_u128_le, try_get_u128, try_get_u128_le;
        i128: -(1 << 100), put_i128, put_i128_le, get_i128, get_i128_le, try_get_i128, try_get_i128_le;
        f32: -1.5e-3, put_f32, put_f32_le, get_f32, get_f32_le, try_get_f32, try_get_f32_le;
        f64: 6.02e23, put_f64, put_f64_le, get_f64, get_f64_le, try_get_f64, try_get_f64_le;
    }
    let mut ours = BytesMut::new();
    let mut model = bytes::BytesMut::new();
    ours.put_u8(0xFE);
    ours.put_i8(-3);
    model.put_u8(0xFE);
    model.put_i8(-3);
    assert_eq!(&ours[..], &model[..]);
    assert_eq!(ours.try_get_u8().unwrap(), 0xFE);
    assert_eq!(ours.get_i8(), model[1] as i8);
    assert_eq!(
        ours.try_get_i8(),
        Err(TryGetError {
            requested: 1,
            available: 0
        })
    );
}

#[test]
fn a_short_try_get_takes_nothing_and_says_what_was_missing() {
    let mut buf = BytesMut::from(&[1u8, 2, 3][..]);
    let err = buf.try_get_u32().unwrap_err();
    assert_eq!(
        err,
        TryGetError {
            requested: 4,
            available: 3
        }
    );
    assert_eq!(buf.remaining(), 3, "nothing taken");
    let mut model = bytes::BytesMut::from(&[1u8, 2, 3][..]);
    let model_err = model.try_get_u32().unwrap_err();
    assert_eq!(err.to_string(), model_err.to_string());
    // As bytes' does, it converts into an io::Error, so a decoder can `?` it.
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::Error::from(model_err).kind());
    assert_eq!(buf.try_get_u16().unwrap(), 0x0102);
    assert_eq!(buf.try_get_u8().unwrap(), 3);
    assert!(!buf.has_remaining());
}

#[test]
fn copy_to_slice_takes_the_front_as_bytes_does() {
    let mut buf = BytesMut::from(&b"hello world"[..]);
    let mut word = [0u8; 5];
    buf.copy_to_slice(&mut word);
    assert_eq!(&word, b"hello");
    assert_eq!(buf.remaining(), 6);
    assert_eq!(&buf[..], b" world");
    let panicked = std::panic::catch_unwind(move || {
        let mut more = [0u8; 7];
        buf.copy_to_slice(&mut more);
    });
    assert!(panicked.is_err(), "too few bytes left panics, as in bytes");
}

#[test]
fn copy_to_bytes_try_copy_to_slice_and_put_bytes_as_bytes_does() {
    let mut buf = BytesMut::from(&b"entry-data rest"[..]);
    let mut model = bytes::BytesMut::from(&b"entry-data rest"[..]);
    // `Bytes` there, a `Vec<u8>` here (as `freeze` gives).
    let ours: Vec<u8> = buf.copy_to_bytes(10);
    assert_eq!(ours, &model.copy_to_bytes(10)[..]);
    let mut four = [0u8; 4];
    let mut model_four = [0u8; 4];
    assert_eq!(
        buf.try_copy_to_slice(&mut [0u8; 9]),
        Err(TryGetError {
            requested: 9,
            available: 5
        })
    );
    assert_eq!(buf.remaining(), 5, "nothing taken");
    buf.try_copy_to_slice(&mut four).unwrap();
    model.try_copy_to_slice(&mut model_four).unwrap();
    assert_eq!(four, model_four);
    buf.put_bytes(b'-', 3);
    model.put_bytes(b'-', 3);
    assert_eq!(&buf[..], &model[..]);
    let short = std::panic::catch_unwind(move || buf.copy_to_bytes(5));
    assert!(short.is_err(), "too few bytes left panics, as in bytes");
}
