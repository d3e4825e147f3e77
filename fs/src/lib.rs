//! overlap-fs: see the `overlap` crate.
