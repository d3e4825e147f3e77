//! The journal file format, all integers little-endian:
//!
//! ```text
//! header  "OVJ1" | file index u32 | first seq u64                                (16 bytes)
//! entry   'E' | body len u32 | seq u64 | ms u64 | pid i32 | uid u32 | gid u32 | prio u8
//!             | message ... | crc32 u32 (of everything before it in the record)
//! footer  'F' | last seq u64 | entries u64 | crc32 u32                           (21 bytes)
//! ```
//!
//! A follower gets the entries' records as they are in the file, and a cut-off marker:
//! `'C' | seq u64` (the first entry it will not get).

pub const MAGIC: &[u8; 4] = b"OVJ1";
pub const HEADER: usize = 16;
/// seq, ms, pid, uid, gid, prio.
const FIXED: usize = 8 + 8 + 4 + 4 + 4 + 1;
pub const FOOTER: usize = 21;
pub const MARKER: usize = 9;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// Milliseconds since the daemon's clock started (the runtime's clock, so paused in tests).
    pub ms: u64,
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    pub prio: u8,
    pub msg: Vec<u8>,
}

/// CRC-32 (IEEE), bit by bit: the journal's records are small.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn header(index: u32, first_seq: u64) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(&index.to_le_bytes());
    h.extend_from_slice(&first_seq.to_le_bytes());
    h
}

/// The file index and first seq of a header, `None` if it is not one.
pub fn parse_header(b: &[u8]) -> Option<(u32, u64)> {
    if b.len() < HEADER || &b[..4] != MAGIC {
        return None;
    }
    Some((u32le(&b[4..]), u64le(&b[8..])))
}

/// Appends `e`'s record to `out`.
pub fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    let start = out.len();
    out.push(b'E');
    out.extend_from_slice(&((FIXED + e.msg.len()) as u32).to_le_bytes());
    out.extend_from_slice(&e.seq.to_le_bytes());
    out.extend_from_slice(&e.ms.to_le_bytes());
    out.extend_from_slice(&e.pid.to_le_bytes());
    out.extend_from_slice(&e.uid.to_le_bytes());
    out.extend_from_slice(&e.gid.to_le_bytes());
    out.push(e.prio);
    out.extend_from_slice(&e.msg);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

pub fn footer(last_seq: u64, entries: u64) -> Vec<u8> {
    let mut f = vec![b'F'];
    f.extend_from_slice(&last_seq.to_le_bytes());
    f.extend_from_slice(&entries.to_le_bytes());
    let crc = crc32(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

pub fn marker(next_seq: u64) -> Vec<u8> {
    let mut m = vec![b'C'];
    m.extend_from_slice(&next_seq.to_le_bytes());
    m
}

/// One record at the start of `b`.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    Entry(Entry, usize),
    /// A sealed file's footer: last seq, entries.
    Footer(u64, u64),
    /// A follower's cut-off marker: the first seq not sent.
    Cut(u64),
    /// Too few bytes for the record its start announces (a torn write, or more to read).
    Short,
    /// A bad tag, length or checksum.
    Bad,
}

pub fn decode(b: &[u8]) -> Record {
    match b.first() {
        None => Record::Short,
        Some(b'E') => {
            if b.len() < 5 {
                return Record::Short;
            }
            let len = u32le(&b[1..]) as usize;
            if !(FIXED..=1 << 20).contains(&len) {
                return Record::Bad;
            }
            let total = 5 + len + 4;
            if b.len() < total {
                return Record::Short;
            }
            if crc32(&b[..5 + len]) != u32le(&b[5 + len..]) {
                return Record::Bad;
            }
            let body = &b[5..5 + len];
            let e = Entry {
                seq: u64le(body),
                ms: u64le(&body[8..]),
                pid: u32le(&body[16..]) as i32,
                uid: u32le(&body[20..]),
                gid: u32le(&body[24..]),
                prio: body[28],
                msg: body[FIXED..].to_vec(),
            };
            Record::Entry(e, total)
        }
        Some(b'F') => {
            if b.len() < FOOTER {
                return Record::Short;
            }
            if crc32(&b[..17]) != u32le(&b[17..]) {
                return Record::Bad;
            }
            Record::Footer(u64le(&b[1..]), u64le(&b[9..]))
        }
        Some(b'C') if b.len() < MARKER => Record::Short,
        Some(b'C') => Record::Cut(u64le(&b[1..])),
        Some(_) => Record::Bad,
    }
}

/// What a scan of a whole file found: its header, its good entries with their offsets, the
/// offset where they end, and its footer if sealed.
#[derive(Debug, Default)]
pub struct Scan {
    pub index: u32,
    pub first_seq: u64,
    pub entries: Vec<(u64, Entry)>,
    pub good_end: u64,
    pub footer: Option<(u64, u64)>,
    /// Bytes after `good_end` that are no record (a torn tail).
    pub torn: bool,
}

pub fn scan(bytes: &[u8]) -> Option<Scan> {
    let (index, first_seq) = parse_header(bytes)?;
    let mut s = Scan {
        index,
        first_seq,
        good_end: HEADER as u64,
        ..Scan::default()
    };
    let mut at = HEADER;
    while at < bytes.len() {
        match decode(&bytes[at..]) {
            Record::Entry(e, n) => {
                s.entries.push((at as u64, e));
                at += n;
                s.good_end = at as u64;
            }
            Record::Footer(last, n) => {
                s.footer = Some((last, n));
                return Some(s);
            }
            _ => {
                s.torn = true;
                return Some(s);
            }
        }
    }
    Some(s)
}

fn u32le(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().unwrap())
}

fn u64le(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap())
}
