//! The driver: one task per endpoint owning the socket, the send window with a
//! retransmission timer per packet in a `DelayQueue` (the key kept with the packet,
//! removed on its ACK, reset on a fast retransmit), the RTT estimate (RFC 6298) and the
//! receive side's reorder buffer, running a `select!` over the socket, the queue's next
//! expiry, the app's commands, the app's reads and the keepalive tick.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::UdpSocket;
use overlap::stream::StreamExt;
use overlap::sync::mpsc;
use overlap::time::{self, delay_queue::Key, DelayQueue, Instant};

use super::conn::{after_close, Cmd, Config, Reply, Shared};
use super::proto::{Kind, Packet, HEADER, NO_ECHO};

struct Seg {
    kind: Kind,
    data: Vec<u8>,
    key: Option<Key>,
    sent_at: Instant,
    retries: u32,
    /// This packet's own timeout, doubled at each retransmission.
    rto: Duration,
    retransmitted: bool,
}

enum Event {
    Datagram(io::Result<usize>),
    Timeout(u32),
    Cmd(Option<Cmd>),
    Taken,
    Tick,
}

pub struct Driver {
    sock: UdpSocket,
    conn: u32,
    cfg: Config,
    shared: Rc<Shared>,
    // The send side.
    snd_una: u32,
    snd_nxt: u32,
    /// The peer's receive window's end, from its ACKs.
    peer_limit: u32,
    segs: BTreeMap<u32, Seg>,
    timers: DelayQueue<u32>,
    /// Bytes the app gave and not yet in packets, with how far they are, and the reply.
    pending: VecDeque<(Vec<u8>, usize, Reply)>,
    close_asked: bool,
    close_reply: Option<Reply>,
    fin_seq: Option<u32>,
    dup_acks: u32,
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    // The receive side.
    rcv_nxt: u32,
    ooo: BTreeMap<u32, Packet>,
    peer_fin: bool,
    adv_sent: u32,
    last_recv: Instant,
    last_send: Instant,
}

type Step = Result<(), io::Error>;

impl Driver {
    pub fn new(sock: UdpSocket, conn: u32, cfg: Config, shared: Rc<Shared>) -> Driver {
        let now = time::now();
        let rto = cfg.initial_rto;
        Driver {
            sock,
            conn,
            shared,
            snd_una: 0,
            snd_nxt: 0,
            peer_limit: 1,
            segs: BTreeMap::new(),
            timers: DelayQueue::new(),
            pending: VecDeque::new(),
            close_asked: false,
            close_reply: None,
            fin_seq: None,
            dup_acks: 0,
            srtt: None,
            rttvar: Duration::ZERO,
            rto,
            rcv_nxt: 0,
            ooo: BTreeMap::new(),
            peer_fin: false,
            adv_sent: 0,
            last_recv: now,
            last_send: now,
            cfg,
        }
    }

