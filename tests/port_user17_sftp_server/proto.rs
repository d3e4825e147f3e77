//! The wire format, SFTP v3 in spirit: every packet is a big-endian `u32` length (of what
//! follows), a `u8` type and a `u32` request id, then the type's fields (`u32`, `u64`, and
//! strings as a `u32` length and the bytes). Handles are 4-byte strings. Also the status
//! codes, the open flags, and the replies as the client decodes them.

/// Requests.
pub const OPEN: u8 = 3;
pub const CLOSE: u8 = 4;
pub const READ: u8 = 5;
pub const WRITE: u8 = 6;
pub const FSTAT: u8 = 8;
pub const OPENDIR: u8 = 11;
pub const READDIR: u8 = 12;
pub const REMOVE: u8 = 13;
pub const MKDIR: u8 = 14;
pub const RMDIR: u8 = 15;
pub const REALPATH: u8 = 16;
pub const STAT: u8 = 17;
pub const RENAME: u8 = 18;

/// Replies.
pub const STATUS: u8 = 101;
pub const HANDLE: u8 = 102;
pub const DATA: u8 = 103;
pub const NAME: u8 = 104;
pub const ATTRS: u8 = 105;

/// Status codes.
pub const OK: u32 = 0;
pub const EOF: u32 = 1;
pub const NO_SUCH_FILE: u32 = 2;
pub const PERMISSION_DENIED: u32 = 3;
pub const FAILURE: u32 = 4;
pub const BAD_MESSAGE: u32 = 5;
/// Client side only: the connection went away before the reply came.
pub const CONNECTION_LOST: u32 = 7;
pub const OP_UNSUPPORTED: u32 = 8;

/// Open flags.
pub const F_READ: u32 = 0x01;
pub const F_WRITE: u32 = 0x02;
pub const F_CREAT: u32 = 0x08;
pub const F_TRUNC: u32 = 0x10;
pub const F_EXCL: u32 = 0x20;

/// A status reply's code and message; also the error type of both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u32,
    pub msg: String,
}

impl Status {
    pub fn new(code: u32, msg: impl Into<String>) -> Status {
        Status {
            code,
            msg: msg.into(),
        }
    }

    /// An io error as the status a client understands, its message kept.
    pub fn from_io(e: &std::io::Error) -> Status {
        use std::io::ErrorKind::*;
        let code = match e.kind() {
            NotFound => NO_SUCH_FILE,
            PermissionDenied => PERMISSION_DENIED,
            _ => FAILURE,
        };
        Status::new(code, e.to_string())
    }
}

/// What a file or directory entry is, as far as a client cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub size: u64,
    /// The permission bits (`st_mode & 0o7777`).
    pub perm: u32,
    pub is_dir: bool,
}

impl Attrs {
    pub fn from_meta(m: &std::fs::Metadata) -> Attrs {
        use std::os::unix::fs::PermissionsExt;
        Attrs {
            size: m.len(),
            perm: m.permissions().mode() & 0o7777,
            is_dir: m.is_dir(),
        }
    }
}

/// A packet being built: `Packet::new(READ, id).handle(h).u64(off).u32(len).finish()`.
pub struct Packet(Vec<u8>);

impl Packet {
    pub fn new(ty: u8, id: u32) -> Packet {
        let mut v = vec![0; 4];
        v.push(ty);
        v.extend_from_slice(&id.to_be_bytes());
        Packet(v)
    }

    pub fn u8(mut self, x: u8) -> Packet {
        self.0.push(x);
        self
    }

    pub fn u32(mut self, x: u32) -> Packet {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }

    pub fn u64(mut self, x: u64) -> Packet {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }

    pub fn bytes(self, b: &[u8]) -> Packet {
        let mut p = self.u32(b.len() as u32);
        p.0.extend_from_slice(b);
        p
    }

    pub fn handle(self, h: u32) -> Packet {
        self.bytes(&h.to_be_bytes())
    }

    pub fn attrs(self, a: &Attrs) -> Packet {
        self.u64(a.size).u32(a.perm).u8(a.is_dir as u8)
    }

    /// The framed bytes, the length filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_be_bytes());
        self.0
    }
}

/// Reads a packet's fields in order; a field cut short is a `BAD_MESSAGE`.
pub struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    pub fn new(body: &'a [u8]) -> Fields<'a> {
        Fields(body)
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Status> {
        if self.0.len() < n {
            let msg = format!(
                "truncated packet: {what} needs {n} bytes, {} left",
                self.0.len()
            );
            return Err(Status::new(BAD_MESSAGE, msg));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, Status> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u32(&mut self, what: &str) -> Result<u32, Status> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().unwrap()))
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, Status> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().unwrap()))
    }

    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], Status> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    pub fn string(&mut self, what: &str) -> Result<String, Status> {
        let b = self.bytes(what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| Status::new(BAD_MESSAGE, format!("{what} is not UTF-8")))
    }

    /// A handle: a 4-byte string.
    pub fn handle(&mut self) -> Result<u32, Status> {
        let b = self.bytes("handle")?;
        let b: [u8; 4] = b
            .try_into()
            .map_err(|_| Status::new(BAD_MESSAGE, format!("a handle of {} bytes", b.len())))?;
        Ok(u32::from_be_bytes(b))
    }

    pub fn attrs(&mut self) -> Result<Attrs, Status> {
        Ok(Attrs {
            size: self.u64("size")?,
            perm: self.u32("permissions")?,
            is_dir: self.u8("kind")? != 0,
        })
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), Status> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(Status::new(
                BAD_MESSAGE,
                format!("{n} bytes after the last field"),
            )),
        }
    }
}

/// A reply as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(Status),
    Handle(u32),
    Data(Vec<u8>),
    Name(Vec<(String, Attrs)>),
    Attrs(Attrs),
}

/// Decodes a reply's fields (after its type and id).
pub fn decode_reply(ty: u8, body: &[u8]) -> Result<Reply, Status> {
    let mut f = Fields::new(body);
    let reply = match ty {
        STATUS => {
            let code = f.u32("code")?;
            Reply::Status(Status::new(code, f.string("message")?))
        }
        HANDLE => Reply::Handle(f.handle()?),
        DATA => Reply::Data(f.bytes("data")?.to_vec()),
        NAME => {
            let n = f.u32("count")?;
            let mut names = Vec::new();
            for _ in 0..n {
                names.push((f.string("name")?, f.attrs()?));
            }
            Reply::Name(names)
        }
        ATTRS => Reply::Attrs(f.attrs()?),
        _ => return Err(Status::new(BAD_MESSAGE, format!("reply type {ty}"))),
    };
    f.end()?;
    Ok(reply)
}

/// A reply packet for request `id`.
pub fn encode_reply(id: u32, reply: &Result<Reply, Status>) -> Vec<u8> {
    match reply {
        Ok(Reply::Status(s)) | Err(s) => {
            Packet::new(STATUS, id).u32(s.code).bytes(s.msg.as_bytes())
        }
        Ok(Reply::Handle(h)) => Packet::new(HANDLE, id).handle(*h),
        Ok(Reply::Data(d)) => Packet::new(DATA, id).bytes(d),
        Ok(Reply::Attrs(a)) => Packet::new(ATTRS, id).attrs(a),
        Ok(Reply::Name(names)) => names.iter().fold(
            Packet::new(NAME, id).u32(names.len() as u32),
            |p, (n, a)| p.bytes(n.as_bytes()).attrs(a),
        ),
    }
    .finish()
}
