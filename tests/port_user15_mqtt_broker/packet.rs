//! MQTT 3.1.1's control packets and their binary framing, as a tokio-util style
//! `Decoder`/`Encoder`: a fixed header (type and flags, then the remaining length as a
//! varint of one to four bytes), a variable header and a payload. QoS 2's packets
//! (PUBREC, PUBREL, PUBCOMP) are not spoken: this broker grants QoS 1 at most.

use std::fmt;
use std::io;

use bytes::Bytes;
use overlap::codec::{BytesMut, Decoder, Encoder};

/// The largest remaining length a four-byte varint can carry.
pub const MAX_REMAINING: usize = 268_435_455;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The protocol level: 4 for 3.1.1 (answered with CONNACK 1 otherwise).
    pub level: u8,
    pub client_id: String,
    pub clean_session: bool,
    pub keep_alive: u16,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
}

impl Connect {
    pub fn new(client_id: &str) -> Connect {
        Connect {
            level: 4,
            client_id: client_id.into(),
            clean_session: true,
            keep_alive: 0,
            will: None,
            username: None,
            password: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    /// Shared by every subscriber's copy (overlap's `BytesMut::freeze` gives a `Vec<u8>`,
    /// which `Bytes::from` takes without copying).
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    /// There for QoS 1, not for QoS 0.
    pub pid: Option<u16>,
}

impl Publish {
    pub fn new(topic: &str, payload: impl Into<Bytes>, qos: u8) -> Publish {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain: false,
            dup: false,
            pid: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Connect(Connect),
    ConnAck {
        session_present: bool,
        code: u8,
    },
    Publish(Publish),
    PubAck(u16),
    Subscribe {
        pid: u16,
        filters: Vec<(String, u8)>,
    },
    SubAck {
        pid: u16,
        codes: Vec<u8>,
    },
    Unsubscribe {
        pid: u16,
        filters: Vec<String>,
    },
    UnsubAck(u16),
    PingReq,
    PingResp,
    Disconnect,
}

/// Why bytes are not a packet: each closes the connection that sent them.
#[derive(Debug)]
pub enum CodecError {
    Io(io::Error),
    /// A remaining length whose fourth byte still has its continuation bit.
    BadLength,
    /// A remaining length over the broker's limit, refused before its bytes are read.
    TooLarge {
        len: usize,
        max: usize,
    },
    Malformed(&'static str),
    /// The stream ended inside a packet.
    Truncated,
}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> CodecError {
        CodecError::Io(e)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Io(e) => write!(f, "i/o: {e}"),
            CodecError::BadLength => f.write_str("remaining length over four bytes"),
            CodecError::TooLarge { len, max } => write!(f, "packet of {len} bytes over {max}"),
            CodecError::Malformed(what) => write!(f, "malformed: {what}"),
            CodecError::Truncated => f.write_str("connection ended inside a packet"),
        }
    }
}

/// Reads a remaining length at the front of `bytes`: `Ok(None)` if it is not all there,
/// else the length and how many bytes it took.
pub fn read_varint(bytes: &[u8]) -> Result<Option<(usize, usize)>, CodecError> {
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&b) = bytes.get(i) else {
            return Ok(None);
        };
        value |= ((b & 0x7f) as usize) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Err(CodecError::BadLength)
}

pub fn write_varint(mut len: usize, dst: &mut BytesMut) {
    assert!(len <= MAX_REMAINING);
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        dst.put_u8(b);
        if len == 0 {
            return;
        }
    }
}

/// The body of one packet, read front to back.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Malformed("field runs past the packet"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn binary(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = self.u16()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> Result<String, CodecError> {
        let s = String::from_utf8(self.binary()?)
            .map_err(|_| CodecError::Malformed("string not UTF-8"))?;
        if s.contains('\0') {
            return Err(CodecError::Malformed("string with U+0000"));
        }
        Ok(s)
    }
    fn pid(&mut self) -> Result<u16, CodecError> {
        match self.u16()? {
            0 => Err(CodecError::Malformed("packet id 0")),
            pid => Ok(pid),
        }
    }
    fn end(&self) -> Result<(), CodecError> {
        match self.0.is_empty() {
            true => Ok(()),
            false => Err(CodecError::Malformed("bytes after the packet's fields")),
        }
    }
}

