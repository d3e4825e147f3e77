//! Tests of the UDP protocol: the frame header echoed, a reply cut into datagrams of at
//! most 1400 bytes and put back together, a multi-datagram request refused, and datagrams
//! too short for a header ignored.

use super::client::{Rig, Udp};
use super::server::Config;
use super::udp::{Header, MAX_DATAGRAM};

fn head(id: u16, seq: u16, total: u16) -> Header {
    Header {
        id,
        seq,
        total,
        reserved: 0,
    }
}

/// Storage and retrieval over UDP, several commands in one datagram, each reply framed
/// with the request's id, what UDP stored TCP sees; multi-datagram requests refused,
/// datagrams too short for a header ignored, `noreply` requests unanswered.
#[overlap::test]
async fn requests_in_one_datagram_answered_others_refused_runts_ignored() {
    let rig = Rig::new(Config::default()).await;
    let u = Udp::new(rig.udp).await;
    let (reply, n) = u
        .request(7, b"set k 3 0 5\r\nhello\r\nget k nope\r\n")
        .await;
    assert_eq!(n, 1);
    assert_eq!(reply, b"STORED\r\nVALUE k 3 5\r\nhello\r\nEND\r\n");
    let (reply, _) = u.request(0xfffe, b"incr k 1\r\nversion\r\n").await;
    let want = format!(
        "CLIENT_ERROR cannot increment or decrement non-numeric value\r\nVERSION {}\r\n",
        super::VERSION
    );
    assert_eq!(reply, want.as_bytes());
    let mut c = rig.client().await;
    assert_eq!(c.get("k").await.as_deref(), Some(&b"hello"[..]));
    assert_eq!(c.cmd("delete k").await, "DELETED");

    // A request announcing several datagrams (or not the first) is refused as memcached
    // refuses it, with its id; a datagram shorter than the header gets nothing, and the
    // server goes on.
    let refused = b"SERVER_ERROR multi-packet request not supported\r\n";
    for (i, (seq, total)) in [(0, 2), (1, 2), (0, 0)].into_iter().enumerate() {
        u.send(head(40 + i as u16, seq, total), b"set k 0 0 1\r\n")
            .await;
        let (h, body) = u.recv().await;
        assert_eq!((h, &body[..]), (head(40 + i as u16, 0, 1), &refused[..]));
    }
    for runt in [&b""[..], b"\x00", b"\x00\x01\x00\x00\x00\x01\x00"] {
        u.s.send_to(runt, rig.udp).await.unwrap();
    }
    let (reply, _) = u.request(99, b"get k\r\n").await;
    assert_eq!(
        reply, b"END\r\n",
        "nothing was stored by the refused requests"
    );
    assert_eq!(rig.server.shared.counters.udp_runts.get(), 3);
    // A request whose commands all say noreply gets no datagram at all.
    u.send(head(100, 0, 1), b"set q 0 0 1 noreply\r\nx\r\n")
        .await;
    let (reply, _) = u.request(101, b"get q\r\n").await;
    assert_eq!(reply, b"VALUE q 0 1\r\nx\r\nEND\r\n");
}

/// A 5000-byte value's reply takes 4 datagrams: each at most 1400 bytes with the header,
/// the same id, sequence numbers 0 to 3 and the total 4; put together, the exact reply.
#[overlap::test]
async fn a_large_reply_spans_datagrams_with_one_id() {
    let rig = Rig::new(Config::default()).await;
    let mut c = rig.client().await;
    let value = super::support::pattern_seeded(5000, 11);
    assert_eq!(c.set("v", &value).await, "STORED");
    let u = Udp::new(rig.udp).await;
    u.send(head(513, 0, 1), b"get v\r\n").await;
    let want = [&b"VALUE v 0 5000\r\n"[..], &value, b"\r\nEND\r\n"].concat();
    let mut seen = Vec::new();
    let mut back = Vec::new();
    for _ in 0..4 {
        let (h, part) = u.recv().await;
        seen.push(h);
        back.push(part);
    }
    let payload = MAX_DATAGRAM - 8;
    assert_eq!(
        back[..3].iter().map(Vec::len).collect::<Vec<_>>(),
        [payload; 3]
    );
    assert_eq!(back[3].len(), want.len() - 3 * payload);
    assert_eq!(seen, (0..4).map(|s| head(513, s, 4)).collect::<Vec<_>>());
    assert!(back.concat() == want, "the reply put back together");
    // Twice the value in one reply: 8 datagrams, put back together by sequence number.
    let (reply, n) = u.request(514, b"get v v\r\n").await;
    let block = &want[..want.len() - 5];
    assert_eq!(n, 8);
    assert!(reply == [block, block, b"END\r\n"].concat(), "both values");
}
