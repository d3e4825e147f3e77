//! The HTTP echo example's body memory (see `http_echo_memory.rs`): how long a client that
//! holds room can keep it from the bodies waiting for some. Not longer than its pace allows
//! (a second of grace), whichever way it stalls.

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

use http_echo_harness::{hold_the_budget, post_head, with_server_sending, Client, MIB};
use overlap::io::AsyncReadExt;
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

/// A client holding room that sends a byte of its body and then nothing more is stalled
/// only after the body timeout (15 s here), but once a body waits for room, its pace is
/// due a second after it got the room: the server, waiting for its next bytes, looks again
/// every second whether bodies wait, so the holder gets its 408 for being too slow then,
/// not at its stall timeout, and the body waiting gets the room. (Before, the wait for the
/// holder's bytes was set when it began, when nobody waited: the holder kept the room
/// until it stalled, and the body waiting got a 503 or its `100 Continue` only then.)
#[test]
fn a_body_stalled_before_bodies_wait_gives_its_room_once_they_do() {
    let limits = Limits {
        body_timeout: Duration::from_secs(15),
        ..Limits::default()
    };
    with_server_sending(limits, MIB as u64, None, |addr| async move {
        let mut holder = hold_the_budget(addr).await;
        holder.send(b"h").await;
        // The server now waits for the holder's next bytes, with nobody waiting for room.
        overlap::time::sleep(Duration::from_millis(300)).await;
        let mut waiter = Client::connect(addr).await;
        waiter.send(&post_head(LARGE, true)).await;

        let mut answer = Vec::new();
        let read_all = holder.stream.read_to_end(&mut answer);
        within(Duration::from_secs(30), read_all, "the holder's answer")
            .await
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 408 ") && answer.contains("too slow"),
            "{answer:?}"
        );
        let r = within(Duration::from_secs(30), waiter.response(false), "an answer").await;
        assert_eq!(r.status, 100, "{:?}", String::from_utf8_lossy(&r.body));
        waiter.send(&[b'w'; LARGE]).await;
        let r = within(Duration::from_secs(30), waiter.response(false), "the echo").await;
        assert!(r.status == 200 && r.body == [b'w'; LARGE], "{}", r.status);
    });
}
