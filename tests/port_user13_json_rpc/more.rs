//! The rest of the end-to-end tests: framing errors that end the server, notifications,
//! stderr, a crash, LSP's shutdown and exit, the client dropped, and nothing left behind.

use std::rc::Rc;
use std::time::Duration;

use super::client::{Client, RpcError};
use super::json::Json;
use super::server::INVALID_REQUEST;
use super::support::{self, until, within};
use super::{hold, release, stats, until_waiting, HANG};

/// Every stderr line of a client's server, once it has exited.
async fn all_logs(c: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(line) = c.log_line().await {
        lines.push(line);
    }
    lines
}

#[overlap::test]
async fn framing_errors_end_the_server_with_code_2_and_a_line_saying_why() {
    let cases: [(&[u8], &str); 5] = [
        (
            b"Content-Length: abc\r\n\r\n{}",
            "an invalid Content-Length: \"abc\"",
        ),
        (
            b"Content-Type: application/json\r\n\r\n{}",
            "a message header without Content-Length",
        ),
        (
            b"Content-Length: 99999999999999999999\r\n\r\n",
            "an invalid Content-Length: \"99999999999999999999\"",
        ),
        (
            b"GET / HTTP/1.1\r\n\r\n",
            "a bad header line: \"GET / HTTP/1.1\"",
        ),
        (&[b'H'; 5000], "a message header longer than 1024 bytes"),
    ];
    within(
        HANG,
        async {
            for (input, why) in cases {
                let mut c = Client::spawn().unwrap();
                assert_eq!(c.request("echo", 1.into()).await, Ok(1.into()));
                let pending = c.request("hold", hold("x"));
                let breaking = async {
                    until_waiting(&c, 1).await;
                    c.send_raw(input);
                };
                let (r, ()) = overlap::join!(pending, breaking);
                assert_eq!(
                    r,
                    Err(RpcError::Closed("the server closed its output".into()))
                );
                let status = c.wait().await.unwrap();
                assert_eq!(status.code(), Some(2), "{why}");
                let logs = all_logs(&mut c).await;
                assert_eq!(logs.last().unwrap(), &format!("fatal: {why}"), "{logs:?}");
            }
        },
        "the framing errors",
    )
    .await;
}

#[overlap::test]
async fn a_body_cut_short_by_the_end_of_input_is_reported() {
    within(
        HANG,
        async {
            for (input, what) in [
                (
                    &b"Content-Length: 100\r\n\r\n{\"jsonrpc\""[..],
                    "body (10 bytes",
                ),
                (&b"Content-Length: 10"[..], "header (18 bytes"),
            ] {
                let mut c = Client::spawn().unwrap();
                assert_eq!(c.request("echo", 2.into()).await, Ok(2.into()));
                c.send_raw(input);
                c.close_input();
                assert_eq!(c.wait().await.unwrap().code(), Some(2));
                let logs = all_logs(&mut c).await;
                let want = format!("fatal: end of input in a message {what} of it)");
                assert_eq!(logs.last().unwrap(), &want);
            }
            // Input ending between messages, without `exit`: code 1, as LSP says.
            let mut c = Client::spawn().unwrap();
            c.close_input();
            assert_eq!(c.wait().await.unwrap().code(), Some(1));
            let logs = all_logs(&mut c).await;
            assert_eq!(logs.last().unwrap(), "end of input without exit");
        },
        "the cut body",
    )
    .await;
}

#[overlap::test]
async fn notifications_arrive_in_order_and_before_the_response_sent_after_them() {
    within(
        HANG,
        async {
            let mut c = Client::spawn().unwrap();
            let count = Json::obj([("count", 2000.into())]);
            assert_eq!(c.request("notify", count).await, Ok(2000.into()));
            // All there already: the reader routed them before the response behind them.
            for seq in 0..2000 {
                let (method, params) = c.notifications.try_recv().unwrap();
                assert_eq!(method, "progress");
                assert_eq!(params.get("seq").and_then(Json::as_i64), Some(seq));
            }
            assert!(c.notifications.try_recv().is_err());
            assert!(c.shutdown().await.unwrap().success());
        },
        "the notifications",
    )
    .await;
}

#[overlap::test]
async fn stderr_lines_are_forwarded_one_by_one() {
    within(
        HANG,
        async {
            let mut c = Client::spawn().unwrap();
            assert_eq!(c.log_line().await.unwrap(), "json-rpc server: started");
            let lines = ["one", "", "two\twith a tab", "ünïcödé 🦀", "  spaced  "];
            let params = Json::obj([(
                "lines",
                Json::Arr(lines.iter().map(|&l| l.into()).collect()),
            )]);
            assert_eq!(c.request("log", params).await, Ok(5.into()));
            for want in lines {
                assert_eq!(c.log_line().await.unwrap(), want);
            }
            c.notify("$/unknownNotification", Json::Null);
            assert_eq!(
                c.log_line().await.unwrap(),
                "ignoring notification $/unknownNotification"
            );
            assert!(c.shutdown().await.unwrap().success());
        },
        "the stderr lines",
    )
    .await;
}

