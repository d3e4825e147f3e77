//! The service's tests: webhook alerts with the webhook down then up, the status
//! endpoint, and a whole run's shutdown.

use std::time::Duration;

use overlap::io::AsyncReadExt;
use overlap::net::TcpStream;
use overlap::sync::watch;

use super::alerts::{AlertConfig, Pending};
use super::checker::{CheckDef, Checker, Config};
use super::checks::{Kind, Status};
use super::client::{get, http_raw, Responder, Script, Web};
use super::state::View;
use super::support::{children, open_fds, run_in_child, until, within, TempDir};
use super::{argv, pid_in, HANG};

/// Waits until the view shows `status`.
async fn shows(view: &mut watch::Receiver<View>, status: Status) {
    view.wait_for(|v| v.status == Some(status)).await.unwrap();
}

#[overlap::test]
async fn webhook_down_then_up_gets_coalesced_alerts_in_order() {
    within(
        HANG,
        async {
            let web = Web::start("127.0.0.1:0").await;
            web.seen.hook_status.set(503);
            let checker = Checker::start(Config {
                alerts: Some(AlertConfig {
                    webhook: web.addr,
                    path: "/hook".into(),
                    queue: 3,
                    backoff: (Duration::from_millis(5), Duration::from_millis(40)),
                    timeout: Duration::from_secs(30),
                }),
                ..Config::default()
            })
            .await
            .unwrap();
            let alerts = checker.inner.alerts.clone().unwrap();
            let mut checks = Vec::new();
            for name in ["a", "b", "c", "d"] {
                let script = Script::new(Status::Passing);
                let def = CheckDef::new(name, script.kind(), Duration::from_millis(20));
                let mut view = checker.add(def);
                shows(&mut view, Status::Passing).await;
                checks.push((script, view));
            }
            use Status::{Critical as C, Passing as P};
            // a fails; b fails, recovers and fails again; c fails; then d, past the bound.
            for (i, to) in [(0, C), (1, C), (1, P), (1, C), (2, C), (3, C)] {
                let (script, view) = &mut checks[i];
                script.set(to);
                shows(view, to).await;
            }
            until(|| web.seen.hooks_refused.get() >= 2, "the webhook refusing").await;
            let pending = |check: &str, changes| Pending {
                check: check.into(),
                from: P,
                to: C,
                changes,
            };
            assert_eq!(
                alerts.waiting(),
                [pending("b", 3), pending("c", 1), pending("d", 1)]
            );
            assert_eq!(alerts.dropped.get(), 1, "a, the oldest, dropped");
            assert!(web.seen.hooks.borrow().is_empty());

            web.seen.hook_status.set(200);
            until(
                || web.seen.hooks.borrow().len() == 3,
                "the alerts delivered",
            )
            .await;
            assert_eq!(
                *web.seen.hooks.borrow(),
                [
                    r#"{"check":"b","from":"passing","to":"critical","changes":3}"#,
                    r#"{"check":"c","from":"passing","to":"critical","changes":1}"#,
                    r#"{"check":"d","from":"passing","to":"critical","changes":1}"#,
                ]
            );
            until(|| alerts.waiting().is_empty(), "the queue emptied").await;
            assert_eq!(alerts.delivered.get(), 3);
            // Up, a change goes out alone, at once.
            let (script, view) = &mut checks[0];
            script.set(P);
            shows(view, P).await;
            until(|| web.seen.hooks.borrow().len() == 4, "the next alert").await;
            assert_eq!(
                web.seen.hooks.borrow()[3],
                r#"{"check":"a","from":"critical","to":"passing","changes":1}"#
            );
            assert!(checker.shutdown().await);
            overlap::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(web.seen.hooks.borrow().len(), 4, "each alert once");
        },
        "the webhook",
    )
    .await;
}

