//! The HTTP echo example's body memory (see `http_echo_memory.rs`) with pipelined requests:
//! a body's room is reserved only once the answers queued before it are out, so a client
//! that pipelines and never reads holds no room while those answers wait.

#[allow(dead_code)]
#[path = "../examples/http_echo/conn.rs"]
mod conn;
#[path = "../examples/http_echo/date.rs"]
mod date;
#[allow(dead_code)]
mod http_echo_harness;
#[allow(dead_code)]
#[path = "../examples/http_echo/memory.rs"]
mod memory;
#[allow(dead_code)]
#[path = "../examples/http_echo/request.rs"]
mod request;
mod support;

use std::time::Duration;

use http_echo_harness::{post_head, with_server_sending, Client};
use request::Limits;
use support::within;

/// A body large enough to be counted in the budget (over 64 KiB).
const LARGE: usize = 100 << 10;
/// Pipelined GETs whose answers (each echoes its head) come to some 45 KiB in all, while the
/// requests fit in one of the server's 16 KiB reads.
const GETS: usize = 300;

/// A client sends, in one write, many GETs (their answers are queued, not yet written)
/// and then the head of a counted body, and never reads. The queued answers cannot all go
/// out: the sockets' buffers hold a few KiB. Had the server reserved room for the body
/// first, it would hold it for the whole write timeout (60 s here) while it waited to write
/// the answers, and a body from another client would wait until its own timeout and get a
/// 503.
#[test]
fn a_body_reserves_room_only_once_the_answers_queued_before_it_are_out() {
    let limits = Limits {
        body_timeout: Duration::from_secs(15),
        write_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    with_server_sending(limits, LARGE as u64, Some(4096), |addr| async move {
        let socket = overlap::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stuck = Client {
            stream: socket.connect(addr).await.unwrap(),
            buf: Vec::new(),
        };
        let mut pipeline = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(GETS);
        pipeline.extend_from_slice(&post_head(LARGE, true));
        stuck.send(&pipeline).await;
        // The server reads both requests and is stuck writing their answers.
        overlap::time::sleep(Duration::from_millis(500)).await;

        let mut waiter = Client::connect(addr).await;
        waiter.send(&post_head(LARGE, true)).await;
        let r = within(Duration::from_secs(30), waiter.response(false), "an answer").await;
        assert_eq!(r.status, 100, "{:?}", String::from_utf8_lossy(&r.body));
        waiter.send(&[b'w'; LARGE]).await;
        let r = within(Duration::from_secs(30), waiter.response(false), "the echo").await;
        assert!(r.status == 200 && r.body == [b'w'; LARGE], "{}", r.status);
        drop(stuck);
    });
}
