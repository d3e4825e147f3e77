//! Cancellation and faults: cancel requests, query futures dropped part way, malformed and
//! oversized server messages, and a server vanishing.

use std::future::Future;
use std::io::ErrorKind;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use overlap::stream::StreamExt;
use overlap::time::{self, Instant};

use super::client::{CancelToken, Client, Config, Error};
use super::server::{self, Server};
use super::support::{until, within};
use super::{rows, start, until_sessions, HANG};

#[overlap::test]
async fn a_cancel_request_ends_the_running_query_only_with_the_right_key() {
    within(
        HANG,
        async {
            let (server, client, _notes) = start("127.0.0.1").await;
            let stats = &server.state.stats;
            let token = client.cancel_token();
            let running = |n: usize| until(move || stats.executed.get() == n, "the query running");
            // Forged: a wrong key, a wrong pid. Ignored; the query runs to its end.
            let slow = overlap::spawn({
                let client = client.clone();
                async move { client.simple_query("sleep 300").await }
            });
            running(1).await;
            for forged in [
                CancelToken {
                    key: token.key ^ 1,
                    ..token.clone()
                },
                CancelToken {
                    pid: token.pid + 1,
                    ..token.clone()
                },
            ] {
                forged.cancel_query().await.unwrap();
            }
            assert_eq!(slow.await.unwrap().unwrap(), rows(&["slept"]));
            assert_eq!(
                (stats.cancel_requests.get(), stats.cancels_matched.get()),
                (2, 0)
            );
            // The real key: the statement ends with 57014, the one after it never runs.
            let slow = overlap::spawn({
                let client = client.clone();
                async move { client.simple_query("sleep 600000; echo never").await }
            });
            running(2).await;
            token.cancel_query().await.unwrap();
            let err = slow.await.unwrap().unwrap_err();
            match &err {
                Error::Db { code, message } => {
                    assert_eq!(code, "57014");
                    assert_eq!(message, "canceling statement due to user request");
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(
                (stats.cancel_requests.get(), stats.cancels_matched.get()),
                (3, 1)
            );
            assert_eq!(stats.executed.get(), 2, "`echo never` never ran");
            // The connection goes on; a cancel with nothing running cancels nothing later.
            assert_eq!(
                client.simple_query("echo after").await.unwrap(),
                rows(&["after"])
            );
            token.cancel_query().await.unwrap();
            assert_eq!(
                client.simple_query("sleep 20").await.unwrap(),
                rows(&["slept"])
            );
            assert_eq!(stats.cancels_matched.get(), 2);
            assert_eq!(stats.cancel_requests.get(), 4);
            assert_eq!(
                stats.sessions_total.get(),
                1,
                "cancel connections are no sessions"
            );
            server.stop().await;
        },
        "cancel",
    )
    .await;
}

#[overlap::test(start_paused = true)]
async fn a_dropped_query_leaves_the_connection_in_step() {
    within(
        HANG,
        async {
            let (server, client, _notes) = start("127.0.0.1").await;
            let skipped = || client.shared.stats.answers_skipped.get();
            let start = Instant::now();
            // A timeout drops the query future while the server still works on it.
            let cut = time::timeout(Duration::from_secs(1), client.simple_query("sleep 5000"));
            assert!(cut.await.is_err());
            assert_eq!(start.elapsed(), Duration::from_secs(1));
            // The next answer is its own, after the old one (answers come in order).
            assert_eq!(
                client.simple_query("echo after").await.unwrap(),
                rows(&["after"])
            );
            assert_eq!(start.elapsed(), Duration::from_secs(5));
            assert_eq!(skipped(), 1);
            // A row stream dropped after ten rows of a thousand.
            let mut stream = client.query_stream("rows 1000").await.unwrap();
            for i in 0..10 {
                let row = stream.next().await.unwrap().unwrap();
                assert_eq!(row, [Some(i.to_string())]);
            }
            drop(stream);
            assert_eq!(
                client.simple_query("echo next").await.unwrap(),
                rows(&["next"])
            );
            assert_eq!(skipped(), 2);
            // A `select!` that a timer wins, the query's answer mid-way.
            overlap::select! {
                _ = client.simple_query("rows 50; sleep 1000") => panic!("the timer wins"),
                _ = time::sleep(Duration::from_millis(150)) => {}
            }
            let got = client.query("echo $1", &[Some("last")]).await.unwrap();
            assert_eq!(got, rows(&["last"]));
            assert_eq!(skipped(), 3);
            assert_eq!(
                server.state.stats.sessions_total.get(),
                1,
                "never reconnected"
            );
            server.stop().await;
        },
        "dropped query",
    )
    .await;
}

#[overlap::test]
async fn queries_dropped_after_every_number_of_polls() {
    within(
        HANG,
        async {
            let (server, client, _notes) = start("127.0.0.1").await;
            for polls in 0..40 {
                {
                    let mut fut = pin!(client.simple_query("rows 30"));
                    for k in 0..polls {
                        if k > 0 {
                            // The connection task moves on between polls.
                            overlap::yield_now().await;
                        }
                        let ready = std::future::poll_fn(|cx| {
                            Poll::Ready(fut.as_mut().poll(cx).is_ready())
                        })
                        .await;
                        if ready {
                            break;
                        }
                    }
                }
                let want = format!("after {polls}");
                let got = client.query("echo $1", &[Some(&want)]).await.unwrap();
                assert_eq!(got, rows(&[&want]), "after {polls} polls");
            }
            let stats = &client.shared.stats;
            assert!(stats.requests_skipped.get() >= 1, "one never written");
            assert!(stats.answers_skipped.get() >= 1, "one read to its end");
            assert_eq!(server.state.stats.sessions_total.get(), 1);
            server.stop().await;
        },
        "dropped after polls",
    )
    .await;
}

#[overlap::test]
async fn malformed_and_oversized_messages_fail_every_waiting_caller() {
    within(
        HANG,
        async {
            let server = Server::start("127.0.0.1", server::Config::default())
                .await
                .unwrap();
            let config = Config {
                max_message: 64 * 1024,
                ..Config::default()
            };
            let (client, _notes, task) = Client::connect(server.addr, &config).await.unwrap();
            let (a, bad, b, c) = overlap::join!(
                client.simple_query("echo a"),
                client.simple_query("malformed"),
                client.simple_query("echo b"),
                client.query("rows 5", &[]),
            );
            assert_eq!(a.unwrap(), rows(&["a"]));
            for r in [bad, b, c] {
                let err = r.unwrap_err();
                assert_eq!(err.io_kind(), Some(ErrorKind::InvalidData), "{err}");
                assert!(err.to_string().contains("length 2, below 4"), "{err}");
            }
            task.await.unwrap();
            assert!(client.is_closed());
            let later = client.simple_query("echo later").await.unwrap_err();
            assert_eq!(later.io_kind(), Some(ErrorKind::InvalidData), "{later}");
            // A gibibyte announced: refused from its header, never read into memory.
            let (client, _notes, task) = Client::connect(server.addr, &config).await.unwrap();
            let (big, after) = overlap::join!(
                client.simple_query("oversized"),
                client.simple_query("echo after"),
            );
            for r in [big, after] {
                let err = r.unwrap_err();
                assert_eq!(err.io_kind(), Some(ErrorKind::InvalidData), "{err}");
                let text = err.to_string();
                assert!(
                    text.contains("1073741824 bytes, over the limit of 65536"),
                    "{text}"
                );
            }
            task.await.unwrap();
            // Each connection closed by its client: the server's sessions end.
            until_sessions(&server, 0).await;
            assert_eq!(server.state.stats.sessions_total.get(), 2);
            server.stop().await;
        },
        "malformed",
    )
    .await;
}

#[overlap::test]
async fn a_server_vanishing_mid_answer_fails_every_waiting_caller() {
    within(
        HANG,
        async {
            let server = Server::start("127.0.0.1", server::Config::default())
                .await
                .unwrap();
            let (client, _notes, task) = Client::connect(server.addr, &Config::default())
                .await
                .unwrap();
            let (before, vanish, behind) = overlap::join!(
                client.simple_query("echo before"),
                client.simple_query("vanish"),
                client.simple_query("echo never"),
            );
            assert_eq!(before.unwrap(), rows(&["before"]));
            for r in [vanish, behind] {
                let err = r.unwrap_err();
                assert_eq!(err.io_kind(), Some(ErrorKind::UnexpectedEof), "{err}");
                let text = err.to_string();
                assert!(text.contains("with 2 requests unanswered"), "{text}");
            }
            task.await.unwrap();
            assert!(client.is_closed());
            // Gone inside a message: the same, and not mistaken for a malformed one.
            let (client, _notes, task) = Client::connect(server.addr, &Config::default())
                .await
                .unwrap();
            let err = client.simple_query("rows 3; cut").await.unwrap_err();
            assert_eq!(err.io_kind(), Some(ErrorKind::UnexpectedEof), "{err}");
            let text = err.to_string();
            assert!(text.contains("7 bytes into a message"), "{text}");
            task.await.unwrap();
            // The whole server gone with a query running on another connection.
            let (client, _notes, task) = Client::connect(server.addr, &Config::default())
                .await
                .unwrap();
            let running = overlap::spawn({
                let client = client.clone();
                async move { client.simple_query("sleep 600000").await }
            });
            let executed = &server.state.stats.executed;
            until(|| executed.get() == 5, "the sleep running").await;
            let addr = server.addr;
            server.stop().await;
            let err = running.await.unwrap().unwrap_err();
            let kind = err.io_kind();
            assert!(
                matches!(
                    kind,
                    Some(ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset)
                ),
                "{err}"
            );
            task.await.unwrap();
            let refused = Client::connect(addr, &Config::default())
                .await
                .err()
                .unwrap();
            assert_eq!(
                refused.io_kind(),
                Some(ErrorKind::ConnectionRefused),
                "{refused}"
            );
        },
        "vanishing",
    )
    .await;
}
