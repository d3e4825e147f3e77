//! Randomized model-based test of `Semaphore`: acquire_many / try_acquire_many / drop of waiting
//! acquires at every stage / release / forget / add_permits / close, compared step by step with
//! a plain model of a strictly FIFO semaphore (the one its docs describe).

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use overlap::sync::{Acquire, Permit, Semaphore, TryAcquireError};
use support::{WakeCount as Count, XorShift as Rng};

#[derive(Clone, Copy, Debug, PartialEq)]
enum St {
    Unpolled,
    Waiting,
    Chosen,
    /// Woken by close, not chosen.
    ClosedOut,
}

struct Fut {
    acq: Pin<Box<Acquire<'static>>>,
    wanted: usize,
    st: St,
    wakes: Arc<Count>,
    /// Wakes expected so far.
    expect_wakes: usize,
}

struct Model {
    avail: usize,
    line: Vec<usize>,
    closed: bool,
}

fn run(seed: u64, total: usize, steps: usize) {
    let sem: &'static Semaphore = Box::leak(Box::new(Semaphore::new(total)));
    let mut rng = Rng(seed);
    let mut m = Model {
        avail: total,
        line: Vec::new(),
        closed: false,
    };
    let mut futs: HashMap<usize, Fut> = HashMap::new();
    let mut held: Vec<Permit<'static>> = Vec::new();
    let mut next_id = 0usize;
    let mut trace: Vec<String> = Vec::new();
    let mut added = 0usize;
    let mut forgotten = 0usize;

    // Hands out permits to the front of the line, as the docs promise.
    fn grant(m: &mut Model, futs: &mut HashMap<usize, Fut>) {
        while let Some(&first) = m.line.first() {
            let f = futs.get_mut(&first).unwrap();
            if f.wanted > m.avail {
                break;
            }
            m.avail -= f.wanted;
            f.st = St::Chosen;
            f.expect_wakes += 1;
            m.line.remove(0);
        }
    }

    for step in 0..steps {
        let op = rng.below(100);
        let ids: Vec<usize> = {
            let mut v: Vec<usize> = futs.keys().copied().collect();
            v.sort();
            v
        };
        match op {
            0..=24 => {
                let wanted = match rng.below(10) {
                    0 => 0,
                    1 => total + 1, // never satisfiable until closed
                    _ => 1 + rng.below(total as u64) as usize,
                };
                let wanted = if wanted > total && rng.below(4) != 0 {
                    total
                } else {
                    wanted
                };
                let id = next_id;
                next_id += 1;
                trace.push(format!("{step}: new #{id} wants {wanted}"));
                futs.insert(
                    id,
                    Fut {
                        acq: Box::pin(sem.acquire_many(wanted as u32)),
                        wanted,
                        st: St::Unpolled,
                        wakes: Arc::new(Count::default()),
                        expect_wakes: 0,
                    },
                );
            }
            25..=49 if !ids.is_empty() => {
                let id = ids[rng.below(ids.len() as u64) as usize];
                let f = futs.get_mut(&id).unwrap();
                trace.push(format!("{step}: poll #{id} ({:?})", f.st));
                let waker = Waker::from(f.wakes.clone());
                let res = f.acq.as_mut().poll(&mut Context::from_waker(&waker));
                let expect_ready: Option<bool> = match f.st {
                    St::Chosen => Some(true),
                    St::ClosedOut => Some(false),
                    St::Waiting if m.closed => Some(false),
                    St::Waiting => None,
                    St::Unpolled if m.closed => Some(false),
                    // Zero permits wait behind nobody (as on tokio).
                    St::Unpolled if (f.wanted == 0 || m.line.is_empty()) && m.avail >= f.wanted => {
                        m.avail -= f.wanted;
                        Some(true)
                    }
                    St::Unpolled => {
                        m.line.push(id);
                        f.st = St::Waiting;
                        None
                    }
                };
                match (res, expect_ready) {
                    (Poll::Ready(Ok(p)), Some(true)) => {
                        assert_eq!(p.num_permits(), f.wanted);
                        held.push(p);
                        futs.remove(&id);
                    }
                    (Poll::Ready(Err(_)), Some(false)) => {
                        futs.remove(&id);
                    }
                    (Poll::Pending, None) => {}
                    (r, e) => panic!(
                        "seed {seed}: poll #{id}: got {:?}, model expected {:?}\n{}",
                        r.map(|r| r.map(|p| p.num_permits())),
                        e,
                        trace.join("\n")
                    ),
                }
            }
            50..=62 if !ids.is_empty() => {
                let id = ids[rng.below(ids.len() as u64) as usize];
                let f = futs.remove(&id).unwrap();
                trace.push(format!("{step}: drop #{id} ({:?})", f.st));
                match f.st {
                    St::Unpolled | St::ClosedOut => {}
                    St::Waiting => {
                        if !m.closed {
                            m.line.retain(|&x| x != id);
                            grant(&mut m, &mut futs);
                        }
                    }
                    St::Chosen => {
                        m.avail += f.wanted;
                        grant(&mut m, &mut futs);
                    }
                }
                drop(f);
            }
            63..=80 if !held.is_empty() => {
                let i = rng.below(held.len() as u64) as usize;
                let p = held.swap_remove(i);
                let n = p.num_permits();
                if rng.below(8) == 0 {
                    trace.push(format!("{step}: forget permit of {n}"));
                    p.forget();
                    forgotten += n;
                } else {
                    trace.push(format!("{step}: release permit of {n}"));
                    drop(p);
                    m.avail += n;
                    grant(&mut m, &mut futs);
                }
            }
            81..=90 => {
                let n = rng.below(total as u64 + 1) as usize;
                let r = sem.try_acquire_many(n as u32);
                trace.push(format!(
                    "{step}: try_acquire_many({n}) -> {:?}",
                    r.as_ref().map(|p| p.num_permits())
                ));
                let expect = if m.closed {
                    Err(TryAcquireError::Closed)
                } else if (n > 0 && !m.line.is_empty()) || m.avail < n {
                    Err(TryAcquireError::NoPermits)
                } else {
                    m.avail -= n;
                    Ok(n)
                };
                match (r, expect) {
                    (Ok(p), Ok(n)) => {
                        assert_eq!(p.num_permits(), n);
                        held.push(p);
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b, "seed {seed}\n{}", trace.join("\n")),
                    (r, e) => panic!(
                        "seed {seed}: try_acquire_many: got {:?}, expected {:?}\n{}",
                        r.map(|p| p.num_permits()),
                        e,
                        trace.join("\n")
                    ),
                }
            }
            91..=94 => {
                let n = rng.below(3) as usize;
                trace.push(format!("{step}: add_permits({n})"));
                sem.add_permits(n);
                added += n;
                m.avail += n;
                grant(&mut m, &mut futs);
            }
            95 if step > steps * 9 / 10 && !m.closed => {
                trace.push(format!("{step}: close"));
                sem.close();
                m.closed = true;
                for id in m.line.drain(..) {
                    let f = futs.get_mut(&id).unwrap();
                    f.st = St::ClosedOut;
                    f.expect_wakes += 1;
                }
            }
            _ => {}
        }
        // Compare with the model.
        // While anyone waits in line, the free permits are set aside for it (as on tokio).
        let reported = if m.line.is_empty() { m.avail } else { 0 };
        assert_eq!(
            sem.available_permits(),
            reported,
            "seed {seed}: available permits differ from the model\n{}",
            trace.join("\n")
        );
        for (id, f) in &futs {
            assert_eq!(
                f.wakes.0.load(Ordering::SeqCst),
                f.expect_wakes,
                "seed {seed}: #{id} ({:?}) woken a wrong number of times\n{}",
                f.st,
                trace.join("\n")
            );
        }
    }
    // Everything goes back: no permit lost.
    drop(held);
    drop(futs);
    assert_eq!(
        sem.available_permits(),
        total + added - forgotten,
        "seed {seed}: permits lost or made up\n{}",
        trace.join("\n")
    );
}

