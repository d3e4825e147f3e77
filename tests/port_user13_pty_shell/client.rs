//! The tests' client: frames out, the terminal's output gathered, markers waited for.

use std::net::SocketAddr;
use std::time::Duration;

use overlap::codec::{FramedRead, FramedWrite};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::TcpStream;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;

use super::proto::{Exit, Frame, FrameCodec, MAX_PAYLOAD};
use super::support::within;

/// A hang guard for one wait on the shell.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Client {
    pub rx: Reader,
    tx: FramedWrite<OwnedWriteHalf, FrameCodec>,
}

/// The client's read side.
pub struct Reader {
    input: FramedRead<OwnedReadHalf, FrameCodec>,
    /// Everything the terminal sent so far.
    pub seen: Vec<u8>,
    /// Where the next `expect` starts looking.
    pos: usize,
    /// The frames other than data, in order.
    pub frames: Vec<Frame>,
    pub ended: bool,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let (rd, wr) = TcpStream::connect(addr).await.unwrap().into_split();
        Client {
            rx: Reader {
                input: FramedRead::new(rd, FrameCodec),
                seen: Vec::new(),
                pos: 0,
                frames: Vec::new(),
                ended: false,
            },
            tx: FramedWrite::new(wr, FrameCodec),
        }
    }

    pub async fn send(&mut self, frame: Frame) {
        self.tx.send(frame).await.unwrap();
    }

    pub async fn line(&mut self, line: &str) {
        self.send(Frame::Data(format!("{line}\n").into_bytes()))
            .await;
    }

    /// Sends `data` in frames while reading, until `marker`: the shell may answer before
    /// it has taken everything (a copy echoing it back), and a client that read only
    /// afterwards would stop it, and so its own sends.
    pub async fn send_while_expecting(&mut self, data: &[u8], marker: &str) -> Vec<u8> {
        let tx = &mut self.tx;
        let send = async move {
            for chunk in data.chunks(MAX_PAYLOAD) {
                tx.send(Frame::Data(chunk.to_vec())).await.unwrap();
            }
        };
        let (_, text) = overlap::join!(send, self.rx.expect_bytes(marker));
        text
    }

    pub async fn expect(&mut self, marker: &str) -> String {
        self.rx.expect(marker).await
    }

    pub async fn expect_number(&mut self, prefix: &str) -> u64 {
        self.rx.expect_number(prefix).await
    }

    /// The shell's pid, asked of the shell.
    pub async fn shell_pid(&mut self) -> u32 {
        self.line("echo __PID__$$.").await;
        self.expect_number("__PID__").await as u32
    }

    pub async fn finish(&mut self) -> Vec<Frame> {
        self.rx.finish().await
    }

    pub async fn exit(&mut self) -> Exit {
        self.rx.exit().await
    }
}

impl Reader {
    /// Reads one frame; false at the end of the stream (or on an error).
    async fn next(&mut self) -> bool {
        match self.input.next().await {
            Some(Ok(Frame::Data(bytes))) => self.seen.extend_from_slice(&bytes),
            Some(Ok(other)) => self.frames.push(other),
            Some(Err(_)) | None => self.ended = true,
        }
        !self.ended
    }

    fn transcript(&self) -> String {
        let text = String::from_utf8_lossy(&self.seen);
        let tail: String = text.chars().rev().take(2000).collect();
        format!(
            "transcript's end: {:?}; frames: {:?}",
            tail.chars().rev().collect::<String>(),
            self.frames
        )
    }

    /// Waits until `marker` appears after the last one found; returns the text from there
    /// to the marker's end.
    pub async fn expect(&mut self, marker: &str) -> String {
        String::from_utf8_lossy(&self.expect_bytes(marker).await).into()
    }

    /// As `expect`, the bytes as they came.
    pub async fn expect_bytes(&mut self, marker: &str) -> Vec<u8> {
        within(
            WAIT,
            async {
                // Where the search goes on from: bytes looked at once are not again.
                let mut from = self.pos;
                loop {
                    if let Some(at) = find(&self.seen[from..], marker.as_bytes()) {
                        let end = from + at + marker.len();
                        let text = self.seen[self.pos..end].to_vec();
                        self.pos = end;
                        return text;
                    }
                    from = from.max(self.seen.len().saturating_sub(marker.len()));
                    if !self.next().await {
                        panic!("the session ended before {marker:?}; {}", self.transcript());
                    }
                }
            },
            &format!("waiting for {marker:?}"),
        )
        .await
    }

    /// Waits for `prefix` followed by digits and a `.` (what `echo {prefix}$x.` prints,
    /// where the echoed command has `$` after the prefix), and returns the number.
    pub async fn expect_number(&mut self, prefix: &str) -> u64 {
        within(
            WAIT,
            async {
                loop {
                    let mut from = self.pos;
                    while let Some(at) = find(&self.seen[from..], prefix.as_bytes()) {
                        let start = from + at + prefix.len();
                        let digits = self.seen[start..]
                            .iter()
                            .take_while(|b| b.is_ascii_digit())
                            .count();
                        if digits > 0 && self.seen.get(start + digits) == Some(&b'.') {
                            let n = std::str::from_utf8(&self.seen[start..start + digits]);
                            self.pos = start + digits + 1;
                            return n.unwrap().parse().unwrap();
                        }
                        from = start;
                    }
                    if !self.next().await {
                        panic!("the session ended before {prefix:?}; {}", self.transcript());
                    }
                }
            },
            &format!("waiting for {prefix:?}"),
        )
        .await
    }

    /// Reads to the end of the stream; the frames other than data, in order.
    pub async fn finish(&mut self) -> Vec<Frame> {
        within(
            WAIT,
            async { while self.next().await {} },
            "waiting for the session's end",
        )
        .await;
        self.frames.clone()
    }

    /// The exit in the last frame, which must be the last one.
    pub async fn exit(&mut self) -> Exit {
        match self.finish().await.last() {
            Some(Frame::Exit(exit)) => *exit,
            _ => panic!("no exit frame last; {}", self.transcript()),
        }
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
