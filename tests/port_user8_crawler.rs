//! A user's concurrent web crawler built on futures combinators, sketched as one would for
//! tokio and then written for overlap, against small HTTP/1.1 servers on loopback
//! (`port_user8_crawler/site.rs`): one per address (127.0.0.1, .2, .3 are different hosts),
//! serving a generated link graph (`graph.rs`) with slow pages, pages that never answer or
//! trickle a byte at a time, redirects (loops too), 500s before a success, huge bodies,
//! bodies cut short, chunked bodies and bodies ended by the connection's close.
//!
//! The tokio version, as a user writes it (no reqwest: a hand-written GET client):
//!
//! ```text
//! async fn get(url: &Url, cap: usize) -> Result<Response, FetchError> {
//!     let mut stream = TcpStream::connect(url.host).await?;
//!     stream.write_all(b"GET /p/1 HTTP/1.1\r\nHost: ..\r\nConnection: close\r\n\r\n").await?;
//!     let mut conn = BufReader::new(stream);
//!     loop { (&mut conn).take(MAX_HEAD).read_until(b'\n', &mut head).await?; .. }
//!     httparse::Response::new(&mut headers).parse(&head)?;
//!     // Content-Length (refused past the cap), chunked, or to EOF through take(cap + 1)
//! }
//! async fn fetch(self: Arc<Self>, url: String) -> (String, Outcome) {
//!     let permit = self.hosts.lock().entry(host).or_insert(Arc::new(Semaphore::new(2)))
//!         .clone().acquire_owned().await?;
//!     match tokio::time::timeout(cfg.timeout, get(&url, cfg.cap)).await { .. }
//!     // 5xx, timeout, I/O error: sleep(backoff * 2^n) and try again; 3xx: follow Location
//!     // up to max_redirects
//! }
//! let mut frontier = FuturesUnordered::new();
//! loop {
//!     while frontier.len() < N { if let Some(u) = queue.pop_front() { frontier.push(fetch(u)) } }
//!     tokio::select! {
//!         Some((url, out)) = frontier.next() => { /* dedup links into the queue */ }
//!         _ = &mut shutdown => break,
//!     }
//! }
//! // or each fetch a task: set.spawn(fetch(u)); `Some(r) = set.join_next() =>` in the select!
//! // or a layer at a time:
//! stream::iter(layer).map(|u| fetch(u)).buffer_unordered(64).collect::<Vec<_>>().await
//! ```
//!
//! The tests check that a crawl fetches exactly the set reachable in the graph, once each
//! (a flaky page once more per 500), with the frontier and with `buffer_unordered(64)` over
//! 500 pages; that no host ever serves more connections at once than the per-host limit;
//! that a redirect loop, a huge body, a body cut short, a 404 and a closed port each give
//! their own error; that fetches cut by their timeout leave no fd and no task; and that
//! dropping a crawl midway (a `select!` against a shutdown `oneshot`; the fetches in the
//! frontier, or tasks of a `JoinSet` aborted by its drop) closes every connection, the
//! servers seeing each one's end, and gives every host permit back.
//!
//! What the port changed, against tokio: `Rc` for `Arc` and `RefCell` for the host map's
//! `Mutex` (tasks need not be `Send`, and the fetches all run inside one task's
//! `FuturesUnordered`); `select!` is futures' (the frontier through `select_next_some`, the
//! shutdown `.fuse()`d) with `complete`-free branches; `AsyncBufReadExt::read_until` and
//! `AsyncReadExt::take` are futures-util's, on `&mut BufReader`; a body is read with
//! `overlap::io::read_to_end` (futures-util's method zero-fills the spare room again after
//! every `Pending`, as README's tokio table says); `Some(r) = set.join_next() =>` is
//! `r = set.join_next() =>`. The rest is tokio's line for line, and overlap behaved as
//! tokio does, but for one message: a URL passed whole to `connect` (a crawler's easy
//! slip) was an "invalid port value" with a path after the port, and without one went to
//! the resolver as the name `"http://127.0.0.1"` (std's parsing, and so tokio's, does the
//! same); overlap now refuses an address with a `/` as a URL.

mod support;

#[path = "port_user8_crawler/client.rs"]
mod client;
#[path = "port_user8_crawler/crawl.rs"]
mod crawl;
#[path = "port_user8_crawler/graph.rs"]
mod graph;
#[path = "port_user8_crawler/site.rs"]
mod site;

use std::collections::BTreeSet;
use std::time::Duration;

use client::FetchError;
use crawl::{Config, Crawler};
use overlap::future::FutureExt;
use overlap::sync::oneshot;
use overlap::time::sleep;
use site::Resource;
use support::{open_fds, run_in_child, settle, until, within};

const HANG: Duration = Duration::from_secs(20);

