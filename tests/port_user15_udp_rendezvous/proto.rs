//! The rendezvous protocol's datagrams: a magic byte, a kind, the room's token and the
//! room's name, then a body that depends on the kind.
//!
//! ```text
//! 0      1      2             6         7
//! +------+------+-------------+---------+-----------+------------
//! | 0xR5 | kind | token (u32) | room len| room name | body ...
//! +------+------+-------------+---------+-----------+------------
//! ```
//!
//! Bodies: `Register` carries the port of the peer's direct socket (0: the socket it
//! registers from); `Intro` an address (4 or 6, the IP, the port); `Registered` the room's
//! member count (u16); `Relay` and `Relayed` the payload; `Keepalive` nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The first byte of every datagram.
pub const MAGIC: u8 = 0xA5;
/// The fixed part before the room's name.
pub const HEADER: usize = 7;
/// The longest room name.
pub const MAX_ROOM: usize = 32;
/// The largest datagram the server takes (the relay's size limit): a larger one is
/// dropped and counted.
pub const MAX_DATAGRAM: usize = 1200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Register = 1,
    Keepalive = 2,
    Relay = 3,
    Registered = 10,
    Intro = 11,
    Relayed = 12,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Register,
            2 => Kind::Keepalive,
            3 => Kind::Relay,
            10 => Kind::Registered,
            11 => Kind::Intro,
            12 => Kind::Relayed,
            _ => return None,
        })
    }
}

/// Why a datagram was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Shorter than its header, a bad magic byte, an empty or overlong room name, or a
    /// body that does not fit its kind.
    Malformed,
    /// A kind byte no version of the protocol has.
    UnknownKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub kind: Kind,
    pub token: u32,
    pub room: String,
    pub body: Vec<u8>,
}

impl Packet {
    pub fn new(kind: Kind, token: u32, room: &str, body: Vec<u8>) -> Packet {
        Packet {
            kind,
            token,
            room: room.to_owned(),
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.room.len() + self.body.len());
        out.push(MAGIC);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.token.to_be_bytes());
        out.push(self.room.len() as u8);
        out.extend_from_slice(self.room.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Packet, Bad> {
        if buf.len() < HEADER || buf[0] != MAGIC {
            return Err(Bad::Malformed);
        }
        let kind = Kind::from_byte(buf[1]).ok_or(Bad::UnknownKind)?;
        let token = u32::from_be_bytes(buf[2..6].try_into().unwrap());
        let len = buf[6] as usize;
        if len == 0 || len > MAX_ROOM || buf.len() < HEADER + len {
            return Err(Bad::Malformed);
        }
        let room = std::str::from_utf8(&buf[HEADER..HEADER + len]).map_err(|_| Bad::Malformed)?;
        let body = buf[HEADER + len..].to_vec();
        let fits = match kind {
            Kind::Register => body.len() == 2,
            Kind::Registered => body.len() == 2,
            Kind::Keepalive => body.is_empty(),
            Kind::Intro => decode_addr(&body).is_some(),
            Kind::Relay | Kind::Relayed => true,
        };
        if !fits {
            return Err(Bad::Malformed);
        }
        Ok(Packet::new(kind, token, room, body))
    }
}

pub fn encode_addr(addr: SocketAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(19);
    match addr.ip() {
        IpAddr::V4(ip) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}

pub fn decode_addr(body: &[u8]) -> Option<SocketAddr> {
    let (ip, rest): (IpAddr, &[u8]) = match body.first()? {
        4 if body.len() == 7 => {
            let o: [u8; 4] = body[1..5].try_into().ok()?;
            (Ipv4Addr::from(o).into(), &body[5..])
        }
        6 if body.len() == 19 => {
            let o: [u8; 16] = body[1..17].try_into().ok()?;
            (Ipv6Addr::from(o).into(), &body[17..])
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, u16::from_be_bytes([rest[0], rest[1]])))
}
