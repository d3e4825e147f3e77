//! Cutting an operation short at a random point, and the checks every actor shares.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use overlap::future::{select, Either};

use crate::support::Rng;

thread_local! {
    /// The seed being run, for failure messages.
    static SEED: Cell<u64> = const { Cell::new(0) };
}

/// Records the seed that the failure messages name.
pub fn set_seed(seed: u64) {
    SEED.with(|s| s.set(seed));
}

/// The seed being run.
pub fn seed() -> u64 {
    SEED.with(|s| s.get())
}

/// How an operation may be cut short (its future dropped before it completes).
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    /// Runs to completion.
    Never,
    /// Dropped once it has returned `Pending` this many times (at least once).
    AfterPending(u32),
    /// Raced against a branch that wins after this many yields to the loop; `lose_first`
    /// looks at that branch first, so an operation already woken with its result still
    /// loses (a `select!` picking its branch at random).
    Race { turns: u32, lose_first: bool },
    /// `time::timeout` with this duration.
    Timeout(Duration),
}

/// A random cut: a third of the operations run to completion.
pub fn pick(rng: &mut Rng) -> Cut {
    const SHORT: [Duration; 5] = [
        Duration::ZERO,
        Duration::from_micros(1),
        Duration::from_micros(200),
        Duration::from_millis(1),
        Duration::from_millis(4),
    ];
    match rng.below(9) {
        0..=2 => Cut::Never,
        3 | 4 => Cut::AfterPending(1 + rng.below(3) as u32),
        5 | 6 => Cut::Race {
            turns: rng.below(4) as u32,
            lose_first: rng.below(2) == 0,
        },
        _ => Cut::Timeout(SHORT[rng.below(SHORT.len())]),
    }
}

/// Runs `fut` under `how`: its output, or `None` if it was cut (and dropped).
pub async fn cut<F: Future>(how: Cut, fut: F) -> Option<F::Output> {
    match how {
        Cut::Never => Some(fut.await),
        Cut::AfterPending(n) => {
            let mut fut = pin!(fut);
            let mut left = n;
            poll_fn(|cx| match fut.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Some(out)),
                Poll::Pending if left <= 1 => Poll::Ready(None),
                Poll::Pending => {
                    left -= 1;
                    Poll::Pending
                }
            })
            .await
        }
        Cut::Race { turns, lose_first } => {
            let lose = pin!(async {
                for _ in 0..turns {
                    overlap::yield_now().await;
                }
            });
            if lose_first {
                match select(lose, pin!(fut)).await {
                    Either::Left(_) => None,
                    Either::Right((out, _)) => Some(out),
                }
            } else {
                match select(pin!(fut), lose).await {
                    Either::Left((out, _)) => Some(out),
                    Either::Right(_) => None,
                }
            }
        }
        Cut::Timeout(d) => overlap::time::timeout(d, fut).await.ok(),
    }
}

/// A random pause: nothing, a few yields, or a short sleep.
pub async fn pause(rng: &mut Rng) {
    match rng.below(6) {
        0 | 1 => {}
        2..=4 => {
            for _ in 0..rng.below(4) {
                overlap::yield_now().await;
            }
        }
        _ => overlap::time::sleep(Duration::from_micros(rng.below(3000) as u64)).await,
    }
}

/// Fails unless `e` is an error a caller can act on: never `WouldBlock` or `Interrupted`,
/// which the library retries itself.
pub fn clear(what: &str, e: &io::Error) {
    assert!(
        !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
        "seed {}: {what} surfaced {e:?}",
        seed()
    );
}

/// Whether `e` says the peer went away (as after its task was aborted).
pub fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

/// Sets its flag when dropped: how a task's state tells that the task ended, however it
/// ended (an abort drops its future).
pub struct SetOnDrop<'a>(pub &'a Cell<bool>);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(true);
    }
}
