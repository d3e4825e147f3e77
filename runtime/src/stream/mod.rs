//! What tokio-stream adds to streams: [`StreamMap`], the timer adapters of
//! [`StreamTimeExt`] (`timeout`, `timeout_repeating`, `throttle`, `chunks_timeout`, and
//! `merge` and `map_while`, which need no timer but futures-util lacks too), and the
//! [`wrappers`] that make the channels streams. The facade's `overlap::stream` puts them
//! beside futures-util's combinators.

mod merge;
mod stream_map;
mod time_adapters;
pub mod wrappers;

pub use merge::{MapWhile, Merge};
pub use stream_map::{random_below, StreamMap};
pub use time_adapters::{ChunksTimeout, StreamTimeExt, Throttle, Timeout, TimeoutRepeating};
