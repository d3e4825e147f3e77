//! The wire format: a simplified PostgreSQL protocol 3.0. Every message but the first is a
//! type byte, then a big-endian `u32` length that counts itself and the body; the first
//! message of a connection (a startup or a cancel request) has no type byte. Backend
//! messages are decoded with `BackendCodec` (the client's side), frontend ones with
//! `FrontendCodec` (the server's), each refusing a length below 4 or over its limit from
//! the header alone.

use std::io;

use overlap::codec::{BytesMut, Decoder};

/// The protocol version a startup message carries (3.0).
pub const PROTOCOL_3: u32 = 196_608;
/// The code a cancel request carries in place of a version.
pub const CANCEL_CODE: u32 = 80_877_102;

/// A column value: `None` is SQL NULL.
pub type Value = Option<Vec<u8>>;

/// What the server sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    AuthOk,
    ParameterStatus(String, String),
    KeyData {
        pid: u32,
        key: u32,
    },
    Ready(u8),
    RowDescription(Vec<String>),
    DataRow(Vec<Value>),
    CommandComplete(String),
    EmptyQuery,
    Error {
        code: String,
        message: String,
    },
    Notice(String),
    Notification {
        pid: u32,
        channel: String,
        payload: String,
    },
    ParseComplete,
    BindComplete,
    CopyInResponse,
    CopyOutResponse,
    CopyData(Vec<u8>),
    CopyDone,
}

/// What the client sends after its startup.
#[derive(Debug, Clone, PartialEq)]
pub enum Frontend {
    Query(String),
    Parse(String),
    Bind(Vec<Value>),
    Execute,
    Sync,
    Terminate,
    CopyData(Vec<u8>),
    CopyDone,
    CopyFail(String),
}

/// The first message of a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Hello {
    Startup { user: String },
    Cancel { pid: u32, key: u32 },
}

fn frame(dst: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    dst.put_u8(tag);
    let at = dst.len();
    dst.put_u32(0);
    body(dst);
    let len = (dst.len() - at) as u32;
    dst[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_cstr(dst: &mut BytesMut, s: &str) {
    dst.extend_from_slice(s.as_bytes());
    dst.put_u8(0);
}

fn put_values(dst: &mut BytesMut, values: &[Value]) {
    dst.put_u16(values.len() as u16);
    for v in values {
        match v {
            None => dst.put_i32(-1),
            Some(b) => {
                dst.put_i32(b.len() as i32);
                dst.extend_from_slice(b);
            }
        }
    }
}

impl Hello {
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Hello::Startup { user } => {
                let mut body = BytesMut::new();
                body.put_u32(PROTOCOL_3);
                put_cstr(&mut body, "user");
                put_cstr(&mut body, user);
                body.put_u8(0);
                dst.put_u32(body.len() as u32 + 4);
                dst.extend_from_slice(&body);
            }
            Hello::Cancel { pid, key } => {
                dst.put_u32(16);
                dst.put_u32(CANCEL_CODE);
                dst.put_u32(*pid);
                dst.put_u32(*key);
            }
        }
    }

    /// Parses a whole first message (its length included).
    pub fn decode(msg: &[u8]) -> io::Result<Hello> {
        let mut body = Body(&msg[4.min(msg.len())..]);
        match body.u32()? {
            CANCEL_CODE => Ok(Hello::Cancel {
                pid: body.u32()?,
                key: body.u32()?,
            }),
            PROTOCOL_3 => {
                let mut user = None;
                loop {
                    let name = body.cstr()?;
                    if name.is_empty() {
                        break;
                    }
                    let value = body.cstr()?;
                    if name == "user" {
                        user = Some(value);
                    }
                }
                body.end()?;
                let user = user.ok_or_else(|| invalid("startup without a user".into()))?;
                Ok(Hello::Startup { user })
            }
            v => Err(invalid(format!("unsupported protocol version {v}"))),
        }
    }
}

impl Frontend {
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frontend::Query(q) => frame(dst, b'Q', |d| put_cstr(d, q)),
            Frontend::Parse(q) => frame(dst, b'P', |d| {
                put_cstr(d, "");
                put_cstr(d, q);
                d.put_u16(0);
            }),
            Frontend::Bind(params) => frame(dst, b'B', |d| {
                put_cstr(d, "");
                put_cstr(d, "");
                d.put_u16(0);
                put_values(d, params);
                d.put_u16(0);
            }),
            Frontend::Execute => frame(dst, b'E', |d| {
                put_cstr(d, "");
                d.put_u32(0);
            }),
            Frontend::Sync => frame(dst, b'S', |_| {}),
            Frontend::Terminate => frame(dst, b'X', |_| {}),
            Frontend::CopyData(b) => frame(dst, b'd', |d| d.extend_from_slice(b)),
            Frontend::CopyDone => frame(dst, b'c', |_| {}),
            Frontend::CopyFail(m) => frame(dst, b'f', |d| put_cstr(d, m)),
        }
    }
}

