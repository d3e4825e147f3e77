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

/// One run: a task sends `0..n` into the runtime's channel (64 deep), and the consumer
/// runs `$body` in a loop with the receiver, the pinned idle timer and the sum in scope,
/// until `$body` breaks; the sum is checked after.
macro_rules! consumer_loop {
    (
        $block_on:expr, $channel:expr, $spawn:expr, $sleep:expr, $n:expr,
        |$rx:ident, $idle:ident, $sum:ident| $body:block
    ) => {{
        let n: u64 = $n;
        time(|| {
            $block_on(async {
                #[allow(unused_mut)]
                let (tx, mut $rx) = $channel;
                $spawn(async move {
                    for i in 0..n {
                        tx.send(i).await.unwrap();
                    }
                });
                let mut $idle = std::pin::pin!($sleep);
                let mut $sum = 0u64;
                loop $body
                assert_eq!($sum, n * (n - 1) / 2);
            })
        })
    }};
}

/// overlap's `select!`, with tokio's syntax.
pub fn overlap_select(n: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    consumer_loop!(
        |f| rt.block_on(f),
        overlap::sync::mpsc::channel(64),
        overlap::spawn,
        overlap::time::sleep(IDLE),
        n,
        |rx, idle, sum| {
            overlap::select! {
                v = rx.recv() => match v {
                    Some(v) => sum += v,
                    None => break,
                },
                () = &mut idle => panic!("idle"),
            }
        }
    )
}

/// futures-util's `select!` on overlap, as `overlap::select!` was.
pub fn futures_select_on_overlap(n: u64) -> Duration {
    let rt = overlap::Runtime::new().unwrap();
    consumer_loop!(
        |f| rt.block_on(f),
        overlap::sync::mpsc::channel(64),
        overlap::spawn,
        overlap::time::sleep(IDLE),
        n,
        |rx, idle, sum| {
            futures_util::select! {
                v = rx.recv().fuse() => match v {
                    Some(v) => sum += v,
                    None => break,
                },
                () = idle => panic!("idle"),
            }
        }
    )
}

/// tokio's `select!` on tokio's current-thread runtime.
pub fn tokio_select(n: u64) -> Duration {
    let rt = Tokio::new().0;
    consumer_loop!(
        |f| rt.block_on(f),
        tokio::sync::mpsc::channel(64),
        tokio::spawn,
        tokio::time::sleep(IDLE),
        n,
        |rx, idle, sum| {
            tokio::select! {
                v = rx.recv() => match v {
                    Some(v) => sum += v,
                    None => break,
                },
                () = &mut idle => panic!("idle"),
            }
        }
    )
}

/// futures-util's `select!` on smol, with async-channel and async-io's timer.
pub fn smol_select(n: u64) -> Duration {
    let ex = Smol::new();
    consumer_loop!(
        |f| ex.block_on(f),
        async_channel::bounded(64),
        |f| ex.spawn_detached(f),
        FutureExt::fuse(async_io::Timer::after(IDLE)),
        n,
        |rx, idle, sum| {
            futures_util::select! {
                v = rx.recv().fuse() => match v {
                    Ok(v) => sum += v,
                    Err(_) => break,
                },
                _ = idle => panic!("idle"),
            }
        }
    )
}