    pub async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>) {
        let mut buf = vec![0u8; HEADER + self.cfg.mss + 64];
        let mut tick = time::interval(self.cfg.keepalive);
        tick.tick().await;
        let res = loop {
            if self.done() {
                break Ok(());
            }
            let ev = overlap::select! {
                r = self.sock.recv(&mut buf) => Event::Datagram(r),
                Some(e) = self.timers.next() => Event::Timeout(e.into_inner()),
                c = cmds.recv() => Event::Cmd(c),
                _ = self.shared.taken.notified() => Event::Taken,
                _ = tick.tick() => Event::Tick,
            };
            let step = match ev {
                // A refused send (ICMP, the peer's port closed) is not the end: the
                // retransmission timers decide.
                Event::Datagram(Err(_)) => Ok(()),
                Event::Datagram(Ok(n)) => self.on_datagram(&buf[..n]).await,
                Event::Timeout(seq) => self.on_timeout(seq).await,
                Event::Cmd(Some(cmd)) => {
                    self.on_cmd(cmd);
                    Ok(())
                }
                // The handle is gone: nobody to deliver to.
                Event::Cmd(None) => return,
                Event::Taken => self.window_update().await,
                Event::Tick => self.on_tick().await,
            };
            match step {
                Ok(()) => self.fill_window().await,
                Err(e) => break Err(e),
            }
        };
        match res {
            Ok(()) => {
                // Linger, answering a FIN whose ACK was lost.
                let end = time::sleep(self.cfg.linger);
                overlap::pin_mut!(end);
                loop {
                    overlap::select! {
                        r = self.sock.recv(&mut buf) => if let Ok(n) = r {
                            let _ = self.on_datagram(&buf[..n]).await;
                        },
                        _ = &mut end => break,
                    }
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn done(&self) -> bool {
        let fin_acked = self.fin_seq.is_some_and(|f| self.snd_una > f);
        fin_acked && self.peer_fin
    }

    fn fail(&mut self, e: io::Error) {
        *self.shared.error.borrow_mut() = Some((e.kind(), e.to_string()));
        self.shared.readable.notify_one();
        for (_, _, reply) in self.pending.drain(..) {
            let _ = reply.send(Err(self.shared.err()));
        }
        if let Some(reply) = self.close_reply.take() {
            let _ = reply.send(Err(self.shared.err()));
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Send(data, reply) if self.close_asked => {
                let _ = reply.send(Err(after_close(data.len())));
            }
            Cmd::Send(data, reply) if data.is_empty() => drop(reply.send(Ok(()))),
            Cmd::Send(data, reply) => self.pending.push_back((data, 0, reply)),
            Cmd::Close(reply) => {
                self.close_asked = true;
                self.close_reply = Some(reply);
            }
        }
    }

    async fn put(&mut self, p: Packet) {
        let _ = self.sock.send(&p.encode()).await;
        self.last_send = time::now();
    }

    fn packet(&self, kind: Kind, seq: u32, body: Vec<u8>) -> Packet {
        Packet {
            kind,
            conn: self.conn,
            seq,
            ack: self.rcv_nxt,
            wnd: 0,
            body,
        }
    }

    /// Arms `seq`'s timer for `rto`, noting the timeout the queue reports.
    fn arm(&mut self, seq: u32, rto: Duration) -> Key {
        let key = self.timers.insert(seq, rto);
        let armed = self.timers.deadline(&key) - time::now();
        self.shared.stats.borrow_mut().armed.push((seq, armed));
        key
    }

    /// Sends new packets while the window (ours and the peer's) has room.
    async fn fill_window(&mut self) {
        loop {
            let limit = (self.snd_una + self.cfg.window).min(self.peer_limit);
            if self.snd_nxt >= limit {
                break;
            }
            let (kind, data) = if let Some((data, off, _)) = self.pending.front_mut() {
                let end = (*off + self.cfg.mss).min(data.len());
                let chunk = data[*off..end].to_vec();
                *off = end;
                if end == data.len() {
                    let (_, _, reply) = self.pending.pop_front().unwrap();
                    let _ = reply.send(Ok(()));
                }
                (Kind::Data, chunk)
            } else if self.close_asked && self.fin_seq.is_none() {
                self.fin_seq = Some(self.snd_nxt);
                (Kind::Fin, Vec::new())
            } else {
                break;
            };
            let seq = self.snd_nxt;
            self.snd_nxt += 1;
            let key = self.arm(seq, self.rto);
            let p = self.packet(kind, seq, data.clone());
            self.segs.insert(
                seq,
                Seg {
                    kind,
                    data,
                    key: Some(key),
                    sent_at: time::now(),
                    retries: 0,
                    rto: self.rto,
                    retransmitted: false,
                },
            );
            self.put(p).await;
            let in_flight = self.snd_nxt - self.snd_una;
            self.shared.in_flight.set(in_flight);
            let mut stats = self.shared.stats.borrow_mut();
            stats.first_sends += 1;
            stats.max_in_flight = stats.max_in_flight.max(in_flight);
        }
    }

    async fn on_timeout(&mut self, seq: u32) -> Step {
        let max_rto = self.cfg.max_rto;
        let Some(seg) = self.segs.get_mut(&seq) else {
            return Ok(());
        };
        seg.key = None;
        if seg.retries >= self.cfg.max_retries {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!(
                    "the peer is not answering: packet {seq} sent {} times",
                    seg.retries + 1
                ),
            ));
        }
        seg.retries += 1;
        seg.retransmitted = true;
        seg.rto = (seg.rto * 2).min(max_rto);
        seg.sent_at = time::now();
        let (rto, kind, data) = (seg.rto, seg.kind, seg.data.clone());
        // Karn: the backed-off timeout stays until an unambiguous sample.
        self.rto = self.rto.max(rto);
        self.shared.stats.borrow_mut().rto = self.rto;
        let key = self.arm(seq, rto);
        self.segs.get_mut(&seq).unwrap().key = Some(key);
        self.shared.stats.borrow_mut().rto_retransmits += 1;
        self.dup_acks = 0;
        let p = self.packet(kind, seq, data);
        self.put(p).await;
        Ok(())
    }

    async fn on_datagram(&mut self, bytes: &[u8]) -> Step {
        let p = match Packet::decode(bytes, self.cfg.mss) {
            Ok(p) => p,
            Err(_) => {
                self.shared.stats.borrow_mut().malformed += 1;
                return Ok(());
            }
        };
        if p.conn != self.conn {
            self.shared.stats.borrow_mut().wrong_conn += 1;
            return Ok(());
        }
        if p.kind == Kind::Ack && p.ack > self.snd_nxt {
            self.shared.stats.borrow_mut().malformed += 1;
            return Ok(());
        }
        self.last_recv = time::now();
        match p.kind {
            Kind::Data | Kind::Fin => self.on_data(p).await,
            Kind::Ack => self.on_ack(p).await,
            Kind::Ping => self.send_ack(NO_ECHO).await,
        }
        Ok(())
    }

    /// The free receive window, in packets.
    fn adv(&self) -> u32 {
        let free = self
            .cfg
            .rcv_cap
            .saturating_sub(self.shared.inbox.borrow().len());
        (free / self.cfg.mss).min(255) as u32
    }

    async fn on_data(&mut self, p: Packet) {
        let seq = p.seq;
        if seq < self.rcv_nxt || self.ooo.contains_key(&seq) || self.peer_fin {
            self.shared.stats.borrow_mut().dup_data += 1;
        } else if seq >= self.rcv_nxt + self.adv() {
            self.shared.stats.borrow_mut().out_of_window += 1;
        } else {
            if seq > self.rcv_nxt {
                self.shared.stats.borrow_mut().reordered += 1;
            }
            self.ooo.insert(seq, p);
            while let Some(p) = self.ooo.remove(&self.rcv_nxt) {
                self.rcv_nxt += 1;
                if p.kind == Kind::Fin {
                    self.peer_fin = true;
                    self.shared.eof.set(true);
                    self.ooo.clear();
                    break;
                }
                self.shared.inbox.borrow_mut().extend(&p.body);
            }
            self.shared.readable.notify_one();
        }
        self.send_ack(seq).await;
    }

    async fn send_ack(&mut self, echo: u32) {
        let mut sack = 0u32;
        for i in 0..32 {
            if self.ooo.contains_key(&(self.rcv_nxt + 1 + i)) {
                sack |= 1 << i;
            }
        }
        let mut p = self.packet(Kind::Ack, echo, sack.to_be_bytes().to_vec());
        self.adv_sent = self.adv();
        p.wnd = self.adv_sent as u8;
        self.shared.stats.borrow_mut().acks_sent += 1;
        self.put(p).await;
    }

    /// The app read: tell the peer if the window opened.
    async fn window_update(&mut self) -> Step {
        if self.adv() > self.adv_sent && !self.peer_fin {
            self.shared.stats.borrow_mut().window_updates += 1;
            self.send_ack(NO_ECHO).await;
        }
        Ok(())
    }

    fn sample(&mut self, r: Duration) {
        let (srtt, rttvar) = match self.srtt {
            None => (r, r / 2),
            Some(s) => {
                let diff = s.abs_diff(r);
                (s * 7 / 8 + r / 8, self.rttvar * 3 / 4 + diff / 4)
            }
        };
        self.srtt = Some(srtt);
        self.rttvar = rttvar;
        let var = (rttvar * 4).max(Duration::from_millis(1));
        self.rto = (srtt + var).clamp(self.cfg.min_rto, self.cfg.max_rto);
        let mut stats = self.shared.stats.borrow_mut();
        stats.srtt = Some(srtt);
        stats.rto = self.rto;
    }

    async fn on_ack(&mut self, p: Packet) {
        let cum = p.ack;
        self.peer_limit = self.peer_limit.max(cum + p.wnd as u32);
        if let Some(seg) = self.segs.get(&p.seq) {
            if !seg.retransmitted {
                self.sample(time::now() - seg.sent_at);
            }
        }
        if cum > self.snd_una {
            for seq in self.snd_una..cum {
                if let Some(Seg { key: Some(k), .. }) = self.segs.remove(&seq) {
                    self.timers.remove(&k);
                }
            }
            self.snd_una = cum;
            self.dup_acks = 0;
            self.shared.in_flight.set(self.snd_nxt - self.snd_una);
            if self.fin_seq.is_some_and(|f| cum > f) {
                if let Some(reply) = self.close_reply.take() {
                    let _ = reply.send(Ok(()));
                }
            }
        } else if cum == self.snd_una && self.snd_nxt > cum && p.seq != NO_ECHO {
            self.dup_acks += 1;
            if self.dup_acks == 3 {
                self.fast_retransmit().await;
            }
        }
        let sack = p.sack();
        for i in 0..32 {
            if sack & (1 << i) != 0 {
                if let Some(seg) = self.segs.get_mut(&(cum + 1 + i)) {
                    if let Some(k) = seg.key.take() {
                        self.timers.remove(&k);
                    }
                }
            }
        }
    }

    async fn fast_retransmit(&mut self) {
        let seq = self.snd_una;
        let rto = self.rto;
        let Some(seg) = self.segs.get_mut(&seq) else {
            return;
        };
        seg.retransmitted = true;
        seg.sent_at = time::now();
        let (kind, data, key) = (seg.kind, seg.data.clone(), seg.key.take());
        let key = match key {
            Some(k) => {
                self.timers.reset(&k, rto);
                let armed = self.timers.deadline(&k) - time::now();
                self.shared.stats.borrow_mut().armed.push((seq, armed));
                k
            }
            None => self.arm(seq, rto),
        };
        self.segs.get_mut(&seq).unwrap().key = Some(key);
        self.shared.stats.borrow_mut().fast_retransmits += 1;
        let p = self.packet(kind, seq, data);
        self.put(p).await;
    }

    async fn on_tick(&mut self) -> Step {
        let now = time::now();
        if now - self.last_recv >= self.cfg.idle {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("nothing from the peer for {:?}", now - self.last_recv),
            ));
        }
        if now - self.last_send >= self.cfg.keepalive {
            let p = self.packet(Kind::Ping, 0, Vec::new());
            self.shared.stats.borrow_mut().pings_sent += 1;
            self.put(p).await;
        }
        Ok(())
    }
}