impl Backend {
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            Backend::AuthOk => frame(dst, b'R', |d| d.put_u32(0)),
            Backend::ParameterStatus(k, v) => frame(dst, b'S', |d| {
                put_cstr(d, k);
                put_cstr(d, v);
            }),
            Backend::KeyData { pid, key } => frame(dst, b'K', |d| {
                d.put_u32(*pid);
                d.put_u32(*key);
            }),
            Backend::Ready(s) => frame(dst, b'Z', |d| d.put_u8(*s)),
            Backend::RowDescription(cols) => frame(dst, b'T', |d| {
                d.put_u16(cols.len() as u16);
                for c in cols {
                    put_cstr(d, c);
                    d.put_u32(0); // table oid
                    d.put_u16(0); // column number
                    d.put_u32(25); // type oid: text
                    d.put_i16(-1); // type size
                    d.put_i32(-1); // type modifier
                    d.put_u16(0); // format: text
                }
            }),
            Backend::DataRow(values) => frame(dst, b'D', |d| put_values(d, values)),
            Backend::CommandComplete(tag) => frame(dst, b'C', |d| put_cstr(d, tag)),
            Backend::EmptyQuery => frame(dst, b'I', |_| {}),
            Backend::Error { code, message } => frame(dst, b'E', |d| {
                for (f, v) in [(b'S', "ERROR"), (b'C', code), (b'M', message)] {
                    d.put_u8(f);
                    put_cstr(d, v);
                }
                d.put_u8(0);
            }),
            Backend::Notice(m) => frame(dst, b'N', |d| {
                d.put_u8(b'M');
                put_cstr(d, m);
                d.put_u8(0);
            }),
            Backend::Notification {
                pid,
                channel,
                payload,
            } => frame(dst, b'A', |d| {
                d.put_u32(*pid);
                put_cstr(d, channel);
                put_cstr(d, payload);
            }),
            Backend::ParseComplete => frame(dst, b'1', |_| {}),
            Backend::BindComplete => frame(dst, b'2', |_| {}),
            Backend::CopyInResponse => frame(dst, b'G', |d| {
                d.put_u8(0);
                d.put_u16(0);
            }),
            Backend::CopyOutResponse => frame(dst, b'H', |d| {
                d.put_u8(0);
                d.put_u16(0);
            }),
            Backend::CopyData(b) => frame(dst, b'd', |d| d.extend_from_slice(b)),
            Backend::CopyDone => frame(dst, b'c', |_| {}),
        }
    }
}

pub fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// A message body being parsed; every read checks that the bytes are there.
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(invalid("message body cut short".into()));
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
    fn cstr(&mut self) -> io::Result<String> {
        let nul = self.0.iter().position(|&b| b == 0);
        let nul = nul.ok_or_else(|| invalid("string without its NUL".into()))?;
        let s = std::str::from_utf8(&self.0[..nul])
            .map_err(|_| invalid("string not UTF-8".into()))?
            .to_string();
        self.0 = &self.0[nul + 1..];
        Ok(s)
    }
    fn values(&mut self) -> io::Result<Vec<Value>> {
        let n = self.u16()?;
        (0..n)
            .map(|_| match self.u32()? as i32 {
                -1 => Ok(None),
                len if len < 0 => Err(invalid(format!("value length {len}"))),
                len => Ok(Some(self.take(len as usize)?.to_vec())),
            })
            .collect()
    }
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }
    fn end(&self) -> io::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid(format!(
                "{} bytes after the message's fields",
                self.0.len()
            )))
        }
    }
}

/// Splits the next whole `tag, length, body` message off `src`, refusing a bad length from
/// the header alone.
fn split_message(src: &mut BytesMut, max: usize) -> io::Result<Option<(u8, Vec<u8>)>> {
    if src.len() < 5 {
        return Ok(None);
    }
    let tag = src[0];
    let len = u32::from_be_bytes(src[1..5].try_into().unwrap()) as usize;
    if len < 4 {
        return Err(invalid(format!(
            "message '{}' with length {len}, below 4",
            tag as char
        )));
    }
    if len - 4 > max {
        return Err(invalid(format!(
            "message '{}' of {} bytes, over the limit of {max}",
            tag as char,
            len - 4
        )));
    }
    if src.len() < 1 + len {
        src.reserve(1 + len - src.len());
        return Ok(None);
    }
    let msg = src.split_to(1 + len);
    Ok(Some((tag, msg[5..].to_vec())))
}

