//! The tests of subscribers that read too slowly or vanish, bad requests, the subscriber
//! limit, the shutdown, IPv6, and what a whole run leaves behind.

use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::TcpStream;

use super::client::{events_request, publish, publish_on, start, subscribe, Conn, Record};
use super::server::{Config, End, Server};
use super::support::{open_fds, run_in_child, until, within};
use super::HANG;

fn shutdown() -> [Record; 1] {
    [Record::named("shutdown", "")]
}

#[overlap::test(start_paused = true)]
async fn a_subscriber_that_never_reads_is_cut_and_the_others_get_everything() {
    within(
        HANG,
        async {
            let server = start(Config {
                send_buffer: Some(4096),
                write_timeout: Duration::from_secs(5),
                channel: 1024,
                ..Config::default()
            })
            .await;
            // Its window small, and it reads nothing past the head.
            let mut slow = Conn::connect_with(server.addr, Some(4096)).await;
            slow.send(events_request("t", None)).await;
            assert_eq!(slow.head().await.status, 200);
            let mut good = subscribe(server.addr, "t", None).await;
            server.wait(|c| c.live == 2).await;
            let pad = "x".repeat(2000);
            for i in 1..=300 {
                let data = format!("{i} {pad}");
                server.publish("t", None, &data);
                assert_eq!(good.record().await, Record::event(i, &data));
            }
            // With nothing else to do, the clock reaches the slow one's write timeout.
            server.wait(|c| c.ended == [End::TooSlow]).await;
            assert_eq!(server.counts.borrow().live, 1);
            server.publish("t", None, "after");
            assert_eq!(good.record().await, Record::event(301, "after"));
            // The slow client finds its stream cut: some records, then the end without the last
            // chunk.
            let mut rest = Vec::new();
            let _ = slow.stream.read_to_end(&mut rest).await;
            assert!(rest.len() < 300 * 2000, "{} bytes", rest.len());
            assert!(!rest.ends_with(b"0\r\n\r\n"));
            assert!(server.shutdown().await);
            assert_eq!(good.records_to_end().await, shutdown());
        },
        "the slow subscriber",
    )
    .await;
}

#[overlap::test]
async fn a_client_disconnecting_while_idle_ends_its_stream() {
    within(
        HANG,
        async {
            // No keepalive and no write for an hour: only reading its half notices it.
            let hour = Duration::from_secs(3600);
            let server = start(Config {
                max_subscribers: 2,
                keepalive: hour,
                write_timeout: hour,
                ..Config::default()
            })
            .await;
            let stays = subscribe(server.addr, "t", None).await;
            let leaves = subscribe(server.addr, "t", None).await;
            server.wait(|c| c.live == 2).await;
            let tasks = overlap::metrics().tasks_alive;
            drop(leaves);
            server.wait(|c| c.ended == [End::Gone]).await;
            assert_eq!(server.counts.borrow().live, 1);
            until(
                || overlap::metrics().tasks_alive == tasks - 1,
                "its task gone",
            )
            .await;
            // Its permit is back: the limit of two has room for another.
            let mut again = subscribe(server.addr, "t", None).await;
            server.wait(|c| c.live == 2).await;
            server.publish("t", None, "still here");
            assert_eq!(again.record().await, Record::event(1, "still here"));
            drop(stays);
            server.wait(|c| c.ended == [End::Gone, End::Gone]).await;
            assert!(server.shutdown().await);
            assert_eq!(again.records_to_end().await, shutdown());
        },
        "a disconnect",
    )
    .await;
}

/// Sends `request` on a fresh connection: the status and body, and whether the server
/// then closed the connection.
async fn one_shot(server: &Server, request: impl AsRef<[u8]>) -> (u16, String, bool) {
    let mut c = Conn::connect(server.addr).await;
    c.send(request).await;
    let (head, body) = c.response().await;
    let closed = head.header("connection") == Some("close");
    assert!(!closed || c.at_end().await, "said close, but went on");
    (head.status, body, closed)
}

