//! The daemon: the Unix datagram socket taking records (`<P>message`, P a priority 0-7)
//! with the sender's pid, uid and gid from kernel-checked credentials (`SO_PASSCRED`),
//! never from the record; the rate limiter; the journal; the live feed to followers
//! (`follow.rs`); and the shutdown.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::PathBuf;
use std::rc::{Rc, Weak};
use std::time::Duration;

use overlap::net::{UnixDatagram, UnixListener};
use overlap::sync::{broadcast, watch, CancellationToken};
use overlap::task::TaskTracker;
use overlap::time::{self, Instant};

use super::format::Entry;
use super::journal::{FileInfo, Journal, Recovery};
use super::ratelimit::{RateLimiter, Suppressed};

#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    /// A file is sealed and a new one started before it would grow past this.
    pub max_file: u64,
    /// Journal files kept, the oldest deleted past this.
    pub keep: usize,
    /// The longest message (after `<P>`).
    pub max_msg: usize,
    pub burst: u32,
    pub window: Duration,
    /// Entries a follower may fall behind the live feed before it is cut off.
    pub follow_lag: usize,
    /// How long a follower may take to send its request.
    pub request_timeout: Duration,
}

impl Config {
    pub fn new(dir: PathBuf) -> Config {
        Config {
            dir,
            max_file: 1 << 20,
            keep: 8,
            max_msg: 256,
            burst: 1000,
            window: Duration::from_secs(10),
            follow_lag: 64,
            request_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub written: u64,
    /// Empty, or cut before the priority's `>`.
    pub truncated: u64,
    pub oversized: u64,
    pub bad_priority: u64,
    pub no_cred: u64,
    /// Records dropped by the rate limiter.
    pub suppressed: u64,
    pub rotations: u64,
    pub removed: u64,
    pub followers: u64,
    pub followers_cut: u64,
    pub bad_requests: u64,
    pub request_timeouts: u64,
}

/// A live entry for the followers: its seq and its record's bytes.
pub type Live = (u64, Rc<Vec<u8>>);

pub struct Shared {
    pub cfg: Config,
    pub stats: RefCell<Stats>,
    pub files: RefCell<Vec<FileInfo>>,
    pub live: broadcast::Sender<Live>,
    pub next_seq: Cell<u64>,
    /// Entries written so far, for a waiter (the tests) not to poll on the clock.
    pub written: watch::Sender<u64>,
    pub journal_fd: Cell<i32>,
    pub token: CancellationToken,
    pub tracker: TaskTracker,
}

pub struct Daemon {
    pub shared: Rc<Shared>,
    pub socket_path: PathBuf,
    pub follow_path: PathBuf,
    pub recovery: Recovery,
    pub socket_fd: i32,
    pub listener_fd: i32,
}

impl Daemon {
    pub async fn start(cfg: Config) -> io::Result<Daemon> {
        use std::os::fd::AsRawFd;
        let (journal, recovery) = Journal::open(&cfg.dir, cfg.max_file, cfg.keep).await?;
        let socket_path = cfg.dir.join("journal.sock");
        let follow_path = cfg.dir.join("follow.sock");
        let _ = std::fs::remove_file(&socket_path);
        let _ = std::fs::remove_file(&follow_path);
        let socket = UnixDatagram::bind(&socket_path)?;
        socket.set_passcred(true)?;
        let listener = UnixListener::bind(&follow_path)?;
        let (live, _) = broadcast::channel(cfg.follow_lag);
        let shared = Rc::new(Shared {
            stats: RefCell::new(Stats::default()),
            files: RefCell::new(journal.files().to_vec()),
            live,
            next_seq: Cell::new(journal.next_seq()),
            written: watch::Sender::new(0),
            journal_fd: Cell::new(journal.fd()),
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            cfg,
        });
        let (socket_fd, listener_fd) = (socket.as_raw_fd(), listener.as_raw_fd());
        shared.tracker.spawn(receive_loop(
            Rc::downgrade(&shared),
            socket,
            journal,
            Instant::now(),
        ));
        shared
            .tracker
            .spawn(super::follow::accept_loop(Rc::downgrade(&shared), listener));
        Ok(Daemon {
            shared,
            socket_path,
            follow_path,
            recovery,
            socket_fd,
            listener_fd,
        })
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.borrow().clone()
    }

    /// Waits until `n` entries have been written in all (suppressed-count entries too).
    pub async fn written(&self, n: u64) {
        let mut rx = self.shared.written.subscribe();
        rx.wait_for(|&w| w >= n)
            .await
            .expect("the daemon is running");
    }

    /// Stops every task, followers too, and gives what is left of the shared state, which
    /// nothing should hold any more.
    pub async fn shutdown(self) -> Weak<Shared> {
        let weak = Rc::downgrade(&self.shared);
        self.shared.token.cancel();
        self.shared.tracker.close();
        let tracker = self.shared.tracker.clone();
        drop(self.shared);
        tracker.wait().await;
        let _ = std::fs::remove_file(&self.socket_path);
        let _ = std::fs::remove_file(&self.follow_path);
        weak
    }
}

enum Event {
    Datagram(io::Result<(usize, Option<overlap::net::unix::UCred>)>),
    WindowsEnd,
    Stop,
}

/// `started`: the entries' timestamps count from there.
async fn receive_loop(
    shared: Weak<Shared>,
    socket: UnixDatagram,
    mut journal: Journal,
    started: Instant,
) {
    let Some(s) = shared.upgrade() else { return };
    let (token, max_msg) = (s.token.clone(), s.cfg.max_msg);
    let mut limiter = RateLimiter::new(s.cfg.burst, s.cfg.window);
    drop(s);
    // One byte over the longest record, to tell an oversized one.
    let mut buf = vec![0u8; max_msg + 4];
    loop {
        let deadline = limiter.next_deadline();
        let event = overlap::select! {
            _ = token.cancelled() => Event::Stop,
            r = socket.recv_from_with_cred(&mut buf) => Event::Datagram(r.map(|(n, _, c)| (n, c))),
            _ = time::sleep_until(deadline.unwrap_or(started)), if deadline.is_some() => Event::WindowsEnd,
        };
        let Some(s) = shared.upgrade() else { return };
        let now = Instant::now();
        let ms = (now - started).as_millis() as u64;
        let mut to_write = Vec::new();
        match event {
            Event::Stop => return,
            Event::WindowsEnd => {
                for owed in limiter.expire(now) {
                    to_write.push(suppressed_entry(owed, ms));
                }
            }
            Event::Datagram(Err(_)) => continue,
            Event::Datagram(Ok((n, cred))) => {
                let mut st = s.stats.borrow_mut();
                st.received += 1;
                let Some(cred) = cred else {
                    st.no_cred += 1;
                    continue;
                };
                let (prio, msg) = match parse(&buf[..n], max_msg) {
                    Ok(p) => p,
                    Err(Malformed::Truncated) => {
                        st.truncated += 1;
                        continue;
                    }
                    Err(Malformed::Oversized) => {
                        st.oversized += 1;
                        continue;
                    }
                    Err(Malformed::BadPriority) => {
                        st.bad_priority += 1;
                        continue;
                    }
                };
                let (ok, owed) = limiter.check(cred.pid, cred.uid, cred.gid, now);
                if let Some(owed) = owed {
                    to_write.push(suppressed_entry(owed, ms));
                }
                if ok {
                    to_write.push(Entry {
                        seq: 0,
                        ms,
                        pid: cred.pid,
                        uid: cred.uid,
                        gid: cred.gid,
                        prio,
                        msg: msg.to_vec(),
                    });
                } else {
                    st.suppressed += 1;
                }
            }
        }
        for e in to_write {
            // The daemon does not stop for a full disk or the like: the entry is lost,
            // and counted as not written.
            let Ok((e, record)) = journal.append(e).await else {
                continue;
            };
            let mut st = s.stats.borrow_mut();
            st.written += 1;
            s.written.send_replace(st.written);
            (st.rotations, st.removed) = (journal.rotations, journal.removed);
            drop(st);
            *s.files.borrow_mut() = journal.files().to_vec();
            s.next_seq.set(journal.next_seq());
            s.journal_fd.set(journal.fd());
            // No follower: nobody to tell.
            let _ = s.live.send((e.seq, Rc::new(record)));
        }
    }
}

fn suppressed_entry(owed: Suppressed, ms: u64) -> Entry {
    Entry {
        seq: 0,
        ms,
        pid: owed.pid,
        uid: owed.uid,
        gid: owed.gid,
        prio: 5,
        msg: format!("suppressed {} messages", owed.n).into_bytes(),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    Truncated,
    Oversized,
    BadPriority,
}

/// `<P>message`: the priority and the message.
pub fn parse(d: &[u8], max_msg: usize) -> Result<(u8, &[u8]), Malformed> {
    if d.len() < 3 || d[0] != b'<' || d[2] != b'>' {
        // A longer number or a letter where the digit goes is a bad priority; anything
        // shorter than `<P>` is cut.
        return Err(if d.len() >= 3 && d[0] == b'<' {
            Malformed::BadPriority
        } else {
            Malformed::Truncated
        });
    }
    if !(b'0'..=b'7').contains(&d[1]) {
        return Err(Malformed::BadPriority);
    }
    let msg = &d[3..];
    if msg.len() > max_msg {
        return Err(Malformed::Oversized);
    }
    Ok((d[1] - b'0', msg))
}
