//! The proxy's other paths: upgrades relayed raw, 504s, 400s, many clients at once, and
//! nothing left behind.

use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpListener;

use super::proxy::{Config, Proxy};
use super::upstream::Upstream;
use super::{backend, pattern, pattern_seeded, post, post_chunked, support, until, within};
use super::{Client, HANG};

const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

#[overlap::test]
async fn an_upgrade_is_relayed_raw_both_ways_until_either_side_closes() {
    let up = Upstream::start("a").await;
    let proxy = Proxy::start(Config::new(vec![up.addr])).await;
    // The client closes its side first: the upstream echoes the rest, says bye, closes.
    let mut client = Client::connect(proxy.addr).await;
    let (head, body) = client.call("GET", UPGRADE).await;
    assert_eq!(head.status(), 101);
    assert!(head.has_token("connection", "upgrade"));
    assert_eq!((head.get("upgrade"), body.len()), (Some("websocket"), 0));
    assert_eq!(proxy.stats.upgrades_live.get(), 1);
    let data = pattern(256 * 1024 + 5);
    let (mut rd, wr) = client.conn.into_split();
    let writer = overlap::spawn(async move {
        let mut wr = wr;
        wr.write_all(&data).await.unwrap();
        wr.close().await.unwrap();
    });
    let mut got = std::mem::take(&mut client.buf);
    within(
        HANG,
        overlap::io::read_to_end(&mut rd, &mut got),
        "the echo and bye",
    )
    .await
    .unwrap();
    writer.await.unwrap();
    let want = [&pattern(256 * 1024 + 5)[..], b"bye"].concat();
    assert!(got == want, "the raw relay changed the bytes");
    until(|| proxy.stats.upgrades_live.get() == 0, "the relay's end").await;
    // The client goes away whole: the upstream sees end of file and its connection ends.
    let mut client = Client::connect(proxy.addr).await;
    let (head, _) = client.call("GET", UPGRADE).await;
    assert_eq!(head.status(), 101);
    client.conn.write_all(b"ping").await.unwrap();
    let mut four = [0u8; 4];
    client.conn.read_exact(&mut four).await.unwrap();
    assert_eq!(&four, b"ping");
    drop(client);
    until(|| up.log.closed.get() == 2, "the upstream's end").await;
    until(|| proxy.stats.upgrades_live.get() == 0, "the relay's end").await;
    // The upstream closes first: the client reads its last bytes and end of file, and
    // once the client closes too, the relay ends.
    let mut client = Client::connect(proxy.addr).await;
    let req = String::from_utf8(UPGRADE.to_vec())
        .unwrap()
        .replace("/ws", "/ws-short");
    let (head, _) = client.call("GET", req.as_bytes()).await;
    assert_eq!(head.status(), 101);
    assert_eq!(client.rest().await, b"bye");
    assert_eq!(
        proxy.stats.upgrades_live.get(),
        1,
        "still reading the client"
    );
    client.conn.close().await.unwrap();
    until(|| proxy.stats.upgrades_live.get() == 0, "the relay's end").await;
    // An upgrade is never pooled.
    assert_eq!((proxy.idle(0), up.log.accepts.get()), (0, 3));
}

#[overlap::test(start_paused = true)]
async fn an_upstream_that_never_answers_is_a_504_on_a_paused_clock() {
    let up = Upstream::start("a").await;
    let mut config = Config::new(vec![up.addr]);
    config.upstream_timeout = Duration::from_secs(5);
    let proxy = Proxy::start(config).await;
    let mut client = Client::connect(proxy.addr).await;
    let start = overlap::time::Instant::now();
    let (head, _) = client.get("/hang").await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(head.status(), 504);
    assert_eq!(client.rest().await, b"");
    assert_eq!(proxy.stats.timeouts.get(), 1);
    // The hung connection was not pooled: the next request gets a new one.
    let mut client = Client::connect(proxy.addr).await;
    let (head, _) = client.get("/").await;
    assert_eq!((head.status(), backend(&head)), (200, "a"));
    assert_eq!((up.log.accepts.get(), proxy.stats.reused.get()), (2, 0));
}

#[overlap::test]
async fn an_upstream_that_never_accepts_is_a_504_on_the_real_clock() {
    // The kernel completes the handshake into the backlog; nobody reads the request.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config::new(vec![listener.local_addr().unwrap()]);
    config.upstream_timeout = Duration::from_millis(300);
    let proxy = Proxy::start(config).await;
    let mut client = Client::connect(proxy.addr).await;
    let data = pattern(100_000);
    let (head, _) = client.call("POST", &post("/upload", &data)).await;
    assert_eq!(head.status(), 504);
    assert_eq!(client.rest().await, b"");
    assert_eq!(proxy.stats.timeouts.get(), 1);
    drop(listener);
}

