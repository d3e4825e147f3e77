//! The STARTTLS tests: a message over TLS after the upgrade, plaintext pipelined after the
//! command thrown away, and upgrades that fail or stall leaving nothing behind.

use futures_rustls::rustls::pki_types::ServerName;

use crate::client::Client;
use crate::harness::*;
use crate::relay::Relay;
use crate::session::Config;
use std::time::Duration;

use crate::support::{open_fds, run_in_child, settle, within, TempDir};

/// STARTTLS, a new EHLO over TLS (which no longer offers STARTTLS), and a message that the
/// next hop gets byte-exact.
#[overlap::test]
async fn starttls_then_a_message_over_tls() {
    let (acceptor, connector) = tls();
    let p = pair(
        "mail-starttls",
        Config {
            tls: Some(acceptor),
            ..config()
        },
    )
    .await;
    let mut client = connect(p.front.addr).await;
    let reply = client.command("STARTTLS").await.unwrap();
    assert_eq!(reply.code, 220);
    let tcp = client.into_inner().unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = within(HANG, connector.connect(name, tcp), "the handshake")
        .await
        .unwrap();
    let mut client = Client::new(tls);
    let offered = client.ehlo("client.test").await.unwrap();
    assert!(!offered.contains(&"STARTTLS".to_string()), "{offered:?}");
    assert_eq!(client.command("STARTTLS").await.unwrap().code, 502);
    let sent = body(200 * KIB, 3);
    let reply = client
        .send_mail("s@tls.test", &["r@tls.test"], &sent)
        .await
        .unwrap();
    assert_eq!(reply.code, 250, "{reply:?}");
    client.quit().await.unwrap();
    let next_stats = p.next.stats();
    until(
        || next_stats.spooled.get() == 1,
        "the message at the next hop",
    )
    .await;
    let mail = mail_in(p.next.queue());
    assert!(mail[0].2 == sent, "the body differs");
    assert_eq!(p.front.stats().tls_sessions.get(), 1);
    assert_eq!(p.front.stats().discarded_after_starttls.get(), 0);
    ended_cleanly(&p.front).await;
    // The next hop's one session is the front's delivery connection: its QUIT ends it.
    p.front.shut_down().await.unwrap();
    ended_cleanly(&p.next).await;
    p.next.shut_down().await.unwrap();
}

/// Commands a client pipelines after STARTTLS, in the same packet, are plaintext an
/// attacker could have injected (CVE-2011-0411): thrown away, not run once TLS is up. The
/// transaction they began does not exist in the TLS session.
#[overlap::test]
async fn commands_pipelined_after_starttls_are_thrown_away() {
    let (acceptor, connector) = tls();
    let dir = TempDir::new("mail-injected");
    let config = Config {
        tls: Some(acceptor),
        ..config()
    };
    let relay = Relay::start(listener().await, config, dir.path(), None)
        .await
        .unwrap();
    let mut client = connect(relay.addr).await;
    let injected = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@y>\r\n";
    let mut packet = b"STARTTLS\r\n".to_vec();
    packet.extend_from_slice(injected);
    client.send_raw(&packet).await.unwrap();
    assert_eq!(codes(&mut client, 1).await, [220]);
    let tcp = client.into_inner().unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = within(HANG, connector.connect(name, tcp), "the handshake")
        .await
        .unwrap();
    let mut client = Client::new(tls);
    client.ehlo("client.test").await.unwrap();
    // No MAIL is open: the injected one never ran.
    assert_eq!(client.command("RCPT TO:<x@y>").await.unwrap().code, 503);
    assert_eq!(client.command("DATA").await.unwrap().code, 503);
    client.quit().await.unwrap();
    assert_eq!(relay.stats().discarded_after_starttls.get(), injected.len());
    assert_eq!(entries(relay.queue()), 0);
    ended_cleanly(&relay).await;
    relay.shut_down().await.unwrap();
}

/// Upgrades gone wrong: garbage instead of a ClientHello, a client silent after the 220 (the
/// handshake timed out), and a TLS client vanishing mid-DATA: each session ends with its
/// error, no spool file, no fd and no task left.
#[test]
fn failed_and_stalled_upgrades_leave_no_fd_and_no_spool_file() {
    let name = "starttls::failed_and_stalled_upgrades_leave_no_fd_and_no_spool_file";
    run_in_child(name, || {
        overlap::block_on(async {
            let fds = open_fds();
            let tasks = overlap::metrics().tasks_alive;
            let (acceptor, connector) = tls();
            let dir = TempDir::new("mail-tls-fail");
            let config = Config {
                tls: Some(acceptor),
                command_timeout: Duration::from_millis(100),
                ..config()
            };
            let relay = Relay::start(listener().await, config, dir.path(), None)
                .await
                .unwrap();
            let mut garbage = connect(relay.addr).await;
            assert_eq!(garbage.command("STARTTLS").await.unwrap().code, 220);
            garbage.send_raw(&[0xff; 64]).await.unwrap();
            let mut silent = connect(relay.addr).await;
            assert_eq!(silent.command("STARTTLS").await.unwrap().code, 220);
            let mut vanishing = connect(relay.addr).await;
            assert_eq!(vanishing.command("STARTTLS").await.unwrap().code, 220);
            let tcp = vanishing.into_inner().unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let tls = within(HANG, connector.connect(name, tcp), "the handshake")
                .await
                .unwrap();
            let mut vanishing = Client::new(tls);
            vanishing.ehlo("client.test").await.unwrap();
            vanishing.expect("MAIL FROM:<a@x>", 250).await.unwrap();
            vanishing.expect("RCPT TO:<b@y>", 250).await.unwrap();
            vanishing.expect("DATA", 354).await.unwrap();
            let half = crate::client::stuffed(&body(50 * KIB, 60));
            vanishing.send_raw(&half[..half.len() / 2]).await.unwrap();
            let tmp = dir.join("tmp");
            until(|| entries(&tmp) == 1, "the spool file").await;
            drop(vanishing);
            let stats = relay.stats();
            until(|| stats.live.get() == 0, "the sessions to end").await;
            let mut errors = stats.errors.borrow().clone();
            errors.sort();
            assert_eq!(errors.len(), 3, "{errors:?}");
            assert!(errors.contains(&"TLS handshake".to_string()), "{errors:?}");
            assert_eq!((entries(&tmp), entries(relay.queue())), (0, 0));
            relay.shut_down().await.unwrap();
            drop((garbage, silent, dir));
            settle().await;
            assert_eq!(overlap::metrics().tasks_alive, tasks, "tasks left");
            // A dropped File's last write job closes its fd when it ends, on the pool.
            until(|| open_fds() == fds, "the fds to close").await;
        })
    });
}
