//! Ports the part of the `bytes` crate's tests (`test_bytes.rs`, `test_buf.rs`,
//! `test_buf_mut.rs`, `test_debug.rs`) that applies to `overlap::codec::BytesMut`, the
//! buffer tokio-util's codecs are written against: a decoder or encoder ported from tokio
//! keeps its `BytesMut` code, so what it calls must do the same here.
//!
//! What porting found (all fixed):
//! - `Debug` printed a zero byte as `\x00` where `bytes` prints `\0` (a test comparing a
//!   frame's debug output, or a log, differed).
//! - Missing, each failing to compile a ported codec: the signed and float number methods
//!   (`put_i32`, `get_f64_le`, ...), `get_uint`/`put_uint` and `get_int`/`put_int` of n
//!   bytes (a 3-byte length field), `remaining`/`has_remaining`/`chunk`, `put_bytes`,
//!   `resize`, `zeroed`, `unsplit`, `extend_from_within`, `write!` into a buffer
//!   (`fmt::Write`), `collect()` into one, iterating a `&BytesMut`, and ordering.
//! - `split_off(at)` panicked for an `at` past the bytes but within the capacity, which
//!   `bytes` allows (`self` keeps its bytes, the returned buffer is empty).
//!
//! Left, as documented: `split_to`/`split_off` copy; `capacity()` of a buffer advanced to
//! empty is its whole allocation again (`bytes` counts it down by what was advanced); a
//! buffer's exact capacity after `reserve` may differ (the tests check at least).

use std::fmt::Write as _;
use std::panic::catch_unwind;

use overlap::codec::BytesMut;

const LONG: &[u8] = b"mary had a little lamb, little lamb, little lamb";
const INPUT: &[u8] = b"\xffFqrjrDqPhvTc45vvq33f6bJrUtyHESuTeklWKgYd64xgzxJwvAkpYYnpNJyZSRn";

#[test]
fn debug_prints_a_byte_string_as_bytes_does() {
    assert_eq!(format!("{:?}", BytesMut::from("abcdefg")), "b\"abcdefg\"");
    let all: BytesMut = (0..=255u8).collect();
    let mut want = String::from("b\"");
    for b in 0..=255u8 {
        match b {
            0 => want.push_str("\\0"),
            b'\t' => want.push_str("\\t"),
            b'\n' => want.push_str("\\n"),
            b'\r' => want.push_str("\\r"),
            b'"' => want.push_str("\\\""),
            b'\\' => want.push_str("\\\\"),
            0x20..=0x7e => want.push(b as char),
            _ => write!(want, "\\x{b:02x}").unwrap(),
        }
    }
    want.push('"');
    assert_eq!(format!("{all:?}"), want);
    assert!(format!("{all:?}").starts_with("b\"\\0\\x01\\x02"));
    assert!(format!("{all:?}").contains("}~\\x7f\\x80"));
}

#[test]
fn write_macro_appends() {
    let s: String = (0..10).map(|_| "abcdefg").collect();
    let mut a = BytesMut::with_capacity(64);
    write!(a, "{}", &s[..64]).unwrap();
    assert_eq!(a, &s.as_bytes()[..64]);
    let mut b = BytesMut::with_capacity(64);
    write!(b, "{}", &s[..32]).unwrap();
    write!(b, "{}", &s[32..64]).unwrap();
    assert_eq!(b, &s.as_bytes()[..64]);
    let mut c = BytesMut::with_capacity(64);
    write!(c, "{s}").unwrap();
    assert_eq!(c, s.as_bytes());
}

#[test]
fn len_index_and_iteration() {
    let a = BytesMut::from(&b"abcdefg"[..]);
    assert_eq!(a.len(), 7);
    assert!(BytesMut::from(&b""[..]).is_empty());
    let hello = BytesMut::from("hello world");
    assert_eq!(hello[0..5], *b"hello");
    let v: Vec<u8> = hello.as_ref().to_vec();
    assert_eq!(&v[..], hello);
    let mut sum: Vec<u8> = Vec::new();
    sum.extend(&hello);
    assert_eq!(sum, b"hello world");
    let owned: Vec<u8> = hello.into_iter().rev().collect();
    assert_eq!(owned, b"dlrow olleh");
}

#[test]
fn split_off_and_split_to_at_every_offset() {
    let mut hello = BytesMut::from(&b"helloworld"[..]);
    let world = hello.split_off(5);
    assert_eq!(hello, &b"hello"[..]);
    assert_eq!(world, &b"world"[..]);
    let s = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for i in 0..=s.len() {
        let mut bytes = BytesMut::from(&s[..]);
        let off = bytes.split_off(i);
        assert_eq!(bytes.len(), i);
        let mut sum: Vec<u8> = Vec::new();
        sum.extend(&bytes);
        sum.extend(&off);
        assert_eq!(&sum[..], &s[..]);

        let mut bytes = BytesMut::from(&s[..]);
        let off = bytes.split_to(i);
        assert_eq!(off.len(), i);
        let mut sum: Vec<u8> = Vec::new();
        sum.extend(&off);
        sum.extend(&bytes);
        assert_eq!(&sum[..], &s[..]);
    }
}

