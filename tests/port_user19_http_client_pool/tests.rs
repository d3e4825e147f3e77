//! The tests: each runs the client against `server.rs` on 127.0.0.1 and checks the bytes
//! the caller got, the pool's counts and what the server saw on the wire.

use std::io::ErrorKind;
use std::time::Duration;

use overlap::time::{sleep, timeout, Instant};

use crate::conn::{Url, MAX_HEAD};
use crate::pool::{Client, Config};
use crate::server::{Behaviour, Server};
use crate::support::{open_fds, run_in_child, settle, until, within};

/// A hang guard only (virtual time on the paused clock).
const HANG: Duration = Duration::from_secs(3600);

async fn get_text(client: &Client, url: &str) -> std::io::Result<String> {
    client.get(url).await?.text().await
}

#[overlap::test(start_paused = true)]
async fn a_hundred_sequential_gets_share_one_connection() {
    let server = Server::start(Behaviour::default()).await;
    let client = Client::new(Config::new(4));
    for i in 0..100 {
        let resp = client
            .get(&server.url(&format!("/item/{i}")))
            .await
            .unwrap();
        assert_eq!((resp.status(), resp.conn_id()), (200, 1));
        assert_eq!(
            resp.text().await.unwrap(),
            format!("GET /item/{i} #{} ", i + 1)
        );
    }
    assert_eq!(server.seen.accepts.get(), 1);
    assert_eq!(server.seen.requests.get(), 100);
    let stats = client.stats();
    assert_eq!((stats.opened.get(), stats.reused.get()), (1, 99));
    assert_eq!(client.idle(&server.addr.to_string()), 1);
}

#[overlap::test(start_paused = true)]
async fn fifty_concurrent_gets_through_four_slots_open_exactly_four_connections() {
    let server = Server::start(Behaviour::default()).await;
    let client = Client::new(Config::new(4));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (client, url) = (client.clone(), server.url(&format!("/slow/20/{i}")));
            overlap::spawn(async move { get_text(&client, &url).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let body = within(HANG, task, "a GET").await.unwrap().unwrap();
        assert!(body.starts_with(&format!("GET /slow/20/{i} #")), "{body}");
    }
    assert_eq!(server.seen.accepts.get(), 4);
    assert_eq!(server.seen.most_live.get(), 4);
    assert_eq!(server.seen.requests.get(), 50);
    assert_eq!(client.stats().opened.get(), 4);
    assert_eq!(client.idle(&server.addr.to_string()), 4);
}

#[overlap::test(start_paused = true)]
async fn waiters_for_a_slot_are_served_in_the_order_they_asked() {
    let server = Server::start(Behaviour::default()).await;
    let client = Client::new(Config::new(1));
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (client, url) = (client.clone(), server.url(&format!("/slow/100/{i}")));
            overlap::spawn(async move { get_text(&client, &url).await })
        })
        .collect();
    let start = Instant::now();
    for task in tasks {
        within(HANG, task, "a GET").await.unwrap().unwrap();
    }
    // One connection, one request at a time: six answers of 100 ms each.
    assert_eq!(start.elapsed(), Duration::from_millis(600));
    let want: Vec<_> = (0..6).map(|i| format!("GET /slow/100/{i}")).collect();
    assert_eq!(*server.seen.log.borrow(), want);
    assert_eq!(server.seen.accepts.get(), 1);
}

