//! Byte streams (TCP, Unix, pipes; whole, split into owned halves, or through a relay task
//! that `splice`s from a socket into a pipe or back): one writer task and one reader task
//! per direction, each cutting its operations short at random, either maybe aborted. The
//! writer ends with a `close` (a `shutdown` of the write side, for a socket) or a drop.
//!
//! The writer counts the bytes each `write` reported (a `write` dropped while it waited
//! wrote nothing) and, while a `write_all` is in flight, how many more may have gone. The
//! reader checks each byte against the stream's pattern as it arrives, and that it never
//! sees a byte the writer could not have sent; at EOF, that it got every accepted byte.

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UnixStream};
use overlap::pipe::{Receiver, Sender};
use overlap::Registered;

use crate::cut::{clear, cut, pause, peer_gone, pick, seed, Cut, SetOnDrop};
use crate::support::{pattern_seeded, set_int_option, Rng};

/// What a stream's two tasks tell each other and the final check.
#[derive(Default)]
pub struct Tally {
    /// Bytes the writer's calls reported written.
    accepted: Cell<usize>,
    /// Bytes a `write_all` in flight (or cut) may have written beyond `accepted`.
    maybe: Cell<usize>,
    /// The writer stopped knowing what it wrote (a `write_all` was cut or failed).
    writer_unsure: Cell<bool>,
    /// The reader lost count (a `read_exact` was cut or hit EOF part way).
    reader_unsure: Cell<bool>,
    /// Bytes the reader checked.
    read: Cell<usize>,
    /// The reader saw EOF.
    eof: Cell<bool>,
    /// The reader's task ended (its end of the stream is closed).
    reader_gone: Cell<bool>,
    /// A lossy relay (an `io::copy` task) was cut or went away: what the reader gets from
    /// then on is a prefix of what was sent, maybe short of what the writer was told went,
    /// and either end may see the relay's ends close (end of file, a broken pipe or reset).
    relay_gone: Cell<bool>,
    /// What the stream is, for messages.
    pub what: String,
}

impl Tally {
    /// A fresh tally for the stream `what`.
    pub fn new(what: String) -> Tally {
        Tally {
            what,
            ..Default::default()
        }
    }

    /// Checks the end state once both tasks are over: a reader that read to EOF got
    /// every byte the writer reported written, and no more than it may have written.
    pub fn check(&self) {
        if !self.eof.get() || self.reader_unsure.get() {
            return;
        }
        let (read, accepted) = (self.read.get(), self.accepted.get());
        let most = accepted + self.maybe.get();
        if self.relay_gone.get() {
            // The reader checked each byte against the pattern: a prefix, nothing repeated.
            assert!(
                read <= most,
                "seed {}: {}: read {read} of {most}",
                seed(),
                self.what
            );
            return;
        }
        assert!(
            read >= accepted && read <= most,
            "seed {}: {}: read {read} bytes to EOF, the writer reported {accepted} \
             (and at most {most} may have gone)",
            seed(),
            self.what
        );
        // `maybe` stays set if the writer was aborted during a `write_all`.
        if !self.writer_unsure.get() && self.maybe.get() == 0 {
            assert_eq!(read, accepted, "seed {}: {}", seed(), self.what);
        }
    }
}

impl Tally {
    /// Whether the reader's task has ended.
    pub fn reader_gone(&self) -> bool {
        self.reader_gone.get()
    }

    /// The flag a lossy relay sets once it stops relaying for good (cut, failed or
    /// aborted): see [`Tally::relay_gone`]'s field.
    pub fn relay_gone_flag(&self) -> &Cell<bool> {
        &self.relay_gone
    }
}

/// One direction of a stream: the writer's end, the reader's end, what it is, and whether
/// its reader may go away early (not while the reader's end is only a half of a socket
/// whose other half lives on: the writer would wait for ever).
pub struct Direction {
    pub w: Box<dyn AsyncWrite + Unpin>,
    pub r: Box<dyn AsyncRead + Unpin>,
    pub what: String,
    pub reader_may_leave: bool,
    /// A task moving the bytes from the writer's socket or pipe to the reader's by
    /// `splice`, if the stream goes through one.
    pub relay: Option<Relay>,
}

/// The relay's two ends: a socket to pipe, or a pipe to a socket.
pub enum Relay {
    SocketToPipe(Box<dyn Registered>, Sender),
    PipeToSocket(Receiver, Box<dyn Registered>),
}

impl Direction {
    fn new(
        w: impl AsyncWrite + Unpin + 'static,
        r: impl AsyncRead + Unpin + 'static,
        what: String,
    ) -> Direction {
        Direction {
            w: Box::new(w),
            r: Box::new(r),
            what,
            reader_may_leave: true,
            relay: None,
        }
    }
}

