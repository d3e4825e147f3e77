//! `udp::UdpFramed` (tokio-util's): frames from each datagram with its sender, one datagram
//! per item sent, over 127.0.0.1 and ::1; several frames in one datagram; a datagram that
//! fails to decode, a socket error and a refused send each reported once, the framing going
//! on after them; `last_sender` naming whom a decode error came from; an `Rc<UdpSocket>`
//! shared by a receiving and a sending half.

mod support;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use overlap::codec::{BytesCodec, BytesMut, Decoder, LinesCodec, LinesCodecError};
use overlap::net::UdpSocket;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::udp::UdpFramed;
use support::{poll_once, within};

const LIMIT: Duration = Duration::from_secs(10);

async fn bound(addr: &str) -> UdpSocket {
    UdpSocket::bind(addr).await.unwrap()
}

async fn next_line(
    framed: &mut UdpFramed<LinesCodec>,
) -> Result<(String, SocketAddr), LinesCodecError> {
    within(LIMIT, framed.next(), "a frame").await.unwrap()
}

#[test]
fn lines_go_both_ways_with_their_addresses_over_v4_and_v6() {
    overlap::block_on(async {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let (a, b) = (bound(host).await, bound(host).await);
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            let mut a = UdpFramed::new(a, LinesCodec::new());
            let mut b = UdpFramed::new(b, LinesCodec::new());
            for i in 0..20 {
                a.send((format!("ping {i}"), b_addr)).await.unwrap();
                let (line, from) = next_line(&mut b).await.unwrap();
                assert_eq!((line, from), (format!("ping {i}"), a_addr));
                b.send((format!("pong {i}"), from)).await.unwrap();
                let (line, from) = next_line(&mut a).await.unwrap();
                assert_eq!((line, from), (format!("pong {i}"), b_addr));
            }
            assert!(a.read_buffer().is_empty() && b.read_buffer().is_empty());
        }
    });
}

#[test]
fn each_item_is_one_datagram_and_one_datagram_may_carry_several_frames() {
    overlap::block_on(async {
        let raw = bound("127.0.0.1:0").await;
        let raw_addr = raw.local_addr().unwrap();
        let mut framed = UdpFramed::new(bound("127.0.0.1:0").await, LinesCodec::new());
        let framed_addr = framed.get_ref().local_addr().unwrap();
        // `feed` without flushing in between: still one datagram per item.
        for i in 0..50 {
            framed.feed((format!("line {i}"), raw_addr)).await.unwrap();
        }
        // `LinesCodec` encodes any `AsRef<str>`: `flush` names the item type, as with tokio.
        SinkExt::<(String, SocketAddr)>::flush(&mut framed)
            .await
            .unwrap();
        let mut buf = [0u8; 100];
        for i in 0..50 {
            let (n, from) = within(LIMIT, raw.recv_from(&mut buf), "a datagram")
                .await
                .unwrap();
            assert_eq!(&buf[..n], format!("line {i}\n").as_bytes());
            assert_eq!(from, framed_addr);
        }
        // One datagram, three frames: the last one unterminated, as `decode_eof` gives it.
        raw.send_to(b"one\ntwo\r\nthree", framed_addr)
            .await
            .unwrap();
        for want in ["one", "two", "three"] {
            assert_eq!(
                next_line(&mut framed).await.unwrap(),
                (want.into(), raw_addr)
            );
        }
        // The next datagram starts afresh.
        raw.send_to(b"four\n", framed_addr).await.unwrap();
        assert_eq!(
            next_line(&mut framed).await.unwrap(),
            ("four".into(), raw_addr)
        );
    });
}

/// Frames of a length byte and that many bytes, with no state kept between calls (unlike
/// `LengthDelimitedCodec`, which would go on waiting for the rest of a claimed body in the
/// next datagram: a codec's state carries over from one datagram to the next).
struct ShortFrames;

impl Decoder for ShortFrames {
    type Item = Vec<u8>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Vec<u8>>, std::io::Error> {
        match src.first() {
            Some(&n) if src.len() > n as usize => {
                src.advance(1);
                Ok(Some(src.split_to(n as usize).to_vec()))
            }
            _ => Ok(None),
        }
    }
}

#[test]
fn a_datagram_that_fails_to_decode_is_one_error_and_the_next_one_decodes() {
    overlap::block_on(async {
        let raw = bound("127.0.0.1:0").await;
        let raw_addr = raw.local_addr().unwrap();
        let mut framed = UdpFramed::new(bound("127.0.0.1:0").await, ShortFrames);
        let to = framed.get_ref().local_addr().unwrap();
        // A length prefix claiming 100 bytes, with 3 after it; then a good frame.
        raw.send_to(&[100, 1, 2, 3], to).await.unwrap();
        raw.send_to(&[2, b'o', b'k'], to).await.unwrap();
        let err = within(LIMIT, framed.next(), "the error")
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.to_string(), "bytes remaining on stream");
        let (frame, from) = within(LIMIT, framed.next(), "the good frame")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&frame[..], from), (&b"ok"[..], raw_addr));
        // Nothing else: the bad datagram's error is not given again.
        assert!(poll_once(framed.next()).await.is_pending());
        assert!(framed.read_buffer().is_empty());
    });
}

