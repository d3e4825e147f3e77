//! The wire format as a tokio-util `Decoder`/`Encoder` pair for `UdpFramed`: the 4-byte
//! header (version, type, token length; code; message id), the token, the options with
//! their delta/length nibbles (13 and 14 taking one and two extension bytes, 15
//! reserved) and the payload after a 0xFF marker. Each datagram is one whole message:
//! `decode` takes all of `src` and keeps no state between datagrams.
//!
//! [`CoapCodec`] fails a bad datagram with a [`CoapError`], which `UdpFramed` yields
//! without the sender's address; [`Reporting`] (the server's) yields the fault as an item
//! instead, so that it comes with the address and a malformed CON can be answered with RST.

use std::fmt;
use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

use super::message::{Message, Type};

/// What was wrong with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Under the 4 header bytes.
    Short,
    /// A version other than 1 (such a message is silently ignored, RFC 7252 3).
    BadVersion(u8),
    /// A token length of 9 to 15.
    TokenTooLong(u8),
    /// Fewer bytes than the token length says.
    TruncatedToken,
    /// An option delta nibble of 15 without the length nibble's 15 (the payload marker).
    ReservedDelta,
    /// A length nibble of 15.
    ReservedLength,
    /// An option's extension bytes or value running past the datagram.
    TruncatedOption,
    /// An option number over 65535.
    OptionOverflow,
    /// A payload marker with nothing after it.
    EmptyPayload,
    /// An empty message (code 0.00) with a token, options or payload.
    NonEmptyEmpty,
}

/// A fault, with the type and message id when the header itself was sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub fault: Fault,
    pub header: Option<(Type, u16)>,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.header {
            Some((t, mid)) => write!(f, "malformed {t:?} message {mid}: {:?}", self.fault),
            None => write!(f, "malformed datagram: {:?}", self.fault),
        }
    }
}

/// The client codec's error: a malformed datagram, or the socket's own error.
#[derive(Debug)]
pub enum CoapError {
    Format(FormatError),
    Io(io::Error),
}

impl From<io::Error> for CoapError {
    fn from(e: io::Error) -> CoapError {
        CoapError::Io(e)
    }
}

impl fmt::Display for CoapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoapError::Format(e) => e.fmt(f),
            CoapError::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

/// The CoAP codec: stateless, one message per datagram.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoapCodec;

/// Parses one whole datagram.
pub fn parse(buf: &[u8]) -> Result<Message, FormatError> {
    let fail = |fault, header| Err(FormatError { fault, header });
    if buf.len() < 4 {
        return fail(Fault::Short, None);
    }
    let version = buf[0] >> 6;
    if version != 1 {
        return fail(Fault::BadVersion(version), None);
    }
    let mtype = Type::from_bits(buf[0] >> 4);
    let tkl = buf[0] & 0x0f;
    let code = buf[1];
    let mid = u16::from_be_bytes([buf[2], buf[3]]);
    let header = Some((mtype, mid));
    if tkl > 8 {
        return fail(Fault::TokenTooLong(tkl), header);
    }
    let mut at = 4 + tkl as usize;
    if buf.len() < at {
        return fail(Fault::TruncatedToken, header);
    }
    let mut msg = Message::new(mtype, code, mid, &buf[4..at]);
    let mut number: u32 = 0;
    while at < buf.len() {
        let byte = buf[at];
        at += 1;
        if byte == 0xff {
            if at == buf.len() {
                return fail(Fault::EmptyPayload, header);
            }
            msg.payload = buf[at..].to_vec();
            break;
        }
        let delta = match extended(byte >> 4, buf, &mut at) {
            Ok(v) => v,
            Err(Fault::ReservedLength) => return fail(Fault::ReservedDelta, header),
            Err(f) => return fail(f, header),
        };
        let len = match extended(byte & 0x0f, buf, &mut at) {
            Ok(v) => v as usize,
            Err(f) => return fail(f, header),
        };
        number += delta;
        if number > u32::from(u16::MAX) {
            return fail(Fault::OptionOverflow, header);
        }
        if buf.len() - at < len {
            return fail(Fault::TruncatedOption, header);
        }
        msg.options
            .push((number as u16, buf[at..at + len].to_vec()));
        at += len;
    }
    if code == 0 && (!msg.token.is_empty() || !msg.options.is_empty() || !msg.payload.is_empty()) {
        return fail(Fault::NonEmptyEmpty, header);
    }
    Ok(msg)
}