#[overlap::test]
async fn bad_requests_are_answered_and_the_connection_behaves() {
    within(
        HANG,
        async {
            let server = start(Config {
                max_body: 100,
                max_head: 512,
                ..Config::default()
            })
            .await;
            // On one connection: 404 and 405 keep it (their bodies read away), a good
            // publish after them works, and a 413 closes it.
            let mut c = Conn::connect(server.addr).await;
            c.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert_eq!(c.response().await.0.status, 404);
            c.send("DELETE /publish HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
                .await;
            let (head, _) = c.response().await;
            assert_eq!((head.status, head.header("allow")), (405, Some("POST")));
            c.send("PUT /events HTTP/1.1\r\n\r\n").await;
            let (head, _) = c.response().await;
            assert_eq!((head.status, head.header("allow")), (405, Some("GET")));
            assert_eq!(publish_on(&mut c, "t", None, "ok").await, 1);
            let big = "y".repeat(101);
            c.send(super::client::publish_request("t", None, &big))
                .await;
            let (head, _) = c.response().await;
            assert_eq!(
                (head.status, head.header("connection")),
                (413, Some("close"))
            );
            assert!(c.at_end().await);
            // Each of these on its own connection, answered and closed.
            let long = format!(
                "GET /events?topic=t HTTP/1.1\r\nX: {}\r\n\r\n",
                "z".repeat(600)
            );
            let cases = [
                (&b"hello\r\n\r\n"[..], 400),
                (b"GET /events?topic=t HTTP/2.0\r\n\r\n", 400),
                (b"GET /events?topic=t HTTP/1.1\r\nno colon\r\n\r\n", 400),
                (b"POST /publish?topic=t HTTP/1.1\r\n\r\n", 400),
                (
                    b"POST /publish?topic=t HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                    400,
                ),
                (
                    b"POST /publish?topic=a,b HTTP/1.1\r\nContent-Length: 1\r\n\r\nz",
                    400,
                ),
                (b"POST /publish HTTP/1.1\r\nContent-Length: 1\r\n\r\nz", 400),
                (
                    b"POST /publish?topic=t HTTP/1.1\r\nContent-Length: 1\r\n\r\n\xff",
                    400,
                ),
                (b"GET /events HTTP/1.1\r\n\r\n", 400),
                (long.as_bytes(), 431),
            ];
            for (request, status) in cases {
                let (got, body, closed) = one_shot(&server, request).await;
                assert_eq!(
                    (got, closed),
                    (status, true),
                    "{:?}: {body}",
                    String::from_utf8_lossy(request)
                );
            }
            // Only the one good event was published, and nobody subscribed.
            let mut sub = subscribe(server.addr, "t", Some("0")).await;
            assert_eq!(sub.record().await, Record::event(1, "ok"));
            assert_eq!(publish(server.addr, "t", "next").await, 2);
            assert_eq!(sub.record().await, Record::event(2, "next"));
            assert!(server.shutdown().await);
            assert_eq!(server.counts.borrow().ended, [End::Shutdown]);
        },
        "bad requests",
    )
    .await;
}

#[overlap::test]
async fn subscribers_beyond_the_limit_get_503() {
    within(
        HANG,
        async {
            let server = start(Config {
                max_subscribers: 2,
                ..Config::default()
            })
            .await;
            let a = subscribe(server.addr, "t", None).await;
            let mut b = subscribe(server.addr, "t", None).await;
            for _ in 0..3 {
                let (status, _, closed) = one_shot(&server, &events_request("t", None)).await;
                assert_eq!((status, closed), (503, true));
            }
            assert_eq!(server.counts.borrow().live, 2);
            drop(a);
            server.wait(|c| c.live == 1).await;
            let mut c = subscribe(server.addr, "t", None).await;
            server.wait(|c| c.live == 2).await;
            let (status, _, _) = one_shot(&server, &events_request("t", None)).await;
            assert_eq!(status, 503);
            server.publish("t", None, "both");
            assert_eq!(b.record().await, Record::event(1, "both"));
            assert_eq!(c.record().await, Record::event(1, "both"));
            assert!(server.shutdown().await);
            assert_eq!(b.records_to_end().await, shutdown());
            assert_eq!(c.records_to_end().await, shutdown());
        },
        "the limit",
    )
    .await;
}

#[overlap::test]
async fn shutdown_ends_every_stream_after_what_was_published() {
    within(
        HANG,
        async {
            let server = start(Config::default()).await;
            let mut one = subscribe(server.addr, "one", None).await;
            let mut two = subscribe(server.addr, "two", None).await;
            let mut both = subscribe(server.addr, "one,two", None).await;
            let mut idle = Conn::connect(server.addr).await;
            assert_eq!(publish_on(&mut idle, "two", None, "first").await, 1);
            server.wait(|c| c.live == 3).await;
            // A hundred events, and the shutdown before any stream's task has run.
            for i in 2..=101 {
                server.publish("one", None, &format!("e{i}"));
            }
            let shut = server.shutdown();
            let (done, ones, twos, boths, idle_closed) = overlap::join!(
                shut,
                one.records_to_end(),
                two.records_to_end(),
                both.records_to_end(),
                idle.at_end(),
            );
            assert!(done, "the drain timed out");
            assert!(idle_closed, "the idle connection closed");
            let mut expect: Vec<Record> = (2..=101)
                .map(|i| Record::event(i, &format!("e{i}")))
                .collect();
            expect.push(Record::named("shutdown", ""));
            assert_eq!(ones, expect);
            expect.insert(0, Record::event(1, "first"));
            assert_eq!(boths, expect);
            assert_eq!(
                twos,
                [Record::event(1, "first"), Record::named("shutdown", "")]
            );
            for sub in [&mut one, &mut two, &mut both] {
                assert!(sub.at_end().await);
            }
            let counts = server.counts.borrow().clone();
            assert_eq!((counts.live, counts.ended), (0, vec![End::Shutdown; 3]));
            assert!(server.tracker.is_empty());
            assert!(
                TcpStream::connect(server.addr).await.is_err(),
                "still listening"
            );
        },
        "the shutdown",
    )
    .await;
}

#[overlap::test]
async fn over_ipv6() {
    within(
        HANG,
        async {
            let server = Server::start("[::1]:0".parse().unwrap(), Config::default()).await;
            assert!(server.addr.is_ipv6());
            let mut sub = subscribe(server.addr, "v6", Some("0")).await;
            server.wait(|c| c.live == 1).await;
            assert_eq!(publish(server.addr, "v6", "over ::1\ntwo lines").await, 1);
            assert_eq!(sub.record().await, Record::event(1, "over ::1\ntwo lines"));
            assert!(server.shutdown().await);
            assert_eq!(sub.records_to_end().await, shutdown());
        },
        "IPv6",
    )
    .await;
}

#[test]
fn a_whole_run_leaves_no_fd_and_no_task() {
    const NAME: &str = "traffic::a_whole_run_leaves_no_fd_and_no_task";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let server = start(Config {
                    max_subscribers: 3,
                    write_timeout: Duration::from_millis(200),
                    send_buffer: Some(4096),
                    ..Config::default()
                })
                .await;
                let mut good = subscribe(server.addr, "t", None).await;
                let mut slow = Conn::connect_with(server.addr, Some(4096)).await;
                slow.send(events_request("t", None)).await;
                assert_eq!(slow.head().await.status, 200);
                let gone = subscribe(server.addr, "t", None).await;
                drop(gone);
                let _ = one_shot(&server, "nonsense\r\n\r\n").await;
                let mut idle = Conn::connect(server.addr).await;
                publish_on(&mut idle, "t", None, "x").await;
                let pad = "p".repeat(2000);
                let mut i = 1;
                assert_eq!(good.record().await, Record::event(1, "x"));
                while !server.counts.borrow().ended.contains(&End::TooSlow) {
                    i += 1;
                    server.publish("t", None, &pad);
                    assert_eq!(good.record().await, Record::event(i, &pad));
                    overlap::time::sleep(Duration::from_millis(1)).await;
                }
                drop(slow);
                assert!(server.shutdown().await);
                assert_eq!(good.records_to_end().await, shutdown());
                drop((good, idle, server));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the whole run",
        ));
    });
}