/// The client's decoder of backend messages, refusing any over `max` body bytes.
#[derive(Debug)]
pub struct BackendCodec {
    pub max: usize,
}

impl Decoder for BackendCodec {
    type Item = Backend;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Backend>> {
        let Some((tag, body)) = split_message(src, self.max)? else {
            return Ok(None);
        };
        let mut b = Body(&body);
        let msg = match tag {
            b'R' => match b.u32()? {
                0 => Backend::AuthOk,
                n => return Err(invalid(format!("authentication method {n} not supported"))),
            },
            b'S' => Backend::ParameterStatus(b.cstr()?, b.cstr()?),
            b'K' => Backend::KeyData {
                pid: b.u32()?,
                key: b.u32()?,
            },
            b'Z' => Backend::Ready(b.u8()?),
            b'T' => {
                let n = b.u16()?;
                let mut cols = Vec::new();
                for _ in 0..n {
                    cols.push(b.cstr()?);
                    b.take(18)?;
                }
                Backend::RowDescription(cols)
            }
            b'D' => Backend::DataRow(b.values()?),
            b'C' => Backend::CommandComplete(b.cstr()?),
            b'I' => Backend::EmptyQuery,
            b'E' | b'N' => {
                let (mut code, mut message) = (String::new(), String::new());
                loop {
                    match b.u8()? {
                        0 => break,
                        b'C' => code = b.cstr()?,
                        b'M' => message = b.cstr()?,
                        _ => drop(b.cstr()?),
                    }
                }
                if tag == b'E' {
                    Backend::Error { code, message }
                } else {
                    Backend::Notice(message)
                }
            }
            b'A' => Backend::Notification {
                pid: b.u32()?,
                channel: b.cstr()?,
                payload: b.cstr()?,
            },
            b'1' => Backend::ParseComplete,
            b'2' => Backend::BindComplete,
            b'G' | b'H' => {
                b.u8()?;
                let n = b.u16()?;
                b.take(2 * n as usize)?;
                if tag == b'G' {
                    Backend::CopyInResponse
                } else {
                    Backend::CopyOutResponse
                }
            }
            b'd' => Backend::CopyData(b.rest()),
            b'c' => Backend::CopyDone,
            t => return Err(invalid(format!("unknown message type {:?}", t as char))),
        };
        b.end()?;
        Ok(Some(msg))
    }

    /// The end of the stream inside a message is the server vanishing mid-message:
    /// `UnexpectedEof`, where the default (tokio-util's too) gives `Other`.
    fn decode_eof(&mut self, src: &mut BytesMut) -> io::Result<Option<Backend>> {
        match self.decode(src)? {
            None if !src.is_empty() => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "server closed the connection {} bytes into a message",
                    src.len()
                ),
            )),
            m => Ok(m),
        }
    }
}

/// The server's decoder of frontend messages (after the first), refusing any over `max`.
#[derive(Debug)]
pub struct FrontendCodec {
    pub max: usize,
}

impl Decoder for FrontendCodec {
    type Item = Frontend;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Frontend>> {
        let Some((tag, body)) = split_message(src, self.max)? else {
            return Ok(None);
        };
        let mut b = Body(&body);
        let msg = match tag {
            b'Q' => Frontend::Query(b.cstr()?),
            b'P' => {
                b.cstr()?;
                let q = b.cstr()?;
                let n = b.u16()?;
                b.take(4 * n as usize)?;
                Frontend::Parse(q)
            }
            b'B' => {
                b.cstr()?;
                b.cstr()?;
                let n = b.u16()?;
                b.take(2 * n as usize)?;
                let params = b.values()?;
                let n = b.u16()?;
                b.take(2 * n as usize)?;
                Frontend::Bind(params)
            }
            b'E' => {
                b.cstr()?;
                b.u32()?;
                Frontend::Execute
            }
            b'S' => Frontend::Sync,
            b'X' => Frontend::Terminate,
            b'd' => Frontend::CopyData(b.rest()),
            b'c' => Frontend::CopyDone,
            b'f' => Frontend::CopyFail(b.cstr()?),
            t => return Err(invalid(format!("unknown message type {:?}", t as char))),
        };
        b.end()?;
        Ok(Some(msg))
    }
}
