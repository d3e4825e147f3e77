//! `Builder` settings at the edges of their range: a blocking pool with no practical thread
//! limit (`max_blocking_threads(usize::MAX)`) still takes the clean-up work that a runtime's
//! shutdown hands it (a lingering socket's close), where the limit plus the threads allowed
//! past it at shutdown used to overflow: the work then waited in a queue no thread served,
//! and `shutdown_timeout` waited for it until its timeout. A stack size no thread can have
//! (`thread_stack_size(usize::MAX)`) makes each job's error name it.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use overlap::Runtime;

#[test]
fn a_pool_with_no_thread_limit_takes_a_lingering_sockets_close_at_shutdown() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done) = std::sync::mpsc::channel();
    // The runtime lives on a thread of its own, so that a `shutdown_timeout` waiting for work
    // nobody runs cannot hold the test for its whole hour.
    std::thread::spawn(move || {
        let rt = Runtime::builder()
            .max_blocking_threads(usize::MAX)
            .on_thread_start(move || {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        rt.block_on(async {
            let stream = overlap::net::TcpStream::connect(addr).await.unwrap();
            // A linger time makes the stream's close a job for the pool, never the loop's.
            stream.set_linger(Some(Duration::from_secs(1))).unwrap();
            drop(overlap::spawn(async move {
                let _stream = stream;
                std::future::pending::<()>().await
            }));
            overlap::yield_now().await;
        });
        // The shutdown drops the task, and with it the stream, whose close goes to the
        // pool; it then waits for that work and for the pool's threads to stop.
        rt.shutdown_timeout(Duration::from_secs(3600));
        done_tx.send(()).unwrap();
    });
    let (mut peer, _) = listener.accept().unwrap();
    assert_eq!(
        done.recv_timeout(Duration::from_secs(20)),
        Ok(()),
        "shutdown_timeout still waits for the close"
    );
    assert_eq!(
        started.load(Ordering::SeqCst),
        1,
        "the close went to a pool thread"
    );
    // The close ran: the peer sees the end of the stream (the timeout only guards a hang).
    peer.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    assert_eq!(peer.read_to_end(&mut rest).unwrap(), 0);
}

/// A stack size no thread can have: every pool job fails (as when the kernel refuses a
/// thread), and its error says which setting asked for it, not only the kernel's word.
#[test]
fn a_stack_size_no_thread_can_have_is_named_in_the_error_of_each_job() {
    let rt = Runtime::builder()
        .thread_stack_size(usize::MAX)
        .build()
        .unwrap();
    let named = format!("stack of {} bytes", usize::MAX);
    rt.block_on(async {
        let err = overlap::spawn_blocking(|| 1).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("could not start a blocking thread"), "{msg}");
        assert!(msg.contains(&named), "{msg}");
        assert!(msg.contains("Builder::thread_stack_size"), "{msg}");
        // overlap's own I/O on the pool gets an io::Error saying the same.
        let err = overlap::fs::read("/proc/self/stat").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
        assert!(err.to_string().contains(&named), "{err}");
    });
}