/// An option's delta or length nibble with its extension bytes. 15 is reported as
/// `ReservedLength` (the caller renames it for a delta).
fn extended(nibble: u8, buf: &[u8], at: &mut usize) -> Result<u32, Fault> {
    let (extra, base) = match nibble {
        0..=12 => return Ok(u32::from(nibble)),
        13 => (1, 13),
        14 => (2, 269),
        _ => return Err(Fault::ReservedLength),
    };
    if buf.len() - *at < extra {
        return Err(Fault::TruncatedOption);
    }
    let v = buf[*at..*at + extra]
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
    *at += extra;
    Ok(v + base)
}

/// The nibble and extension bytes for a delta or length `v` (at most 65535 + 269).
fn nibble(v: usize) -> (u8, Vec<u8>) {
    match v {
        0..=12 => (v as u8, vec![]),
        13..=268 => (13, vec![(v - 13) as u8]),
        _ => (14, ((v - 269) as u16).to_be_bytes().to_vec()),
    }
}

/// Serialises `msg`; refuses what the format cannot carry.
pub fn write(msg: &Message, dst: &mut BytesMut) -> io::Result<()> {
    let bad = |what: String| Err(io::Error::new(io::ErrorKind::InvalidInput, what));
    if msg.token.len() > 8 {
        return bad(format!("a token of {} bytes (at most 8)", msg.token.len()));
    }
    let mut options: Vec<&(u16, Vec<u8>)> = msg.options.iter().collect();
    options.sort_by_key(|(n, _)| *n);
    if let Some((n, v)) = options.iter().find(|(_, v)| v.len() > 65535 + 269) {
        return bad(format!("option {n} of {} bytes", v.len()));
    }
    dst.put_u8(0x40 | (msg.mtype as u8) << 4 | msg.token.len() as u8);
    dst.put_u8(msg.code);
    dst.put_u16(msg.mid);
    dst.put_slice(&msg.token);
    let mut last = 0u16;
    for (n, v) in options {
        let (d, d_ext) = nibble(usize::from(n - last));
        let (l, l_ext) = nibble(v.len());
        dst.put_u8(d << 4 | l);
        dst.put_slice(&d_ext);
        dst.put_slice(&l_ext);
        dst.put_slice(v);
        last = *n;
    }
    if !msg.payload.is_empty() {
        dst.put_u8(0xff);
        dst.put_slice(&msg.payload);
    }
    Ok(())
}

impl Decoder for CoapCodec {
    type Item = Message;
    type Error = CoapError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CoapError> {
        if src.is_empty() {
            // An empty datagram (or the end of one): `UdpFramed` moves on silently.
            return Ok(None);
        }
        let datagram = src.split();
        parse(&datagram).map(Some).map_err(CoapError::Format)
    }
}

impl Encoder<Message> for CoapCodec {
    type Error = CoapError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), CoapError> {
        write(&msg, dst).map_err(CoapError::Io)
    }
}

/// The server's codec: a malformed datagram is an item (`Err(FormatError)`), which
/// `UdpFramed` hands over with its sender's address; only the socket's errors are errors.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reporting;

impl Decoder for Reporting {
    type Item = Result<Message, FormatError>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        if src.is_empty() {
            return Ok(None);
        }
        let datagram = src.split();
        Ok(Some(parse(&datagram)))
    }
}

impl Encoder<Message> for Reporting {
    type Error = io::Error;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> io::Result<()> {
        write(&msg, dst)
    }
}
