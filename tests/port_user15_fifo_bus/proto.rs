//! The control protocol: one command per newline-terminated record, at most `PIPE_BUF`
//! bytes with its newline, so that the kernel writes each whole or not at all and records
//! from concurrent clients never mix. Commands that answer name the client's reply FIFO
//! (an absolute path) as their first argument.

use std::path::PathBuf;

/// `PIPE_BUF` on Linux: the largest write to a pipe that is atomic.
pub const PIPE_BUF: usize = 4096;
/// The largest record, its newline included.
pub const MAX_RECORD: usize = PIPE_BUF;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `PING <reply>`: answered `PONG`.
    Ping { reply: PathBuf },
    /// `ECHO <reply> <text>`: answered with the text.
    Echo { reply: PathBuf, text: String },
    /// `POST <text>`: put on the bus, not answered.
    Post { text: String },
    /// `BLOB <reply> <len>`: answered with `len` bytes of the test pattern.
    Blob { reply: PathBuf, len: usize },
    /// `DUMP <reply> <source FIFO> <file>`: the source copied into the file until its
    /// writers close it, answered `DUMPED <bytes>`.
    Dump {
        reply: PathBuf,
        source: PathBuf,
        file: PathBuf,
    },
    /// `STATS <reply>`: answered with the daemon's counters.
    Stats { reply: PathBuf },
}

/// A record that is no command, with the reply FIFO to tell, if one could be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub reason: String,
    pub reply: Option<PathBuf>,
}

/// The verbs that take a reply FIFO first.
const ANSWERED: [&str; 5] = ["PING", "ECHO", "BLOB", "DUMP", "STATS"];

/// The reply FIFO named by a record's head, if its verb takes one and the path is
/// absolute: where to send an error about a record that is otherwise unusable.
pub fn reply_of(head: &[u8]) -> Option<PathBuf> {
    let head = String::from_utf8_lossy(head);
    let mut words = head.split(' ');
    let verb = words.next()?;
    let path = words.next()?;
    (ANSWERED.contains(&verb) && path.starts_with('/') && !path.contains('\u{fffd}'))
        .then(|| PathBuf::from(path))
}

pub fn parse(record: &[u8]) -> Result<Command, Malformed> {
    let bad = |reason: &str| Malformed {
        reason: reason.to_string(),
        reply: reply_of(record),
    };
    let line = std::str::from_utf8(record).map_err(|_| bad("not UTF-8"))?;
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    if verb == "POST" {
        if rest.is_empty() {
            return Err(bad("POST needs a text"));
        }
        return Ok(Command::Post {
            text: rest.to_string(),
        });
    }
    if !ANSWERED.contains(&verb) {
        return Err(bad("unknown command"));
    }
    let (reply, args) = rest.split_once(' ').unwrap_or((rest, ""));
    if !reply.starts_with('/') {
        return Err(bad("the reply FIFO must be an absolute path"));
    }
    let reply = PathBuf::from(reply);
    let words: Vec<&str> = args.split(' ').filter(|w| !w.is_empty()).collect();
    match (verb, words.as_slice()) {
        ("PING", []) => Ok(Command::Ping { reply }),
        ("STATS", []) => Ok(Command::Stats { reply }),
        ("ECHO", [_, ..]) => Ok(Command::Echo {
            reply,
            text: args.to_string(),
        }),
        ("BLOB", [len]) => match len.parse() {
            Ok(len) => Ok(Command::Blob { reply, len }),
            Err(_) => Err(bad("BLOB needs a length")),
        },
        ("DUMP", [source, file]) if source.starts_with('/') && file.starts_with('/') => {
            Ok(Command::Dump {
                reply,
                source: PathBuf::from(source),
                file: PathBuf::from(file),
            })
        }
        _ => Err(bad("wrong arguments")),
    }
}

/// The bytes a `BLOB` answers with: a pattern that does not repeat every 256 bytes, so a
/// lost or doubled chunk shows.
pub fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
