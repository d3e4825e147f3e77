//! The faults: a server crashing mid-reply (every pending request failing, then a
//! restart), broken framing, a bad body, `exit` without `shutdown`, a server that will not
//! exit (killed), stdin closed (EOF seen by the server), and the client dropped.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use super::client::Client;
use super::connection::{RpcError, MAX_LOG_LINE};
use super::json::Value;
use super::support::{gone, until, within};
use super::{is_child, j, server, start, HANG, MAX_BODY};

#[overlap::test]
async fn a_crash_mid_reply_fails_every_pending_request_and_the_server_restarts() {
    let (client, _) = start("normal").await;
    let old_pid = client.pid();
    let why = "protocol error: stream ended mid-message (11 of 1000 body bytes)";
    let closed = || Err(RpcError::Closed(why.into()));
    let (waiting, sleeping, crashing) = within(
        HANG,
        async {
            overlap::join!(
                client.request("wait", j(r#"{"key":"never"}"#)),
                client.request("sleep", j(r#"{"ms":600000}"#)),
                client.request("crash", Value::Null),
            )
        },
        "the crash",
    )
    .await;
    assert_eq!(
        (waiting, sleeping, crashing),
        (closed(), closed(), closed())
    );
    // Later calls fail at once, with the same reason.
    assert_eq!(client.request("echo", Value::Null).await, closed());
    let refused = client.notify("initialized", Value::Null);
    assert_eq!(refused, Err(RpcError::Closed(why.into())));
    assert_eq!(client.closed().as_deref(), Some(why));
    assert_eq!(
        RpcError::Closed(why.into()).to_string(),
        format!("connection to the server lost: {why}")
    );
    let (old, client, init) = within(HANG, client.restart(HANG), "restart").await.unwrap();
    assert_eq!((old.status.code(), old.killed), (Some(3), false));
    assert_eq!(
        old.stderr.last().map(String::as_str),
        Some("server: crashing mid-reply")
    );
    assert!(!is_child(old_pid));
    assert_ne!(client.pid(), old_pid);
    assert_eq!(
        init.get("serverInfo"),
        Some(&j(r#"{"name":"overlap-lsp-test"}"#))
    );
    assert_eq!(
        client.request("echo", Value::Int(7)).await,
        Ok(Value::Int(7))
    );
    let exit = within(HANG, client.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(0));
    assert_eq!(overlap::metrics().tasks_alive, 0);
}

#[overlap::test]
async fn broken_framing_ends_the_connection_with_a_protocol_error() {
    // The 2,000 bytes of text in JSON-RPC's envelope.
    let over = "message of 2036 bytes is over the 1024-byte limit".to_owned();
    for (kind, limit, why) in [
        (
            "no-length",
            MAX_BODY,
            "header without Content-Length".to_owned(),
        ),
        (
            "bad-length",
            MAX_BODY,
            "Content-Length \"12abc\" is not a number".to_owned(),
        ),
        (
            "huge-length",
            MAX_BODY,
            format!("message of 999999999 bytes is over the {MAX_BODY}-byte limit"),
        ),
        (
            "no-colon",
            MAX_BODY,
            "malformed header line \"Content-Length 2\"".to_owned(),
        ),
        ("big", 1024, over),
    ] {
        let started = Client::start(server::spec("normal", limit));
        let (client, _) = within(HANG, started, "initialize").await.unwrap();
        let why = format!("protocol error: {why}");
        let params = match kind {
            "big" => j(r#"{"bytes":2000}"#),
            _ => Value::obj([("kind", Value::str(kind))]),
        };
        let method = if kind == "big" { "big" } else { "garbage" };
        let (pending, broken) = within(
            HANG,
            async {
                overlap::join!(
                    client.request("wait", j(r#"{"key":"k"}"#)),
                    client.request(method, params),
                )
            },
            kind,
        )
        .await;
        let closed = Err(RpcError::Closed(why.clone()));
        assert_eq!((&pending, &broken), (&closed, &closed), "{kind}");
        assert_eq!(client.closed(), Some(why), "{kind}");
        // No `shutdown` on a broken connection: its input is closed, and the server, which
        // saw nothing wrong, ends at EOF.
        let exit = within(HANG, client.shutdown(HANG), kind).await.unwrap();
        assert_eq!(
            (exit.status.code(), exit.killed),
            (Some(7), false),
            "{kind}"
        );
        assert_eq!(
            exit.stderr.last().map(String::as_str),
            Some("server: stdin closed without exit")
        );
    }
}

#[overlap::test]
async fn a_body_that_is_no_json_is_counted_and_the_connection_goes_on() {
    let (client, _) = start("normal").await;
    let kind = j(r#"{"kind":"bad-json"}"#);
    assert_eq!(
        client.request("garbage", kind).await,
        Ok(Value::str("bad-json"))
    );
    assert_eq!(
        client.stats().bad_messages,
        ["bad JSON: expected a string key at offset 9"]
    );
    assert_eq!(
        client.request("echo", Value::Bool(true)).await,
        Ok(Value::Bool(true))
    );
    assert_eq!(client.closed(), None);
    let exit = within(HANG, client.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(0));
    assert_eq!(exit.stats.bad_messages.len(), 1);
}

#[overlap::test]
async fn exit_without_shutdown_exits_1_and_fails_the_pending_request() {
    let (client, _) = start("normal").await;
    let failed = {
        let pending = client.request("wait", j(r#"{"key":"k"}"#));
        overlap::pin!(pending);
        assert!(super::support::poll_once(pending.as_mut())
            .await
            .is_pending());
        client.notify("exit", Value::Null).unwrap();
        within(HANG, pending, "the pending request").await
    };
    assert_eq!(
        failed,
        Err(RpcError::Closed("server closed its stdout".into()))
    );
    let exit = within(HANG, client.wait(), "exit").await.unwrap();
    assert_eq!(exit.status.code(), Some(1));
    assert_eq!(
        exit.stderr.last().map(String::as_str),
        Some("server: exit (shutdown first: false)")
    );
    assert_eq!(exit.stats.cancels_sent, 0);
}

#[overlap::test]
async fn a_server_that_will_not_exit_is_killed_after_the_grace_period() {
    let (client, _) = start("stubborn").await;
    let pid = client.pid();
    let exit = within(
        HANG,
        client.shutdown(Duration::from_millis(200)),
        "shutdown",
    )
    .await
    .unwrap();
    assert!(exit.killed);
    assert_eq!(
        (exit.status.code(), exit.status.signal()),
        (None, Some(libc::SIGKILL))
    );
    // What it said before the kill (how far it got depends on the machine's speed).
    let said = [
        format!("server: initialize from {}", std::process::id()),
        "server: ignoring exit".into(),
        "server: stdin closed, staying up".into(),
    ];
    assert!(
        exit.stderr.iter().all(|l| said.contains(l)),
        "{:?}",
        exit.stderr
    );
    assert!(!is_child(pid));
    gone(pid, "the killed server").await;
    assert_eq!(overlap::metrics().tasks_alive, 0);
}

#[overlap::test]
async fn closing_stdin_gives_the_server_eof() {
    let (client, _) = start("normal").await;
    client.close_input();
    assert_eq!(
        client.request("echo", Value::Null).await,
        Err(RpcError::Closed("input to the server closed".into()))
    );
    let exit = within(HANG, client.wait(), "the server's exit at EOF")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(7));
    assert_eq!(
        exit.stderr.last().map(String::as_str),
        Some("server: stdin closed without exit")
    );
}

#[overlap::test]
async fn dropping_the_client_kills_and_reaps_the_server_and_ends_its_tasks() {
    let (client, _) = start("normal").await;
    let pid = client.pid();
    let pending = client.request("wait", j(r#"{"key":"k"}"#));
    assert!(super::support::poll_once(Box::pin(pending))
        .await
        .is_pending());
    assert!(overlap::metrics().tasks_alive >= 3);
    drop(client);
    gone(pid, "the dropped client's server").await;
    assert!(!is_child(pid));
    until(|| overlap::metrics().tasks_alive == 0, "the client's tasks").await;
}

#[overlap::test]
async fn two_servers_at_once_do_not_hold_each_others_pipes() {
    // Were the second server to inherit the first's stdin (a pipe end without
    // close-on-exec), closing the first's input would give it no EOF.
    let (first, _) = start("normal").await;
    let (second, _) = start("normal").await;
    first.close_input();
    let exit = within(HANG, first.wait(), "the first server's EOF")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(7));
    assert_eq!(
        second.request("echo", Value::Int(2)).await,
        Ok(Value::Int(2))
    );
    let exit = within(HANG, second.shutdown(HANG), "shutdown")
        .await
        .unwrap();
    assert_eq!(exit.status.code(), Some(0));
}

#[overlap::test]
async fn a_server_that_cannot_start_is_an_error_not_a_hang() {
    let mut spec = server::spec("normal", MAX_BODY);
    spec.program = "/nonexistent/lsp-server".into();
    let err = Client::start(spec).await.err().unwrap();
    assert_eq!(
        err,
        RpcError::Closed("spawn: No such file or directory (os error 2)".into())
    );
    assert_eq!(overlap::metrics().tasks_alive, 0);
}

#[overlap::test]
async fn stderr_lines_are_bounded_and_need_not_be_utf8() {
    let (client, _) = start("normal").await;
    assert_eq!(client.request("noisy", Value::Null).await, Ok(Value::Null));
    client.notify("exit", Value::Null).unwrap();
    let exit = within(HANG, client.wait(), "exit").await.unwrap();
    let cut = format!("{} [cut]", "x".repeat(MAX_LOG_LINE));
    assert_eq!(
        exit.stderr[1..],
        [
            cut.as_str(),
            "server: after the noise",
            "bad \u{fffd} bytes",
            "server: exit (shutdown first: false)",
        ]
    );
    assert_eq!(exit.status.code(), Some(1));
}
