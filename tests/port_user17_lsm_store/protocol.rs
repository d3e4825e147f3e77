//! The tests of the TCP front: every command's answer, malformed lines answered while the
//! session goes on, the same over ::1, and peers that vanish mid-line or never read.

use std::time::Duration;

use super::db::Db;
use super::rig::{small, Client};
use super::server;
use super::support::{within, TempDir};

const HANG: Duration = Duration::from_secs(120);

/// The text protocol: each command's answer, and every malformed line answered with one
/// `ERR` line while the session goes on; the same over ::1.
#[overlap::test]
async fn the_protocol_answers_commands_and_errs_on_malformed_lines() {
    within(
        HANG,
        async {
            let dir = TempDir::new("lsm-proto");
            let db = Db::open(dir.path(), small()).await.unwrap();
            let srv = server::Server::start(db.clone(), "127.0.0.1")
                .await
                .unwrap();
            let mut c = Client::connect(srv.addr).await;
            assert_eq!(c.ask("PUT apple red fruit").await, "OK 0");
            assert_eq!(c.ask("GET apple").await, "VALUE red fruit");
            assert_eq!(c.ask("GET pear").await, "NOT_FOUND");
            assert_eq!(c.ask("DEL apple").await, "OK 1");
            assert_eq!(c.ask("GET apple").await, "NOT_FOUND");
            for i in 1..=5 {
                assert!(c.ask(&format!("PUT b{i} v{i}")).await.starts_with("OK "));
            }
            assert_eq!(
                c.scan("SCAN b - 3").await,
                ["ROW b1 v1", "ROW b2 v2", "ROW b3 v3", "END 3"]
            );
            assert_eq!(
                c.scan("SCAN b2 b4 10").await,
                ["ROW b2 v2", "ROW b3 v3", "END 2"]
            );
            assert_eq!(c.scan("SCAN x - 10").await, ["END 0"]);
            let bad = [
                ("", "ERR empty command"),
                ("FROB x", "ERR unknown command \"FROB\""),
                ("get b1", "ERR unknown command \"get\""),
                ("GET", "ERR usage: GET key"),
                ("GET a b", "ERR usage: GET key"),
                ("GET  b1", "ERR usage: GET key"),
                ("DEL", "ERR usage: DEL key"),
                ("PUT k", "ERR usage: PUT key value"),
                ("SCAN a", "ERR usage: SCAN start end limit"),
                ("SCAN a -", "ERR usage: SCAN start end limit"),
                ("SCAN a - x", "ERR bad limit \"x\""),
                ("SCAN a - 5000", "ERR limit over 1000"),
            ];
            for (line, want) in bad {
                assert_eq!(c.ask(line).await, want, "{line:?}");
            }
            let long = format!("PUT big {}", "v".repeat(2000));
            assert_eq!(c.ask(&long).await, "ERR line longer than 1024 bytes");
            c.send_raw(b"PUT bin \xff\xfe\n").await;
            assert_eq!(c.line().await, "ERR line is not UTF-8");
            assert_eq!(c.ask("GET big").await, "NOT_FOUND");
            assert_eq!(c.ask("GET bin").await, "NOT_FOUND");
            // Two commands in one write, answered in order.
            c.send_raw(b"PUT two 2\nGET two\n").await;
            assert!(c.line().await.starts_with("OK "));
            assert_eq!(c.line().await, "VALUE 2");
            c.close().await;

            let srv6 = server::Server::start(db.clone(), "::1").await.unwrap();
            assert!(srv6.addr.is_ipv6());
            let mut c6 = Client::connect(srv6.addr).await;
            assert_eq!(c6.ask("GET b5").await, "VALUE v5");
            assert!(c6.ask("PUT six 6").await.starts_with("OK "));
            c6.close().await;
            srv6.stop().await;
            srv.stop().await;
            assert_eq!(db.get(b"six").await.unwrap(), Some(b"6".to_vec()));
            db.close().await;
        },
        "protocol",
    )
    .await;
}

/// A peer that vanishes mid-line has the half line dropped, not run, even though
/// `LinesCodec::decode_eof` would hand it over as a last line; whole lines before it run.
#[overlap::test]
async fn a_peer_vanishing_mid_line_stores_nothing_of_it() {
    within(
        HANG,
        async {
            let dir = TempDir::new("lsm-vanish");
            let db = Db::open(dir.path(), small()).await.unwrap();
            let srv = server::Server::start(db.clone(), "127.0.0.1")
                .await
                .unwrap();
            let mut c = Client::connect(srv.addr).await;
            c.send_raw(b"PUT whole yes\nPUT torn half-a-va").await;
            assert!(c.line().await.starts_with("OK "));
            c.close().await; // the server closes its side: EOF, no answer for the half line
                             // A peer that sends and leaves without reading its answers.
            let mut rude = Client::connect(srv.addr).await;
            for i in 0..50 {
                rude.send_raw(format!("PUT rude{i} {}\n", "r".repeat(500)).as_bytes())
                    .await;
            }
            drop(rude);
            let mut c2 = Client::connect(srv.addr).await;
            assert_eq!(c2.ask("GET whole").await, "VALUE yes");
            assert_eq!(c2.ask("GET torn").await, "NOT_FOUND");
            c2.close().await;
            srv.stop().await;
            assert_eq!(db.get(b"torn").await.unwrap(), None);
            db.close().await;
        },
        "vanish",
    )
    .await;
}
