//! The HTTP side under use and abuse: routes, keep-alive and pipelining, bad heads and
//! their clear errors, the scrape limit's 503, a stuck collector and idle or slow clients
//! cut off on the paused clock, and peers that vanish leaving no connection and no fd.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{FutureExt, LocalBoxFuture};
use overlap::io::AsyncReadExt;
use overlap::net::UnixStream;
use overlap::sync::Semaphore;

use crate::client::{Client, Scrape};
use crate::collect::{Collector, Registry};
use crate::exposition::{Family, Kind};
use crate::procfs::Procfs;
use crate::server::{Config, INDEX};
use crate::support::until;
use crate::{open_fds, start};

fn loadavg_only() -> Registry {
    Registry::default().add(Procfs::loadavg("/proc"), Duration::from_secs(30))
}

#[overlap::test]
async fn routes_keep_alive_and_pipelined_requests_answer_in_order() {
    let (_ex, task, addr) = start(Config::new(loadavg_only())).await;
    let mut c = Client::connect(addr).await;
    c.send(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nope HTTP/1.1\r\n\r\n\
          POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n\
          GET /metrics?debug=1 HTTP/1.1\r\nAccept-Encoding: gzip, deflate\r\n\r\n",
    )
    .await;
    let index = c.reply().await;
    assert_eq!((index.status, index.body.as_str()), (200, INDEX));
    assert_eq!(index.headers["content-type"], "text/html; charset=utf-8");
    let missing = c.reply().await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (404, "not found\n")
    );
    let post = c.reply().await;
    assert_eq!(
        (post.status, post.body.as_str()),
        (405, "method not allowed\n")
    );
    assert_eq!(post.headers["allow"], "GET");
    let metrics = c.reply().await;
    assert_eq!(metrics.status, 200);
    assert!(
        !metrics.headers.contains_key("content-encoding"),
        "Accept-Encoding is ignored"
    );
    assert!(metrics
        .body
        .starts_with("# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 "));
    assert!(!metrics.headers.contains_key("connection"));
    // Still open after all four; HTTP/1.0 without keep-alive ends it.
    assert_eq!(c.get("/").await.status, 200);
    c.send(b"GET / HTTP/1.0\r\n\r\n").await;
    let last = c.reply().await;
    assert_eq!(
        (last.status, last.headers["connection"].as_str()),
        (200, "close")
    );
    assert!(c.closed().await);
    task.abort();
}

#[overlap::test]
async fn bad_heads_get_a_clear_error_and_the_server_goes_on() {
    let (ex, task, addr) = start(Config::new(loadavg_only())).await;
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(16 * 1024));
    let cases: [(&[u8], u16, &str); 7] = [
        (b"HELLO\r\n\r\n", 400, "malformed request line\n"),
        (b"get /metrics HTTP/1.1\r\n\r\n", 400, "malformed method\n"),
        (
            b"GET metrics HTTP/1.1\r\n\r\n",
            400,
            "target must be an absolute path\n",
        ),
        (
            b"GET /metrics HTTP/2.0\r\n\r\n",
            400,
            "unsupported HTTP version\n",
        ),
        (
            b"GET /metrics HTTP/1.1\r\nNoColonHere\r\n\r\n",
            400,
            "header without a colon\n",
        ),
        (
            b"GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            400,
            "invalid Content-Length\n",
        ),
        (big.as_bytes(), 431, "request head too large\n"),
    ];
    for (request, status, why) in cases {
        let mut c = Client::connect(addr).await;
        c.send(request).await;
        let reply = c.reply().await;
        assert_eq!((reply.status, reply.body.as_str()), (status, why));
        assert_eq!(reply.headers["connection"], "close");
        assert!(c.closed().await, "open after a {status}");
    }
    // A request with a body is answered, then the connection closes (the body is unread).
    let mut c = Client::connect(addr).await;
    c.send(b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        .await;
    assert_eq!(c.reply().await.status, 405);
    assert!(c.closed().await);
    drop(c); // the server lingers until the peer closes too
    until(|| ex.live.get() == 0, "every refused connection closed").await;
    let mut c = Client::connect(addr).await;
    let s = Scrape::parse(&c.get("/metrics").await.body);
    assert!(s.value("node_load1", &[]) >= 0.0);
    task.abort();
}

/// Holds each scrape until the test adds a permit to `release`.
struct Gate {
    entered: Rc<Cell<u32>>,
    release: Rc<Semaphore>,
}

impl Collector for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn collect(&self) -> LocalBoxFuture<'_, io::Result<Vec<Family>>> {
        async move {
            self.entered.set(self.entered.get() + 1);
            let _pass = self.release.acquire().await.unwrap();
            Ok(vec![Family::single(
                "gate_passed",
                "Scrapes let through.",
                Kind::Gauge,
                1.0,
            )])
        }
        .boxed_local()
    }
}

