//! tokio's runtime-drop races, ported to overlap. From `rt_common.rs`:
//!
//! - `wake_while_rt_is_dropping`: other threads keep waking (and cloning and dropping) the
//!   wakers of pending tasks while the runtime is dropped; every future is dropped once,
//!   on the runtime's thread, and nothing hangs or crashes;
//! - `io_notify_while_shutting_down`: datagrams keep arriving at a socket whose runtime is
//!   being dropped, round after round.

mod support;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::Runtime;

const ROUNDS: usize = 100;

/// Counts drops, and where they happened.
struct Counted {
    drops: Arc<AtomicUsize>,
    home: thread::ThreadId,
}

impl Drop for Counted {
    fn drop(&mut self) {
        assert_eq!(
            thread::current().id(),
            self.home,
            "a future dropped off its thread"
        );
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn wakes_from_other_threads_while_the_runtime_is_dropped() {
    const TASKS: usize = 8;
    for _ in 0..ROUNDS {
        let drops = Arc::new(AtomicUsize::new(0));
        let wakers: Arc<Mutex<Vec<Waker>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let rt = Runtime::new().unwrap();
        for _ in 0..TASKS {
            let counted = Counted {
                drops: drops.clone(),
                home: thread::current().id(),
            };
            let wakers = wakers.clone();
            rt.spawn(poll_fn(move |cx| {
                let _owned = &counted;
                wakers.lock().unwrap().push(cx.waker().clone());
                Poll::<()>::Pending
            }))
            .detach();
        }
        rt.block_on(overlap::yield_now());
        let wakers_threads: Vec<_> = (0..2)
            .map(|_| {
                let (wakers, stop) = (wakers.clone(), stop.clone());
                thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let taken: Vec<Waker> = wakers.lock().unwrap().drain(..).collect();
                        for w in &taken {
                            w.wake_by_ref();
                            // By value too: an owned clone, consumed.
                            let owned = w.clone();
                            owned.wake();
                        }
                        wakers.lock().unwrap().extend(taken);
                        thread::yield_now();
                    }
                })
            })
            .collect();
        // Let the wakers get going, then drop the runtime under them.
        thread::sleep(Duration::from_micros(200));
        drop(rt);
        assert_eq!(drops.load(Ordering::SeqCst), TASKS);
        stop.store(true, Ordering::SeqCst);
        for t in wakers_threads {
            t.join().expect("a waking thread failed");
        }
        // The last wakers go here, after the runtime: nothing to wake, just released.
        wakers.lock().unwrap().clear();
        assert_eq!(drops.load(Ordering::SeqCst), TASKS);
    }
}

#[test]
fn datagrams_keep_arriving_while_the_runtime_is_dropped() {
    let target = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (target, stop) = (target.clone(), stop.clone());
        thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            while !stop.load(Ordering::SeqCst) {
                let addr = *target.lock().unwrap();
                if let Some(addr) = addr {
                    let _ = socket.send_to(b"ping", addr);
                }
                thread::yield_now();
            }
        })
    };
    for _ in 0..ROUNDS {
        let rt = Runtime::new().unwrap();
        let received = rt.block_on(async {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            *target.lock().unwrap() = Some(socket.local_addr().unwrap());
            let (tx, rx) = overlap::sync::oneshot::channel();
            overlap::spawn(async move {
                let mut buf = [0; 8];
                let mut tx = Some(tx);
                loop {
                    let (n, _) = socket.recv_from(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], b"ping");
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            })
            .detach();
            support::within(Duration::from_secs(10), rx, "no datagram arrived").await
        });
        assert!(received.is_ok());
        // The receiving task is still pending, its socket still getting datagrams.
        drop(rt);
    }
    stop.store(true, Ordering::SeqCst);
    sender.join().unwrap();
}
