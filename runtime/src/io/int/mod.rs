//! tokio's number helpers for binary protocols (`read_u32`, `write_u16_le`, …) as two
//! extension traits over futures-io, with one table of the types behind both.

/// Calls `$method!` with one row per method pair: the type, its width, the byte order in
/// words, the read and write method names, and the `from_*_bytes`/`to_*_bytes` functions.
/// One-byte types have no `_le` twin, as in tokio.
macro_rules! for_each_number {
    ($method:ident) => {
        $method! {
            u8, 1, "", read_u8, write_u8, from_be_bytes, to_be_bytes;
            i8, 1, "", read_i8, write_i8, from_be_bytes, to_be_bytes;
            u16, 2, "big-endian ", read_u16, write_u16, from_be_bytes, to_be_bytes;
            u16, 2, "little-endian ", read_u16_le, write_u16_le, from_le_bytes, to_le_bytes;
            i16, 2, "big-endian ", read_i16, write_i16, from_be_bytes, to_be_bytes;
            i16, 2, "little-endian ", read_i16_le, write_i16_le, from_le_bytes, to_le_bytes;
            u32, 4, "big-endian ", read_u32, write_u32, from_be_bytes, to_be_bytes;
            u32, 4, "little-endian ", read_u32_le, write_u32_le, from_le_bytes, to_le_bytes;
            i32, 4, "big-endian ", read_i32, write_i32, from_be_bytes, to_be_bytes;
            i32, 4, "little-endian ", read_i32_le, write_i32_le, from_le_bytes, to_le_bytes;
            u64, 8, "big-endian ", read_u64, write_u64, from_be_bytes, to_be_bytes;
            u64, 8, "little-endian ", read_u64_le, write_u64_le, from_le_bytes, to_le_bytes;
            i64, 8, "big-endian ", read_i64, write_i64, from_be_bytes, to_be_bytes;
            i64, 8, "little-endian ", read_i64_le, write_i64_le, from_le_bytes, to_le_bytes;
            u128, 16, "big-endian ", read_u128, write_u128, from_be_bytes, to_be_bytes;
            u128, 16, "little-endian ", read_u128_le, write_u128_le, from_le_bytes, to_le_bytes;
            i128, 16, "big-endian ", read_i128, write_i128, from_be_bytes, to_be_bytes;
            i128, 16, "little-endian ", read_i128_le, write_i128_le, from_le_bytes, to_le_bytes;
            f32, 4, "big-endian ", read_f32, write_f32, from_be_bytes, to_be_bytes;
            f32, 4, "little-endian ", read_f32_le, write_f32_le, from_le_bytes, to_le_bytes;
            f64, 8, "big-endian ", read_f64, write_f64, from_be_bytes, to_be_bytes;
            f64, 8, "little-endian ", read_f64_le, write_f64_le, from_le_bytes, to_le_bytes;
        }
    };
}

mod read;
mod write;

pub use read::{AsyncReadIntExt, ReadInt};
pub use write::{AsyncWriteIntExt, WriteInt};
