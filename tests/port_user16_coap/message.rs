//! The messages: a CoAP message's fields (RFC 7252 section 3), the codes and option
//! numbers the service uses, the Block2 option's value (RFC 7959), and the small builders
//! the client and the server make their messages with.

/// The message type, the two bits after the version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Con = 0,
    Non = 1,
    Ack = 2,
    Rst = 3,
}

impl Type {
    pub fn from_bits(bits: u8) -> Type {
        match bits & 3 {
            0 => Type::Con,
            1 => Type::Non,
            2 => Type::Ack,
            _ => Type::Rst,
        }
    }
}

/// Codes, `class.detail` packed as `class << 5 | detail`.
pub mod code {
    pub const EMPTY: u8 = 0x00;
    pub const GET: u8 = 0x01;
    pub const POST: u8 = 0x02;
    /// 2.04
    pub const CHANGED: u8 = 0x44;
    /// 2.05
    pub const CONTENT: u8 = 0x45;
    /// 4.00
    pub const BAD_REQUEST: u8 = 0x80;
    /// 4.02
    pub const BAD_OPTION: u8 = 0x82;
    /// 4.04
    pub const NOT_FOUND: u8 = 0x84;

    /// `2.05` for `0x45`.
    pub fn dotted(code: u8) -> String {
        format!("{}.{:02}", code >> 5, code & 0x1f)
    }

    pub fn is_request(code: u8) -> bool {
        (1..32).contains(&code)
    }
}

/// Option numbers.
pub mod opt {
    pub const OBSERVE: u16 = 6;
    pub const URI_PATH: u16 = 11;
    pub const CONTENT_FORMAT: u16 = 12;
    pub const URI_QUERY: u16 = 15;
    pub const BLOCK2: u16 = 23;
    pub const SIZE2: u16 = 28;

    /// Odd numbers are critical: a request with one the server does not know is refused
    /// (4.02), an even one is ignored.
    pub fn is_critical(number: u16) -> bool {
        number & 1 == 1
    }

    pub fn known(number: u16) -> bool {
        matches!(
            number,
            OBSERVE | URI_PATH | CONTENT_FORMAT | URI_QUERY | BLOCK2 | SIZE2
        )
    }
}

/// One CoAP message. `options` are kept in the order given; the encoder sorts them by
/// number (stably, so a repeated option keeps its order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub mtype: Type,
    pub code: u8,
    pub mid: u16,
    pub token: Vec<u8>,
    pub options: Vec<(u16, Vec<u8>)>,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn new(mtype: Type, code: u8, mid: u16, token: &[u8]) -> Message {
        Message {
            mtype,
            code,
            mid,
            token: token.to_vec(),
            options: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// An empty ACK or RST for message `mid` (no token, no options).
    pub fn empty(mtype: Type, mid: u16) -> Message {
        Message::new(mtype, code::EMPTY, mid, &[])
    }

    /// A request for `path` (`a/b` becomes two Uri-Path options).
    pub fn request(mtype: Type, code: u8, path: &str, token: &[u8]) -> Message {
        let mut m = Message::new(mtype, code, 0, token);
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            m.options.push((opt::URI_PATH, seg.as_bytes().to_vec()));
        }
        m
    }

    pub fn with_option(mut self, number: u16, value: Vec<u8>) -> Message {
        self.options.push((number, value));
        self
    }

    pub fn with_uint(self, number: u16, value: u32) -> Message {
        self.with_option(number, uint_bytes(value))
    }

    pub fn with_payload(mut self, payload: &[u8]) -> Message {
        self.payload = payload.to_vec();
        self
    }

    pub fn option(&self, number: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, v)| &v[..])
    }

    pub fn uint(&self, number: u16) -> Option<u32> {
        self.option(number).map(uint_value)
    }

    pub fn path(&self) -> String {
        let segs: Vec<String> = self
            .options
            .iter()
            .filter(|(n, _)| *n == opt::URI_PATH)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        segs.join("/")
    }

    pub fn block2(&self) -> Option<Block> {
        self.uint(opt::BLOCK2).map(Block::from_uint)
    }
}

/// A uint option's value: big-endian, without leading zero bytes (0 is no bytes).
pub fn uint_bytes(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    bytes[skip..].to_vec()
}

pub fn uint_value(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
}

/// A Block2 value: the block number, whether more follow, and the size exponent
/// (`16 << szx` bytes; 6 is 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub num: u32,
    pub more: bool,
    pub szx: u8,
}

impl Block {
    pub fn size(&self) -> usize {
        16 << self.szx
    }

    pub fn to_uint(self) -> u32 {
        (self.num << 4) | (u32::from(self.more) << 3) | u32::from(self.szx & 7)
    }

    pub fn from_uint(v: u32) -> Block {
        Block {
            num: v >> 4,
            more: v & 8 != 0,
            szx: (v & 7) as u8,
        }
    }
}
