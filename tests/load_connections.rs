//! Thousands of idle TCP connections on loopback, in a child process with its fd limit raised
//! to the hard limit: the accept loop keeps up with a client opening them all at once, each
//! idle connection costs a bounded amount of memory and no polls while nothing arrives, and
//! closing them all gives back every fd and the memory (a second wave reuses the reactor's
//! slots rather than growing them).

mod support;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::TcpListener;
use overlap::sync::Notify;
use overlap::task::JoinSet;
use support::counting::{live, Counting};
use support::{open_fds, raise_nofile, run_in_child, within};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runtime bytes an idle connection may cost: its task (a small future), its stream and its
/// reactor slot come to a few hundred bytes; a buffer or list per connection would show.
const BYTES_PER_IDLE_CONNECTION: usize = 1024;

/// Opens `n` std connections to `addr` on a thread of its own and sends them back, so the
/// runtime's thread is free to accept while they come.
fn connect_all(addr: SocketAddr, n: usize) -> std_mpsc::Receiver<Vec<std::net::TcpStream>> {
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let conns: Vec<_> = (0..n)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        tx.send(conns).unwrap();
    });
    rx
}

/// One wave: `n` connections accepted, each served by a task that reads until end of
/// stream; returns the bytes the runtime holds with all of them idle.
async fn wave(listener: &Rc<TcpListener>, n: usize, base: usize, round: usize) -> usize {
    let addr = listener.local_addr().unwrap();
    let all_in = Rc::new(Notify::new());
    let mut served = JoinSet::new();
    let clients = connect_all(addr, n);
    within(
        Duration::from_secs(120),
        async {
            for _ in 0..n {
                let (mut conn, _) = listener.accept().await.unwrap();
                let all_in = all_in.clone();
                served.spawn(async move {
                    let mut buf = [0u8; 16];
                    let got = conn.read(&mut buf).await.unwrap();
                    assert_eq!(got, 0, "the client sends nothing");
                    drop(all_in);
                });
            }
        },
        "accepting every connection",
    )
    .await;
    let clients = clients.recv().unwrap();
    support::settle().await;
    let held = live().saturating_sub(base);
    eprintln!(
        "round {round}: {n} idle connections hold {held} bytes ({} per connection), {} fds",
        held / n,
        open_fds()
    );

    // Nothing arrives: no task is polled, however long the loop sleeps.
    let before = overlap::metrics();
    overlap::time::sleep(Duration::from_millis(300)).await;
    let after = overlap::metrics();
    assert_eq!(
        after.task_polls - before.task_polls,
        0,
        "round {round}: idle connections were polled"
    );
    assert!(
        after.epoll_waits - before.epoll_waits <= 3,
        "round {round}: {} epoll waits while idle",
        after.epoll_waits - before.epoll_waits
    );
    assert_eq!(after.registered_fds, n as u64 + 1);

    drop(clients);
    within(
        Duration::from_secs(120),
        async {
            while let Some(r) = served.join_next().await {
                r.unwrap();
            }
        },
        "every server task seeing its end of stream",
    )
    .await;
    assert_eq!(Rc::strong_count(&all_in), 1);
    held
}

#[test]
fn ten_thousand_idle_connections_cost_bounded_memory_and_are_given_back() {
    run_in_child(
        "ten_thousand_idle_connections_cost_bounded_memory_and_are_given_back",
        || {
            let limit = raise_nofile() as usize;
            // Two fds per connection (ours and the client's), and room for the rest.
            let n = ((limit.saturating_sub(200)) / 2).min(10_000);
            assert!(n >= 1000, "fd limit {limit} too low for this test");
            overlap::block_on(async move {
                let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
                let fds = open_fds();
                let base = live();
                let first = wave(&listener, n, base, 1).await;
                assert!(
                    first <= n * BYTES_PER_IDLE_CONNECTION,
                    "{first} bytes for {n} idle connections"
                );
                support::settle().await;
                assert_eq!(open_fds(), fds, "every connection's fd was closed");
                let after_first = live().saturating_sub(base);
                eprintln!("after closing them: {after_first} bytes kept");
                // The fd table and the task registry keep their peak's room for reuse (a
                // documented limit, see `Runtime`): some 150 + 16 bytes per connection,
                // rounded up to a power of two. Nothing else may stay.
                assert!(
                    after_first <= n * 320 + 64 * 1024,
                    "{after_first} bytes kept once {n} connections closed"
                );
                let second = wave(&listener, n, base, 2).await;
                assert!(
                    second <= first + first / 4 + 64 * 1024,
                    "the second wave held {second} bytes, the first {first}"
                );
                support::settle().await;
                assert_eq!(open_fds(), fds);
                let after_second = live().saturating_sub(base);
                // 96 KiB of slack: a 64 KiB buffer alive at one count and not the other
                // (CI once saw the second count 64 KiB + 128 bytes above the first), while
                // a leak of even one 16-byte allocation per connection (160 KB at 10,000)
                // still fails.
                assert!(
                    after_second <= after_first + 96 * 1024,
                    "{after_second} bytes kept after the second wave, {after_first} after the first"
                );
            });
        },
    );
}
