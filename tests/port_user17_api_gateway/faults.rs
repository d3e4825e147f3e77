//! The gateway's tests of faults and limits: a slow backend, one dying mid-answer,
//! malformed requests, a client vanishing mid-upload, the circuit breaker, and the drain.

use std::io::ErrorKind;
use std::time::Duration;

use overlap::net::TcpStream;
use overlap::signal::unix::{signal, SignalKind};
use overlap::time;

use super::backend::Backend;
use super::client::{get, Client};
use super::limits::BreakerState;
use super::support::{open_fds, run_in_child, settle, until, within};
use super::{rig, route_mut, HANG};

#[overlap::test(start_paused = true)]
async fn a_slow_backend_gets_504_and_its_connection_is_not_pooled() {
    within(
        HANG,
        async {
            let rig = rig(|_| {}).await;
            let mut c = Client::connect(rig.v4()).await;
            let start = time::now();
            let r = c.get("/slow/15", "").await;
            assert_eq!((r.status(), r.text()), (504, "backend timed out"));
            assert_eq!(
                time::now() - start,
                Duration::from_secs(10),
                "the backend timeout"
            );
            // The client's connection goes on; the late connection is not reused.
            let r = c.get("/users/next", "").await;
            assert_eq!((r.status(), r.header("x-conn")), (200, Some("1")));
            let st = rig.users.state.clone();
            until(|| st.closed.get() == 1, "the slow connection closed").await;
            assert_eq!(st.accepts.get(), 2);
            let b = rig.gw.backend("users");
            assert_eq!(b.breaker.state(), BreakerState::Closed { failures: 0 });
            assert_eq!(b.pool.stats().reused, 0);
        },
        "504",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_backend_dying_mid_answer_truncates_and_closes_the_client() {
    within(
        HANG,
        async {
            let rig = rig(|_| {}).await;
            let mut other = Client::connect(rig.v4()).await;
            assert_eq!(other.get("/users/before", "").await.status(), 200);
            let mut c = Client::connect(rig.v4()).await;
            let r = c.get("/die/300", "").await;
            assert_eq!(
                (r.status(), r.header("content-length")),
                (200, Some("1000"))
            );
            assert!(
                !r.complete && r.body == [b'd'; 300],
                "{} bytes",
                r.body.len()
            );
            assert!(
                c.closed().await,
                "closed after the part that came, not hung"
            );
            let mut c = Client::connect(rig.v4()).await;
            let r = c.get("/die-chunked/100", "").await;
            assert_eq!(r.header("transfer-encoding"), Some("chunked"));
            assert!(
                !r.complete && r.body == [b'c'; 100],
                "{} bytes",
                r.body.len()
            );
            assert!(c.closed().await);
            // A backend ending its answer by closing is a whole answer: chunked to the client.
            let mut c = Client::connect(rig.v4()).await;
            let r = c.get("/until-close", "").await;
            assert!(r.complete && r.body == b"to the end");
            assert_eq!(r.header("transfer-encoding"), Some("chunked"));
            assert_eq!(
                r.header("connection"),
                None,
                "the client's connection goes on"
            );
            assert_eq!(c.get("/users/again", "").await.status(), 200);
            assert_eq!(other.get("/users/after", "").await.status(), 200);
            let b = rig.gw.backend("users");
            assert_eq!(b.breaker.state(), BreakerState::Closed { failures: 0 });
        },
        "dying",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn malformed_requests_are_answered_and_closed_and_others_go_on() {
    within(
        HANG,
        async {
            let rig = rig(|_| {}).await;
            let mut good = Client::connect(rig.v4()).await;
            assert_eq!(good.get("/users/1", "").await.status(), 200);
            let huge = format!("GET /users HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
            let endless = format!("GET /users HTTP/1.1\r\nX-Big: {}", "a".repeat(9000));
            let post = |rest: &str| format!("POST /users/x HTTP/1.1\r\n{rest}");
            let chunked = "Transfer-Encoding: chunked\r\n\r\n";
            let cases: [(String, u16, &str); 12] = [
                (
                    "GARBAGE\r\n\r\n".into(),
                    400,
                    "a request line not of three words",
                ),
                ("GET /users HTTP/2.0\r\n\r\n".into(), 400, "not HTTP/1.x"),
                ("get /users HTTP/1.1\r\n\r\n".into(), 400, "a bad method"),
                (
                    "GET users HTTP/1.1\r\n\r\n".into(),
                    400,
                    "a bad request target",
                ),
                (
                    "GET /users HTTP/1.1\r\nNo colon here\r\n\r\n".into(),
                    400,
                    "a header line without a colon",
                ),
                (
                    "GET /users HTTP/1.1\r\nBad Name: x\r\n\r\n".into(),
                    400,
                    "a bad header name",
                ),
                (huge, 431, "head too large"),
                (endless, 431, "head too large"),
                (
                    post("Content-Length: ten\r\n\r\n"),
                    400,
                    "a Content-Length that is no number",
                ),
                (
                    post(&format!("Content-Length: 3\r\n{chunked}")),
                    400,
                    "both Content-Length and Transfer-Encoding",
                ),
                (post(&format!("{chunked}zz\r\n")), 400, "a bad chunk size"),
                (
                    post(&format!("{chunked}3\r\nabcdef\r\n0\r\n\r\n")),
                    400,
                    "a chunk longer than its size",
                ),
            ];
            for (raw, status, why) in cases {
                let mut c = Client::connect(rig.v4()).await;
                c.send(&raw).await;
                let r = c.response().await;
                assert_eq!((r.status(), r.text()), (status, why), "{raw:.60?}");
                assert_eq!(r.header("connection"), Some("close"));
                assert!(c.closed().await, "{raw:.60?}");
                assert_eq!(good.get("/users/between", "").await.status(), 200);
            }
            let s = &rig.gw.shared.stats;
            assert_eq!((s.status(400), s.status(431), s.status(200)), (10, 2, 13));
            // The two chunked ones reached the backend, which saw their bodies cut short.
            let st = rig.users.state.clone();
            until(
                || st.closed.get() == 2,
                "the cut uploads' connections closed",
            )
            .await;
            assert_eq!(rig.gw.backend("users").pool.leased(), 0);
        },
        "malformed",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_client_vanishing_mid_upload_frees_its_permit() {
    within(
        HANG,
        async {
            let rig = rig(|cfg| route_mut(cfg, "/sink").max_concurrent = 1).await;
            let permits = rig.gw.route("/sink").permits.clone();
            let st = rig.users.state.clone();
            let mut c = Client::connect(rig.v4()).await;
            c.send("POST /sink HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n")
                .await;
            c.send(vec![7u8; 100_000]).await;
            until(
                || st.received.get() == 100_000,
                "part of the upload at the backend",
            )
            .await;
            assert_eq!(permits.available_permits(), 0);
            drop(c);
            until(|| permits.available_permits() == 1, "the permit back").await;
            until(|| st.truncated_uploads.get() == 1, "the backend told").await;
            let mut c = Client::connect(rig.v4()).await;
            let r = c.with_body("POST", "/sink", b"0123456789").await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.text(), super::backend::Summer::of(b"0123456789"));
            let b = rig.gw.backend("users");
            assert_eq!((b.pool.leased(), b.pool.stats().connects), (0, 2));
            assert_eq!(b.breaker.state(), BreakerState::Closed { failures: 0 });
        },
        "vanishing",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn an_upload_over_the_route_limit_gets_413_before_the_backend_sees_it() {
    within(
        HANG,
        async {
            let rig = rig(|cfg| route_mut(cfg, "/sink").max_body = 1000).await;
            let mut c = Client::connect(rig.v4()).await;
            let r = c.with_body("POST", "/sink", &[1u8; 1000]).await;
            assert_eq!(
                r.text(),
                super::backend::Summer::of(&[1u8; 1000]),
                "at the limit"
            );
            c.send("POST /sink HTTP/1.1\r\nContent-Length: 1001\r\n\r\n")
                .await;
            c.send([2u8; 1001]).await;
            let r = c.response().await;
            assert_eq!((r.status(), r.text()), (413, "body too large"));
            assert_eq!(
                r.header("connection"),
                Some("close"),
                "the body left unread"
            );
            assert!(c.closed().await);
            assert_eq!(rig.users.state.requests.get(), 1);
            assert_eq!(rig.users.state.received.get(), 1000);
        },
        "413",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_client_vanishing_mid_download_frees_the_backend_connection() {
    within(
        HANG,
        async {
            let rig = rig(|cfg| route_mut(cfg, "/big").max_concurrent = 1).await;
            let st = rig.users.state.clone();
            st.gated.set(true);
            let mut c = Client::connect(rig.v4()).await;
            c.send("GET /big/8388608 HTTP/1.1\r\n\r\n").await;
            let head = c.conn.read_head(1024).await.unwrap().unwrap();
            assert_eq!(head.get("transfer-encoding"), Some("chunked"));
            drop(c);
            // The rest goes out, and finds nobody at the end: the gateway's writes fail
            // (EPIPE or a reset), and it drops the backend connection.
            rig.users.open_gate(1);
            until(|| st.closed.get() == 1, "the backend's connection closed").await;
            let route = rig.gw.route("/big");
            until(|| route.permits.available_permits() == 1, "the permit back").await;
            let b = rig.gw.backend("users");
            assert_eq!((b.pool.leased(), b.pool.idle()), (0, 0));
            assert_eq!(b.breaker.state(), BreakerState::Closed { failures: 0 });
            // The next download is whole, on a new backend connection.
            st.gated.set(false);
            let r = get(rig.v4(), "/big/100000").await;
            assert!(r.complete && r.body == super::support::pattern(100_000));
            assert_eq!(st.accepts.get(), 2);
        },
        "vanishing downloader",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_circuit_breaker_opens_probes_after_its_cooldown_and_closes() {
    within(
        HANG,
        async {
            let rig = rig(|_| {}).await;
            let path = rig.dir.join("orders.sock");
            let super::Rig { gw, orders, .. } = rig;
            drop(orders); // refused from now on: the socket file stays, nobody listens
            settle().await; // the aborted accept task dropped, its listener closed
            let b = gw.backend("orders").clone();
            let mut c = Client::connect(gw.addrs[0]).await;
            for _ in 0..3 {
                let r = c.get("/orders/1", "").await;
                assert_eq!((r.status(), r.text()), (502, "backend unreachable"));
            }
            let r = c.get("/orders/1", "").await;
            assert_eq!((r.status(), r.text()), (503, "circuit open"));
            assert_eq!(r.header("retry-after"), Some("30"));
            time::advance(Duration::from_secs(10)).await;
            assert_eq!(
                c.get("/orders/1", "").await.header("retry-after"),
                Some("20")
            );
            assert_eq!(b.pool.stats().connects, 0, "no connect while open");
            // The cooldown over, a probe fails: open again for a whole cooldown.
            time::advance(Duration::from_secs(20)).await;
            assert_eq!(c.get("/orders/1", "").await.status(), 502);
            let r = c.get("/orders/1", "").await;
            assert_eq!((r.status(), r.header("retry-after")), (503, Some("30")));
            // The backend is back; the next probe is slow, and only it goes through.
            let orders = Backend::unix("orders", &path);
            time::advance(Duration::from_secs(30)).await;
            let addr = gw.addrs[0];
            let probe = overlap::spawn(async move { get(addr, "/o/slow/2").await });
            let st = orders.state.clone();
            until(|| st.in_flight.get() == 1, "the probe at the backend").await;
            assert_eq!(b.breaker.state(), BreakerState::HalfOpen);
            let r = c.get("/orders/1", "").await;
            assert_eq!((r.status(), r.header("retry-after")), (503, Some("1")));
            assert_eq!(probe.await.unwrap().text(), "slow");
            assert_eq!(b.breaker.state(), BreakerState::Closed { failures: 0 });
            assert_eq!(
                c.get("/orders/1", "").await.text(),
                "orders GET /orders/1\n"
            );
            assert_eq!((b.breaker.opened.get(), b.breaker.refused.get()), (2, 4));
            assert_eq!(st.requests.get(), 2);
        },
        "breaker",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn the_drain_finishes_requests_in_flight_and_closes_idle_connections() {
    within(
        HANG,
        async {
            let tasks = overlap::metrics().tasks_alive;
            let rig = rig(|_| {}).await;
            let addr = rig.v4();
            let mut idle = Client::connect(addr).await;
            assert_eq!(idle.get("/orders/1", "").await.status(), 200);
            let busy = overlap::spawn(async move {
                let mut c = Client::connect(addr).await;
                let r = c.get("/slow/5", "").await;
                (r, c.closed().await)
            });
            let st = rig.users.state.clone();
            until(|| st.in_flight.get() == 1, "a request in flight").await;
            rig.gw.shutdown();
            assert!(idle.closed().await, "an idle connection closes at once");
            let refused = TcpStream::connect(addr).await.map(drop).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
            let (r, closed) = busy.await.unwrap();
            assert_eq!((r.status(), r.text()), (200, "slow"));
            assert_eq!(r.header("connection"), Some("close"));
            assert!(closed);
            let super::Rig {
                gw,
                users,
                orders,
                dir,
            } = rig;
            let shared = gw.shared.clone();
            let report = gw.finished().await;
            assert_eq!((report.open_at_drain, report.aborted), (2, 0));
            assert_eq!(shared.stats.closed_idle_on_drain.get(), 1);
            for b in &shared.backends {
                assert_eq!((b.pool.idle(), b.pool.leased()), (0, 0));
            }
            let (ust, ost) = (users.state.clone(), orders.state.clone());
            until(
                || ust.closed.get() == 1 && ost.closed.get() == 1,
                "pools closed",
            )
            .await;
            drop((shared, users, orders, dir));
            until(
                || overlap::metrics().tasks_alive == tasks,
                "every task ended",
            )
            .await;
        },
        "drain",
    )
    .await;
}

#[test]
fn sigterm_drains_and_the_deadline_aborts_a_straggler_leaving_no_fd_or_task() {
    let name = "faults::sigterm_drains_and_the_deadline_aborts_a_straggler_leaving_no_fd_or_task";
    // In a child process of its own: the signal and the fd count are process-wide.
    run_in_child(name, || {
        // The signal's process-wide self-pipe stays open once made, as tokio's: make it
        // before counting.
        overlap::block_on(async { drop(signal(SignalKind::terminate()).unwrap()) });
        let fds = open_fds();
        let rt = overlap::Runtime::builder()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(within(HANG, drain_on_sigterm(), "sigterm"));
        drop(rt);
        assert_eq!(open_fds(), fds, "every fd closed");
    });
}

async fn drain_on_sigterm() {
    // What the user's main does: SIGTERM is the shutdown trigger. The first `signal()`
    // starts the runtime's reader task, which `tasks_alive` counts for the runtime's life
    // (tokio's driver is no task): count from after it.
    let mut term = signal(SignalKind::terminate()).unwrap();
    let tasks = overlap::metrics().tasks_alive;
    let rig = rig(|cfg| {
        cfg.drain_deadline = Duration::from_secs(5);
        cfg.backends[0].timeout = Duration::from_secs(120);
    })
    .await;
    let trigger = rig.gw.shared.draining.clone();
    let watcher = overlap::spawn(async move {
        term.recv().await;
        trigger.cancel();
    });
    let addr = rig.v6();
    let straggler = overlap::spawn(async move {
        let mut c = Client::connect(addr).await;
        c.send("GET /slow/60 HTTP/1.1\r\n\r\n").await;
        c.closed().await
    });
    let st = rig.users.state.clone();
    until(|| st.in_flight.get() == 1, "the straggler at the backend").await;
    let start = time::now();
    // SAFETY: raise only sends this process a signal; overlap's handler catches SIGTERM.
    assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
    let super::Rig {
        gw,
        users,
        orders,
        dir,
    } = rig;
    let report = gw.finished().await;
    watcher.await.unwrap();
    assert_eq!(
        time::now() - start,
        Duration::from_secs(5),
        "the drain deadline"
    );
    assert_eq!((report.open_at_drain, report.aborted), (1, 1));
    assert!(straggler.await.unwrap(), "closed without an answer");
    assert_eq!(st.accepts.get(), 1);
    drop((users, orders, dir));
    until(
        || overlap::metrics().tasks_alive == tasks,
        "every task ended",
    )
    .await;
}