#[overlap::test]
async fn the_crawl_fetches_exactly_the_reachable_set_once_each_within_the_host_limit() {
    let hosts = graph::hosts().await;
    let g = graph::generate(&hosts, 90, 3, 0x5eed, |i, links| match i % 6 {
        0 => Resource::Chunked(links),
        1 => Resource::UntilClose(links),
        2 => Resource::Flaky { fails: 1, links },
        _ => Resource::Slow(links),
    });
    let seed = hosts[0].url("/p/0");
    let want = graph::reachable(&g, &seed);
    let crawler = Crawler::new(Config::default());
    let got = within(HANG, crawler.crawl(vec![seed.clone()]), "the crawl").await;
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), want);
    for (url, out) in &got {
        match g.get(url) {
            Some(links) => assert_eq!(out.as_ref().unwrap(), links, "{url}"),
            None => assert!(
                matches!(out, Err(FetchError::Status(404))),
                "{url}: {out:?}"
            ),
        }
    }
    for host in &hosts {
        let requests = host.log.requests.borrow();
        for (path, n) in requests.iter() {
            let url = host.url(path);
            assert!(want.contains(&url), "{url} fetched but not reachable");
            let flaky = path
                .strip_prefix("/p/")
                .is_some_and(|i| i.parse::<usize>().unwrap() % 6 == 2);
            assert_eq!(*n, if flaky { 2 } else { 1 }, "requests for {url}");
        }
        assert_eq!(
            host.log.most_serving.get(),
            2,
            "per-host limit at {}",
            host.addr
        );
    }
    assert!(want.len() > 40, "a graph worth crawling: {}", want.len());
}

#[overlap::test]
async fn buffer_unordered_64_over_500_pages_finishes() {
    let hosts = graph::hosts().await;
    let g = graph::generate(&hosts, 500, 4, 0xc0ffee, |_, links| Resource::Page(links));
    let seed = hosts[1].url("/p/1");
    let want = graph::reachable(&g, &seed);
    let crawler = Crawler::new(Config {
        concurrency: 64,
        per_host: 32,
        ..Config::default()
    });
    let got = within(HANG, crawler.crawl_by_layers(vec![seed]), "the crawl").await;
    assert_eq!(got.keys().cloned().collect::<BTreeSet<_>>(), want);
    let ok = got.values().filter(|o| o.is_ok()).count();
    assert_eq!(ok, want.iter().filter(|u| g.contains_key(*u)).count());
    assert!(ok > 450, "most of the 500 pages reachable: {ok}");
    for host in &hosts {
        assert!(host.log.most_serving.get() <= 32);
        assert!(host.log.requests.borrow().values().all(|&n| n == 1));
    }
}

