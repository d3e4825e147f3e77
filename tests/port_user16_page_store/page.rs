//! The on-disk page: 4 KiB, its CRC32 and its own number in a 16-byte head, then a body;
//! the header page (page 0) with the store's magic, version, page count, free-list head,
//! index root and last transaction; CRC32 and FNV-1a written out by hand.

use std::io;

/// Every page is this big, in the data file and in the log.
pub const PAGE: usize = 4096;
/// The page head: CRC32 (of the rest of the page), page number, kind, reserved.
pub const HEAD: usize = 16;
/// Room for a page's body.
pub const BODY: usize = PAGE - HEAD;

pub const MAGIC: &[u8; 8] = b"OVPGSTOR";
pub const VERSION: u32 = 1;

/// What a page holds (byte 8 of its head).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Header = 1,
    Directory = 2,
    Bucket = 3,
    Free = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Header,
            2 => Kind::Directory,
            3 => Kind::Bucket,
            4 => Kind::Free,
            _ => return None,
        })
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's), from a table built at compile time.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// FNV-1a, 32 bits: the index's hash of a key.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h = 0x811C_9DC5u32;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// An `InvalidData` error: the file is not what the store wrote.
pub fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One page's bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Page(Box<[u8; PAGE]>);

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Page({}, {:?})", self.id(), self.kind())
    }
}

impl Page {
    /// A zeroed page numbered `id`, of `kind`.
    pub fn new(id: u32, kind: Kind) -> Page {
        let mut page = Page(Box::new([0u8; PAGE]));
        page.0[4..8].copy_from_slice(&id.to_le_bytes());
        page.0[8] = kind as u8;
        page
    }

    /// Takes `bytes` (exactly [`PAGE`] of them) as they came from a file, unchecked.
    pub fn from_bytes(bytes: &[u8]) -> Page {
        let mut page = Page(Box::new([0u8; PAGE]));
        page.0.copy_from_slice(bytes);
        page
    }

    pub fn bytes(&self) -> &[u8; PAGE] {
        &self.0
    }

    pub fn id(&self) -> u32 {
        u32::from_le_bytes(self.0[4..8].try_into().unwrap())
    }

    pub fn kind(&self) -> Option<Kind> {
        Kind::from_byte(self.0[8])
    }

    /// Turns the page into one of another kind, its body zeroed.
    pub fn reset(&mut self, kind: Kind) {
        self.0[8] = kind as u8;
        self.0[HEAD..].fill(0);
    }

    pub fn body(&self) -> &[u8] {
        &self.0[HEAD..]
    }

    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.0[HEAD..]
    }

    pub fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.body()[at..at + 2].try_into().unwrap())
    }

    pub fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.body()[at..at + 4].try_into().unwrap())
    }

    pub fn u64_at(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.body()[at..at + 8].try_into().unwrap())
    }

    pub fn set_u16(&mut self, at: usize, v: u16) {
        self.body_mut()[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    pub fn set_u32(&mut self, at: usize, v: u32) {
        self.body_mut()[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub fn set_u64(&mut self, at: usize, v: u64) {
        self.body_mut()[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Writes the checksum into the head: the page is ready for a file.
    pub fn seal(&mut self) {
        let crc = crc32(&self.0[4..]);
        self.0[..4].copy_from_slice(&crc.to_le_bytes());
    }

    /// Checks the checksum, that the page says it is page `id`, and its kind.
    pub fn verify(&self, id: u32) -> io::Result<()> {
        let stored = u32::from_le_bytes(self.0[..4].try_into().unwrap());
        let computed = crc32(&self.0[4..]);
        if stored != computed {
            return Err(corrupt(format!(
                "page {id}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): \
                 a torn or damaged write"
            )));
        }
        if self.id() != id {
            return Err(corrupt(format!(
                "page {id}: holds page {} (written at the wrong offset)",
                self.id()
            )));
        }
        if self.kind().is_none() {
            return Err(corrupt(format!("page {id}: unknown kind {}", self.0[8])));
        }
        Ok(())
    }

    /// Fails unless the page is of `kind` (a link that points at the wrong page).
    pub fn expect(&self, kind: Kind) -> io::Result<()> {
        match self.kind() {
            Some(k) if k == kind => Ok(()),
            k => Err(corrupt(format!(
                "page {}: a {kind:?} page was expected, found {k:?}",
                self.id()
            ))),
        }
    }
}

/// The header page's fields (page 0's body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Pages in use, the header included: the data file holds at least this many.
    pub page_count: u32,
    /// The first free page, 0 for none.
    pub free_head: u32,
    /// The index's directory page.
    pub root: u32,
    /// The last transaction committed.
    pub seq: u64,
    /// Keys in the index.
    pub entries: u64,
}

// Offsets in the header page's body.
const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_PAGE_SIZE: usize = 12;
const H_PAGE_COUNT: usize = 16;
const H_FREE_HEAD: usize = 20;
const H_ROOT: usize = 24;
const H_SEQ: usize = 32;
const H_ENTRIES: usize = 40;

impl Header {
    pub fn to_page(self) -> Page {
        let mut page = Page::new(0, Kind::Header);
        page.body_mut()[H_MAGIC..H_MAGIC + 8].copy_from_slice(MAGIC);
        page.set_u32(H_VERSION, VERSION);
        page.set_u32(H_PAGE_SIZE, PAGE as u32);
        page.set_u32(H_PAGE_COUNT, self.page_count);
        page.set_u32(H_FREE_HEAD, self.free_head);
        page.set_u32(H_ROOT, self.root);
        page.set_u64(H_SEQ, self.seq);
        page.set_u64(H_ENTRIES, self.entries);
        page
    }

    /// Reads page 0 as it came from a data file of `file_len` bytes; every refusal says
    /// what is wrong, most telling first (a file that is no store at all says so rather
    /// than "checksum mismatch").
    pub fn from_page(page: &Page, file_len: u64) -> io::Result<Header> {
        let magic = &page.body()[H_MAGIC..H_MAGIC + 8];
        if page.bytes()[8] != Kind::Header as u8 || magic != MAGIC {
            return Err(corrupt(format!(
                "not a page store: bad magic {:?} (expected {:?})",
                String::from_utf8_lossy(magic),
                String::from_utf8_lossy(MAGIC)
            )));
        }
        let version = page.u32_at(H_VERSION);
        if version != VERSION {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("page store version {version}, this build reads version {VERSION}"),
            ));
        }
        page.verify(0)
            .map_err(|e| corrupt(format!("header {e}: the data file is damaged")))?;
        let size = page.u32_at(H_PAGE_SIZE);
        if size as usize != PAGE {
            return Err(corrupt(format!(
                "header: page size {size}, expected {PAGE}"
            )));
        }
        let h = Header {
            page_count: page.u32_at(H_PAGE_COUNT),
            free_head: page.u32_at(H_FREE_HEAD),
            root: page.u32_at(H_ROOT),
            seq: page.u64_at(H_SEQ),
            entries: page.u64_at(H_ENTRIES),
        };
        if h.page_count < 2 || h.root == 0 || h.root >= h.page_count || h.free_head >= h.page_count
        {
            return Err(corrupt(format!("header: inconsistent fields {h:?}")));
        }
        let need = h.page_count as u64 * PAGE as u64;
        if file_len < need {
            return Err(corrupt(format!(
                "header: {} pages need {need} bytes, the data file has {file_len}: it was cut short",
                h.page_count
            )));
        }
        Ok(h)
    }
}
