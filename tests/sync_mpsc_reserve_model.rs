//! `mpsc::Sender::reserve_many`, `reserve`, `send`, cancels and drops against a randomized
//! model of the slot count (the hand-written cases are in `sync_mpsc_reserve.rs`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use overlap::sync::mpsc::{self, Permit, PermitIterator, SendError};

struct Flag(AtomicBool);
impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

type Fut<'a> =
    Pin<Box<dyn Future<Output = Result<Option<PermitIterator<'a, u32>>, SendError<()>>> + 'a>>;

struct Pending<'a> {
    fut: Fut<'a>,
    flag: Arc<Flag>,
    waker: Waker,
    n: usize,
}

fn rng(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Random reserves, batches, sends, cancels, drops, receives and a close, against a count
/// of the slots held: the capacity always adds up, the first waiter never fits while it
/// waits, nobody is ready without being woken, and every slot comes back at the end.
#[test]
fn random_reserves_and_releases_keep_the_count_and_wake_who_fits() {
    for seed in 1..2000u64 {
        run(seed);
    }
}

fn run(seed: u64) {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let cap = 1 + (rng(&mut s) % 5) as usize;
    let (tx, mut rx) = mpsc::channel::<u32>(cap);
    let mut pending: Vec<Pending<'_>> = Vec::new();
    let mut iters: Vec<PermitIterator<'_, u32>> = Vec::new();
    let mut permits: Vec<Permit<'_, u32>> = Vec::new();
    let mut log = Vec::new();
    for _ in 0..60 {
        let op = rng(&mut s) % 10;
        log.push(op);
        match op {
            0 | 1 => {
                let n = 1 + (rng(&mut s) % cap as u64) as usize;
                let flag = Arc::new(Flag(AtomicBool::new(false)));
                let waker = Waker::from(flag.clone());
                let mut fut: Fut<'_> = if op == 0 {
                    let f = tx.reserve_many(n);
                    Box::pin(async move { f.await.map(Some) })
                } else if n == 1 && rng(&mut s) % 2 == 0 {
                    let f = tx.send(7);
                    Box::pin(async move { f.await.map(|()| None).map_err(|_| SendError(())) })
                } else {
                    let f = tx.reserve();
                    Box::pin(async move {
                        f.await.map(|p| {
                            drop(p);
                            None
                        })
                    })
                };
                match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
                    Poll::Ready(r) => iters.extend(r.ok().flatten()),
                    Poll::Pending => pending.push(Pending {
                        fut,
                        flag,
                        waker,
                        n: if op == 0 { n } else { 1 },
                    }),
                }
            }
            2 => {
                let n = (rng(&mut s) % (cap as u64 + 1)) as usize;
                if let Ok(it) = tx.try_reserve_many(n) {
                    iters.push(it);
                }
            }
            3 if !pending.is_empty() => {
                let i = (rng(&mut s) % pending.len() as u64) as usize;
                pending.remove(i);
            }
            4 if !iters.is_empty() => {
                let i = (rng(&mut s) % iters.len() as u64) as usize;
                drop(iters.remove(i));
            }
            5 if !iters.is_empty() => {
                let i = (rng(&mut s) % iters.len() as u64) as usize;
                if let Some(p) = iters[i].next() {
                    permits.push(p);
                }
            }
            6 if !permits.is_empty() => {
                let i = (rng(&mut s) % permits.len() as u64) as usize;
                let p = permits.remove(i);
                if rng(&mut s) % 2 == 0 {
                    p.send(1);
                }
            }
            7 => {
                let _ = rx.try_recv();
            }
            8 => {
                let _ = tx.try_send(2);
            }
            9 if rng(&mut s) % 4 == 0 => {
                rx.close();
            }
            _ => {}
        }
        // Poll the woken ones, until none is woken.
        loop {
            let mut any = false;
            let mut i = 0;
            while i < pending.len() {
                if pending[i].flag.0.swap(false, Ordering::SeqCst) {
                    any = true;
                    let w = pending[i].waker.clone();
                    if let Poll::Ready(r) =
                        pending[i].fut.as_mut().poll(&mut Context::from_waker(&w))
                    {
                        iters.extend(r.ok().flatten());
                        pending.remove(i);
                        continue;
                    }
                }
                i += 1;
            }
            if !any {
                break;
            }
        }
        let held: usize = iters.iter().map(|i| i.len()).sum::<usize>() + permits.len();
        assert_eq!(
            tx.capacity(),
            cap - rx.len() - held,
            "seed {seed} cap {cap} ops {log:?}"
        );
        if rx.is_closed() {
            assert!(
                pending.is_empty(),
                "closed but a waiter left: seed {seed} ops {log:?}"
            );
        }
        if let Some(head) = pending.first() {
            assert!(
                tx.capacity() < head.n,
                "lost wake: seed {seed} cap {cap} ops {log:?}"
            );
        }
        // Nobody unwoken may be ready.
        for p in pending.iter_mut() {
            let noop = Waker::from(Arc::new(Flag(AtomicBool::new(false))));
            assert!(
                p.fut
                    .as_mut()
                    .poll(&mut Context::from_waker(&noop))
                    .is_pending(),
                "lost wake (ready unwoken): seed {seed} cap {cap} ops {log:?}"
            );
            let w = p.waker.clone();
            assert!(p
                .fut
                .as_mut()
                .poll(&mut Context::from_waker(&w))
                .is_pending());
        }
    }
    drop(pending);
    drop(iters);
    drop(permits);
    while rx.try_recv().is_ok() {}
    assert_eq!(tx.capacity(), cap, "seed {seed}");
    if rx.is_closed() {
        assert_eq!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected),
            "seed {seed}"
        );
    }
}