fn parse(kind: u8, flags: u8, body: &[u8]) -> Result<Packet, CodecError> {
    let mut b = Body(body);
    let need_flags = |want: u8| match flags == want {
        true => Ok(()),
        false => Err(CodecError::Malformed("reserved flags")),
    };
    let packet = match kind {
        1 => {
            need_flags(0)?;
            parse_connect(&mut b)?
        }
        2 => {
            need_flags(0)?;
            let ack = b.u8()?;
            if ack & !1 != 0 {
                return Err(CodecError::Malformed("CONNACK flags"));
            }
            Packet::ConnAck {
                session_present: ack == 1,
                code: b.u8()?,
            }
        }
        3 => {
            let qos = (flags >> 1) & 3;
            if qos == 3 {
                return Err(CodecError::Malformed("QoS 3"));
            }
            let dup = flags & 8 != 0;
            if qos == 0 && dup {
                return Err(CodecError::Malformed("DUP on QoS 0"));
            }
            let topic = b.string()?;
            let pid = if qos > 0 { Some(b.pid()?) } else { None };
            let payload = Bytes::copy_from_slice(b.take(b.0.len())?);
            Packet::Publish(Publish {
                topic,
                payload,
                qos,
                retain: flags & 1 != 0,
                dup,
                pid,
            })
        }
        4 => {
            need_flags(0)?;
            Packet::PubAck(b.pid()?)
        }
        5..=7 => return Err(CodecError::Malformed("QoS 2 flow not supported")),
        8 => {
            need_flags(2)?;
            let pid = b.pid()?;
            let mut filters = Vec::new();
            while !b.0.is_empty() {
                let filter = b.string()?;
                let qos = b.u8()?;
                if qos > 2 {
                    return Err(CodecError::Malformed("requested QoS over 2"));
                }
                filters.push((filter, qos));
            }
            if filters.is_empty() {
                return Err(CodecError::Malformed("SUBSCRIBE without a filter"));
            }
            Packet::Subscribe { pid, filters }
        }
        9 => {
            need_flags(0)?;
            let pid = b.pid()?;
            let codes = b.take(b.0.len())?.to_vec();
            Packet::SubAck { pid, codes }
        }
        10 => {
            need_flags(2)?;
            let pid = b.pid()?;
            let mut filters = Vec::new();
            while !b.0.is_empty() {
                filters.push(b.string()?);
            }
            if filters.is_empty() {
                return Err(CodecError::Malformed("UNSUBSCRIBE without a filter"));
            }
            Packet::Unsubscribe { pid, filters }
        }
        11 => {
            need_flags(0)?;
            Packet::UnsubAck(b.pid()?)
        }
        12 => Packet::PingReq,
        13 => Packet::PingResp,
        14 => Packet::Disconnect,
        _ => return Err(CodecError::Malformed("reserved packet type")),
    };
    if matches!(kind, 12..=14) {
        need_flags(0)?;
    }
    b.end()?;
    Ok(packet)
}

fn parse_connect(b: &mut Body<'_>) -> Result<Packet, CodecError> {
    if b.binary()? != b"MQTT" {
        return Err(CodecError::Malformed("protocol name"));
    }
    let level = b.u8()?;
    let flags = b.u8()?;
    if flags & 1 != 0 {
        return Err(CodecError::Malformed("CONNECT's reserved flag"));
    }
    let will_flag = flags & 4 != 0;
    let will_qos = (flags >> 3) & 3;
    let will_retain = flags & 0x20 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(CodecError::Malformed("will QoS or retain without a will"));
    }
    if will_qos == 3 {
        return Err(CodecError::Malformed("will QoS 3"));
    }
    if flags & 0x40 != 0 && flags & 0x80 == 0 {
        return Err(CodecError::Malformed("password without a user name"));
    }
    let keep_alive = b.u16()?;
    let client_id = b.string()?;
    let will = match will_flag {
        true => Some(Will {
            topic: b.string()?,
            payload: b.binary()?,
            qos: will_qos,
            retain: will_retain,
        }),
        false => None,
    };
    let username = if flags & 0x80 != 0 {
        Some(b.string()?)
    } else {
        None
    };
    let password = if flags & 0x40 != 0 {
        Some(b.binary()?)
    } else {
        None
    };
    Ok(Packet::Connect(Connect {
        level,
        client_id,
        clean_session: flags & 2 != 0,
        keep_alive,
        will,
        username,
        password,
    }))
}

