//! Profiling driver: overlap's mpsc ping-pong only (for perf / callgrind).
use futures::{SinkExt, StreamExt};
fn main() {
    let trips: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let rt = overlap::Runtime::new().unwrap();
    let t = std::time::Instant::now();
    rt.block_on(async {
        let (mut to_b, mut from_a) = futures::channel::mpsc::channel::<u64>(1);
        let (mut to_a, mut from_b) = futures::channel::mpsc::channel::<u64>(1);
        let b = overlap::spawn(async move {
            while let Some(v) = from_a.next().await {
                to_a.send(v + 1).await.unwrap();
            }
        });
        let a = overlap::spawn(async move {
            let mut v = 0;
            for _ in 0..trips {
                to_b.send(v).await.unwrap();
                v = from_b.next().await.unwrap();
            }
            v
        });
        assert_eq!(a.await.unwrap(), trips);
        b.await.unwrap();
    });
    println!(
        "{:.1} ns/trip {:?}",
        t.elapsed().as_nanos() as f64 / trips as f64,
        rt.metrics()
    );
}
