//! Running commands, for TCP and UDP alike: [`Session`] eats a buffer of pipelined input
//! (command lines, data blocks, blocks being swallowed) one step at a time and appends
//! each reply to an [`Output`], which holds large values by reference so a `get` of a big
//! item queues no copy of it.

use std::collections::VecDeque;
use std::rc::Rc;

use overlap::io::{AsyncWrite, AsyncWriteExt};

use super::proto::{self, Command, Refused, Storage};
use super::server::Shared;
use super::store::{Arith, Outcome};

/// Values at least this long are queued by reference, not copied.
const SHARE_FROM: usize = 4096;

enum Chunk {
    Bytes(Vec<u8>),
    Shared(Rc<[u8]>),
}

/// Replies queued for the peer, and how many bytes they come to.
#[derive(Default)]
pub struct Output {
    chunks: VecDeque<Chunk>,
    len: usize,
}

impl Output {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        if let Some(Chunk::Bytes(last)) = self.chunks.back_mut() {
            return last.extend_from_slice(bytes);
        }
        self.chunks.push_back(Chunk::Bytes(bytes.to_vec()));
    }

    fn push_value(&mut self, value: &Rc<[u8]>) {
        if value.len() < SHARE_FROM {
            return self.push(value);
        }
        self.len += value.len();
        self.chunks.push_back(Chunk::Shared(value.clone()));
    }

    /// Everything queued, as one buffer (for a UDP reply).
    pub fn into_vec(self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.len);
        for c in self.chunks {
            match c {
                Chunk::Bytes(b) => all.extend_from_slice(&b),
                Chunk::Shared(v) => all.extend_from_slice(&v),
            }
        }
        all
    }

    /// Writes out everything queued.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> std::io::Result<()> {
        while let Some(chunk) = self.chunks.pop_front() {
            let bytes: &[u8] = match &chunk {
                Chunk::Bytes(b) => b,
                Chunk::Shared(v) => v,
            };
            w.write_all(bytes).await?;
            self.len -= bytes.len();
        }
        w.flush().await
    }
}

/// What the session waits for next in the input.
#[derive(Debug)]
enum Want {
    Line,
    Data(Storage),
    /// This many more bytes to drop: a refused storage command's block.
    Swallow(usize),
}

/// One step's result.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Bytes used from the front of the input.
    Used(usize),
    /// Nothing can be done until more input comes.
    More,
    /// `quit`.
    Quit,
    /// A line passed the limit without its `\r\n`: refused, and the connection closes.
    TooLong,
}

/// The input state of one TCP connection, or of one UDP datagram.
pub struct Session {
    want: Want,
    shared: Rc<Shared>,
}

impl Session {
    pub fn new(shared: Rc<Shared>) -> Session {
        Session {
            want: Want::Line,
            shared,
        }
    }

    /// Whether the session is in the middle of a data block (kept or swallowed).
    pub fn mid_block(&self) -> bool {
        !matches!(self.want, Want::Line)
    }

    /// Takes one command (or part of a block being swallowed) from the front of `input`.
    pub fn step(&mut self, input: &[u8], out: &mut Output) -> Step {
        match std::mem::replace(&mut self.want, Want::Line) {
            Want::Swallow(n) if input.is_empty() => {
                self.want = Want::Swallow(n);
                Step::More
            }
            Want::Swallow(n) => {
                let used = n.min(input.len());
                if used < n {
                    self.want = Want::Swallow(n - used);
                }
                Step::Used(used)
            }
            Want::Data(s) if input.len() < s.bytes + 2 => {
                self.want = Want::Data(s);
                Step::More
            }
            Want::Data(s) => {
                if &input[s.bytes..s.bytes + 2] != b"\r\n" {
                    out.push(proto::BAD_CHUNK);
                } else {
                    self.store(&s, &input[..s.bytes], out);
                }
                Step::Used(s.bytes + 2)
            }
            Want::Line => self.line(input, out),
        }
    }

