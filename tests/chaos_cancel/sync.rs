//! `overlap::sync` and `spawn_blocking` under cuts and aborts: a bounded channel whose
//! cut sends deliver nothing and whose cut receives lose nothing, a mutex and a semaphore
//! never over-granted and whole again at the end, a `Notify` handshake whose notifications
//! survive cut waits, and blocking jobs whose results come back right or not at all.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use overlap::sync::{mpsc, Mutex, Notify, Semaphore};
use overlap::{AbortHandle, JoinHandle};

use crate::cut::{cut, pause, pick, seed};
use crate::support::Rng;

/// Tasks the monkey may abort, and the tasks to wait for, by name.
#[derive(Default)]
pub struct Tasks {
    pub abortable: Vec<AbortHandle>,
    pub all: Vec<(String, JoinHandle<()>)>,
}

impl Tasks {
    /// Spawns `fut` as a task named `what`; `abortable` lets the monkey abort it.
    pub fn spawn(
        &mut self,
        what: String,
        abortable: bool,
        fut: impl std::future::Future<Output = ()> + 'static,
    ) {
        let task = overlap::spawn(fut);
        if abortable {
            self.abortable.push(task.abort_handle());
        }
        self.all.push((what, task));
    }
}

/// Senders of a bounded channel, each sending its numbers in order through cut sends, and
/// a receiver through cut receives, which checks what it got once the channel closes.
pub fn channel(rng: &mut Rng, tasks: &mut Tasks) {
    let (tx, mut rx) = mpsc::channel::<(usize, u32)>(1 + rng.below(3));
    let senders = 1 + rng.below(3);
    let sent: Rc<Vec<RefCell<Vec<u32>>>> =
        Rc::new((0..senders).map(|_| RefCell::default()).collect());
    for s in 0..senders {
        let (tx, sent, mut rng) = (tx.clone(), sent.clone(), Rng(rng.next() | 1));
        tasks.spawn(format!("mpsc sender {s}"), true, async move {
            for n in 0..rng.below(50) as u32 {
                if rng.below(3) == 0 {
                    // A reserved slot, held a while (maybe through an abort) before use.
                    match cut(pick(&mut rng), tx.reserve()).await {
                        Some(Ok(permit)) => {
                            pause(&mut rng).await;
                            permit.send((s, n));
                            sent[s].borrow_mut().push(n);
                        }
                        Some(Err(_)) => panic!("seed {}: mpsc: receiver gone", seed()),
                        None => {}
                    }
                } else {
                    match cut(pick(&mut rng), tx.send((s, n))).await {
                        Some(Ok(())) => sent[s].borrow_mut().push(n),
                        Some(Err(_)) => panic!("seed {}: mpsc: receiver gone", seed()),
                        None => {}
                    }
                }
                pause(&mut rng).await;
            }
        });
    }
    drop(tx);
    let mut rrng = Rng(rng.next() | 1);
    tasks.spawn("mpsc receiver".into(), false, async move {
        let mut got: Vec<Vec<u32>> = vec![Vec::new(); senders];
        loop {
            match cut(pick(&mut rrng), rx.recv()).await {
                Some(Some((s, n))) => {
                    assert!(
                        sent[s].borrow().contains(&n) && got[s].last().is_none_or(|&l| l < n),
                        "seed {}: mpsc: got {n} from sender {s}, which sent {:?}, after {:?}",
                        seed(),
                        sent[s].borrow(),
                        got[s]
                    );
                    got[s].push(n);
                }
                Some(None) => break,
                None => pause(&mut rrng).await,
            }
        }
        for s in 0..senders {
            assert_eq!(
                got[s],
                *sent[s].borrow(),
                "seed {}: mpsc: sender {s} lost values",
                seed()
            );
        }
    });
}

/// Tasks taking a mutex and semaphore permits through cut waits (maybe aborted while they
/// hold them): never more holders than allowed, and everything free again at the end.
pub fn locks(rng: &mut Rng, tasks: &mut Tasks) -> impl FnOnce() {
    let permits = 1 + rng.below(4);
    let lock = Rc::new(Mutex::new(0u32));
    let sem = Rc::new(Semaphore::new(permits));
    let held = Rc::new(Cell::new(0usize));
    let in_lock = Rc::new(Cell::new(false));
    for i in 0..1 + rng.below(5) {
        let (lock, sem, held, in_lock) = (lock.clone(), sem.clone(), held.clone(), in_lock.clone());
        let mut rng = Rng(rng.next() | 1);
        tasks.spawn(format!("lock user {i}"), true, async move {
            for _ in 0..rng.below(20) {
                if rng.below(2) == 0 {
                    if let Some(mut guard) = cut(pick(&mut rng), lock.lock()).await {
                        assert!(!in_lock.get(), "seed {}: two mutex holders", seed());
                        in_lock.set(true);
                        let _out = Releases(&in_lock, 0, &held);
                        *guard += 1;
                        pause(&mut rng).await;
                    }
                } else {
                    let n = 1 + rng.below(permits);
                    if let Some(permit) = cut(pick(&mut rng), sem.acquire_many(n as u32)).await {
                        let _permit = permit.unwrap();
                        held.set(held.get() + n);
                        assert!(
                            held.get() <= permits,
                            "seed {}: semaphore over-granted",
                            seed()
                        );
                        let _out = Releases(&in_lock, n, &held);
                        pause(&mut rng).await;
                    }
                }
                pause(&mut rng).await;
            }
        });
    }
    move || {
        assert_eq!(
            sem.available_permits(),
            permits,
            "seed {}: permits lost",
            seed()
        );
        assert!(
            lock.try_lock().is_ok(),
            "seed {}: mutex left locked",
            seed()
        );
    }
}