/// A connected stream of a random kind: one direction, or for sockets sometimes both, each
/// end split into owned halves.
pub async fn pair(rng: &mut Rng) -> Vec<Direction> {
    match rng.below(5) {
        4 => {
            // Through a relay task: a socket and a pipe, spliced one into the other.
            let (a, b) = UnixStream::pair().unwrap();
            let (tx, rx) = overlap::pipe::pipe().unwrap();
            if rng.below(2) == 0 {
                let mut dir = Direction::new(a, rx, "unix | splice | pipe".into());
                dir.relay = Some(Relay::SocketToPipe(Box::new(b), tx));
                vec![dir]
            } else {
                let mut dir = Direction::new(tx, b, "pipe | splice | unix".into());
                dir.relay = Some(Relay::PipeToSocket(rx, Box::new(a)));
                vec![dir]
            }
        }
        0 | 1 => {
            let host = if rng.below(3) == 0 {
                "[::1]:0"
            } else {
                "127.0.0.1:0"
            };
            let listener = TcpListener::bind(host).await.unwrap();
            let a = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (b, _) = listener.accept().await.unwrap();
            let (w, r) = if rng.below(2) == 0 { (a, b) } else { (b, a) };
            if rng.below(2) == 0 {
                // Small buffers, so writes wait often (a receive buffer much under the
                // loopback MSS would make the kernel's own timers pace the stream).
                let snd = 4096 + rng.below(12 * 1024) as libc::c_int;
                let rcv = 32 * 1024 + rng.below(64 * 1024) as libc::c_int;
                set_int_option(w.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, snd).unwrap();
                set_int_option(r.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, rcv).unwrap();
            }
            if rng.below(3) == 0 {
                let (wr, ww) = w.into_split();
                let (rr, rw) = r.into_split();
                return duplex(Direction::new(ww, rr, format!("tcp {host} split")), rw, wr);
            }
            vec![Direction::new(w, r, format!("tcp {host}"))]
        }
        2 => {
            let (a, b) = UnixStream::pair().unwrap();
            if rng.below(3) == 0 {
                let (ar, aw) = a.into_split();
                let (br, bw) = b.into_split();
                return duplex(Direction::new(aw, br, "unix split".into()), bw, ar);
            }
            vec![Direction::new(a, b, "unix".into())]
        }
        _ => {
            let (tx, rx) = overlap::pipe::pipe().unwrap();
            vec![Direction::new(tx, rx, "pipe".into())]
        }
    }
}

/// `there` and the way back over the other two halves of the same sockets.
fn duplex(
    mut there: Direction,
    w: impl AsyncWrite + Unpin + 'static,
    r: impl AsyncRead + Unpin + 'static,
) -> Vec<Direction> {
    let mut back = Direction::new(w, r, format!("{} back", there.what));
    there.reader_may_leave = false;
    back.reader_may_leave = false;
    vec![there, back]
}

/// Moves the bytes through `relay` by cut splices of random lengths until EOF, or until
/// the reader has gone.
pub async fn relay(relay: Relay, t: Rc<Tally>, mut rng: Rng) {
    let what = format!("{} relay", t.what);
    let (mut tx, mut rx, socket) = match relay {
        Relay::SocketToPipe(socket, tx) => (Some(tx), None, socket),
        Relay::PipeToSocket(rx, socket) => (None, Some(rx), socket),
    };
    loop {
        let len = 1 + rng.below(100_000);
        let how = pick(&mut rng);
        let moved = match (&mut tx, &mut rx) {
            (Some(tx), _) => cut(how, tx.splice_from(&*socket, len)).await,
            (_, Some(rx)) => cut(how, rx.splice_to(&*socket, len)).await,
            _ => unreachable!(),
        };
        match moved {
            Some(Ok(0)) => return,
            Some(Ok(n)) => assert!(n <= len, "seed {}: {what}: moved {n} of {len}", seed()),
            Some(Err(e)) => {
                clear(&what, &e);
                assert!(
                    t.reader_gone.get() && peer_gone(&e),
                    "seed {}: {what} failed while the reader lives: {e:?}",
                    seed()
                );
                return;
            }
            None => pause(&mut rng).await,
        }
    }
}

/// The bytes a stream carries: most are short, some overflow every buffer.
pub fn data_for(rng: &mut Rng, id: u32) -> Rc<Vec<u8>> {
    let len = match rng.below(8) {
        0 => rng.below(16),
        1..=5 => rng.below(64 * 1024),
        _ => 64 * 1024 + rng.below(512 * 1024),
    };
    Rc::new(pattern_seeded(len, id))
}