#[overlap::test(start_paused = true)]
async fn chunked_and_sized_bodies_are_read_exactly_and_close_or_http10_is_not_pooled() {
    let server = Server::start(Behaviour::default()).await;
    let client = Client::new(Config::new(4));
    let (body, trailers) = client
        .get(&server.url("/chunked"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body, b"hello, world");
    assert_eq!(trailers, [("x-sum".to_string(), "12".to_string())]);
    let resp = client
        .post(&server.url("/submit"), b"a=1&b=2")
        .await
        .unwrap();
    assert_eq!(
        resp.conn_id(),
        1,
        "the chunked response left its connection reusable"
    );
    assert_eq!(resp.text().await.unwrap(), "POST /submit #2 a=1&b=2");
    assert_eq!(client.idle(&server.addr.to_string()), 1);
    // `Connection: close` and HTTP/1.0: read in full, then closed, not pooled.
    // Each on the connection the last `/after` opened (the first on the POST's).
    for (path, nth) in [("/close", 3), ("/http10", 2), ("/close", 2)] {
        let resp = client.get(&server.url(path)).await.unwrap();
        assert_eq!(resp.text().await.unwrap(), format!("GET {path} #{nth} "));
        assert_eq!(client.idle(&server.addr.to_string()), 0);
        // The next request cannot have the closed connection: a new one after each.
        let resp = client.get(&server.url("/after")).await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "GET /after #1 ");
    }
    assert_eq!(server.seen.accepts.get(), 4);
    assert_eq!(client.stats().closed.get(), 3);
    // A bad URL is refused before anything is sent.
    for bad in ["https://x/", "http:///p", "http://h:99999/", "http://h/a b"] {
        let err = client.get(bad).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
    assert_eq!(Url::parse("http://h").unwrap().authority, "h:80");
    assert_eq!(server.seen.requests.get(), 8);
}

#[overlap::test(start_paused = true)]
async fn an_idle_connection_the_server_closed_is_found_stale_and_replaced_silently() {
    let server = Server::start(Behaviour {
        idle_close: Some(Duration::from_secs(5)),
        ..Behaviour::default()
    })
    .await;
    let client = Client::new(Config::new(2));
    assert_eq!(
        get_text(&client, &server.url("/a")).await.unwrap(),
        "GET /a #1 "
    );
    // The server's idle timeout (5 s) is shorter than the client's (90 s): it closes first.
    sleep(Duration::from_secs(6)).await;
    until(|| server.seen.live.get() == 0, "the server to close").await;
    settle().await;
    assert_eq!(
        client.idle(&server.addr.to_string()),
        1,
        "the client still holds it"
    );
    assert_eq!(
        get_text(&client, &server.url("/b")).await.unwrap(),
        "GET /b #1 "
    );
    let stats = client.stats();
    assert_eq!(
        (stats.stale.get(), stats.retried.get(), stats.opened.get()),
        (1, 0, 2)
    );
    // An unsolicited `408` on an idle connection makes it stale too.
    assert_eq!(
        get_text(&client, &server.url("/unsolicited"))
            .await
            .unwrap(),
        "GET /unsolicited #2 "
    );
    sleep(Duration::from_secs(2)).await;
    assert_eq!(
        get_text(&client, &server.url("/c")).await.unwrap(),
        "GET /c #1 "
    );
    assert_eq!(
        (stats.stale.get(), stats.retried.get(), stats.opened.get()),
        (2, 0, 3)
    );
    assert_eq!(server.seen.accepts.get(), 3);
}

#[overlap::test(start_paused = true)]
async fn a_get_whose_reused_connection_dies_unanswered_is_retried_once_on_a_fresh_one() {
    for behaviour in [
        Behaviour {
            reset_on: Some(2),
            ..Behaviour::default()
        },
        Behaviour {
            close_on: Some(2),
            ..Behaviour::default()
        },
    ] {
        let server = Server::start(behaviour).await;
        let client = Client::new(Config::new(2));
        assert_eq!(
            get_text(&client, &server.url("/a")).await.unwrap(),
            "GET /a #1 "
        );
        // The second request on that connection reads nothing back: sent again, once.
        let resp = client.get(&server.url("/b")).await.unwrap();
        assert_eq!(resp.conn_id(), 2);
        assert_eq!(resp.text().await.unwrap(), "GET /b #1 ");
        assert_eq!(client.stats().retried.get(), 1);
        assert_eq!(*server.seen.log.borrow(), ["GET /a", "GET /b", "GET /b"]);
        assert_eq!(server.seen.accepts.get(), 2);
        // A fresh connection that dies is not retried: the server really failed.
        let fresh = Server::start(Behaviour {
            reset_on: Some(1),
            ..behaviour
        })
        .await;
        let err = client.get(&fresh.url("/x")).await.err().unwrap();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
            ),
            "{err}"
        );
        assert_eq!(fresh.seen.requests.get(), 1);
    }
}

#[overlap::test(start_paused = true)]
async fn a_post_whose_reused_connection_is_reset_unanswered_is_not_retried() {
    let server = Server::start(Behaviour {
        reset_on: Some(2),
        ..Behaviour::default()
    })
    .await;
    let client = Client::new(Config::new(2));
    let first = client.post(&server.url("/pay"), b"1").await.unwrap();
    assert_eq!(first.text().await.unwrap(), "POST /pay #1 1");
    let err = client.post(&server.url("/pay"), b"2").await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(client.stats().retried.get(), 0);
    assert_eq!(*server.seen.log.borrow(), ["POST /pay", "POST /pay"]);
    assert_eq!(server.seen.accepts.get(), 1);
    // The pool is unharmed: the next POST gets a new connection.
    let next = client.post(&server.url("/pay"), b"3").await.unwrap();
    assert_eq!(next.text().await.unwrap(), "POST /pay #1 3");
}

