//! I/O helpers beyond what `futures-util` offers; the facade's `overlap::io` re-exports them
//! next to futures-util's traits.

mod copy_bidirectional;
mod duplex;
mod stdio;

pub use copy_bidirectional::copy_bidirectional;
pub use duplex::{duplex, DuplexStream};
pub use stdio::{stderr, stdin, stdout, Stderr, Stdin, Stdout};