#[test]
fn an_empty_datagram_is_skipped_unseen_and_last_sender_names_the_next_frames() {
    overlap::block_on(async {
        let (a, b) = (bound("127.0.0.1:0").await, bound("127.0.0.1:0").await);
        let b_addr = b.local_addr().unwrap();
        let mut framed = UdpFramed::new(bound("127.0.0.1:0").await, BytesCodec::new());
        let to = framed.get_ref().local_addr().unwrap();
        a.send_to(b"", to).await.unwrap();
        b.send_to(b"x", to).await.unwrap();
        let (frame, from) = within(LIMIT, framed.next(), "the frame")
            .await
            .unwrap()
            .unwrap();
        assert_eq!((&frame[..], from), (&b"x"[..], b_addr));
        assert_eq!(framed.last_sender(), Some(b_addr));
        assert!(poll_once(framed.next()).await.is_pending());
    });
}

#[test]
fn last_sender_names_whom_a_decode_error_came_from() {
    overlap::block_on(async {
        let (a, b) = (bound("127.0.0.1:0").await, bound("127.0.0.1:0").await);
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let mut framed = UdpFramed::new(bound("127.0.0.1:0").await, ShortFrames);
        let to = framed.get_ref().local_addr().unwrap();
        assert_eq!(framed.last_sender(), None);
        a.send_to(&[9, 1], to).await.unwrap();
        b.send_to(&[1, b'x', 5], to).await.unwrap();
        a.send_to(&[1, b'y'], to).await.unwrap();
        let err = within(LIMIT, framed.next(), "a's error").await.unwrap();
        assert!(err.is_err());
        assert_eq!(framed.last_sender(), Some(a_addr), "the error came from a");
        // b's datagram: a frame, then an error for its leftover byte, both b's.
        let (frame, from) = within(LIMIT, framed.next(), "b's frame")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&frame[..], from, framed.last_sender()),
            (&b"x"[..], b_addr, Some(b_addr))
        );
        let err = within(LIMIT, framed.next(), "b's error").await.unwrap();
        assert!(err.is_err());
        assert_eq!(framed.last_sender(), Some(b_addr), "the error came from b");
        let (frame, from) = within(LIMIT, framed.next(), "a's frame")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&frame[..], from, framed.last_sender()),
            (&b"y"[..], a_addr, Some(a_addr))
        );
        // A socket error comes from no datagram.
        let gone = bound("127.0.0.1:0").await;
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        framed.get_ref().connect(gone_addr).await.unwrap();
        framed.get_ref().send(&[0]).await.unwrap();
        let err = within(LIMIT, framed.next(), "the refusal")
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(framed.last_sender(), None);
    });
}

#[test]
fn refused_sends_are_reported_once_and_the_sink_goes_on() {
    overlap::block_on(async {
        let raw = bound("127.0.0.1:0").await;
        let raw_addr = raw.local_addr().unwrap();
        let mut framed = UdpFramed::new(bound("127.0.0.1:0").await, BytesCodec::new());
        // Too large for one UDP datagram: `EMSGSIZE`.
        let huge = BytesMut::zeroed(70_000);
        let err = framed.send((huge, raw_addr)).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
        // An IPv6 destination for an IPv4 socket.
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let err = framed
            .send((BytesMut::from(&b"x"[..]), v6))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("IPv6 address"), "{err}");
        // Neither is tried again: the next item goes, alone.
        framed
            .send((BytesMut::from(&b"fine"[..]), raw_addr))
            .await
            .unwrap();
        SinkExt::<(BytesMut, SocketAddr)>::close(&mut framed)
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = within(LIMIT, raw.recv_from(&mut buf), "the datagram")
            .await
            .unwrap();
        assert_eq!(&buf[..n], b"fine");
        assert!(
            raw.try_recv_from(&mut buf).is_err(),
            "only one datagram came"
        );
    });
}

#[test]
fn a_socket_error_is_reported_once_and_the_stream_does_not_end() {
    overlap::block_on(async {
        // A port with nobody on it: the connected socket gets the ICMP refusal.
        let gone = bound("127.0.0.1:0").await;
        let gone_addr = gone.local_addr().unwrap();
        drop(gone);
        let sock = bound("127.0.0.1:0").await;
        sock.connect(gone_addr).await.unwrap();
        let mut framed = UdpFramed::new(sock, LinesCodec::new());
        framed.send(("anyone?", gone_addr)).await.unwrap();
        let err = within(LIMIT, framed.next(), "the refusal")
            .await
            .unwrap()
            .unwrap_err();
        match err {
            LinesCodecError::Io(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused),
            other => panic!("{other:?}"),
        }
        assert!(matches!(poll_once(framed.next()).await, Poll::Pending));
    });
}

#[test]
fn an_rc_socket_serves_a_receiving_and_a_sending_half() {
    overlap::block_on(async {
        let server = Rc::new(bound("127.0.0.1:0").await);
        let server_addr = server.local_addr().unwrap();
        let mut inbox = UdpFramed::new(server.clone(), LinesCodec::new());
        let mut outbox = UdpFramed::new(server, LinesCodec::new());
        let echo = overlap::spawn(async move {
            let mut served = 0;
            while let Some(Ok((line, from))) = inbox.next().await {
                if line == "quit" {
                    break;
                }
                outbox.send((line.to_uppercase(), from)).await.unwrap();
                served += 1;
            }
            served
        });
        let mut clients = Vec::new();
        for c in 0..3 {
            clients.push(UdpFramed::new(
                bound("127.0.0.1:0").await,
                LinesCodec::new(),
            ));
            clients[c]
                .send((format!("hello from {c}"), server_addr))
                .await
                .unwrap();
        }
        for (c, client) in clients.iter_mut().enumerate() {
            let (line, from) = next_line(client).await.unwrap();
            assert_eq!((line, from), (format!("HELLO FROM {c}"), server_addr));
        }
        clients[0].send(("quit", server_addr)).await.unwrap();
        assert_eq!(within(LIMIT, echo, "the echo task").await.unwrap(), 3);
    });
}
