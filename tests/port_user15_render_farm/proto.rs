//! The wire format, inside tokio-util's (here overlap's) `LengthDelimitedCodec` frames (a
//! 4-byte big-endian length, then the body): requests a client sends and replies the farm
//! sends back, each tagged with the client's job id.
//!
//! A request is `b'P'` and an id (a ping), or `b'J'`, an id, the op name's length (1 byte),
//! the op name and the payload (a job). A reply is a tag, the id, and a body: `PONG`, a
//! job's `PROGRESS` (steps done, steps in all), its `RESULT` (whether it came from the
//! cache, then the bytes), `BUSY` (the wait queue is full), `TIMEOUT`, or `ERROR` with a
//! message.

use std::fmt;

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Ping { id: u32 },
    Job(JobRequest),
}

/// A job: which op, on what bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRequest {
    pub id: u32,
    pub op: String,
    pub payload: Vec<u8>,
}

/// Why a frame is not a request (the connection answers with an `ERROR` and goes on, the
/// frame being whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadRequest {
    Empty,
    UnknownKind(u8),
    Short {
        what: &'static str,
    },
    TrailingBytes,
    OpNotAscii,
    /// Well framed, with an id to answer to, but a payload too long for the farm.
    PayloadTooLarge {
        id: u32,
        len: usize,
        max: usize,
    },
}

impl BadRequest {
    /// The job id to answer to, if the frame got as far as one.
    pub fn id(&self) -> u32 {
        match self {
            BadRequest::PayloadTooLarge { id, .. } => *id,
            _ => 0,
        }
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRequest::Empty => write!(f, "empty frame"),
            BadRequest::UnknownKind(k) => write!(f, "unknown request kind {k:#04x}"),
            BadRequest::Short { what } => write!(f, "frame too short for its {what}"),
            BadRequest::TrailingBytes => write!(f, "trailing bytes after a ping"),
            BadRequest::OpNotAscii => write!(f, "op name is not ASCII"),
            BadRequest::PayloadTooLarge { len, max, .. } => {
                write!(f, "payload of {len} bytes over the limit of {max}")
            }
        }
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Ping { id } => {
                let mut out = vec![b'P'];
                out.extend_from_slice(&id.to_be_bytes());
                out
            }
            Request::Job(job) => {
                let mut out = vec![b'J'];
                out.extend_from_slice(&job.id.to_be_bytes());
                out.push(job.op.len() as u8);
                out.extend_from_slice(job.op.as_bytes());
                out.extend_from_slice(&job.payload);
                out
            }
        }
    }

    /// Parses a frame's body; a job's payload may be at most `max_payload` bytes.
    pub fn decode(frame: &[u8], max_payload: usize) -> Result<Request, BadRequest> {
        let (&kind, rest) = frame.split_first().ok_or(BadRequest::Empty)?;
        if rest.len() < 4 {
            return Err(BadRequest::Short { what: "id" });
        }
        let id = u32::from_be_bytes(rest[..4].try_into().unwrap());
        let rest = &rest[4..];
        match kind {
            b'P' if rest.is_empty() => Ok(Request::Ping { id }),
            b'P' => Err(BadRequest::TrailingBytes),
            b'J' => {
                let (&op_len, rest) = rest.split_first().ok_or(BadRequest::Short { what: "op" })?;
                let op_len = op_len as usize;
                if op_len == 0 || rest.len() < op_len {
                    return Err(BadRequest::Short { what: "op" });
                }
                let (op, payload) = rest.split_at(op_len);
                if !op.is_ascii() {
                    return Err(BadRequest::OpNotAscii);
                }
                if payload.len() > max_payload {
                    return Err(BadRequest::PayloadTooLarge {
                        id,
                        len: payload.len(),
                        max: max_payload,
                    });
                }
                Ok(Request::Job(JobRequest {
                    id,
                    op: String::from_utf8(op.to_vec()).unwrap(),
                    payload: payload.to_vec(),
                }))
            }
            other => Err(BadRequest::UnknownKind(other)),
        }
    }
}

/// A reply to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Pong {
        id: u32,
    },
    Progress {
        id: u32,
        done: u32,
        total: u32,
    },
    Result {
        id: u32,
        cached: bool,
        data: Vec<u8>,
    },
    Busy {
        id: u32,
    },
    Timeout {
        id: u32,
    },
    Error {
        id: u32,
        message: String,
    },
}

impl Reply {
    pub fn id(&self) -> u32 {
        match self {
            Reply::Pong { id }
            | Reply::Progress { id, .. }
            | Reply::Result { id, .. }
            | Reply::Busy { id }
            | Reply::Timeout { id }
            | Reply::Error { id, .. } => *id,
        }
    }

    /// Whether this is the last reply to its job (anything but progress).
    pub fn is_final(&self) -> bool {
        !matches!(self, Reply::Progress { .. })
    }

    pub fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, Vec<u8>) = match self {
            Reply::Pong { .. } => (b'O', vec![]),
            Reply::Progress { done, total, .. } => {
                (b'G', [done.to_be_bytes(), total.to_be_bytes()].concat())
            }
            Reply::Result { cached, data, .. } => (b'R', [&[*cached as u8][..], data].concat()),
            Reply::Busy { .. } => (b'B', vec![]),
            Reply::Timeout { .. } => (b'T', vec![]),
            Reply::Error { message, .. } => (b'E', message.as_bytes().to_vec()),
        };
        let mut out = vec![tag];
        out.extend_from_slice(&self.id().to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses a reply frame (the client's side); `None` for a malformed one.
    pub fn decode(frame: &[u8]) -> Option<Reply> {
        let (&tag, rest) = frame.split_first()?;
        let id = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        let body = &rest[4..];
        let u32_at = |at: usize| Some(u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?));
        Some(match tag {
            b'O' if body.is_empty() => Reply::Pong { id },
            b'G' if body.len() == 8 => Reply::Progress {
                id,
                done: u32_at(0)?,
                total: u32_at(4)?,
            },
            b'R' if !body.is_empty() => Reply::Result {
                id,
                cached: body[0] == 1,
                data: body[1..].to_vec(),
            },
            b'B' if body.is_empty() => Reply::Busy { id },
            b'T' if body.is_empty() => Reply::Timeout { id },
            b'E' => Reply::Error {
                id,
                message: String::from_utf8(body.to_vec()).ok()?,
            },
            _ => return None,
        })
    }
}