#[test]
fn split_off_past_the_bytes_within_the_capacity() {
    let mut bytes = BytesMut::with_capacity(1024);
    let other = bytes.split_off(128);
    assert!(bytes.is_empty());
    assert!(other.is_empty());
    let mut bytes = BytesMut::with_capacity(64);
    bytes.put_slice(b"abcd");
    let other = bytes.split_off(10);
    assert_eq!(bytes, "abcd");
    assert!(other.is_empty());
}

#[test]
#[should_panic = "split_off out of bounds"]
fn split_off_past_the_capacity_panics() {
    let mut hello = BytesMut::from(&b"helloworld"[..]);
    let _ = hello.split_off(44);
}

#[test]
fn split_to_past_the_bytes_panics() {
    assert!(catch_unwind(|| BytesMut::from("helloworld").split_to(33)).is_err());
    // Unlike split_off, not even within the capacity.
    assert!(catch_unwind(|| BytesMut::with_capacity(1024).split_to(128)).is_err());
    let mut b = BytesMut::with_capacity(100);
    b.put_slice(&[10, 20, 30, 40]);
    let _ = b.clone().split_to(4);
    let _ = b.clone().split_off(4);
    assert!(catch_unwind(move || b.split_to(5)).is_err());
}

#[test]
fn truncate_keeps_a_prefix() {
    let s = &b"helloworld"[..];
    let mut hello = BytesMut::from(s);
    hello.truncate(15);
    assert_eq!(hello, s);
    hello.truncate(10);
    assert_eq!(hello, s);
    hello.truncate(5);
    assert_eq!(hello, "hello");
}

#[test]
fn reserve_leaves_room_and_keeps_the_bytes() {
    let mut bytes = BytesMut::from(LONG);
    bytes.reserve(64);
    assert!(bytes.capacity() >= LONG.len() + 64);
    let mut bytes = BytesMut::from(LONG);
    let front = bytes.split_to(30);
    bytes.reserve(128);
    assert!(bytes.capacity() >= bytes.len() + 128);
    assert_eq!(front, LONG[..30]);
    assert_eq!(bytes, LONG[30..]);
}

#[test]
fn extend_in_its_forms() {
    let mut bytes = BytesMut::with_capacity(0);
    bytes.extend(LONG);
    assert_eq!(*bytes, LONG[..]);

    let mut bytes = BytesMut::with_capacity(16);
    bytes.extend_from_slice(b"abcdef");
    bytes.advance(2);
    bytes.extend([b'g', b'h']);
    assert_eq!(&bytes[..], b"cdefgh");

    // A non-fused iterator: extend stops at its first None.
    let mut items = [Some(1u8), None, Some(3)].into_iter();
    let mut bytes = BytesMut::with_capacity(16);
    bytes.extend(std::iter::from_fn(|| items.next().flatten()));
    assert_eq!(&bytes[..], [1]);

    for i in [3, 34] {
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&LONG[..i]);
        bytes.extend_from_slice(&LONG[i..]);
        assert_eq!(LONG[..], *bytes);
    }

    let mut bytes = BytesMut::new();
    bytes.extend_from_slice(&LONG[..23]);
    bytes.extend_from_within(10..22);
    bytes.extend_from_within(22..35);
    assert_eq!(LONG[..], *bytes);
}

#[test]
#[should_panic]
fn extend_from_within_out_of_range_panics() {
    let mut bytes = BytesMut::from(&LONG[..23]);
    bytes.extend_from_within(23..=23);
}

#[test]
fn advance_from_the_front() {
    let mut a = BytesMut::from("hello world boooo yah world zomg wat wat");
    a.advance(16);
    assert_eq!(a, b"o yah world zomg wat wat"[..]);
    a.advance(4);
    assert_eq!(a, b"h world zomg wat wat"[..]);
    a.reserve(1024);
    assert_eq!(a, b"h world zomg wat wat"[..]);
    a.advance(6);
    assert_eq!(a, b"d zomg wat wat"[..]);
    assert!(catch_unwind(|| BytesMut::from("hello world").advance(20)).is_err());
}

#[test]
fn resize_remaining_and_capacity_after_advance() {
    for capacity in 0..=32 {
        for len in 0..=capacity {
            for advance in 0..=len {
                let mut buf = BytesMut::with_capacity(capacity);
                buf.resize(len, 42);
                assert_eq!((buf.len(), buf.remaining()), (len, len));
                assert!(buf.iter().all(|&b| b == 42));
                buf.advance(advance);
                assert_eq!(buf.remaining(), len - advance);
                assert_eq!(buf.has_remaining(), len > advance);
                assert_eq!(buf.chunk().len(), len - advance);
                if advance < len {
                    assert_eq!(buf.capacity(), capacity - advance);
                }
            }
        }
    }
    let mut buf = BytesMut::from("abcdef");
    buf.resize(2, 0);
    assert_eq!(buf, "ab");
    assert_eq!(BytesMut::zeroed(3), [0u8; 3]);
}