/// The codec, refusing a packet whose remaining length is over `max`; while
/// `expect_connect` is set (the broker clears it after the first packet), a first byte
/// that is not CONNECT's is refused at once, without waiting for the length it announces
/// (bytes of another protocol, say).
#[derive(Debug)]
pub struct MqttCodec {
    pub max: usize,
    pub expect_connect: bool,
}

impl MqttCodec {
    pub fn new(max: usize) -> MqttCodec {
        MqttCodec {
            max,
            expect_connect: false,
        }
    }
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        let Some(&first) = src.first() else {
            return Ok(None);
        };
        if self.expect_connect && first != 0x10 {
            return Err(CodecError::Malformed("first packet not CONNECT"));
        }
        let Some((len, n)) = read_varint(&src[1..])? else {
            return Ok(None);
        };
        if len > self.max {
            return Err(CodecError::TooLarge { len, max: self.max });
        }
        if src.len() < 1 + n + len {
            src.reserve(1 + n + len - src.len());
            return Ok(None);
        }
        // Parsed in place, then consumed (`split_to` would copy the body first: overlap's
        // `BytesMut` has no shared `Bytes` to split off).
        src.advance(1 + n);
        let packet = parse(first >> 4, first & 0x0f, &src[..len]);
        src.advance(len);
        packet.map(Some)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        match self.decode(src)? {
            Some(p) => Ok(Some(p)),
            None if src.is_empty() => Ok(None),
            None => Err(CodecError::Truncated),
        }
    }
}

fn put_binary(dst: &mut BytesMut, b: &[u8]) {
    dst.put_u16(b.len() as u16);
    dst.extend_from_slice(b);
}

impl Encoder<Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, p: Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        let mut body = BytesMut::new();
        let first: u8 = match &p {
            Packet::Connect(c) => {
                put_binary(&mut body, b"MQTT");
                body.put_u8(c.level);
                let mut flags = (c.clean_session as u8) << 1;
                if let Some(w) = &c.will {
                    flags |= 4 | (w.qos << 3) | ((w.retain as u8) << 5);
                }
                flags |= (c.password.is_some() as u8) << 6;
                flags |= (c.username.is_some() as u8) << 7;
                body.put_u8(flags);
                body.put_u16(c.keep_alive);
                put_binary(&mut body, c.client_id.as_bytes());
                if let Some(w) = &c.will {
                    put_binary(&mut body, w.topic.as_bytes());
                    put_binary(&mut body, &w.payload);
                }
                if let Some(u) = &c.username {
                    put_binary(&mut body, u.as_bytes());
                }
                if let Some(pw) = &c.password {
                    put_binary(&mut body, pw);
                }
                0x10
            }
            Packet::ConnAck {
                session_present,
                code,
            } => {
                body.put_u8(*session_present as u8);
                body.put_u8(*code);
                0x20
            }
            Packet::Publish(p) => {
                put_binary(&mut body, p.topic.as_bytes());
                if let Some(pid) = p.pid {
                    body.put_u16(pid);
                }
                body.extend_from_slice(&p.payload);
                0x30 | ((p.dup as u8) << 3) | (p.qos << 1) | p.retain as u8
            }
            Packet::PubAck(pid) => {
                body.put_u16(*pid);
                0x40
            }
            Packet::Subscribe { pid, filters } => {
                body.put_u16(*pid);
                for (f, qos) in filters {
                    put_binary(&mut body, f.as_bytes());
                    body.put_u8(*qos);
                }
                0x82
            }
            Packet::SubAck { pid, codes } => {
                body.put_u16(*pid);
                body.extend_from_slice(codes);
                0x90
            }
            Packet::Unsubscribe { pid, filters } => {
                body.put_u16(*pid);
                for f in filters {
                    put_binary(&mut body, f.as_bytes());
                }
                0xa2
            }
            Packet::UnsubAck(pid) => {
                body.put_u16(*pid);
                0xb0
            }
            Packet::PingReq => 0xc0,
            Packet::PingResp => 0xd0,
            Packet::Disconnect => 0xe0,
        };
        dst.put_u8(first);
        write_varint(body.len(), dst);
        dst.extend_from_slice(&body);
        Ok(())
    }
}
