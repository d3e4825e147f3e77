//! The wire format: a 14-byte header, then a DATA packet's payload.
//!
//! ```text
//! 0      1        5        9        13      14
//! | type | conn id | seq    | ack    | wnd   | payload ...
//! ```
//!
//! DATA and FIN carry `seq` (a FIN takes a sequence number, with no payload). An ACK
//! carries the cumulative `ack` (the next in-order seq expected), in `seq` the seq of the
//! DATA or FIN that caused it (`NO_ECHO` for a window update or a keepalive's answer), the
//! free receive window in packets in `wnd`, and after the header a selective-ACK bitmap of
//! four bytes, bit `i` set when `ack + 1 + i` has arrived. A PING (keepalive) has only the
//! header and is answered with an ACK.

pub const HEADER: usize = 14;
pub const NO_ECHO: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Data = 1,
    Ack = 2,
    Fin = 3,
    Ping = 4,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub kind: Kind,
    pub conn: u32,
    pub seq: u32,
    pub ack: u32,
    pub wnd: u8,
    /// DATA: the bytes; ACK: the SACK bitmap (4 bytes).
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    Short,
    BadType(u8),
    BadBody,
}

impl Packet {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.body.len());
        out.push(self.kind as u8);
        out.extend(self.conn.to_be_bytes());
        out.extend(self.seq.to_be_bytes());
        out.extend(self.ack.to_be_bytes());
        out.push(self.wnd);
        out.extend(&self.body);
        out
    }

    /// Parses one datagram; `mss` bounds a DATA payload.
    pub fn decode(buf: &[u8], mss: usize) -> Result<Packet, Malformed> {
        if buf.len() < HEADER {
            return Err(Malformed::Short);
        }
        let word = |at: usize| u32::from_be_bytes(buf[at..at + 4].try_into().unwrap());
        let kind = match buf[0] {
            1 => Kind::Data,
            2 => Kind::Ack,
            3 => Kind::Fin,
            4 => Kind::Ping,
            other => return Err(Malformed::BadType(other)),
        };
        let body = buf[HEADER..].to_vec();
        let body_ok = match kind {
            Kind::Data => !body.is_empty() && body.len() <= mss,
            Kind::Ack => body.len() == 4,
            Kind::Fin | Kind::Ping => body.is_empty(),
        };
        if !body_ok {
            return Err(Malformed::BadBody);
        }
        Ok(Packet {
            kind,
            conn: word(1),
            seq: word(5),
            ack: word(9),
            wnd: buf[13],
            body,
        })
    }

    pub fn sack(&self) -> u32 {
        u32::from_be_bytes(self.body[..4].try_into().unwrap())
    }
}

/// Just the kind and seq of a datagram, for the relay's rules (`None` if not parseable).
pub fn peek(buf: &[u8]) -> Option<(Kind, u32)> {
    let p = Packet::decode(buf, usize::MAX).ok()?;
    Some((p.kind, p.seq))
}
