//! The `futures::channel::mpsc(1)` ping-pong alone, for an instruction count that machine
//! noise cannot move (wall times on these shared VMs swing by half):
//!
//! ```sh
//! cargo build --release -p overlap-benches --bin pingpong_callgrind
//! for rt in floor overlap tokio; do
//!     valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$rt \
//!         target/release/pingpong_callgrind $rt 2>&1 | grep refs
//! done
//! ```
//!
//! Divide by the 100,000 round trips. `floor` polls both futures by hand with a no-op
//! waker: the channel's own cost, which no executor can go below.

use overlap_benches::ping_pong::{ping_pong_by_hand, ping_pong_tasks};

/// Round trips per run.
const TRIPS: u64 = 100_000;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    match which.as_str() {
        "overlap" => overlap::block_on(async {
            let (echo, driver) = ping_pong_tasks(TRIPS);
            let echo = overlap::spawn(echo);
            let driver = overlap::spawn(driver);
            assert_eq!(driver.await.unwrap(), TRIPS);
            echo.await.unwrap();
        }),
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                let (echo, driver) = ping_pong_tasks(TRIPS);
                let echo = tokio::spawn(echo);
                let driver = tokio::spawn(driver);
                assert_eq!(driver.await.unwrap(), TRIPS);
                echo.await.unwrap();
            });
        }
        "floor" => ping_pong_by_hand(TRIPS),
        other => panic!("usage: pingpong_callgrind floor|overlap|tokio (got {other:?})"),
    }
}