#[test]
fn semaphore_matches_a_fifo_model() {
    let n: u64 = std::env::var("AUDIT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 1..=n {
        let total = 1 + (seed % 5) as usize;
        run(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, total, 400);
    }
}

/// Conservation with real tasks: many tasks acquire random counts under random timeouts
/// (cancelling waits at random points), hold across yields, and release. At the end every
/// permit is back and nobody hung.
#[test]
fn permits_are_conserved_under_random_cancellation_with_tasks() {
    use std::rc::Rc;
    use std::time::Duration;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        if !d.load(Ordering::SeqCst) {
            eprintln!("watchdog: hung");
            std::process::abort();
        }
    });
    overlap::block_on(async {
        let total = 4usize;
        let sem = Rc::new(Semaphore::new(total));
        let mut set = overlap::JoinSet::new();
        for t in 0..40u64 {
            let sem = sem.clone();
            set.spawn(async move {
                let mut rng = Rng((t + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                for _ in 0..200 {
                    let n = 1 + rng.below(total as u64) as u32;
                    let acq = sem.clone().acquire_many_owned(n);
                    let r = match rng.below(3) {
                        0 => acq.await.ok(),
                        1 => overlap::time::timeout(Duration::from_micros(rng.below(300)), acq)
                            .await
                            .ok()
                            .and_then(Result::ok),
                        _ => {
                            // cancel after a few yields
                            let mut acq = Box::pin(acq);
                            let mut got = None;
                            for _ in 0..rng.below(4) {
                                if let Poll::Ready(p) = futures_util::poll!(acq.as_mut()) {
                                    got = p.ok();
                                    break;
                                }
                                overlap::yield_now().await;
                            }
                            got
                        }
                    };
                    if let Some(p) = r {
                        assert_eq!(p.num_permits(), n as usize);
                        for _ in 0..rng.below(3) {
                            overlap::yield_now().await;
                        }
                        drop(p);
                    }
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        assert_eq!(sem.available_permits(), total);
    });
    done.store(true, Ordering::SeqCst);
}
