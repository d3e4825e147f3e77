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
use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::task::Waker;

/// Round trips per run.
const TRIPS: u64 = 100_000;

/// A task's future, boxed so one `spawn` closure takes both.
type Task = std::pin::Pin<Box<dyn Future<Output = u64> + Send>>;

/// Two tasks made by `spawn` bounce a counter `TRIPS` times; `spawn` starts the task at
/// once and returns a future of its output.
async fn ping_pong<J: Future<Output = u64>>(spawn: impl Fn(Task) -> J) {
    let (mut to_b, mut from_a) = futures::channel::mpsc::channel::<u64>(1);
    let (mut to_a, mut from_b) = futures::channel::mpsc::channel::<u64>(1);
    let b = spawn(Box::pin(async move {
        while let Some(v) = from_a.next().await {
            to_a.send(v + 1).await.unwrap();
        }
        0
    }));
    let a = spawn(Box::pin(async move {
        let mut v = 0;
        for _ in 0..TRIPS {
            to_b.send(v).await.unwrap();
            v = from_b.next().await.unwrap();
        }
        v
    }));
    assert_eq!(a.await, TRIPS);
    b.await;
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    match which.as_str() {
        "overlap" => {
            overlap::block_on(ping_pong(|f| {
                let h = overlap::spawn(f);
                async move { h.await.unwrap() }
            }));
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(ping_pong(|f| {
                let h = tokio::spawn(f);
                async move { h.await.unwrap() }
            }));
        }
        "floor" => {
            let (mut to_b, mut from_a) = futures::channel::mpsc::channel::<u64>(1);
            let (mut to_a, mut from_b) = futures::channel::mpsc::channel::<u64>(1);
            let mut b = std::pin::pin!(async move {
                while let Some(v) = from_a.next().await {
                    to_a.send(v + 1).await.unwrap();
                }
            });
            let mut a = std::pin::pin!(async move {
                let mut v = 0;
                for _ in 0..TRIPS {
                    to_b.send(v).await.unwrap();
                    v = from_b.next().await.unwrap();
                }
                v
            });
            let mut cx = std::task::Context::from_waker(Waker::noop());
            loop {
                if a.as_mut().poll(&mut cx).is_ready() {
                    break;
                }
                let _ = b.as_mut().poll(&mut cx);
            }
        }
        other => panic!("usage: pingpong_callgrind floor|overlap|tokio (got {other:?})"),
    }
}
