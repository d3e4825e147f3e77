//! `sync::SetOnce` (tokio's): set once, waited for by tasks, threads and runtimes; a
//! second set refused with its value handed back; dropped waits give their place back.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::{SetOnce, SetOnceError};
use overlap::{block_on, spawn, spawn_blocking};
use support::within;

const HANG: Duration = Duration::from_secs(30);

static ADDR: SetOnce<std::net::SocketAddr> = SetOnce::const_new();

/// The static use tokio documents: a server task publishes the address it bound; a client
/// task waiting for it connects there and gets an answer over real TCP.
#[test]
fn a_static_set_once_hands_a_bound_address_to_a_waiting_client() {
    block_on(async {
        assert_eq!(ADDR.get(), None);
        let client = spawn(async {
            let addr = *ADDR.wait().await;
            let mut conn = TcpStream::connect(addr).await.unwrap();
            let mut hello = [0u8; 5];
            conn.read_exact(&mut hello).await.unwrap();
            hello
        });
        overlap::yield_now().await; // the client waits first
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ADDR.set(listener.local_addr().unwrap()).unwrap();
        let accepted = within(HANG, listener.accept(), "the client never connected").await;
        let (mut conn, _) = accepted.unwrap();
        conn.write_all(b"hello").await.unwrap();
        let got = within(HANG, client, "the waiting client was never woken").await;
        assert_eq!(&got.unwrap(), b"hello");
        assert!(ADDR.initialized());
    });
}

/// Every waiting task gets the value; a wait dropped before the set (lost to a timeout)
/// harms none of the others; a wait begun after the set is ready at once.
#[test]
fn every_waiter_is_woken_once_and_dropped_waits_harm_none() {
    block_on(async {
        let once = Arc::new(SetOnce::<String>::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let mut waiters = Vec::new();
        for _ in 0..20 {
            let (once, woken) = (once.clone(), woken.clone());
            waiters.push(spawn(async move {
                let v = once.wait().await.clone();
                woken.fetch_add(1, Ordering::SeqCst);
                v
            }));
        }
        overlap::yield_now().await;
        for _ in 0..5 {
            let gave_up = overlap::time::timeout(Duration::from_millis(1), once.wait()).await;
            assert!(gave_up.is_err(), "nothing set yet");
        }
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        once.set("ready".to_owned()).unwrap();
        for w in waiters {
            let v = within(HANG, w, "a waiter was never woken").await.unwrap();
            assert_eq!(v, "ready");
        }
        assert_eq!(woken.load(Ordering::SeqCst), 20);
        let late = once.wait().now_or_never();
        assert_eq!(late.map(String::as_str), Some("ready"), "ready at once");
    });
}

#[test]
fn a_second_set_is_refused_with_its_value_handed_back() {
    let once = SetOnce::new();
    assert!(!once.initialized());
    once.set(vec![1u8]).unwrap();
    let err = once.set(vec![2u8]).unwrap_err();
    assert_eq!(err, SetOnceError(vec![2u8]));
    assert_eq!(err.to_string(), "the SetOnce is already set");
    assert_eq!(err.into_inner(), vec![2u8]);
    assert_eq!(once.get(), Some(&vec![1u8]), "the first value stays");

    static PRESET: SetOnce<u32> = SetOnce::const_new_with(7);
    assert_eq!(PRESET.set(8), Err(SetOnceError(8)));
    assert_eq!(PRESET.get(), Some(&7));
    assert_eq!(block_on(async { *PRESET.wait().await }), 7);

    let from = SetOnce::from("x");
    assert_eq!(from.set("y"), Err(SetOnceError("y")));
    assert_eq!(SetOnce::new_with(Some(3)).into_inner(), Some(3));
    assert_eq!(SetOnce::<u8>::new_with(None).into_inner(), None);
    assert_eq!(SetOnce::<u8>::default().get(), None);
}

#[test]
fn clone_eq_debug_and_into_inner_look_at_the_value() {
    let a = SetOnce::new();
    let b = a.clone();
    assert_eq!(a, b, "both empty");
    a.set(5).unwrap();
    assert_ne!(a, b);
    assert_eq!(a.clone(), SetOnce::from(5));
    assert_eq!(format!("{a:?}"), "SetOnce { value: Some(5) }");
    assert_eq!(format!("{b:?}"), "SetOnce { value: None }");
    assert_eq!(a.into_inner(), Some(5));
}

/// Set from a `spawn_blocking` job, on a pool thread: the task waiting on the runtime's
/// thread is woken.
#[test]
fn a_blocking_job_sets_it_for_a_waiting_task() {
    block_on(async {
        let once = Arc::new(SetOnce::new());
        let setter = once.clone();
        let job = spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(20));
            setter.set(std::thread::current().id()).unwrap();
        });
        let set_by = *within(HANG, once.wait(), "the pool's set never woke the task").await;
        job.await.unwrap();
        assert_ne!(set_by, std::thread::current().id(), "set on another thread");
    });
}

/// Two runtimes on two threads wait on one `SetOnce`; a third plain thread sets it once
/// both wait: each runtime's task is woken with the value.
#[test]
fn runtimes_on_other_threads_are_woken_by_a_set_from_a_plain_thread() {
    let once = Arc::new(SetOnce::new());
    let both_waiting = Arc::new(Barrier::new(3));
    let runtimes: Vec<_> = (0..2)
        .map(|_| {
            let (once, both_waiting) = (once.clone(), both_waiting.clone());
            std::thread::spawn(move || {
                block_on(async move {
                    let mut wait = std::pin::pin!(once.wait());
                    assert!((&mut wait).now_or_never().is_none(), "not set yet");
                    both_waiting.wait(); // registered: a set now must wake it
                    *within(HANG, wait, "the other thread's set never woke it").await
                })
            })
        })
        .collect();
    both_waiting.wait();
    once.set(42u64).unwrap();
    for r in runtimes {
        assert_eq!(r.join().unwrap(), 42);
    }
}