#[overlap::test]
async fn a_scrape_past_the_limit_gets_503_and_the_permit_comes_back() {
    let entered = Rc::new(Cell::new(0));
    let release = Rc::new(Semaphore::new(0));
    let gate = Gate {
        entered: entered.clone(),
        release: release.clone(),
    };
    let mut cfg = Config::new(Registry::default().add(gate, Duration::from_secs(600)));
    cfg.max_scrapes = 1;
    let (ex, task, addr) = start(cfg).await;
    let first = overlap::spawn(async move { Client::connect(addr).await.get("/metrics").await });
    until(|| entered.get() == 1, "the first scrape at the gate").await;
    let mut second = Client::connect(addr).await;
    let busy = second.get("/metrics").await;
    assert_eq!(
        (busy.status, busy.body.as_str()),
        (503, "too many scrapes in progress\n")
    );
    assert_eq!(busy.headers["retry-after"], "1");
    assert_eq!(
        second.get("/").await.status,
        200,
        "only scrapes are limited"
    );
    assert_eq!(entered.get(), 1, "the refused scrape ran no collector");
    release.add_permits(1);
    let reply = first.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(Scrape::parse(&reply.body).value("gate_passed", &[]), 1.0);
    let again = second.get("/metrics").await;
    assert_eq!(again.status, 200, "the permit was given back");
    assert_eq!((entered.get(), ex.scraped.get()), (2, 2));
    task.abort();
}

/// Asks a daemon over a Unix socket that never answers.
struct Stuck(UnixStream);

impl Collector for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }
    fn collect(&self) -> LocalBoxFuture<'_, io::Result<Vec<Family>>> {
        async move {
            let mut byte = [0u8; 1];
            (&self.0).read_exact(&mut byte).await?;
            Ok(Vec::new())
        }
        .boxed_local()
    }
}

#[overlap::test(start_paused = true)]
async fn a_stuck_collector_times_out_on_the_paused_clock_and_the_rest_is_served() {
    let (ours, _daemon) = UnixStream::pair().unwrap();
    let reg = loadavg_only().add(Stuck(ours), Duration::from_secs(10));
    let (_ex, task, addr) = start(Config::new(reg)).await;
    let start = overlap::time::Instant::now();
    let mut c = Client::connect(addr).await;
    let s = Scrape::parse(&c.get("/metrics").await.body);
    assert!(start.elapsed() >= Duration::from_secs(10));
    let ok = |c: &str| s.value("node_scrape_collector_success", &[("collector", c)]);
    assert_eq!((ok("stuck"), ok("loadavg")), (0.0, 1.0));
    let took = s.value(
        "node_scrape_collector_duration_seconds",
        &[("collector", "stuck")],
    );
    assert!((10.0..11.0).contains(&took), "{took}");
    assert!(s.value("node_load5", &[]) >= 0.0);
    // The connection lives on for the next scrape, which times out the same way.
    let s = Scrape::parse(&c.get("/metrics").await.body);
    assert_eq!(
        s.value("node_scrape_collector_success", &[("collector", "stuck")]),
        0.0
    );
    task.abort();
}

#[overlap::test(start_paused = true)]
async fn idle_and_slow_clients_are_cut_off_on_the_paused_clock() {
    let mut cfg = Config::new(loadavg_only());
    cfg.request_timeout = Duration::from_secs(5);
    let (ex, task, addr) = start(cfg).await;
    let start = overlap::time::Instant::now();
    let mut idle = Client::connect(addr).await;
    assert_eq!(idle.get("/").await.status, 200);
    let mut slow = Client::connect(addr).await;
    slow.send(b"GET /metr").await;
    let late = slow.reply().await;
    assert_eq!(
        (late.status, late.body.as_str()),
        (408, "request head took too long\n")
    );
    assert!(slow.closed().await);
    assert!(
        idle.closed().await,
        "the idle keep-alive connection is closed without a reply"
    );
    assert!(start.elapsed() >= Duration::from_secs(5));
    until(|| ex.live.get() == 0, "both connections gone").await;
    assert_eq!(Client::connect(addr).await.get("/").await.status, 200);
    task.abort();
}

#[test]
fn peers_that_vanish_leave_no_connection_and_no_fd() {
    let name = "hostile::peers_that_vanish_leave_no_connection_and_no_fd";
    crate::support::run_in_child(name, || overlap::block_on(vanishing_peers()));
}

async fn vanishing_peers() {
    let (ex, task, addr) = start(Config::new(loadavg_only())).await;
    let baseline = open_fds();
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(16 * 1024));
    for round in 0..5 {
        drop(Client::connect(addr).await);
        let mut half = Client::connect(addr).await;
        half.send(b"GET /metrics HTT").await;
        drop(half);
        let mut gone = Client::connect(addr).await;
        gone.send(b"GET /metrics HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n")
            .await;
        drop(gone);
        let mut huge = Client::connect(addr).await;
        huge.send(big.as_bytes()).await;
        drop(huge);
        let mut reader = Client::connect(addr).await;
        assert_eq!(reader.get("/").await.status, 200, "round {round}");
    }
    until(|| ex.live.get() == 0, "every connection closed").await;
    assert_eq!(open_fds(), baseline);
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/metrics").await.status, 200);
    drop(c);
    until(|| ex.live.get() == 0, "the last connection closed").await;
    assert_eq!(open_fds(), baseline);
    task.abort();
}