#[overlap::test]
async fn a_malformed_request_is_400_and_closed() {
    let up = Upstream::start("a").await;
    let proxy = Proxy::start(Config::new(vec![up.addr])).await;
    let bad: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    ];
    for req in bad {
        let mut client = Client::connect(proxy.addr).await;
        // A good request first: the bad one ends a kept-alive connection too.
        client.get("/").await;
        client.conn.write_all(req).await.unwrap();
        let got = client.rest().await;
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text:?}");
        assert!(text.contains("Connection: close\r\n"), "{text:?}");
    }
    assert_eq!(proxy.stats.bad_requests.get(), 5);
    assert_eq!(up.paths(), ["/"; 5], "no bad request went up");
}

#[overlap::test]
async fn an_early_answer_comes_through_and_the_body_is_cut_short() {
    let up = Upstream::start("a").await;
    let proxy = Proxy::start(Config::new(vec![up.addr])).await;
    let client = Client::connect(proxy.addr).await;
    let (mut rd, wr) = client.conn.into_split();
    // The body goes on in its own task; the proxy stops reading it.
    let writer = overlap::spawn(async move {
        let mut wr = wr;
        let head = "POST /early HTTP/1.1\r\nContent-Length: 8388608\r\n\r\n";
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(&pattern(8 << 20)).await
    });
    let mut buf = Vec::new();
    let head = within(
        HANG,
        super::http::read_head(&mut rd, &mut buf),
        "the answer",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(head.status(), 413);
    let framing = head.framing(Some("POST")).unwrap();
    let body = super::http::read_body(&mut rd, &mut buf, framing)
        .await
        .unwrap();
    assert_eq!(body, b"too large");
    // The unread body makes the proxy's close a reset, so the writer fails.
    let err = within(HANG, writer, "the writer's end")
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{err:?}"
    );
    assert_eq!((proxy.idle(0), up.log.accepts.get()), (0, 1));
}

#[overlap::test]
async fn fifty_clients_at_once() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let mut config = Config::new(vec![a.addr, b.addr]);
    config.pool_max = 8;
    let proxy = Proxy::start(config).await;
    let mut clients = overlap::task::JoinSet::new();
    for i in 0..50 {
        let addr = proxy.addr;
        clients.spawn(async move {
            let mut client = Client::connect(addr).await;
            for j in 0..3 {
                let data = pattern_seeded(32 * 1024 + i * 100 + j, (i * 3 + j) as u32);
                let req = match (i + j) % 2 {
                    0 => post(&format!("/echo/{i}/{j}"), &data),
                    _ => post_chunked(&format!("/echo/{i}/{j}"), &data, 3000 + i),
                };
                let (head, body) = client.call("POST", &req).await;
                assert_eq!(head.status(), 200);
                assert!(body == data, "client {i} request {j}: the body changed");
            }
        });
    }
    within(HANG, clients.join_all(), "fifty clients").await;
    let (ra, rb) = (a.paths().len(), b.paths().len());
    assert_eq!((ra, rb), (75, 75), "round-robin, one by one");
    let s = &proxy.stats;
    assert_eq!(s.connected.get() + s.reused.get(), 150);
    assert_eq!(a.log.accepts.get() + b.log.accepts.get(), s.connected.get());
    assert!(proxy.idle(0) <= 8 && proxy.idle(1) <= 8);
}

#[test]
fn no_fd_or_task_left() {
    support::run_in_child("more::no_fd_or_task_left", || {
        overlap::block_on(async {
            let fds = support::open_fds();
            let tasks = overlap::metrics().tasks_alive;
            {
                let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
                let proxy = Proxy::start(Config::new(vec![a.addr, b.addr])).await;
                // Left mid-upgrade, mid-request, idle and pooled: the drops end them.
                let mut upgraded = Client::connect(proxy.addr).await;
                upgraded.call("GET", UPGRADE).await;
                let mut hanging = Client::connect(proxy.addr).await;
                hanging
                    .conn
                    .write_all(b"GET /hang HTTP/1.1\r\n\r\n")
                    .await
                    .unwrap();
                until(|| a.paths().len() + b.paths().len() == 2, "both up").await;
                let _idle = Client::connect(proxy.addr).await;
                let mut client = Client::connect(proxy.addr).await;
                for _ in 0..4 {
                    client.call("POST", &post("/echo", &pattern(70_000))).await;
                }
                assert!(proxy.idle(0) + proxy.idle(1) > 0);
                drop((proxy, a, b));
                support::settle().await;
            }
            until(
                || overlap::metrics().tasks_alive == tasks && support::open_fds() == fds,
                "every task and fd gone",
            )
            .await;
        });
    });
}
