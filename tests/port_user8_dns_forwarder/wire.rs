//! DNS messages, as much of them as a forwarder reads: the header, one question, and the
//! answers' TTLs. Hand-written; every length is checked, and names follow at most
//! `MAX_JUMPS` compression pointers, so no input panics or loops.

/// The header's length.
pub const HEADER: usize = 12;
/// The largest answer sent over UDP to a client that did not say (EDNS-less).
pub const UDP_LIMIT: usize = 512;
/// The flag bits used here.
pub const QR: u16 = 0x8000;
pub const TC: u16 = 0x0200;
pub const RD: u16 = 0x0100;
pub const RA: u16 = 0x0080;
/// Response codes.
pub const FORMERR: u16 = 1;
pub const SERVFAIL: u16 = 2;
pub const NXDOMAIN: u16 = 3;
pub const REFUSED: u16 = 5;
/// A and IN.
pub const TYPE_A: u16 = 1;
pub const CLASS_IN: u16 = 1;
/// Compression pointers followed in one name before it counts as a loop.
const MAX_JUMPS: usize = 16;

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than a header, or cut inside the question or an answer.
    Short,
    /// A label length with the reserved 0x40 or 0x80 bits, or a name over 255 bytes.
    BadLabel,
    /// Compression pointers that loop (or chain past `MAX_JUMPS`).
    Loop,
    /// Not exactly one question.
    NotOneQuestion,
    /// A response where a query was expected, or the other way round.
    WrongDirection,
}

/// A question: the cache's key. The name is lower-cased, its labels joined by dots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    pub fn a(name: &str) -> Question {
        Question {
            name: name.to_ascii_lowercase(),
            qtype: TYPE_A,
            qclass: CLASS_IN,
        }
    }
}

/// A parsed message: header fields and its one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub flags: u16,
    pub question: Question,
    /// Where the question section ends.
    pub question_end: usize,
}

fn u16_at(msg: &[u8], at: usize) -> Result<u16, Malformed> {
    match msg.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Malformed::Short),
    }
}

/// Reads the name at `pos`: the name, and where what follows it starts.
pub fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), Malformed> {
    let mut name = String::new();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(pos).ok_or(Malformed::Short)? as usize;
        match len & 0xC0 {
            0xC0 => {
                let target = (u16_at(msg, pos)? & 0x3FFF) as usize;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(Malformed::Loop);
                }
                pos = target;
            }
            0x00 if len == 0 => {
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(Malformed::Short)?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|&b| b.to_ascii_lowercase() as char));
                if name.len() > 253 {
                    return Err(Malformed::BadLabel);
                }
                pos += 1 + len;
            }
            _ => return Err(Malformed::BadLabel),
        }
    }
}

/// Parses a message's header and its one question; `response` says which direction is
/// expected.
pub fn parse(msg: &[u8], response: bool) -> Result<Message, Malformed> {
    if msg.len() < HEADER {
        return Err(Malformed::Short);
    }
    let (id, flags) = (u16_at(msg, 0)?, u16_at(msg, 2)?);
    if (flags & QR != 0) != response {
        return Err(Malformed::WrongDirection);
    }
    if u16_at(msg, 4)? != 1 {
        return Err(Malformed::NotOneQuestion);
    }
    let (name, pos) = read_name(msg, HEADER)?;
    let question = Question {
        name,
        qtype: u16_at(msg, pos)?,
        qclass: u16_at(msg, pos + 2)?,
    };
    Ok(Message {
        id,
        flags,
        question,
        question_end: pos + 4,
    })
}

/// The smallest TTL among a response's answers; `None` with no answers or a cut one.
pub fn min_ttl(msg: &[u8]) -> Option<u32> {
    let parsed = parse(msg, true).ok()?;
    let answers = u16_at(msg, 6).ok()?;
    let mut pos = parsed.question_end;
    let mut min = None::<u32>;
    for _ in 0..answers {
        let (_, at) = read_name(msg, pos).ok()?;
        let fixed = msg.get(at..at + 10)?;
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        pos = at + 10 + rdlen;
        msg.get(..pos)?;
        min = Some(min.map_or(ttl, |m| m.min(ttl)));
    }
    min
}

fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out
}

fn push_question(out: &mut Vec<u8>, q: &Question) {
    for label in q.name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
}

/// A query for `q`, recursion desired.
pub fn query(id: u16, q: &Question) -> Vec<u8> {
    let mut out = header(id, RD, [1, 0, 0, 0]);
    push_question(&mut out, q);
    out
}

/// A response to `q` with `rcode` and an A record per address, each name a pointer to the
/// question's.
pub fn response(id: u16, q: &Question, rcode: u16, ttl: u32, addrs: &[[u8; 4]]) -> Vec<u8> {
    let mut out = header(id, QR | RD | RA | rcode, [1, addrs.len() as u16, 0, 0]);
    push_question(&mut out, q);
    for a in addrs {
        out.extend_from_slice(&[0xC0, HEADER as u8]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(a);
    }
    out
}

/// An answer carrying only the question and `rcode` (SERVFAIL, REFUSED, ...).
pub fn error(query: &Message, rcode: u16) -> Vec<u8> {
    let mut out = header(query.id, QR | (query.flags & RD) | RA | rcode, [1, 0, 0, 0]);
    push_question(&mut out, &query.question);
    out
}

/// FORMERR for a message whose header was readable: the header alone, as the question may
/// be what is wrong. `None` for one too short to have an id.
pub fn formerr(msg: &[u8]) -> Option<Vec<u8>> {
    let id = u16_at(msg, 0).ok()?;
    let flags = u16_at(msg, 2).ok()?;
    (msg.len() >= HEADER).then(|| header(id, QR | (flags & (0x7800 | RD)) | FORMERR, [0; 4]))
}

/// `msg` with its id replaced.
pub fn with_id(msg: &[u8], id: u16) -> Vec<u8> {
    let mut out = msg.to_vec();
    out[..2].copy_from_slice(&id.to_be_bytes());
    out
}

/// A response cut to its header and question, TC set and the record counts zeroed: what a
/// UDP client gets for an answer past its limit, to ask again over TCP.
pub fn truncated(msg: &[u8], question_end: usize) -> Vec<u8> {
    let mut out = msg[..question_end].to_vec();
    let flags = u16::from_be_bytes([out[2], out[3]]) | TC;
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    out[6..12].fill(0);
    out
}
