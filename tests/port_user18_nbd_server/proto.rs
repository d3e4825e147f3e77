//! The NBD wire format as nbd-server and nbdkit speak it: the "newstyle fixed" handshake
//! (greeting, client flags, options and their replies) and the transmission phase's
//! fixed-size request header (28 bytes) and simple reply header (16 bytes), all
//! big-endian. Constants are named as in the protocol document (`NBD_` dropped).

/// The greeting's first word, "NBDMAGIC".
pub const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
/// "IHAVEOPT": the greeting's second word, and the start of every option.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// The start of every option reply.
pub const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

/// Handshake flags (server to client).
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
pub const FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flags.
pub const FLAG_C_FIXED_NEWSTYLE: u32 = 1 << 0;
pub const FLAG_C_NO_ZEROES: u32 = 1 << 1;

/// Options.
pub const OPT_EXPORT_NAME: u32 = 1;
pub const OPT_ABORT: u32 = 2;
pub const OPT_LIST: u32 = 3;
pub const OPT_INFO: u32 = 6;
pub const OPT_GO: u32 = 7;
pub const OPT_STRUCTURED_REPLY: u32 = 8;

/// Option reply types; errors have the top bit set.
pub const REP_ACK: u32 = 1;
pub const REP_SERVER: u32 = 2;
pub const REP_INFO: u32 = 3;
pub const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
pub const REP_ERR_INVALID: u32 = (1 << 31) + 3;
pub const REP_ERR_PLATFORM: u32 = (1 << 31) + 4;
pub const REP_ERR_UNKNOWN: u32 = (1 << 31) + 6;

/// Information types in a REP_INFO reply (and asked for in GO and INFO).
pub const INFO_EXPORT: u16 = 0;
pub const INFO_NAME: u16 = 1;
pub const INFO_BLOCK_SIZE: u16 = 3;

/// Transmission flags.
pub const TF_HAS_FLAGS: u16 = 1 << 0;
pub const TF_READ_ONLY: u16 = 1 << 1;
pub const TF_SEND_FLUSH: u16 = 1 << 2;
pub const TF_SEND_FUA: u16 = 1 << 3;
pub const TF_SEND_TRIM: u16 = 1 << 5;
pub const TF_SEND_WRITE_ZEROES: u16 = 1 << 6;
pub const TF_CAN_MULTI_CONN: u16 = 1 << 8;

/// Commands.
pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISC: u16 = 2;
pub const CMD_FLUSH: u16 = 3;
pub const CMD_TRIM: u16 = 4;
pub const CMD_WRITE_ZEROES: u16 = 6;

/// Command flags.
pub const CMD_FLAG_FUA: u16 = 1 << 0;
pub const CMD_FLAG_NO_HOLE: u16 = 1 << 1;

/// Error values in replies (the protocol's own numbers, equal to Linux's errnos).
pub const EPERM: u32 = 1;
pub const EIO: u32 = 5;
pub const EINVAL: u32 = 22;
pub const ENOSPC: u32 = 28;

pub const REQUEST_LEN: usize = 28;
pub const REPLY_LEN: usize = 16;
pub const OPTION_HEADER_LEN: usize = 16;
pub const OPTION_REPLY_HEADER_LEN: usize = 20;

fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes(b[..2].try_into().unwrap())
}
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}
fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().unwrap())
}

/// A transmission-phase request header; a WRITE's `len` payload bytes follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub flags: u16,
    pub ty: u16,
    /// The client's cookie, echoed in the reply.
    pub handle: u64,
    pub offset: u64,
    pub len: u32,
}

impl Request {
    /// The header, or the magic it had instead of REQUEST_MAGIC.
    pub fn parse(b: &[u8; REQUEST_LEN]) -> Result<Request, u32> {
        let magic = be_u32(b);
        if magic != REQUEST_MAGIC {
            return Err(magic);
        }
        Ok(Request {
            flags: be_u16(&b[4..]),
            ty: be_u16(&b[6..]),
            handle: be_u64(&b[8..]),
            offset: be_u64(&b[16..]),
            len: be_u32(&b[24..]),
        })
    }

    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let mut b = [0u8; REQUEST_LEN];
        b[..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
        b[4..6].copy_from_slice(&self.flags.to_be_bytes());
        b[6..8].copy_from_slice(&self.ty.to_be_bytes());
        b[8..16].copy_from_slice(&self.handle.to_be_bytes());
        b[16..24].copy_from_slice(&self.offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.len.to_be_bytes());
        b
    }
}

/// A simple reply header: its error (0 for success) and the request's handle; a
/// successful READ's data follows it.
pub fn encode_reply(error: u32, handle: u64) -> [u8; REPLY_LEN] {
    let mut b = [0u8; REPLY_LEN];
    b[..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b[4..8].copy_from_slice(&error.to_be_bytes());
    b[8..16].copy_from_slice(&handle.to_be_bytes());
    b
}

/// `(error, handle)` of a simple reply header, or its wrong magic.
pub fn parse_reply(b: &[u8; REPLY_LEN]) -> Result<(u32, u64), u32> {
    match be_u32(b) {
        SIMPLE_REPLY_MAGIC => Ok((be_u32(&b[4..]), be_u64(&b[8..]))),
        magic => Err(magic),
    }
}

/// An option's header: `(magic, option, data length)`.
pub fn parse_option(b: &[u8; OPTION_HEADER_LEN]) -> (u64, u32, u32) {
    (be_u64(b), be_u32(&b[8..]), be_u32(&b[12..]))
}

pub fn encode_option(opt: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(OPTION_HEADER_LEN + data.len());
    b.extend_from_slice(&IHAVEOPT.to_be_bytes());
    b.extend_from_slice(&opt.to_be_bytes());
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b
}

/// An option reply, header and data.
pub fn encode_option_reply(opt: u32, ty: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(OPTION_REPLY_HEADER_LEN + data.len());
    b.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&opt.to_be_bytes());
    b.extend_from_slice(&ty.to_be_bytes());
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b
}

/// An option reply's header: `(magic, option, reply type, data length)`.
pub fn parse_option_reply(b: &[u8; OPTION_REPLY_HEADER_LEN]) -> (u64, u32, u32, u32) {
    (
        be_u64(b),
        be_u32(&b[8..]),
        be_u32(&b[12..]),
        be_u32(&b[16..]),
    )
}

/// The data of a GO or INFO option: the export's name and the information asked for.
/// `Err` says what is wrong with it.
pub fn parse_go(data: &[u8]) -> Result<(String, Vec<u16>), String> {
    if data.len() < 6 {
        return Err(format!("GO data of {} bytes is too short", data.len()));
    }
    let name_len = be_u32(data) as usize;
    let Some(rest) = data.get(4..).filter(|r| r.len() >= name_len + 2) else {
        return Err(format!("name length {name_len} runs past the option"));
    };
    let name = String::from_utf8_lossy(&rest[..name_len]).into_owned();
    let rest = &rest[name_len..];
    let n = be_u16(rest) as usize;
    let infos = &rest[2..];
    if infos.len() != 2 * n {
        return Err(format!(
            "{n} information requests need {} bytes, not {}",
            2 * n,
            infos.len()
        ));
    }
    Ok((name, infos.chunks(2).map(be_u16).collect()))
}

pub fn encode_go(name: &str, infos: &[u16]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(name.len() as u32).to_be_bytes());
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(&(infos.len() as u16).to_be_bytes());
    for i in infos {
        b.extend_from_slice(&i.to_be_bytes());
    }
    b
}
