//! The smaller idioms: a `select!` inside a `macro_rules!` taking `$fut:expr`, inside a
//! generic async fn over `F: Future`, a future that counts its polls and its drop, and a
//! peer writing a stream of numbered bytes in uneven pieces.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use overlap::io::{AsyncWrite, AsyncWriteExt};
use overlap::time;

/// tokio's docs' timeout shape, as a user's macro: `$fut` is moved in, as in tokio.
#[macro_export]
macro_rules! within_ms {
    ($ms:expr, $fut:expr) => {
        overlap::select! {
            v = $fut => Some(v),
            _ = overlap::time::sleep(std::time::Duration::from_millis($ms)) => None,
        }
    };
}

/// The same in a generic fn: tokio's reads `v = fut =>`; overlap's borrows a future given
/// by name and `F` need not be `Unpin`, so `{ fut }` moves it in.
pub async fn first_or_none<F: Future>(fut: F, ms: u64) -> Option<F::Output> {
    overlap::select! {
        v = { fut } => Some(v),
        _ = time::sleep(Duration::from_millis(ms)) => None,
    }
}

/// The same with the future pinned first, as tokio's docs pin one to reuse it.
pub async fn first_or_none_pinned<F: Future>(fut: F, ms: u64) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    overlap::select! {
        v = &mut fut => Some(v),
        _ = time::sleep(Duration::from_millis(ms)) => None,
    }
}

/// A future that is ready after `after` polls (never if `None`), counting its polls and
/// recording its drop.
#[derive(Debug)]
pub struct Watched {
    after: Option<u32>,
    pub polls: Rc<Cell<u32>>,
    pub dropped: Rc<Cell<bool>>,
}

impl Watched {
    pub fn new(after: Option<u32>) -> Watched {
        Watched {
            after,
            polls: Rc::new(Cell::new(0)),
            dropped: Rc::new(Cell::new(false)),
        }
    }
}

impl Future for Watched {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let n = self.polls.get() + 1;
        self.polls.set(n);
        match self.after {
            Some(after) if n >= after => Poll::Ready(n),
            _ => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.dropped.set(true);
    }
}

/// Writes `total` bytes (byte `i` is `i % 251`) in pieces of 1 to 97 bytes, now and then
/// pausing 1 to 2 ms, so that a reader's timer wins some rounds and its read others.
pub async fn write_numbered<W: AsyncWrite + Unpin>(mut w: W, total: usize) {
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let mut at = 0;
    let mut step = 0usize;
    while at < total {
        step += 1;
        let n = (step * 37 % 97 + 1).min(total - at);
        w.write_all(&data[at..at + n]).await.unwrap();
        at += n;
        if step % 7 == 0 {
            time::sleep(Duration::from_millis(1 + (step % 2) as u64)).await;
        } else {
            overlap::task::yield_now().await;
        }
    }
    w.close().await.unwrap();
}
