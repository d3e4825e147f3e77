//! Keep-alive timing and the TCP user timeout (`TcpKeepalive`, `set_tcp_user_timeout`).

use std::io::ErrorKind;
use std::time::Duration;

use overlap::block_on;
use overlap::io::AsyncWriteExt;
use overlap::net::{TcpKeepalive, TcpSocket, TcpStream};

use super::support::tcp_pair;
use super::{within, HANG};

/// A stream's keep-alive time, interval and retries, as the kernel has them.
fn timing(s: &TcpStream) -> (Duration, Duration, u32) {
    (
        s.keepalive_time().unwrap(),
        s.keepalive_interval().unwrap(),
        s.keepalive_retries().unwrap(),
    )
}

#[test]
fn keepalive_timing_round_trips_through_the_kernel() {
    block_on(async {
        let (client, _server) = tcp_pair().await;
        assert!(!client.keepalive().unwrap());
        let (_, default_interval, default_retries) = timing(&client);
        // Only the time: keep-alive goes on, the rest keeps the system's values; a
        // fraction of a second rounds up.
        let ka = TcpKeepalive::new().with_time(Duration::from_millis(1200));
        client.set_tcp_keepalive(&ka).unwrap();
        assert!(client.keepalive().unwrap());
        assert_eq!(
            timing(&client),
            (Duration::from_secs(2), default_interval, default_retries)
        );
        let ka = ka.with_interval(Duration::from_secs(3)).with_retries(4);
        client.set_tcp_keepalive(&ka).unwrap();
        assert_eq!(
            timing(&client),
            (Duration::from_secs(2), Duration::from_secs(3), 4)
        );
    });
}

#[test]
fn out_of_range_keepalive_values_are_refused_before_anything_changes() {
    block_on(async {
        let (client, _server) = tcp_pair().await;
        let before = client.keepalive_time().unwrap();
        let refused = [
            TcpKeepalive::new().with_time(Duration::ZERO),
            TcpKeepalive::new().with_time(Duration::from_secs(32768)),
            TcpKeepalive::new().with_interval(Duration::from_secs(40000)),
            // A good time with bad retries: the time must not be set either.
            TcpKeepalive::new()
                .with_time(Duration::from_secs(9))
                .with_retries(0),
            TcpKeepalive::new().with_retries(128),
        ];
        for ka in refused {
            let err = client.set_tcp_keepalive(&ka).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{ka:?}: {err}");
            assert!(
                err.to_string().contains("keep-alive"),
                "the message says which setting: {err}"
            );
        }
        assert!(
            !client.keepalive().unwrap(),
            "a refused setting turned keep-alive on"
        );
        assert_eq!(client.keepalive_time().unwrap(), before);
    });
}

#[test]
fn a_listening_socket_passes_its_keepalive_timing_to_accepted_streams() {
    block_on(async {
        let sock = TcpSocket::new_v4().unwrap();
        let ka = TcpKeepalive::new()
            .with_time(Duration::from_secs(11))
            .with_interval(Duration::from_secs(7))
            .with_retries(3);
        sock.set_tcp_keepalive(&ka).unwrap();
        assert_eq!(sock.keepalive_time().unwrap(), Duration::from_secs(11));
        assert_eq!(sock.keepalive_interval().unwrap(), Duration::from_secs(7));
        assert_eq!(sock.keepalive_retries().unwrap(), 3);
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(16).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        assert!(accepted.keepalive().unwrap());
        assert_eq!(
            timing(&accepted),
            (Duration::from_secs(11), Duration::from_secs(7), 3)
        );
    });
}

#[test]
fn the_user_timeout_round_trips_rounds_up_and_refuses_past_an_int_of_milliseconds() {
    block_on(async {
        let (client, _server) = tcp_pair().await;
        assert_eq!(client.tcp_user_timeout().unwrap(), None);
        client
            .set_tcp_user_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        assert_eq!(
            client.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(1500))
        );
        // Under a millisecond is not "none".
        client
            .set_tcp_user_timeout(Some(Duration::from_micros(10)))
            .unwrap();
        assert_eq!(
            client.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(1))
        );
        let err = client
            .set_tcp_user_timeout(Some(Duration::from_secs(30 * 24 * 3600)))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            client.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(1))
        );
        client.set_tcp_user_timeout(None).unwrap();
        assert_eq!(client.tcp_user_timeout().unwrap(), None);
        let sock = TcpSocket::new_v6().unwrap();
        sock.set_tcp_user_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_secs(2))
        );
    });
}

#[test]
fn the_user_timeout_fails_a_write_to_a_peer_whose_window_stays_shut() {
    block_on(async {
        let (client, server) = tcp_pair().await;
        client
            .set_tcp_user_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut client = client;
        // The server never reads: its window shuts, the client's buffer fills, and the
        // window probes that follow get no room; past the user timeout the kernel gives up.
        let chunk = vec![7u8; 64 * 1024];
        let err = within(
            HANG,
            async {
                loop {
                    if let Err(e) = client.write_all(&chunk).await {
                        break e;
                    }
                }
            },
            "the write never failed",
        )
        .await;
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        drop(server);
    });
}
