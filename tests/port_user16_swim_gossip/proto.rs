//! The wire format and its codec for `UdpFramed`: one message per datagram, a header
//! (magic, cluster key, sender id, kind), the kind's body, then a bounded list of
//! piggybacked membership updates; never larger than `MTU`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use overlap::codec::{BytesMut, Decoder, Encoder};

pub const MAGIC: u16 = 0x5357;
/// No datagram is larger: the encoder refuses one that would be.
pub const MTU: usize = 1400;
/// Updates piggybacked on a ping, ack or ping-req.
pub const MAX_PIGGYBACK: usize = 8;
/// Updates in a join's answer (the whole view, as far as it fits).
pub const MAX_SYNC: usize = 48;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Alive,
    Suspect,
    Dead,
    Left,
}

/// What one node says of another (or of itself): its state at an incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    pub state: State,
    pub id: u32,
    pub inc: u32,
    pub addr: SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Ping {
        seq: u32,
    },
    Ack {
        seq: u32,
    },
    /// Ping `target` for me; answer with an `IndirectAck` of `seq`.
    PingReq {
        seq: u32,
        target: SocketAddr,
    },
    IndirectAck {
        seq: u32,
    },
    /// To the seed node: let me in (the sender's `Alive` among the updates).
    Join,
    /// The seed's answer to `Join`: its view in the updates.
    Sync,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub cluster: u32,
    pub from: u32,
    pub body: Body,
    pub updates: Vec<Update>,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn put_addr(dst: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            dst.push(4);
            dst.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            dst.push(6);
            dst.extend_from_slice(&ip.octets());
        }
    }
    dst.extend_from_slice(&a.port().to_be_bytes());
}

/// Encodes `msg`, refusing one over the MTU or with too many updates for its kind.
pub fn encode(msg: &Msg) -> io::Result<Vec<u8>> {
    let limit = if msg.body == Body::Sync {
        MAX_SYNC
    } else {
        MAX_PIGGYBACK
    };
    if msg.updates.len() > limit {
        return Err(bad("too many updates for one message"));
    }
    let mut d = Vec::with_capacity(64);
    d.extend_from_slice(&MAGIC.to_be_bytes());
    d.extend_from_slice(&msg.cluster.to_be_bytes());
    d.extend_from_slice(&msg.from.to_be_bytes());
    match &msg.body {
        Body::Ping { seq } => (d.push(1), d.extend_from_slice(&seq.to_be_bytes())).1,
        Body::Ack { seq } => (d.push(2), d.extend_from_slice(&seq.to_be_bytes())).1,
        Body::PingReq { seq, target } => {
            d.push(3);
            d.extend_from_slice(&seq.to_be_bytes());
            put_addr(&mut d, *target);
        }
        Body::IndirectAck { seq } => (d.push(4), d.extend_from_slice(&seq.to_be_bytes())).1,
        Body::Join => d.push(5),
        Body::Sync => d.push(6),
    }
    d.push(msg.updates.len() as u8);
    for u in &msg.updates {
        d.push(u.state as u8);
        d.extend_from_slice(&u.id.to_be_bytes());
        d.extend_from_slice(&u.inc.to_be_bytes());
        put_addr(&mut d, u.addr);
    }
    if d.len() > MTU {
        return Err(bad("message over the MTU"));
    }
    Ok(d)
}

/// A cursor over a datagram: every read checks the length.
struct Rd<'a>(&'a [u8]);

impl Rd<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad("truncated message"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn addr(&mut self) -> io::Result<SocketAddr> {
        let ip = match self.u8()? {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).unwrap())),
            6 => IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(self.take(16)?).unwrap(),
            )),
            _ => return Err(bad("bad address family")),
        };
        Ok(SocketAddr::new(ip, self.u16()?))
    }
}

pub fn decode(buf: &[u8]) -> io::Result<Msg> {
    let mut r = Rd(buf);
    if r.u16()? != MAGIC {
        return Err(bad("bad magic"));
    }
    let (cluster, from) = (r.u32()?, r.u32()?);
    let body = match r.u8()? {
        1 => Body::Ping { seq: r.u32()? },
        2 => Body::Ack { seq: r.u32()? },
        3 => Body::PingReq {
            seq: r.u32()?,
            target: r.addr()?,
        },
        4 => Body::IndirectAck { seq: r.u32()? },
        5 => Body::Join,
        6 => Body::Sync,
        _ => return Err(bad("bad message kind")),
    };
    let n = r.u8()? as usize;
    if n > if body == Body::Sync {
        MAX_SYNC
    } else {
        MAX_PIGGYBACK
    } {
        return Err(bad("too many updates"));
    }
    let mut updates = Vec::with_capacity(n);
    for _ in 0..n {
        let state = match r.u8()? {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Dead,
            3 => State::Left,
            _ => return Err(bad("bad member state")),
        };
        let (id, inc, addr) = (r.u32()?, r.u32()?, r.addr()?);
        updates.push(Update {
            state,
            id,
            inc,
            addr,
        });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(Msg {
        cluster,
        from,
        body,
        updates,
    })
}

/// The codec: a whole datagram is one message (it keeps no state between datagrams).
#[derive(Debug, Default)]
pub struct SwimCodec;

impl Decoder for SwimCodec {
    type Item = Msg;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Msg>> {
        if src.is_empty() {
            return Ok(None);
        }
        let datagram = src.split_to(src.len());
        decode(&datagram[..]).map(Some)
    }
}

impl Encoder<Msg> for SwimCodec {
    type Error = io::Error;

    fn encode(&mut self, msg: Msg, dst: &mut BytesMut) -> io::Result<()> {
        dst.extend_from_slice(&encode(&msg)?);
        Ok(())
    }
}