#[overlap::test]
async fn the_status_endpoint_lists_checks_and_refuses_bad_input() {
    within(
        HANG,
        async {
            let checker = Checker::start(Config {
                status: Some("127.0.0.1:0".parse().unwrap()),
                ..Config::default()
            })
            .await
            .unwrap();
            let at = checker.status_addr.unwrap();
            let hour = Duration::from_secs(3600);
            let db = Script::new(Status::Passing);
            let cache = Script::new(Status::Warning);
            let mut views = vec![
                checker.add(CheckDef::new("db", db.kind(), hour)),
                checker.add(CheckDef::new("cache \"L2\"", cache.kind(), hour)),
            ];
            for view in &mut views {
                view.wait_for(|v| v.runs == 1).await.unwrap();
            }
            let db_json =
                r#"{"name":"db","status":"passing","output":"scripted passing","runs":1}"#;
            let cache_json = r#"{"name":"cache \"L2\"","status":"warning","output":"scripted warning","runs":1}"#;
            assert_eq!(
                get(at, "/status").await,
                (200, format!("[{cache_json},{db_json}]"))
            );
            assert_eq!(get(at, "/checks/db").await, (200, db_json.to_string()));
            let not_found = r#"{"error":"not found"}"#.to_string();
            assert_eq!(get(at, "/checks/nope").await, (404, not_found.clone()));
            assert_eq!(get(at, "/checks/").await, (404, not_found.clone()));
            assert_eq!(get(at, "/nope").await, (404, not_found.clone()));
            let post = b"POST /status HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
            assert_eq!(http_raw(at, post).await.0, 405);
            let bad = r#"{"error":"bad request"}"#.to_string();
            for request in [
                &b"garbage\r\n\r\n"[..],
                b"GET status HTTP/1.1\r\n\r\n",
                b"GET /status SPDY/3\r\n\r\n",
                b"GET  /status HTTP/1.1\r\n\r\n",
                b"\r\n\r\n",
            ] {
                assert_eq!(http_raw(at, request).await, (400, bad.clone()));
            }
            let long = format!("GET /status HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(8000));
            assert_eq!(http_raw(at, long.as_bytes()).await, (400, bad.clone()));
            // A client that says nothing and goes: the server goes on.
            drop(TcpStream::connect(at).await.unwrap());
            // A removed check is gone from the list.
            assert!(checker.remove("db"));
            assert_eq!(get(at, "/status").await, (200, format!("[{cache_json}]")));
            assert!(checker.shutdown().await);
            assert!(TcpStream::connect(at).await.is_err(), "the listener closed");
        },
        "the status endpoint",
    )
    .await;
}

#[test]
fn shutdown_kills_and_reaps_children_and_leaves_no_fd_child_or_task() {
    const NAME: &str = "service::shutdown_kills_and_reaps_children_and_leaves_no_fd_child_or_task";
    run_in_child(NAME, || {
        overlap::block_on(within(
            HANG,
            async {
                let fds = open_fds();
                let tasks = overlap::metrics().tasks_alive;
                let web = Web::start("127.0.0.1:0").await;
                let udp = Responder::start("127.0.0.1:0", 1).await;
                let dir = TempDir::new("hc-shutdown");
                let file = dir.join("pid");
                let checker = Checker::start(Config {
                    status: Some("127.0.0.1:0".parse().unwrap()),
                    alerts: Some(AlertConfig {
                        webhook: web.addr,
                        path: "/hook".into(),
                        queue: 10,
                        backoff: (Duration::from_millis(5), Duration::from_millis(40)),
                        timeout: Duration::from_secs(30),
                    }),
                    ..Config::default()
                })
                .await
                .unwrap();
                let hour = Duration::from_secs(3600);
                let every = Duration::from_millis(20);
                let script = format!("echo $$ > {}; exec sleep 600", file.display());
                let kinds = [
                    (
                        "tcp",
                        Kind::Tcp {
                            target: format!("localhost:{}", web.addr.port()),
                            timeout: hour,
                        },
                        every,
                    ),
                    (
                        "http",
                        Kind::Http {
                            addr: web.addr,
                            path: "/ok".into(),
                            status: 200,
                            body_contains: None,
                            timeout: hour,
                        },
                        every,
                    ),
                    (
                        "hang",
                        Kind::Http {
                            addr: web.addr,
                            path: "/hang".into(),
                            status: 200,
                            body_contains: None,
                            timeout: hour,
                        },
                        hour,
                    ),
                    (
                        "udp",
                        Kind::Udp {
                            addr: udp.addr,
                            payload: b"PING".to_vec(),
                            expect: b"PONG".to_vec(),
                            attempts: 3,
                            attempt_timeout: hour,
                        },
                        every,
                    ),
                    (
                        "exec",
                        Kind::Exec {
                            argv: argv(&script),
                            timeout: hour,
                            max_output: 64,
                        },
                        hour,
                    ),
                    (
                        "quick",
                        Kind::Exec {
                            argv: argv("true"),
                            timeout: hour,
                            max_output: 64,
                        },
                        every,
                    ),
                ];
                let mut views = Vec::new();
                for (name, kind, every) in kinds {
                    views.push(checker.add(CheckDef::new(name, kind, every)));
                }
                let pid = pid_in(&file).await;
                until(|| web.hits("/hang") == 1, "the hung request").await;
                for view in &mut views[..2] {
                    view.wait_for(|v| v.runs >= 2).await.unwrap();
                }
                let at = checker.status_addr.unwrap();
                assert_eq!(get(at, "/checks/udp").await.0, 200);
                let mut idle = TcpStream::connect(at).await.unwrap();

                assert!(checker.shutdown().await, "every task ended in time");
                // The exec runs in flight (the sleep's, and maybe a `true`'s) killed their
                // children and reaped them before ending.
                assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
                assert_eq!(children(), "", "no child left");
                until(
                    || web.seen.hang_closed.get() == 1,
                    "the hung request closed",
                )
                .await;
                // Closed: by its session (an end of file), or, if the acceptor had not taken
                // it yet, with the listener (a reset).
                let mut rest = Vec::new();
                match idle.read_to_end(&mut rest).await {
                    Ok(n) => assert_eq!(n, 0),
                    Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
                }
                drop((checker, views, web, udp, idle, dir));
                until(|| overlap::metrics().tasks_alive == tasks, "the tasks gone").await;
                until(|| open_fds() == fds, "the fds back").await;
            },
            "the shutdown",
        ));
    });
}
