//! The WebSocket framing, a simplified RFC 6455, as a `Decoder`/`Encoder` pair: a FIN and
//! opcode byte, a mask bit and a 7-bit length (126: a `u16` follows, 127: a `u64`), a
//! 4-byte mask on client frames, then the payload. Text and binary messages may come in
//! fragments (continuation frames), control frames (close, ping, pong) may come between
//! them and are at most 125 bytes. A message longer than the maximum is refused from its
//! header, before its payload is buffered (close code 1009).

use std::io;

use overlap::codec::{BytesMut, Decoder, Encoder};

pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// A whole message, or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A status code and a reason, or no body at all.
    Close(Option<(u16, String)>),
}

impl Message {
    pub fn close(code: u16, reason: &str) -> Message {
        Message::Close(Some((code, reason.to_string())))
    }
}

/// What a peer did wrong, or the stream's failure.
#[derive(Debug)]
pub enum WsError {
    Io(io::Error),
    /// A message longer than the maximum (its header says so).
    TooBig {
        len: u64,
        max: usize,
    },
    /// A frame the protocol forbids.
    Protocol(&'static str),
}

impl WsError {
    /// The close code to answer it with.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Io(_) => 1011,
            WsError::TooBig { .. } => 1009,
            WsError::Protocol("text is not UTF-8") => 1007,
            WsError::Protocol(_) => 1002,
        }
    }
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Io(e) => write!(f, "{e}"),
            WsError::TooBig { len, max } => write!(f, "message of {len} bytes, max {max}"),
            WsError::Protocol(what) => write!(f, "{what}"),
        }
    }
}

impl From<io::Error> for WsError {
    fn from(e: io::Error) -> WsError {
        WsError::Io(e)
    }
}

/// Which end this codec is: a server reads masked frames and writes plain ones, a
/// client the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

#[derive(Debug)]
pub struct WsCodec {
    role: Role,
    max_message: usize,
    /// The opcode and payload of a message whose last fragment has not come yet.
    partial: Option<(u8, Vec<u8>)>,
    /// The next mask a client frame gets (a counter stands in for a random source).
    mask_seed: u32,
}

impl WsCodec {
    pub fn new(role: Role, max_message: usize) -> WsCodec {
        WsCodec {
            role,
            max_message,
            partial: None,
            mask_seed: 0x1234_5678,
        }
    }

    pub fn server(max_message: usize) -> WsCodec {
        WsCodec::new(Role::Server, max_message)
    }

    pub fn client(max_message: usize) -> WsCodec {
        WsCodec::new(Role::Client, max_message)
    }

    /// Bytes of the message being assembled.
    fn assembled(&self) -> usize {
        self.partial.as_ref().map_or(0, |(_, p)| p.len())
    }
}

fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
}

fn message(opcode: u8, payload: Vec<u8>) -> Result<Message, WsError> {
    Ok(match opcode {
        TEXT => Message::Text(
            String::from_utf8(payload).map_err(|_| WsError::Protocol("text is not UTF-8"))?,
        ),
        BINARY => Message::Binary(payload),
        PING => Message::Ping(payload),
        PONG => Message::Pong(payload),
        CLOSE => match payload.len() {
            0 => Message::Close(None),
            1 => return Err(WsError::Protocol("a close body of one byte")),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                let reason = std::str::from_utf8(&payload[2..])
                    .map_err(|_| WsError::Protocol("text is not UTF-8"))?;
                Message::Close(Some((code, reason.to_string())))
            }
        },
        _ => return Err(WsError::Protocol("unknown opcode")),
    })
}

