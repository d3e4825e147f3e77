//! The STARTTLS tests: a message over TLS after the upgrade, and plaintext pipelined after
//! the command thrown away.

use futures_rustls::rustls::pki_types::ServerName;

use crate::client::Client;
use crate::harness::*;
use crate::relay::Relay;
use crate::session::Config;
use crate::support::{within, TempDir};

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
