//! The text protocol's command lines: one line (without its `\r\n`) split on spaces into a
//! [`Command`], or the error memcached answers it with. Nothing here touches the cache.

/// Keys longer than this are refused, as memcached's `KEY_MAX_LENGTH`.
pub const KEY_MAX: usize = 250;

/// The reply to a line that names no command we know, or a known one with the wrong
/// number of arguments (memcached dispatches on the token count, so both are `ERROR`).
pub const ERROR: &[u8] = b"ERROR\r\n";
pub const BAD_FORMAT: &[u8] = b"CLIENT_ERROR bad command line format\r\n";
pub const BAD_DELTA: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
pub const BAD_CHUNK: &[u8] = b"CLIENT_ERROR bad data chunk\r\n";
pub const NON_NUMERIC: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
pub const TOO_LARGE: &[u8] = b"SERVER_ERROR object too large for cache\r\n";
pub const NO_MEMORY: &[u8] = b"SERVER_ERROR out of memory storing object\r\n";
pub const LINE_TOO_LONG: &[u8] = b"CLIENT_ERROR line too long\r\n";
pub const MULTI_PACKET: &[u8] = b"SERVER_ERROR multi-packet request not supported\r\n";

/// The six storage commands, which all carry a data block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

/// A storage command's line: `<op> <key> <flags> <exptime> <bytes> [<cas>] [noreply]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    pub op: StoreOp,
    pub key: Vec<u8>,
    pub flags: u32,
    pub exptime: i64,
    /// The data block's length, without its `\r\n`.
    pub bytes: usize,
    /// The `cas` command's unique; 0 for the others.
    pub unique: u64,
    pub noreply: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `get`/`gets` (`cas` set for `gets`), and `gat`/`gats` with `touch` set.
    Get {
        keys: Vec<Vec<u8>>,
        cas: bool,
        touch: Option<i64>,
    },
    Store(Storage),
    Delete {
        key: Vec<u8>,
        noreply: bool,
    },
    Arith {
        incr: bool,
        key: Vec<u8>,
        delta: u64,
        noreply: bool,
    },
    Touch {
        key: Vec<u8>,
        exptime: i64,
        noreply: bool,
    },
    FlushAll {
        delay: i64,
        noreply: bool,
    },
    Verbosity {
        noreply: bool,
    },
    Version,
    Stats,
    Quit,
}

/// A line refused: the reply to send, and for a storage line whose length could be read,
/// the data block (with its `\r\n`) to swallow so the connection stays in sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reply: &'static [u8],
    pub swallow: Option<usize>,
}

fn refused(reply: &'static [u8]) -> Refused {
    Refused {
        reply,
        swallow: None,
    }
}

/// Whether memcached would take `key`: 1 to 250 bytes, no control characters (spaces
/// cannot get this far: they split the line).
pub fn valid_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= KEY_MAX && !key.iter().any(|b| b.is_ascii_control())
}

/// Whether a line starting so may be longer than the usual limit before its `\r\n` comes
/// (a `get` of many keys), as memcached lets `get`/`gets` lines grow.
pub fn is_retrieval(start: &[u8]) -> bool {
    [&b"get "[..], b"gets ", b"gat ", b"gats "]
        .iter()
        .any(|p| start.starts_with(p))
}

fn num<T: std::str::FromStr>(tok: &[u8]) -> Option<T> {
    std::str::from_utf8(tok).ok()?.parse().ok()
}

