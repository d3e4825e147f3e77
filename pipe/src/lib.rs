//! overlap-pipe: see the `overlap` crate.