impl Decoder for WsCodec {
    type Item = Message;
    type Error = WsError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WsError> {
        // Each round takes one frame; a fragment that does not end its message loops on.
        loop {
            if src.len() < 2 {
                return Ok(None);
            }
            let (fin, opcode) = (src[0] & 0x80 != 0, src[0] & 0x0f);
            if src[0] & 0x70 != 0 {
                return Err(WsError::Protocol("reserved bits set"));
            }
            let masked = src[1] & 0x80 != 0;
            match (self.role, masked) {
                (Role::Server, false) => return Err(WsError::Protocol("unmasked client frame")),
                (Role::Client, true) => return Err(WsError::Protocol("masked server frame")),
                _ => {}
            }
            // tokio: `let mut head = &src[2..]; head.get_u16()` through `bytes::Buf`.
            let (len, head) = match src[1] & 0x7f {
                126 if src.len() < 4 => return Ok(None),
                126 => (u64::from(u16::from_be_bytes([src[2], src[3]])), 4),
                127 if src.len() < 10 => return Ok(None),
                127 => (u64::from_be_bytes(src[2..10].try_into().unwrap()), 10),
                n => (u64::from(n), 2),
            };
            let control = opcode & 0x8 != 0;
            if control && (!fin || len > 125) {
                return Err(WsError::Protocol("a fragmented or long control frame"));
            }
            if !control && len.saturating_add(self.assembled() as u64) > self.max_message as u64 {
                return Err(WsError::TooBig {
                    len: len + self.assembled() as u64,
                    max: self.max_message,
                });
            }
            let mask_len = if masked { 4 } else { 0 };
            let total = head + mask_len + len as usize;
            if src.len() < total {
                src.reserve(total - src.len());
                return Ok(None);
            }
            let mask: [u8; 4] = match masked {
                true => src[head..head + 4].try_into().unwrap(),
                false => [0; 4],
            };
            src.advance(head + mask_len);
            let mut payload = src.split_to(len as usize).freeze();
            apply_mask(&mut payload, mask);
            match opcode {
                CONTINUATION => {
                    let Some((_, so_far)) = self.partial.as_mut() else {
                        return Err(WsError::Protocol("a continuation of nothing"));
                    };
                    so_far.extend_from_slice(&payload);
                    if fin {
                        let (op, whole) = self.partial.take().unwrap();
                        return message(op, whole).map(Some);
                    }
                }
                TEXT | BINARY if self.partial.is_some() => {
                    return Err(WsError::Protocol("a new message inside a fragmented one"))
                }
                TEXT | BINARY if !fin => self.partial = Some((opcode, payload)),
                _ => return message(opcode, payload).map(Some),
            }
        }
    }
}

/// Appends one frame.
pub fn encode_frame(
    dst: &mut BytesMut,
    fin: bool,
    opcode: u8,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    dst.reserve(14 + payload.len());
    dst.put_u8(u8::from(fin) << 7 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => dst.put_u8(mask_bit | n as u8),
        n @ 126..=0xffff => {
            dst.put_u8(mask_bit | 126);
            dst.put_u16(n as u16);
        }
        n => {
            dst.put_u8(mask_bit | 127);
            dst.put_u64(n as u64);
        }
    }
    match mask {
        Some(mask) => {
            dst.put_slice(&mask);
            let start = dst.len();
            dst.put_slice(payload);
            apply_mask(&mut dst[start..], mask);
        }
        None => dst.put_slice(payload),
    }
}

/// The opcode and payload bytes of a message.
pub fn parts(msg: &Message) -> (u8, Vec<u8>) {
    match msg {
        Message::Text(t) => (TEXT, t.as_bytes().to_vec()),
        Message::Binary(b) => (BINARY, b.clone()),
        Message::Ping(p) => (PING, p.clone()),
        Message::Pong(p) => (PONG, p.clone()),
        Message::Close(None) => (CLOSE, Vec::new()),
        Message::Close(Some((code, reason))) => {
            let mut body = code.to_be_bytes().to_vec();
            body.extend_from_slice(reason.as_bytes());
            (CLOSE, body)
        }
    }
}

impl Encoder<Message> for WsCodec {
    type Error = WsError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), WsError> {
        let (opcode, payload) = parts(&msg);
        let mask = match self.role {
            Role::Server => None,
            Role::Client => {
                self.mask_seed = self
                    .mask_seed
                    .wrapping_mul(1_103_515_245)
                    .wrapping_add(12345);
                Some(self.mask_seed.to_be_bytes())
            }
        };
        encode_frame(dst, true, opcode, &payload, mask);
        Ok(())
    }
}
