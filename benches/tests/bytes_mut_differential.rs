//! overlap's `codec::BytesMut` against the `bytes` crate's on the same random sequences of
//! operations (puts and gets of every number width and byte order, n-byte fields, splits,
//! advance, truncate, resize, reserve, unsplit, extend_from_within), comparing after each
//! operation the bytes held, what was returned, and `Debug`. An operation that panics in
//! one must panic in the other. Capacities are not compared, nor `split_off` past the bytes
//! (which `bytes` allows up to the capacity): overlap's buffer gives the consumed front
//! back differently, as documented.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::{Buf, BufMut};
use overlap::codec::BytesMut;

/// A xorshift generator: the same seed, the same operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Applies operation `op` (with argument `n` and value `v`) to both buffers and returns
/// what each gave back, as text; a panic is the text "panic".
fn apply(a: &mut BytesMut, b: &mut bytes::BytesMut, op: u64, n: usize, v: u64) -> (String, String) {
    macro_rules! both {
        (|$x:ident| $e:expr) => {{
            let ra = catch_unwind(AssertUnwindSafe(|| {
                let $x = &mut *a;
                format!("{:?}", $e)
            }))
            .unwrap_or_else(|_| "panic".into());
            let rb = catch_unwind(AssertUnwindSafe(|| {
                let $x = &mut *b;
                format!("{:?}", $e)
            }))
            .unwrap_or_else(|_| "panic".into());
            (ra, rb)
        }};
    }
    match op {
        0 => both!(|x| x.put_slice(&v.to_be_bytes()[..n % 9])),
        1 => both!(|x| x.put_u8(v as u8)),
        2 => both!(|x| x.put_u16(v as u16)),
        3 => both!(|x| x.put_u32_le(v as u32)),
        4 => both!(|x| x.put_i64(v as i64)),
        5 => both!(|x| x.put_uint(v, n % 9)),
        6 => both!(|x| x.put_int_le(v as i64, n % 9)),
        7 => both!(|x| x.put_f32(v as f32)),
        8 => both!(|x| x.get_u8()),
        9 => both!(|x| x.get_u16_le()),
        10 => both!(|x| x.get_i32()),
        11 => both!(|x| x.get_u64_le()),
        12 => both!(|x| x.get_uint(n % 10)),
        13 => both!(|x| x.get_int(n % 10)),
        14 => both!(|x| x.advance(n)),
        15 => both!(|x| x.split_to(n).to_vec()),
        16 => both!(|x| x.split_off(n.min(x.len())).to_vec()),
        17 => both!(|x| x.split().to_vec()),
        18 => both!(|x| x.truncate(n)),
        19 => both!(|x| x.resize(n, v as u8)),
        20 => both!(|x| x.reserve(n)),
        21 => both!(|x| x.put_bytes(v as u8, n % 5)),
        22 => both!(|x| x.extend_from_within(n % 4..n % 7)),
        23 => both!(|x| x.clear()),
        24 => both!(|x| (x.remaining(), x.has_remaining(), x.chunk().to_vec())),
        25 => both!(|x| x.get_i16()),
        26 => both!(|x| x.put_f64_le(v as f64 / 3.0)),
        27 => both!(|x| x.get_f64_le().to_bits()),
        28 => both!(|x| {
            let tail = x.split_off(n.min(x.len()));
            let front = x.split_to(n.min(x.len()) / 2);
            x.unsplit(tail);
            front.to_vec()
        }),
        _ => both!(|x| x.put_i128(v as i128 - 5)),
    }
}

#[test]
fn random_operations_agree_with_bytes() {
    // Panics are expected (out-of-bounds gets); keep their messages out of the output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for seed in [0x9e37_79b9_7f4a_7c15u64, 7, 99] {
        let mut rng = Rng(seed);
        for run in 0..300 {
            let mut a = BytesMut::new();
            let mut b = bytes::BytesMut::new();
            let mut log = Vec::new();
            for _ in 0..40 {
                let (op, n, v) = (rng.below(30), rng.below(12) as usize, rng.next());
                let (ra, rb) = apply(&mut a, &mut b, op, n, v);
                log.push(format!("op{op}({n}, {v:#x})"));
                let same = ra == rb && a[..] == b[..] && format!("{a:?}") == format!("{b:?}");
                if !same {
                    failures.push(format!(
                        "seed {seed} run {run} after {log:?}: overlap {ra} {a:?}, bytes {rb} {b:?}"
                    ));
                    break;
                }
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(
        failures.is_empty(),
        "{} differ, first: {}",
        failures.len(),
        failures[0]
    );
}
