//! A consumer's `select!` loop: each message of a channel (64 deep, fed by another task)
//! raced against an idle timer kept across the loop by `&mut`, the shape of most
//! connection loops. Each runtime's channel, timer and macro: overlap's `select!`, tokio's,
//! and futures-util's on smol (which has none), plus futures-util's on overlap, the macro
//! `overlap::select!` was before it had its own.

use std::time::Duration;

use futures_util::FutureExt;

use crate::executors::{Exec, Smol, Tokio};
use crate::time;

/// How long the idle timer waits: never reached.
const IDLE: Duration = Duration::from_secs(3600);

/// overlap's `select!`, with tokio's syntax.
pub fn overlap_select(n: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    time(|| {
        rt.block_on(async {
            let (tx, mut rx) = overlap::sync::mpsc::channel(64);
            overlap::spawn(async move {
                for i in 0..n {
                    tx.send(i).await.unwrap();
                }
            });
            let mut idle = std::pin::pin!(overlap::time::sleep(IDLE));
            let mut sum = 0u64;
            loop {
                overlap::select! {
                    v = rx.recv() => match v {
                        Some(v) => sum += v,
                        None => break,
                    },
                    () = &mut idle => panic!("idle"),
                }
            }
            assert_eq!(sum, n * (n - 1) / 2);
        })
    })
}

/// futures-util's `select!` on overlap, as `overlap::select!` was.
pub fn futures_select_on_overlap(n: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    time(|| {
        rt.block_on(async {
            let (tx, mut rx) = overlap::sync::mpsc::channel(64);
            overlap::spawn(async move {
                for i in 0..n {
                    tx.send(i).await.unwrap();
                }
            });
            let mut idle = std::pin::pin!(overlap::time::sleep(IDLE));
            let mut sum = 0u64;
            loop {
                futures_util::select! {
                    v = rx.recv().fuse() => match v {
                        Some(v) => sum += v,
                        None => break,
                    },
                    () = idle => panic!("idle"),
                }
            }
            assert_eq!(sum, n * (n - 1) / 2);
        })
    })
}

/// tokio's `select!` on tokio's current-thread runtime.
pub fn tokio_select(n: u64) -> Duration {
    let rt = Tokio::new().0;
    time(|| {
        rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(64);
            tokio::spawn(async move {
                for i in 0..n {
                    tx.send(i).await.unwrap();
                }
            });
            let mut idle = std::pin::pin!(tokio::time::sleep(IDLE));
            let mut sum = 0u64;
            loop {
                tokio::select! {
                    v = rx.recv() => match v {
                        Some(v) => sum += v,
                        None => break,
                    },
                    () = &mut idle => panic!("idle"),
                }
            }
            assert_eq!(sum, n * (n - 1) / 2);
        })
    })
}

/// futures-util's `select!` on smol, with async-channel and async-io's timer.
pub fn smol_select(n: u64) -> Duration {
    let ex = Smol::new();
    time(|| {
        ex.block_on(async {
            let (tx, rx) = async_channel::bounded(64);
            ex.spawn_detached(async move {
                for i in 0..n {
                    tx.send(i).await.unwrap();
                }
            });
            let mut idle = std::pin::pin!(FutureExt::fuse(async_io::Timer::after(IDLE)));
            let mut sum = 0u64;
            loop {
                futures_util::select! {
                    v = rx.recv().fuse() => match v {
                        Ok(v) => sum += v,
                        Err(_) => break,
                    },
                    _ = idle => panic!("idle"),
                }
            }
            assert_eq!(sum, n * (n - 1) / 2);
        })
    })
}