#[overlap::test]
async fn redirect_loops_huge_and_cut_bodies_and_a_closed_port_give_clear_errors() {
    let hosts = graph::hosts().await;
    let (a, b) = (&hosts[0], &hosts[1]);
    a.route("/start", Resource::Redirect(b.url("/hop")));
    b.route("/hop", Resource::Redirect(a.url("/end")));
    a.route("/end", Resource::Page(vec!["x".into()]));
    a.route("/loop", Resource::Redirect(b.url("/loop")));
    b.route("/loop", Resource::Redirect(a.url("/loop")));
    a.route("/huge", Resource::Huge(10 << 20));
    b.route("/cut", Resource::CutMidBody);
    b.route("/garbage", Resource::Garbage);
    b.route("/endless", Resource::Endless);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.3:0").unwrap();
        l.local_addr().unwrap()
    };
    let cfg = Config {
        max_redirects: 4,
        ..Config::default()
    };
    let crawler = Crawler::new(cfg);
    let fetch = |u: String| within(HANG, crawler.clone().fetch(u), "a fetch");

    let (_, out) = fetch(a.url("/start")).await;
    assert_eq!(out.unwrap(), ["x"]);

    let (_, out) = fetch(a.url("/loop")).await;
    match out {
        Err(FetchError::TooManyRedirects(chain)) => {
            assert_eq!(chain.len(), 6, "{chain:?}");
            assert_eq!(chain[0], a.url("/loop"));
            assert_eq!(chain[1], b.url("/loop"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(a.requests("/loop") + b.requests("/loop"), 5);

    let (_, out) = fetch(a.url("/huge")).await;
    assert!(
        matches!(out, Err(FetchError::TooLarge { cap: 65536 })),
        "{out:?}"
    );
    // The server sees the client go without reading the 10 MiB.
    until(
        || a.log.ended.get() == a.log.accepted.get(),
        "every connection to end",
    )
    .await;

    let (_, out) = fetch(b.url("/endless")).await;
    assert!(
        matches!(out, Err(FetchError::TooLarge { cap: 65536 })),
        "{out:?}"
    );
    until(
        || b.log.ended.get() == b.log.accepted.get(),
        "the endless body to stop",
    )
    .await;

    let (_, out) = fetch(b.url("/cut")).await;
    assert!(
        matches!(out, Err(FetchError::Truncated { got: 10 })),
        "{out:?}"
    );
    assert_eq!(b.requests("/cut"), 3, "the first try and two retries");

    let (_, out) = fetch(format!("http://{closed}/")).await;
    match out {
        Err(FetchError::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
        }
        other => panic!("{other:?}"),
    }

    let (_, out) = fetch(b.url("/garbage")).await;
    match out {
        Err(FetchError::BadResponse(why)) => assert_eq!(why, "invalid HTTP version"),
        other => panic!("{other:?}"),
    }

    // A URL passed itself to connect is refused in words that say so.
    let err = overlap::net::TcpStream::connect(a.url("/end").as_str())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("URL"), "{err}");

    let (_, out) = fetch(b.url("/nowhere")).await;
    assert!(matches!(out, Err(FetchError::Status(404))), "{out:?}");
}

#[test]
fn fetches_cut_by_their_timeout_leave_no_fd_or_task() {
    run_in_child("fetches_cut_by_their_timeout_leave_no_fd_or_task", || {
        overlap::block_on(async {
            let fds = open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let hosts = graph::hosts().await;
            let mut seeds = Vec::new();
            for host in &hosts {
                host.route("/stall", Resource::Stall);
                host.route("/trickle", Resource::Trickle);
                host.route("/ok", Resource::Page(vec![]));
                for p in ["/stall", "/trickle", "/ok"] {
                    seeds.push(host.url(p));
                }
            }
            let crawler = Crawler::new(Config {
                timeout: Duration::from_millis(40),
                retries: 1,
                ..Config::default()
            });
            let got = within(HANG, crawler.crawl(seeds), "the crawl").await;
            for host in &hosts {
                assert!(matches!(got[&host.url("/stall")], Err(FetchError::Timeout)));
                assert!(matches!(
                    got[&host.url("/trickle")],
                    Err(FetchError::Timeout)
                ));
                assert!(got[&host.url("/ok")].is_ok());
                assert_eq!(host.requests("/stall"), 2);
                assert_eq!(host.requests("/trickle"), 2);
                until(
                    || host.log.ended.get() == host.log.accepted.get(),
                    "the servers to see every connection end",
                )
                .await;
            }
            drop((crawler, got, hosts));
            settle().await;
            assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
            assert_eq!(open_fds(), fds, "fds left open");
        })
    });
}

#[test]
fn dropping_the_crawl_midway_closes_every_connection() {
    run_in_child("dropping_the_crawl_midway_closes_every_connection", || {
        overlap::block_on(drop_midway(false))
    });
}

#[test]
fn dropping_a_crawl_of_spawned_fetches_midway_closes_every_connection() {
    run_in_child(
        "dropping_a_crawl_of_spawned_fetches_midway_closes_every_connection",
        || overlap::block_on(drop_midway(true)),
    );
}

/// Crawls pages that link to stalled pages on every host until each host's permits are
/// held by stalled fetches, then fires the shutdown: every connection ends at its server,
/// and no fd, task or permit is left.
async fn drop_midway(spawned: bool) {
    let fds = open_fds();
    let tasks = overlap::metrics().tasks_alive;
    let hosts = graph::hosts().await;
    // Every page links to stalled pages on every host, and to more pages.
    let stalls: Vec<String> = hosts
        .iter()
        .flat_map(|h| (0..4).map(move |i| h.url(&format!("/stall/{i}"))))
        .collect();
    for h in &hosts {
        for i in 0..4 {
            h.route(&format!("/stall/{i}"), Resource::Stall);
        }
    }
    let g = graph::generate(&hosts, 30, 2, 7, |_, mut links| {
        links.extend(stalls.iter().cloned());
        Resource::Page(links)
    });
    let seed = hosts[2].url("/p/2");
    let crawler = Crawler::new(Config {
        timeout: Duration::from_secs(60),
        ..Config::default()
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let crawl = async {
        let stopped = stopped.map(|_| ());
        if spawned {
            crawler.crawl_spawned_until(vec![seed], stopped).await
        } else {
            crawler.crawl_until(vec![seed], stopped).await
        }
    };
    let watch = async {
        // Every host's two permits held by a stalled fetch.
        until(
            || hosts.iter().all(|h| h.log.serving.get() == 2),
            "stalled fetches on every host",
        )
        .await;
        stop.send(()).unwrap();
        sleep(HANG).await;
    };
    let ((done, finished), _) = within(
        HANG,
        async {
            overlap::select! {
                r = crawl.fuse() => (r, ()),
                _ = watch.fuse() => unreachable!(),
            }
        },
        "the crawl to stop",
    )
    .await;
    assert!(!finished);
    assert!(
        done.keys().all(|u| !u.contains("/stall/")),
        "only pages answered"
    );
    assert!(done.keys().any(|u| g.contains_key(u)));
    for host in &hosts {
        until(
            || host.log.ended.get() == host.log.accepted.get(),
            "the servers to see every connection end",
        )
        .await;
        assert!(host.log.accepted.get() >= 2);
        // The dropped fetches gave their host permits back.
        assert_eq!(crawler.free_permits(host.addr), 2);
    }
    drop((crawler, hosts));
    settle().await;
    assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
    assert_eq!(open_fds(), fds, "fds left open");
}