/// Parses one command line (its `\r\n` or `\n` already cut off).
pub fn parse(line: &[u8]) -> Result<Command, Refused> {
    let toks: Vec<&[u8]> = line
        .split(|&b| b == b' ')
        .filter(|t| !t.is_empty())
        .collect();
    let Some((&name, args)) = toks.split_first() else {
        return Err(refused(ERROR));
    };
    let noreply = args.last() == Some(&&b"noreply"[..]);
    // The arguments without a trailing `noreply`.
    let core = if noreply {
        &args[..args.len() - 1]
    } else {
        args
    };
    let key = |t: &[u8]| {
        if valid_key(t) {
            Ok(t.to_vec())
        } else {
            Err(refused(BAD_FORMAT))
        }
    };
    let op = match name {
        b"set" => Some(StoreOp::Set),
        b"add" => Some(StoreOp::Add),
        b"replace" => Some(StoreOp::Replace),
        b"append" => Some(StoreOp::Append),
        b"prepend" => Some(StoreOp::Prepend),
        b"cas" => Some(StoreOp::Cas),
        _ => None,
    };
    if let Some(op) = op {
        return storage(op, core, noreply);
    }
    match (name, core.len()) {
        // Every argument of a get is a key, even one named `noreply`.
        (b"get" | b"gets", _) if !args.is_empty() => {
            let keys = args.iter().map(|t| key(t)).collect::<Result<_, _>>()?;
            Ok(Command::Get {
                keys,
                cas: name == b"gets",
                touch: None,
            })
        }
        (b"gat" | b"gats", n) if n > 1 && !noreply => {
            let exptime = num(core[0]).ok_or(refused(BAD_FORMAT))?;
            let keys = core[1..].iter().map(|t| key(t)).collect::<Result<_, _>>()?;
            Ok(Command::Get {
                keys,
                cas: name == b"gats",
                touch: Some(exptime),
            })
        }
        // memcached still takes the old `delete <key> 0`, and nothing else there.
        (b"delete", 1 | 2) => {
            if core.len() == 2 && core[1] != b"0" {
                return Err(refused(BAD_FORMAT));
            }
            let key = key(core[0])?;
            Ok(Command::Delete { key, noreply })
        }
        (b"incr" | b"decr", 2) => {
            let key = key(core[0])?;
            let delta = num(core[1]).ok_or(refused(BAD_DELTA))?;
            let incr = name == b"incr";
            Ok(Command::Arith {
                incr,
                key,
                delta,
                noreply,
            })
        }
        (b"touch", 2) => {
            let key = key(core[0])?;
            let exptime = num(core[1]).ok_or(refused(BAD_FORMAT))?;
            Ok(Command::Touch {
                key,
                exptime,
                noreply,
            })
        }
        (b"flush_all", 0 | 1) => {
            let delay = match core.first() {
                Some(t) => num(t).ok_or(refused(BAD_FORMAT))?,
                None => 0,
            };
            Ok(Command::FlushAll { delay, noreply })
        }
        (b"verbosity", 1) => {
            num::<u32>(core[0]).ok_or(refused(BAD_FORMAT))?;
            Ok(Command::Verbosity { noreply })
        }
        (b"version", 0) if !noreply => Ok(Command::Version),
        (b"stats", 0) if !noreply => Ok(Command::Stats),
        (b"quit", 0) if !noreply => Ok(Command::Quit),
        _ => Err(refused(ERROR)),
    }
}

/// A storage line. Once its length reads as a number, every refusal swallows the data
/// block too (memcached does so only for a block too large; for a bad key it leaves the
/// block to be read as a command, which answers `ERROR` for data that was never one).
fn storage(op: StoreOp, core: &[&[u8]], noreply: bool) -> Result<Command, Refused> {
    let want = if op == StoreOp::Cas { 5 } else { 4 };
    if core.len() != want {
        return Err(refused(ERROR));
    }
    let bytes = num::<i32>(core[3])
        .and_then(|n| usize::try_from(n).ok())
        .ok_or(refused(BAD_FORMAT))?;
    let swallowing = |reply| Refused {
        reply,
        swallow: Some(bytes + 2),
    };
    let flags = num::<u32>(core[1]);
    let exptime = num::<i64>(core[2]);
    let unique = if op == StoreOp::Cas {
        num(core[4])
    } else {
        Some(0)
    };
    match (valid_key(core[0]), flags, exptime, unique) {
        (true, Some(flags), Some(exptime), Some(unique)) => Ok(Command::Store(Storage {
            op,
            key: core[0].to_vec(),
            flags,
            exptime,
            bytes,
            unique,
            noreply,
        })),
        _ => Err(swallowing(BAD_FORMAT)),
    }
}