#[overlap::test(start_paused = true)]
async fn a_reset_mid_body_is_an_error_and_not_retried_even_for_a_get() {
    let server = Server::start(Behaviour::default()).await;
    let client = Client::new(Config::new(1));
    get_text(&client, &server.url("/warm")).await.unwrap();
    // Reused connection, GET, but a head came back: no retry.
    let resp = client.get(&server.url("/rst-mid")).await.unwrap();
    assert_eq!(resp.header("content-length"), Some("10"));
    let err = resp.bytes().await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(client.stats().retried.get(), 0);
    assert_eq!(server.seen.requests.get(), 2);
    get_text(&client, &server.url("/warm")).await.unwrap();
    // Nor when the connection ends inside the head: the server did answer.
    let err = client.get(&server.url("/cut-head")).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(
        err.to_string(),
        "connection closed inside the response head"
    );
    assert_eq!(client.stats().retried.get(), 0);
    assert_eq!(server.seen.requests.get(), 4);
    assert_eq!(
        get_text(&client, &server.url("/z")).await.unwrap(),
        "GET /z #1 "
    );
}

#[overlap::test(start_paused = true)]
async fn malformed_responses_are_invalid_data_and_the_pool_works_on() {
    let server = Server::start(Behaviour::default()).await;
    // One slot: a slot lost to an error would hang the next request.
    let client = Client::new(Config::new(1));
    let cases = [
        ("/bad-status", "malformed status line \"HTTP/1.1 2OO OK\""),
        ("/huge-head", "response head over 8192 bytes"),
        ("/bad-chunk", "bad chunk size line \"zz\""),
        ("/bad-length", "bad content-length \"abc\""),
    ];
    assert_eq!(MAX_HEAD, 8192);
    for (path, msg) in cases {
        let err = match client.get(&server.url(path)).await {
            Ok(resp) => resp.bytes().await.err().unwrap(),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{path}: {err}");
        assert_eq!(err.to_string(), msg);
        assert_eq!(
            client.idle(&server.addr.to_string()),
            0,
            "{path}: not pooled"
        );
        let ok = within(HANG, get_text(&client, &server.url("/ok")), "the next GET").await;
        // On a new connection: the one that carried the bad response was closed.
        assert_eq!(ok.unwrap(), "GET /ok #1 ");
    }
    assert_eq!(client.stats().retried.get(), 0);
    assert_eq!(client.stats().closed.get(), 4);
    assert_eq!(server.seen.accepts.get(), 5);
    until(
        || server.seen.client_closes.get() == 4,
        "the bad connections closed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_reaper_closes_idle_connections_after_the_idle_timeout() {
    let server = Server::start(Behaviour::default()).await;
    let mut cfg = Config::new(3);
    cfg.idle_timeout = Duration::from_secs(60);
    let client = Client::new(cfg);
    // Three at once, finishing 10 ms apart: the last one given back is the first reused.
    let slow = |ms: u64| {
        let (client, url) = (client.clone(), server.url(&format!("/slow/{ms}")));
        async move {
            let resp = client.get(&url).await.unwrap();
            let id = resp.conn_id();
            assert_eq!(resp.text().await.unwrap(), format!("GET /slow/{ms} #1 "));
            id
        }
    };
    let (_, _, last) = overlap::join!(slow(10), slow(20), slow(30));
    let resp = client.get(&server.url("/lifo")).await.unwrap();
    assert_eq!(resp.conn_id(), last);
    assert_eq!(resp.text().await.unwrap(), "GET /lifo #2 ");
    let key = server.addr.to_string();
    assert_eq!(client.idle(&key), 3);
    sleep(Duration::from_secs(59)).await;
    settle().await;
    assert_eq!((client.idle(&key), server.seen.client_closes.get()), (3, 0));
    // The reaper ticks every 15 s: by 75 s each has been idle 60 s at a tick.
    sleep(Duration::from_secs(16)).await;
    assert_eq!(client.idle(&key), 0);
    until(
        || server.seen.client_closes.get() == 3,
        "the server to see EOF",
    )
    .await;
    assert_eq!(client.stats().expired.get(), 3);
    assert_eq!(server.seen.live.get(), 0);
}

#[overlap::test(start_paused = true)]
async fn a_request_waits_for_a_slot_until_the_wait_timeout_and_an_unanswered_one_times_out() {
    let server = Server::start(Behaviour::default()).await;
    let mut cfg = Config::new(1);
    cfg.wait_timeout = Duration::from_secs(2);
    cfg.request_timeout = Duration::from_secs(10);
    let client = Client::new(cfg);
    let stuck = overlap::spawn({
        let (client, url) = (client.clone(), server.url("/never"));
        async move {
            let sent = Instant::now();
            let err = client.get(&url).await.err().unwrap();
            (err, sent.elapsed())
        }
    });
    until(|| server.seen.requests.get() == 1, "the stuck request").await;
    let start = Instant::now();
    let err = client.get(&server.url("/second")).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(
        err.to_string(),
        format!("no connection to {} free within 2s", server.addr)
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    let (err, took) = within(HANG, stuck, "the stuck request").await.unwrap();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(err.to_string(), "no response head within 10s");
    assert_eq!(took, Duration::from_secs(10));
    // The slot came back with the timeout: the next request is served on a new connection.
    assert_eq!(
        get_text(&client, &server.url("/third")).await.unwrap(),
        "GET /third #1 "
    );
    until(
        || server.seen.client_closes.get() == 1,
        "the stuck connection closed",
    )
    .await;
    assert_eq!(*server.seen.log.borrow(), ["GET /never", "GET /third"]);
}

#[overlap::test(start_paused = true)]
async fn a_dropped_request_or_unread_body_never_returns_its_connection_to_the_pool() {
    let server = Server::start(Behaviour::default()).await;
    let client = Client::new(Config::new(1));
    let key = server.addr.to_string();
    // Cancelled mid-body: the server sent 5 of 10 bytes and waits.
    let cut = timeout(Duration::from_secs(1), async {
        client.get(&server.url("/half")).await?.bytes().await
    })
    .await;
    assert!(cut.is_err());
    assert_eq!(client.stats().abandoned.get(), 1);
    assert_eq!(client.idle(&key), 0);
    until(
        || server.seen.client_closes.get() == 1,
        "the half-read connection closed",
    )
    .await;
    // Had it been pooled, this would have read the other half's bytes as a status line.
    assert_eq!(
        get_text(&client, &server.url("/next")).await.unwrap(),
        "GET /next #1 "
    );
    // A response dropped before its (fully sent) body is read: closed too, not drained.
    let resp = client.get(&server.url("/unread")).await.unwrap();
    assert_eq!(resp.conn_id(), 2);
    drop(resp);
    assert_eq!(client.stats().abandoned.get(), 2);
    until(
        || server.seen.client_closes.get() == 2,
        "the unread connection closed",
    )
    .await;
    let resp = client.get(&server.url("/last")).await.unwrap();
    assert_eq!(resp.conn_id(), 3);
    assert_eq!(resp.text().await.unwrap(), "GET /last #1 ");
    assert_eq!(server.seen.accepts.get(), 3);
}

#[test]
fn dropping_the_client_and_server_leaves_no_fd_and_no_task() {
    run_in_child(
        "tests::dropping_the_client_and_server_leaves_no_fd_and_no_task",
        || {
            overlap::block_on(async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let server = Server::start(Behaviour::default()).await;
                let client = Client::new(Config::new(8));
                let tasks_in_use: Vec<_> = (0..8)
                    .map(|i| {
                        let (client, url) = (client.clone(), server.url(&format!("/slow/5/{i}")));
                        overlap::spawn(async move { get_text(&client, &url).await.unwrap() })
                    })
                    .collect();
                for t in tasks_in_use {
                    t.await.unwrap();
                }
                let key = server.addr.to_string();
                assert_eq!(client.idle(&key), 8);
                assert!(
                    open_fds() >= fds + 17,
                    "8 client + 8 server sockets and a listener"
                );
                drop(client);
                until(
                    || server.seen.client_closes.get() == 8,
                    "the server to see every EOF",
                )
                .await;
                drop(server);
                settle().await;
                assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
                assert_eq!(open_fds(), fds, "fds left open");
            })
        },
    );
}
