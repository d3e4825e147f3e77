//! The RFC 1035 wire format: the header, questions and resource records (A, NS, CNAME, SOA,
//! MX, TXT, AAAA, and EDNS0's OPT pseudo-record), names compressed on encode and
//! compression pointers followed on decode, with loop and length protection.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const HEADER: usize = 12;
/// The largest UDP answer without EDNS (RFC 1035 4.2.1).
pub const CLASSIC_UDP: usize = 512;
/// Pointers a name may follow before it is taken for a loop.
const MAX_JUMPS: usize = 16;
/// A name's longest wire form (RFC 1035 3.1).
const MAX_NAME: usize = 255;

pub mod ty {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const OPT: u16 = 41;
}

pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const NOTIMP: u8 = 4;
    pub const REFUSED: u8 = 5;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Soa {
    pub mname: String,
    pub rname: String,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    pub minimum: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ns(String),
    Mx(u16, String),
    Txt(Vec<Vec<u8>>),
    Soa(Soa),
    Other(u16, Vec<u8>),
}

impl RData {
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => ty::A,
            RData::Aaaa(_) => ty::AAAA,
            RData::Cname(_) => ty::CNAME,
            RData::Ns(_) => ty::NS,
            RData::Mx(..) => ty::MX,
            RData::Txt(_) => ty::TXT,
            RData::Soa(_) => ty::SOA,
            RData::Other(t, _) => *t,
        }
    }
}

/// A name is its labels joined by dots, without the root's trailing dot ("" is the root);
/// names compare without regard to ASCII case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub rcode: u8,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additional: Vec<Record>,
    /// EDNS0: the UDP payload size an OPT record advertised (or is to advertise).
    pub edns: Option<u16>,
}

/// Why a message did not decode; `id` and `qr` are there when the header's first four
/// bytes were, so a server can answer FORMERR to a query (and stay silent to a response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub id: Option<u16>,
    pub qr: bool,
    pub what: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed DNS message: {}", self.what)
    }
}

impl std::error::Error for Malformed {}

fn flags(m: &Message) -> u16 {
    (m.qr as u16) << 15
        | ((m.opcode as u16) & 0xf) << 11
        | (m.aa as u16) << 10
        | (m.tc as u16) << 9
        | (m.rd as u16) << 8
        | (m.rcode as u16 & 0xf)
}

struct Writer {
    buf: Vec<u8>,
    /// Lowercased name suffixes already written, and where.
    names: HashMap<String, u16>,
}

impl Writer {
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes `name`, ending in a pointer to the longest suffix already written.
    fn name(&mut self, name: &str) {
        let labels: Vec<&str> = name.split('.').filter(|l| !l.is_empty()).collect();
        for i in 0..labels.len() {
            let suffix = labels[i..].join(".").to_ascii_lowercase();
            if let Some(&at) = self.names.get(&suffix) {
                self.u16(0xc000 | at);
                return;
            }
            if self.buf.len() < 0x3fff {
                self.names.insert(suffix, self.buf.len() as u16);
            }
            self.buf.push(labels[i].len() as u8);
            self.buf.extend_from_slice(labels[i].as_bytes());
        }
        self.buf.push(0);
    }