#[test]
fn unsplit_joins_what_split_off_took() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"aaabbbcccddd");
    let tail = buf.split_off(6);
    assert_eq!(b"aaabbb", &buf[..]);
    assert_eq!(b"cccddd", &tail[..]);
    buf.unsplit(tail);
    assert_eq!(b"aaabbbcccddd", &buf[..]);

    buf.unsplit(BytesMut::new());
    assert_eq!(b"aaabbbcccddd", &buf[..]);
    let mut empty = BytesMut::new();
    empty.unsplit(buf);
    assert_eq!(b"aaabbbcccddd", &empty[..]);

    let mut buf = BytesMut::from(&b"aaaabbbbeeeeccccdddd"[..]);
    let mut middle = buf.split_off(8);
    let end = middle.split_off(4);
    buf.unsplit(end);
    assert_eq!(b"aaaabbbbccccdddd", &buf[..]);
}

#[test]
fn collect_and_compare() {
    let collected: BytesMut = std::iter::repeat_n(b'x', 100).collect();
    assert_eq!(collected, vec![b'x'; 100]);
    let by_ref: BytesMut = LONG.iter().collect();
    assert_eq!(by_ref, LONG);
    let (a, b) = (BytesMut::from("abc"), BytesMut::from("abd"));
    assert!(a < b);
    assert_eq!(a.cmp(&a.clone()), std::cmp::Ordering::Equal);
    let owned = String::from("abc");
    assert_eq!(owned, a);
    assert_eq!(a, owned);
    assert_eq!("abc", a);
    assert_eq!(a, *"abc");
}

#[test]
fn put_numbers() {
    let mut buf = BytesMut::new();
    buf.put_u8(33);
    buf.put_i8(-1);
    assert_eq!(buf, b"\x21\xff"[..]);
    buf.clear();
    buf.put_u16(8532);
    buf.put_u16_le(8532);
    assert_eq!(buf, b"\x21\x54\x54\x21"[..]);
    buf.clear();
    buf.put_int(0x1020304050607080, 3);
    buf.put_int_le(0x1020304050607080, 3);
    assert_eq!(buf, b"\x60\x70\x80\x80\x70\x60"[..]);
    buf.clear();
    buf.put_i32(-2);
    buf.put_i64_le(-2);
    buf.put_f32(1.5);
    buf.put_f64_le(-0.25);
    buf.put_u128(1);
    buf.put_i16_le(-300);
    assert_eq!(buf.get_i32(), -2);
    assert_eq!(buf.get_i64_le(), -2);
    assert_eq!(buf.get_f32(), 1.5);
    assert_eq!(buf.get_f64_le(), -0.25);
    assert_eq!(buf.get_u128(), 1);
    assert_eq!(buf.get_i16_le(), -300);
    assert!(buf.is_empty());
    buf.put_bytes(b'z', 4);
    assert_eq!(buf, "zzzz");
}

#[test]
fn put_int_of_more_than_eight_bytes_panics() {
    assert!(catch_unwind(|| BytesMut::new().put_int(0x1020304050607080, 9)).is_err());
    assert!(catch_unwind(|| BytesMut::new().put_int_le(0x1020304050607080, 9)).is_err());
    assert!(catch_unwind(|| BytesMut::new().put_uint(1, 9)).is_err());
}

#[test]
fn get_numbers_of_n_bytes_sign_extended() {
    let get = |f: fn(&mut BytesMut) -> i128| {
        let mut buf = BytesMut::from(INPUT);
        let v = f(&mut buf);
        assert_eq!(buf.remaining(), INPUT.len() - 3);
        v
    };
    assert_eq!(get(|b| b.get_uint(3).into()), 0xff4671);
    assert_eq!(get(|b| b.get_uint_le(3).into()), 0x7146ff);
    assert_eq!(
        get(|b| b.get_int(3).into()),
        0xffffffffffff4671u64 as i64 as i128
    );
    assert_eq!(get(|b| b.get_int_le(3).into()), 0x7146ff);
    // Zero bytes is zero; too few bytes, or more than 8, panics.
    assert_eq!(BytesMut::from(INPUT).get_uint(0), 0);
    assert_eq!(BytesMut::from(INPUT).get_int(0), 0);
    assert!(catch_unwind(|| BytesMut::new().get_uint(3)).is_err());
    assert!(catch_unwind(|| BytesMut::from(INPUT).get_uint(9)).is_err());
    assert_eq!(BytesMut::from(&b"\xff\xff\xff"[..]).get_int(3), -1);
    assert_eq!(BytesMut::from(&b"\x01\x02\x03"[..]).get_int(3), 0x010203);
    assert_eq!(BytesMut::from(&[0xff; 8][..]).get_int(8), -1);
    // The fixed-size ones panic on too few bytes too.
    assert!(catch_unwind(|| BytesMut::from(&b"\x01"[..]).get_u16()).is_err());
    assert!(catch_unwind(|| BytesMut::new().get_i8()).is_err());
}