#[overlap::test]
async fn a_crash_fails_every_pending_request_and_every_later_one() {
    within(
        HANG,
        async {
            let mut c = Client::spawn().unwrap();
            let holds = overlap::future::join_all((0..5).map(|i| {
                let c = &c;
                async move { c.request("hold", hold(&format!("h{i}"))).await }
            }));
            let crash = async {
                until_waiting(&c, 5).await;
                c.request("crash", Json::obj([("code", 70.into())])).await
            };
            let (held, crashed) = overlap::join!(holds, crash);
            let gone = Err(RpcError::Closed("the server closed its output".into()));
            assert_eq!(crashed, gone);
            assert!(held.iter().all(|r| *r == gone), "{held:?}");
            assert_eq!(c.shared.pending(), 0);
            assert_eq!(c.request("echo", Json::Null).await, gone, "at once");
            assert_eq!(c.wait().await.unwrap().code(), Some(70));
            assert_eq!(
                all_logs(&mut c).await.last().unwrap(),
                "crashing on request"
            );
        },
        "the crash",
    )
    .await;
}

#[overlap::test]
async fn shutdown_then_exit_reaps_the_child_with_code_0() {
    within(
        HANG,
        async {
            let mut c = Client::spawn().unwrap();
            let pid = c.pid;
            assert_eq!(c.request("shutdown", Json::Null).await, Ok(Json::Null));
            let refused = c.request("echo", "after".into()).await;
            assert_eq!(refused.unwrap_err().code(), Some(INVALID_REQUEST));
            c.notify("exit", Json::Null);
            let status = c.wait().await.unwrap();
            assert_eq!(status.code(), Some(0));
            assert_eq!(c.child.id(), None, "reaped");
            assert!(!support::children()
                .split_whitespace()
                .any(|p| p == pid.to_string()));
            // `exit` without `shutdown`: code 1.
            let mut c = Client::spawn().unwrap();
            c.notify("exit", Json::Null);
            assert_eq!(c.wait().await.unwrap().code(), Some(1));
        },
        "the shutdown",
    )
    .await;
}

#[overlap::test]
async fn dropping_the_client_kills_and_reaps_the_child() {
    within(
        HANG,
        async {
            let mut c = Client::spawn().unwrap();
            let pid = c.pid;
            let (_, none) = overlap::sync::mpsc::unbounded_channel();
            let mut logs = std::mem::replace(&mut c.logs, none);
            assert_eq!(logs.recv().await.unwrap(), "json-rpc server: started");
            // A hung server: only the kill ends it (its input closing would not).
            let frozen = c.request("freeze", Json::Null);
            let answered = overlap::select! {
                _ = { frozen } => true, // moved in: a bare name is borrowed
                line = logs.recv() => {
                    assert_eq!(line.unwrap(), "freezing");
                    false
                }
            };
            assert!(!answered);
            assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok());
            drop(c);
            support::gone(pid, "the dropped client's child reaped").await;
            assert!(!support::children()
                .split_whitespace()
                .any(|p| p == pid.to_string()));
            assert_eq!(logs.recv().await, None, "its stderr closed");
        },
        "the dropped client",
    )
    .await;
}

#[test]
fn no_fd_task_or_child_is_left() {
    support::run_in_child("more::no_fd_task_or_child_is_left", || {
        overlap::block_on(async {
            // A first client warms up what stays (the blocking pool, signal plumbing).
            let c = Client::spawn().unwrap();
            assert!(c.shutdown().await.unwrap().success());
            let fds = support::open_fds();
            let tasks = overlap::metrics().tasks_alive;
            within(
                HANG,
                async {
                    // One shut down cleanly after a cancelled and a timed-out request.
                    let c = Rc::new(Client::spawn().unwrap());
                    let r = c
                        .request_timeout("hold", hold("a"), Duration::from_millis(50))
                        .await;
                    assert_eq!(r, Err(RpcError::Timeout));
                    assert_eq!(release(&c, "a").await, 0);
                    assert_eq!(stats(&c).await.1, 1);
                    let c = Rc::into_inner(c).unwrap();
                    assert!(c.shutdown().await.unwrap().success());
                    // One crashed, one dropped with a request held.
                    let mut crashed = Client::spawn().unwrap();
                    let r = crashed.request("crash", Json::Null).await;
                    assert!(matches!(r, Err(RpcError::Closed(_))));
                    crashed.wait().await.unwrap();
                    drop(crashed);
                    let dropped = Client::spawn().unwrap();
                    let held = dropped.request("hold", hold("b"));
                    overlap::select! {
                        _ = { held } => panic!("answered"),
                        _ = until_waiting(&dropped, 1) => {}
                    }
                    drop(dropped);
                    until(
                        || {
                            support::open_fds() == fds
                                && overlap::metrics().tasks_alive == tasks
                                && support::children().is_empty()
                        },
                        "the fds, tasks and children back",
                    )
                    .await;
                },
                "the clean run",
            )
            .await;
        });
    });
}
