//! overlap-net: see the `overlap` crate.