/// Writes `data` through random writes, each maybe cut, then ends the stream.
pub async fn writer(
    mut w: Box<dyn AsyncWrite + Unpin>,
    data: Rc<Vec<u8>>,
    t: Rc<Tally>,
    mut rng: Rng,
) {
    let what = t.what.clone();
    while t.accepted.get() < data.len() {
        let at = t.accepted.get();
        let end = (at + 1 + rng.below(40_000)).min(data.len());
        let buf = &data[at..end];
        match rng.below(6) {
            0..=2 => match cut(pick(&mut rng), w.write(buf)).await {
                Some(Ok(n)) => {
                    assert!(
                        n > 0 && n <= buf.len(),
                        "seed {}: {what}: write gave {n}",
                        seed()
                    );
                    t.accepted.set(at + n);
                }
                Some(Err(e)) => return writer_failed(&t, "write", &e),
                None => {}
            },
            3 | 4 => {
                t.maybe.set(buf.len());
                // Rarely cut: the writer cannot go on after that.
                let how = if rng.below(4) == 0 {
                    pick(&mut rng)
                } else {
                    Cut::Never
                };
                match cut(how, w.write_all(buf)).await {
                    Some(Ok(())) => {
                        t.accepted.set(end);
                        t.maybe.set(0);
                    }
                    Some(Err(e)) => {
                        t.writer_unsure.set(true);
                        return writer_failed(&t, "write_all", &e);
                    }
                    None => {
                        // Some prefix may have gone: nothing more can be told apart.
                        t.writer_unsure.set(true);
                        break;
                    }
                }
            }
            _ => match cut(pick(&mut rng), w.flush()).await {
                Some(Err(e)) => return writer_failed(&t, "flush", &e),
                _ => pause(&mut rng).await,
            },
        }
    }
    if rng.below(3) > 0 {
        if let Err(e) = w.close().await {
            writer_failed(&t, "close", &e);
        }
    }
}

/// A writer's error is fine only once the reader's end is gone.
fn writer_failed(t: &Tally, op: &str, e: &std::io::Error) {
    clear(&format!("{}: {op}", t.what), e);
    assert!(
        (t.reader_gone.get() || t.relay_gone.get()) && peer_gone(e),
        "seed {}: {}: {op} failed while the reader lives: {e:?}",
        seed(),
        t.what
    );
}

/// Reads through random reads, each maybe cut, checking every byte, until EOF (or, if
/// `stop` is given, until that many bytes were read, to go away early).
pub async fn reader(
    mut r: Box<dyn AsyncRead + Unpin>,
    data: Rc<Vec<u8>>,
    t: Rc<Tally>,
    mut rng: Rng,
    stop: Option<usize>,
) {
    let _gone = SetOnDrop(&t.reader_gone);
    let what = t.what.clone();
    let mut buf = vec![0u8; 70_000];
    loop {
        if stop.is_some_and(|s| t.read.get() >= s) {
            return;
        }
        let most = if rng.below(2) == 0 { 64 } else { buf.len() };
        let want = 1 + rng.below(most);
        let n = if rng.below(4) == 0 {
            // Rarely cut: the reader loses count after that.
            let how = if rng.below(4) == 0 {
                pick(&mut rng)
            } else {
                Cut::Never
            };
            match cut(how, r.read_exact(&mut buf[..want])).await {
                Some(Ok(())) => want,
                Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    t.reader_unsure.set(true);
                    t.eof.set(true);
                    return;
                }
                Some(Err(e)) => return reader_failed(&t, &e),
                None => {
                    // The bytes it took are lost with it (futures-util's read_exact).
                    t.reader_unsure.set(true);
                    continue;
                }
            }
        } else {
            match cut(pick(&mut rng), r.read(&mut buf[..want])).await {
                Some(Ok(0)) => {
                    t.eof.set(true);
                    return;
                }
                Some(Ok(n)) => n,
                Some(Err(e)) => return reader_failed(&t, &e),
                None => continue,
            }
        };
        if t.reader_unsure.get() {
            continue;
        }
        let at = t.read.get();
        let most = t.accepted.get() + t.maybe.get();
        assert!(
            at + n <= most,
            "seed {}: {what}: read up to byte {} but the writer sent at most {most}",
            seed(),
            at + n
        );
        if buf[..n] != data[at..at + n] {
            let bad = (0..n).find(|&i| buf[i] != data[at + i]).unwrap();
            panic!(
                "seed {}: {what}: byte {} differs (read {n} at {at}; writer accepted {})",
                seed(),
                at + bad,
                t.accepted.get()
            );
        }
        t.read.set(at + n);
        if rng.below(4) == 0 {
            pause(&mut rng).await;
        }
    }
}

/// A reader's error is fine only once a lossy relay in front of it went away (a socket
/// it closed with bytes unread resets the connection): the reader stops there, unsure.
fn reader_failed(t: &Tally, e: &std::io::Error) {
    clear(&t.what, e);
    if t.relay_gone.get() && peer_gone(e) {
        t.reader_unsure.set(true);
        return;
    }
    panic!("seed {}: {}: read failed: {e:?}", seed(), t.what);
}
