//! Dropping a pending connect (a `select` with a sleep, or `time::timeout`) closes its socket.
//!
//! Alone in its test binary, so counting the process's open fds is not disturbed by other
//! tests running in parallel.

mod support;

use std::time::Duration;

use futures_util::future::{select, Either};
use overlap::net::{TcpSocket, TcpStream};
use support::open_fds;

#[test]
fn dropping_a_pending_connect_closes_its_socket() {
    overlap::block_on(async {
        // Backlog 0: the accept queue holds one connection (the kernel allows backlog + 1),
        // then further SYNs are dropped and connects stay in progress. Nobody accepts.
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();

        let mut queued = Vec::new();
        for _ in 0..16 {
            let fds = open_fds();
            let registered = overlap::metrics().registered_fds;
            // Boxed, so that dropping `pending` below really drops the future.
            let connect = Box::pin(TcpStream::connect(addr));
            let timeout = Box::pin(overlap::time::sleep(Duration::from_millis(200)));
            match select(connect, timeout).await {
                Either::Left((res, _)) => queued.push(res.unwrap()), // filled the queue
                Either::Right(((), pending)) => {
                    // The connect future is still alive here: its socket exists.
                    assert_eq!(open_fds(), fds + 1);
                    drop(pending);
                    assert_eq!(open_fds(), fds, "the abandoned socket was not closed");
                    assert_eq!(overlap::metrics().registered_fds, registered);

                    // The same under `time::timeout`: when it gives up, the socket is gone.
                    let res = overlap::time::timeout(
                        Duration::from_millis(100),
                        TcpStream::connect(addr),
                    )
                    .await;
                    assert!(res.is_err(), "the backlog is still full");
                    assert_eq!(open_fds(), fds);
                    assert_eq!(overlap::metrics().registered_fds, registered);
                    return;
                }
            }
        }
        panic!("every connect completed: the backlog never filled up");
    });
}
