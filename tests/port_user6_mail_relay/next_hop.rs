//! The next-hop tests: down then up (and restarted on its port), and closing the relay's
//! idle delivery connection.

use std::time::Duration;

use crate::harness::*;
use crate::relay::Relay;
use crate::session::Config;
use crate::support::TempDir;
use overlap::net::TcpListener;

/// The next hop is down (nothing listens on its port) while three messages arrive: the
/// relay retries with backoff; once the next hop is up, each message is delivered exactly
/// once and the queue empties; so again after the next hop restarts on the same port.
#[overlap::test]
async fn the_next_hop_down_then_up_gets_each_message_once() {
    let dir = TempDir::new("mail-next-down");
    // A port nothing listens on, for now.
    let next_addr = listener().await.local_addr().unwrap();
    let front = Relay::start(
        listener().await,
        config(),
        &dir.join("front"),
        Some(hop(next_addr)),
    )
    .await
    .unwrap();
    let mut client = connect(front.addr).await;
    let mut sent = Vec::new();
    for k in 0..3 {
        let b = body(10 * KIB, 20 + k);
        assert_eq!(
            client
                .send_mail(&format!("s{k}@x"), &["r@y"], &b)
                .await
                .unwrap()
                .code,
            250
        );
        sent.push(b);
    }
    client.quit().await.unwrap();
    let deliveries = front.deliveries.clone();
    until(|| deliveries.retries.get() >= 3, "three failed attempts").await;
    assert_eq!(deliveries.delivered.get(), 0);
    assert_eq!(entries(front.queue()), 3);
    let next_listener = TcpListener::bind(next_addr).await.unwrap();
    let next = Relay::start(next_listener, config(), &dir.join("next"), None)
        .await
        .unwrap();
    until(|| entries(front.queue()) == 0, "the front queue to empty").await;
    let mail = mail_in(next.queue());
    assert_eq!(mail.len(), 3, "each message once");
    for (k, (from, _, got)) in mail.iter().enumerate() {
        assert_eq!(from, &format!("s{k}@x"));
        assert!(got == &sent[k], "message {k} differs");
    }
    assert_eq!(
        (deliveries.delivered.get(), deliveries.connections.get()),
        (3, 1)
    );
    // The next hop restarts on its port: its shutdown says 421 to the idle delivery
    // connection and closes it first (its end of it waits in TIME_WAIT, which the new
    // listener's SO_REUSEADDR binds past); a message in between waits for the new one.
    next.shut_down().await.unwrap();
    let last = body(4 * KIB, 23);
    let mut client = connect(front.addr).await;
    assert_eq!(
        client
            .send_mail("s3@x", &["r@y"], &last)
            .await
            .unwrap()
            .code,
        250
    );
    client.quit().await.unwrap();
    until(|| deliveries.retries.get() >= 5, "failed attempts").await;
    let next_listener = TcpListener::bind(next_addr).await.unwrap();
    let next = Relay::start(next_listener, config(), &dir.join("next"), None)
        .await
        .unwrap();
    until(|| entries(front.queue()) == 0, "the last message to go").await;
    let mail = mail_in(next.queue());
    assert_eq!(mail.len(), 4, "each message once");
    assert!(mail[3].2 == last, "the last message differs");
    assert_eq!(deliveries.delivered.get(), 4);
    front.shut_down().await.unwrap();
    next.shut_down().await.unwrap();
}

/// The next hop times out the relay's idle delivery connection (a 421, then its close):
/// the next message, sent on it, meets that stale 421 and is retried on a new connection,
/// delivered once.
#[overlap::test]
async fn a_delivery_connection_closed_by_the_next_hop_is_replaced() {
    let dir = TempDir::new("mail-next-idle");
    let next_listener = listener().await;
    let next_addr = next_listener.local_addr().unwrap();
    let quick = Config {
        command_timeout: Duration::from_millis(30),
        ..config()
    };
    let next = Relay::start(next_listener, quick, &dir.join("next"), None)
        .await
        .unwrap();
    let front_dir = dir.join("front");
    let front = Relay::start(listener().await, config(), &front_dir, Some(hop(next_addr)))
        .await
        .unwrap();
    let mut client = connect(front.addr).await;
    let bodies = [body(2 * KIB, 40), body(3 * KIB, 41)];
    let reply = client.send_mail("a@x", &["b@y"], &bodies[0]).await.unwrap();
    assert_eq!(reply.code, 250);
    let next_stats = next.stats();
    until(
        || next_stats.timeouts.get() == 1,
        "the next hop's idle timeout",
    )
    .await;
    until(
        || next_stats.live.get() == 0,
        "the next hop's session to end",
    )
    .await;
    let reply = client.send_mail("c@x", &["d@y"], &bodies[1]).await.unwrap();
    assert_eq!(reply.code, 250);
    client.quit().await.unwrap();
    until(|| entries(front.queue()) == 0, "the second message to go").await;
    let mail = mail_in(next.queue());
    assert_eq!(mail.len(), 2, "each message once");
    assert!(mail[0].2 == bodies[0] && mail[1].2 == bodies[1]);
    let d = &front.deliveries;
    assert_eq!(
        (d.delivered.get(), d.connections.get(), d.retries.get()),
        (2, 2, 1)
    );
    front.shut_down().await.unwrap();
    next.shut_down().await.unwrap();
}
