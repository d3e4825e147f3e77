//! The two checksums of a block: rsync's weak rolling checksum (two 16-bit sums in the
//! manner of Adler-32, without its prime modulus, so a window slides one byte in O(1)) and
//! a strong FNV-1a 64 hash that settles each weak match.

/// The weak checksum of a window of fixed length, rolled one byte at a time.
#[derive(Clone, Copy, Debug)]
pub struct Rolling {
    a: u32,
    b: u32,
    len: u32,
}

impl Rolling {
    /// The checksum of `block`: `a` the sum of its bytes, `b` the sum of each byte weighted
    /// by its distance from the end, both mod 2^16.
    pub fn new(block: &[u8]) -> Rolling {
        let len = block.len() as u32;
        let (mut a, mut b) = (0u32, 0u32);
        for (i, &x) in block.iter().enumerate() {
            a = a.wrapping_add(x as u32);
            b = b.wrapping_add((len - i as u32).wrapping_mul(x as u32));
        }
        Rolling {
            a: a & 0xffff,
            b: b & 0xffff,
            len,
        }
    }

    /// Slides the window one byte on: `out` leaves at its start, `inn` enters at its end.
    pub fn roll(&mut self, out: u8, inn: u8) {
        self.a = self.a.wrapping_sub(out as u32).wrapping_add(inn as u32) & 0xffff;
        self.b = self
            .b
            .wrapping_sub(self.len.wrapping_mul(out as u32))
            .wrapping_add(self.a)
            & 0xffff;
    }

    /// The 32-bit digest sent in a signature: `b` high, `a` low.
    pub fn digest(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// The weak digest of `block` in one go.
pub fn weak(block: &[u8]) -> u32 {
    Rolling::new(block).digest()
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `data`.
pub fn strong(data: &[u8]) -> u64 {
    Fnv::new().update(data).finish()
}

/// FNV-1a 64 fed in pieces (the whole file's check, computed as it streams).
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(FNV_OFFSET)
    }

    pub fn update(&mut self, data: &[u8]) -> &mut Fnv {
        for &x in data {
            self.0 = (self.0 ^ x as u64).wrapping_mul(FNV_PRIME);
        }
        self
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}