    fn record(&mut self, r: &Record) {
        self.name(&r.name);
        self.u16(r.data.rtype());
        self.u16(1);
        self.u32(r.ttl);
        let len_at = self.buf.len();
        self.u16(0);
        match &r.data {
            RData::A(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Cname(n) | RData::Ns(n) => self.name(n),
            RData::Mx(pref, n) => {
                self.u16(*pref);
                self.name(n);
            }
            RData::Txt(strings) => {
                for s in strings {
                    self.buf.push(s.len() as u8);
                    self.buf.extend_from_slice(s);
                }
            }
            RData::Soa(s) => {
                self.name(&s.mname);
                self.name(&s.rname);
                for v in [s.serial, s.refresh, s.retry, s.expire, s.minimum] {
                    self.u32(v);
                }
            }
            RData::Other(_, bytes) => self.buf.extend_from_slice(bytes),
        }
        let len = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

/// The message in wire form, names compressed.
pub fn encode(m: &Message) -> Vec<u8> {
    let mut w = Writer {
        buf: Vec::with_capacity(512),
        names: HashMap::new(),
    };
    w.u16(m.id);
    w.u16(flags(m));
    let ar = m.additional.len() + m.edns.is_some() as usize;
    for n in [m.questions.len(), m.answers.len(), m.authority.len(), ar] {
        w.u16(n as u16);
    }
    for q in &m.questions {
        w.name(&q.name);
        w.u16(q.qtype);
        w.u16(q.qclass);
    }
    for r in m.answers.iter().chain(&m.authority).chain(&m.additional) {
        w.record(r);
    }
    if let Some(size) = m.edns {
        // OPT: root name, the payload size as its class, no extended rcode, no options.
        w.buf.push(0);
        w.u16(ty::OPT);
        w.u16(size);
        w.u32(0);
        w.u16(0);
    }
    w.buf
}

/// The answer in at most `limit` bytes: whole, or (RFC 2181 9) its question and OPT alone
/// with TC set, every record left for the client to fetch over TCP.
pub fn encode_within(m: &Message, limit: usize) -> Vec<u8> {
    let full = encode(m);
    if full.len() <= limit {
        return full;
    }
    encode(&truncated(m))
}

/// `m` with TC set and no records: the answer too big for UDP, and the rate limiter's slip.
pub fn truncated(m: &Message) -> Message {
    Message {
        tc: true,
        answers: Vec::new(),
        authority: Vec::new(),
        additional: Vec::new(),
        ..m.clone()
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
    id: Option<u16>,
    qr: bool,
}

impl Reader<'_> {
    fn fail(&self, what: &'static str) -> Malformed {
        Malformed {
            id: self.id,
            qr: self.qr,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        if self.buf.len() - self.at < n {
            return Err(self.fail("message cut short"));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A name at the cursor, following pointers; the cursor ends after its first pointer.
    fn name(&mut self) -> Result<String, Malformed> {
        let mut labels: Vec<String> = Vec::new();
        let mut pos = self.at;
        let mut resume = None;
        let (mut jumps, mut wire_len) = (0, 1);
        loop {
            let len = *self
                .buf
                .get(pos)
                .ok_or_else(|| self.fail("name cut short"))? as usize;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    pos += 1;
                    break;
                }
                0x00 => {
                    let label = self
                        .buf
                        .get(pos + 1..pos + 1 + len)
                        .ok_or_else(|| self.fail("label cut short"))?;
                    wire_len += 1 + len;
                    if wire_len > MAX_NAME {
                        return Err(self.fail("name longer than 255 bytes"));
                    }
                    labels.push(String::from_utf8_lossy(label).into_owned());
                    pos += 1 + len;
                }
                0xc0 => {
                    let lo = *self
                        .buf
                        .get(pos + 1)
                        .ok_or_else(|| self.fail("pointer cut short"))?;
                    jumps += 1;
                    if jumps > MAX_JUMPS {
                        return Err(self.fail("compression pointer loop"));
                    }
                    resume.get_or_insert(pos + 2);
                    pos = ((len & 0x3f) << 8) | lo as usize;
                }
                _ => return Err(self.fail("reserved label type")),
            }
        }
        self.at = resume.unwrap_or(pos);
        Ok(labels.join("."))
    }

    fn record(&mut self) -> Result<(Record, u16), Malformed> {
        let name = self.name()?;
        let (rtype, class, ttl, len) = (self.u16()?, self.u16()?, self.u32()?, self.u16()?);
        let end = self.at + len as usize;
        if end > self.buf.len() {
            return Err(self.fail("record data cut short"));
        }
        let data = match rtype {
            ty::A if len == 4 => RData::A(<[u8; 4]>::try_from(self.take(4)?).unwrap().into()),
            ty::AAAA if len == 16 => {
                RData::Aaaa(<[u8; 16]>::try_from(self.take(16)?).unwrap().into())
            }
            ty::A | ty::AAAA => return Err(self.fail("address of the wrong length")),
            ty::CNAME => RData::Cname(self.name()?),
            ty::NS => RData::Ns(self.name()?),
            ty::MX => RData::Mx(self.u16()?, self.name()?),
            ty::SOA => RData::Soa(Soa {
                mname: self.name()?,
                rname: self.name()?,
                serial: self.u32()?,
                refresh: self.u32()?,
                retry: self.u32()?,
                expire: self.u32()?,
                minimum: self.u32()?,
            }),
            ty::TXT => {
                let mut strings = Vec::new();
                while self.at < end {
                    let n = self.u8()? as usize;
                    strings.push(self.take(n)?.to_vec());
                }
                RData::Txt(strings)
            }
            _ => RData::Other(rtype, self.take(len as usize)?.to_vec()),
        };
        if self.at != end {
            return Err(self.fail("record data of the wrong length"));
        }
        Ok((Record { name, ttl, data }, class))
    }
}

/// A whole message from one datagram or one TCP frame.
pub fn decode(buf: &[u8]) -> Result<Message, Malformed> {
    let mut r = Reader {
        buf,
        at: 0,
        id: None,
        qr: false,
    };
    if buf.len() >= 4 {
        r.id = Some(u16::from_be_bytes([buf[0], buf[1]]));
        r.qr = buf[2] & 0x80 != 0;
    }
    if buf.len() < HEADER {
        return Err(r.fail("header cut short"));
    }
    let (id, fl) = (r.u16()?, r.u16()?);
    let counts = [r.u16()?, r.u16()?, r.u16()?, r.u16()?];
    let mut m = Message {
        id,
        qr: fl & 0x8000 != 0,
        opcode: ((fl >> 11) & 0xf) as u8,
        aa: fl & 0x0400 != 0,
        tc: fl & 0x0200 != 0,
        rd: fl & 0x0100 != 0,
        rcode: (fl & 0xf) as u8,
        ..Message::default()
    };
    for _ in 0..counts[0] {
        let name = r.name()?;
        let (qtype, qclass) = (r.u16()?, r.u16()?);
        m.questions.push(Question {
            name,
            qtype,
            qclass,
        });
    }
    for (section, &count) in counts.iter().enumerate().skip(1) {
        for _ in 0..count {
            let (rec, class) = r.record()?;
            match section {
                1 => m.answers.push(rec),
                2 => m.authority.push(rec),
                _ if rec.data.rtype() == ty::OPT => {
                    if m.edns.is_some() {
                        return Err(r.fail("two OPT records"));
                    }
                    m.edns = Some(class);
                }
                _ => m.additional.push(rec),
            }
        }
    }
    if r.at != buf.len() {
        return Err(r.fail("bytes after the last record"));
    }
    Ok(m)
}
