//! memcached's UDP protocol: every datagram starts with an 8-byte frame header (request
//! id, sequence number, total datagrams, reserved; big-endian `u16`s). A request is one
//! datagram holding text-protocol commands; the reply is cut into datagrams of at most
//! [`MAX_DATAGRAM`] bytes, each with the request's id, its sequence number and the total.
//! Lost, duplicated or reordered datagrams are the client's problem, as in memcached.

use std::rc::Rc;

use overlap::net::UdpSocket;

use super::exec::{Output, Session, Step};
use super::proto;
use super::server::Shared;

/// memcached's `UDP_MAX_PAYLOAD_SIZE`: a reply datagram, header included.
pub const MAX_DATAGRAM: usize = 1400;
pub const HEADER: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub seq: u16,
    pub total: u16,
    pub reserved: u16,
}

impl Header {
    pub fn parse(b: &[u8]) -> Option<Header> {
        let u = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        (b.len() >= HEADER).then(|| Header {
            id: u(0),
            seq: u(2),
            total: u(4),
            reserved: u(6),
        })
    }

    pub fn bytes(&self) -> [u8; HEADER] {
        let mut h = [0; HEADER];
        for (i, v) in [self.id, self.seq, self.total, self.reserved]
            .iter()
            .enumerate()
        {
            h[2 * i..2 * i + 2].copy_from_slice(&v.to_be_bytes());
        }
        h
    }
}

/// A reply cut into framed datagrams (none for an empty one: `noreply`).
pub fn frames(id: u16, reply: &[u8]) -> Vec<Vec<u8>> {
    let parts: Vec<&[u8]> = reply.chunks(MAX_DATAGRAM - HEADER).collect();
    let total = parts.len() as u16;
    let frame = |(seq, part): (usize, &&[u8])| {
        let h = Header {
            id,
            seq: seq as u16,
            total,
            reserved: 0,
        };
        [&h.bytes()[..], part].concat()
    };
    parts.iter().enumerate().map(frame).collect()
}

/// Runs the commands of one request datagram; an incomplete command at its end is
/// dropped, and `quit` or an overlong line ends it.
fn answer(body: &[u8], shared: &Rc<Shared>) -> Vec<u8> {
    let mut session = Session::new(shared.clone());
    let mut out = Output::default();
    let mut at = 0;
    while let Step::Used(n) = session.step(&body[at..], &mut out) {
        at += n;
        let c = &shared.counters;
        c.commands.set(c.commands.get() + 1);
    }
    out.into_vec()
}

pub async fn serve(socket: UdpSocket, shared: Rc<Shared>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Some(head) = Header::parse(&buf[..n]) else {
            let c = &shared.counters;
            c.udp_runts.set(c.udp_runts.get() + 1);
            continue;
        };
        let reply = match (head.seq, head.total) {
            (0, 1) => answer(&buf[HEADER..n], &shared),
            _ => proto::MULTI_PACKET.to_vec(),
        };
        for d in frames(head.id, &reply) {
            // A reply the socket cannot take now is dropped, as a lost datagram would be.
            let _ = socket.send_to(&d, peer).await;
        }
    }
}