/// Gives back what a lock user holds however its task ends: `n` semaphore permits, or
/// (with `n == 0`) the mutex.
struct Releases<'a>(&'a Cell<bool>, usize, &'a Cell<usize>);

impl Drop for Releases<'_> {
    fn drop(&mut self) {
        if self.1 == 0 {
            self.0.set(false);
        } else {
            self.2.set(self.2.get() - self.1);
        }
    }
}

/// A `Notify` handshake: each `notify_one` must reach the waiter, whose waits are cut at
/// random (a cut wait that was notified passes the notification on).
pub fn handshake(rng: &mut Rng, tasks: &mut Tasks) {
    let rounds = rng.below(20);
    let bell = Rc::new(Notify::new());
    let (ack_tx, mut ack_rx) = mpsc::channel::<()>(1);
    let mut wrng = Rng(rng.next() | 1);
    let bell2 = bell.clone();
    tasks.spawn("notify waiter".into(), false, async move {
        let mut heard = 0;
        while heard < rounds {
            if cut(pick(&mut wrng), bell2.notified()).await.is_some() {
                heard += 1;
                ack_tx.send(()).await.unwrap();
            }
        }
    });
    let mut nrng = Rng(rng.next() | 1);
    tasks.spawn("notifier".into(), false, async move {
        for _ in 0..rounds {
            pause(&mut nrng).await;
            bell.notify_one();
            ack_rx.recv().await.expect("the waiter ended early");
        }
    });
}

/// Blocking jobs awaited through cut waits, some aborted: a result that comes is right.
pub fn blocking(rng: &mut Rng, tasks: &mut Tasks) {
    for i in 0..rng.below(4) {
        let mut rng = Rng(rng.next() | 1);
        tasks.spawn(format!("blocking {i}"), true, async move {
            let x = rng.next();
            let job = overlap::spawn_blocking(move || x.wrapping_mul(3));
            if rng.below(3) == 0 {
                job.abort();
                match job.await {
                    Ok(v) => assert_eq!(v, x.wrapping_mul(3), "seed {}", seed()),
                    Err(e) => assert!(e.is_cancelled(), "seed {}: {e:?}", seed()),
                }
                return;
            }
            let mut job = job;
            loop {
                match cut(pick(&mut rng), &mut job).await {
                    Some(v) => {
                        assert_eq!(v.unwrap(), x.wrapping_mul(3), "seed {}", seed());
                        return;
                    }
                    None => pause(&mut rng).await,
                }
            }
        });
    }
}

/// Aborts up to `n` of the abortable tasks, each after a random pause.
pub async fn monkey(handles: Vec<AbortHandle>, n: usize, mut rng: Rng) {
    if handles.is_empty() {
        return;
    }
    for _ in 0..n {
        for _ in 0..rng.below(6) {
            pause(&mut rng).await;
        }
        let handle = handles[rng.below(handles.len())].clone();
        if rng.below(2) == 0 {
            handle.abort();
        } else {
            // From another thread: the abort reaches the loop as a remote wake.
            overlap::spawn_blocking(move || handle.abort())
                .await
                .unwrap();
        }
    }
}

/// A `cross_thread` channel each way between a task and a pool thread: the task's cut
/// receives lose nothing, its cut sends deliver nothing. Real clock only: a paused clock
/// stands still while a pool job runs, and these jobs wait for the tasks.
pub fn cross_thread(rng: &mut Rng, tasks: &mut Tasks) {
    let (tx, mut rx) = mpsc::cross_thread::channel::<u32>(1 + rng.below(3));
    let count = rng.below(200) as u32;
    let producer = overlap::spawn_blocking(move || {
        for n in 0..count {
            tx.blocking_send(n).expect("the receiving task is gone");
        }
    });
    let mut rrng = Rng(rng.next() | 1);
    tasks.spawn("cross-thread receiver".into(), false, async move {
        let mut next = 0;
        loop {
            match cut(pick(&mut rrng), rx.recv()).await {
                Some(Some(n)) => {
                    assert_eq!(n, next, "seed {}: cross-thread: out of order", seed());
                    next += 1;
                }
                Some(None) => break,
                None => pause(&mut rrng).await,
            }
        }
        assert_eq!(next, count, "seed {}: cross-thread: values lost", seed());
        producer.await.unwrap();
    });

    let (tx, mut rx) = mpsc::cross_thread::channel::<u32>(1 + rng.below(3));
    let consumer = overlap::spawn_blocking(move || {
        let mut got = Vec::new();
        while let Some(n) = rx.blocking_recv() {
            got.push(n);
        }
        got
    });
    let mut srng = Rng(rng.next() | 1);
    tasks.spawn("cross-thread sender".into(), false, async move {
        let mut sent = Vec::new();
        for n in 0..srng.below(200) as u32 {
            match cut(pick(&mut srng), tx.send(n)).await {
                Some(Ok(())) => sent.push(n),
                Some(Err(_)) => panic!("seed {}: cross-thread: the pool thread is gone", seed()),
                None => pause(&mut srng).await,
            }
        }
        drop(tx);
        let got = consumer.await.unwrap();
        assert_eq!(
            got,
            sent,
            "seed {}: cross-thread: sent and received differ",
            seed()
        );
    });
}