    fn line(&mut self, input: &[u8], out: &mut Output) -> Step {
        let cfg = &self.shared.cfg;
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            let limit = match proto::is_retrieval(input) {
                true => cfg.max_retrieval_line,
                false => cfg.max_line,
            };
            if input.len() > limit {
                out.push(proto::LINE_TOO_LONG);
                return Step::TooLong;
            }
            return Step::More;
        };
        let line = input[..end].strip_suffix(b"\r").unwrap_or(&input[..end]);
        match proto::parse(line) {
            Ok(Command::Quit) => return Step::Quit,
            Ok(Command::Store(s)) if s.bytes > cfg.max_item_size => {
                out.push(proto::TOO_LARGE);
                self.shared.store.borrow_mut().drop_stale(&s.key);
                self.want = Want::Swallow(s.bytes + 2);
            }
            Ok(Command::Store(s)) => self.want = Want::Data(s),
            Ok(cmd) => self.run(cmd, out),
            Err(Refused { reply, swallow }) => {
                out.push(reply);
                if let Some(n) = swallow {
                    self.want = Want::Swallow(n);
                }
            }
        }
        Step::Used(end + 1)
    }

    fn store(&self, s: &Storage, data: &[u8], out: &mut Output) {
        let mut store = self.shared.store.borrow_mut();
        let expiry = store.clock.expiry(s.exptime);
        let res = store.store(s.op, &s.key, s.flags, expiry, data, s.unique);
        if s.noreply {
            return;
        }
        out.push(match res {
            Outcome::Stored => b"STORED\r\n",
            Outcome::NotStored => b"NOT_STORED\r\n",
            Outcome::Exists => b"EXISTS\r\n",
            Outcome::NotFound => b"NOT_FOUND\r\n",
            Outcome::NoMemory => proto::NO_MEMORY,
        });
    }

    fn run(&self, cmd: Command, out: &mut Output) {
        let mut store = self.shared.store.borrow_mut();
        // Replies of a `noreply` command go nowhere.
        let mut void = Output::default();
        match cmd {
            Command::Get { keys, cas, touch } => {
                let touch = touch.map(|e| store.clock.expiry(e));
                for key in keys {
                    let Some(item) = store.get(&key, touch) else {
                        continue;
                    };
                    let key = String::from_utf8_lossy(&key);
                    let head = match cas {
                        true => format!(
                            "VALUE {key} {} {} {}\r\n",
                            item.flags,
                            item.value.len(),
                            item.cas
                        ),
                        false => format!("VALUE {key} {} {}\r\n", item.flags, item.value.len()),
                    };
                    out.push(head.as_bytes());
                    out.push_value(&item.value);
                    out.push(b"\r\n");
                }
                out.push(b"END\r\n");
            }
            Command::Store(_) | Command::Quit => unreachable!("handled by the caller"),
            Command::Delete { key, noreply } => {
                let out = if noreply { &mut void } else { out };
                out.push(match store.delete(&key) {
                    true => b"DELETED\r\n",
                    false => b"NOT_FOUND\r\n",
                });
            }
            Command::Arith {
                incr,
                key,
                delta,
                noreply,
            } => {
                let out = if noreply { &mut void } else { out };
                match store.arith(&key, incr, delta) {
                    Arith::Value(n) => out.push(format!("{n}\r\n").as_bytes()),
                    Arith::NotFound => out.push(b"NOT_FOUND\r\n"),
                    Arith::NonNumeric => out.push(proto::NON_NUMERIC),
                }
            }
            Command::Touch {
                key,
                exptime,
                noreply,
            } => {
                let out = if noreply { &mut void } else { out };
                let expiry = store.clock.expiry(exptime);
                out.push(match store.touch(&key, expiry) {
                    true => b"TOUCHED\r\n",
                    false => b"NOT_FOUND\r\n",
                });
            }
            Command::FlushAll { delay, noreply } => {
                store.flush_all(delay);
                if !noreply {
                    out.push(b"OK\r\n");
                }
            }
            Command::Verbosity { noreply } => {
                if !noreply {
                    out.push(b"OK\r\n");
                }
            }
            Command::Version => out.push(format!("VERSION {}\r\n", super::VERSION).as_bytes()),
            Command::Stats => {
                drop(store);
                for (name, value) in self.shared.stats() {
                    out.push(format!("STAT {name} {value}\r\n").as_bytes());
                }
                out.push(b"END\r\n");
            }
        }
    }
}
