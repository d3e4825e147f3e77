//! Fake upstream servers: UDP and TCP on one port of a loopback address, answering every A
//! question from a table the names pick (see `records`), counting what they are asked.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::task::JoinSet;

use crate::forwarder::{bind_pair, read_frame, write_frame};
use crate::wire::{self, Question};

/// TTL of every record.
pub const TTL: u32 = 60;
/// How long a `slow.` name waits before its answer.
pub const SLOW: Duration = Duration::from_millis(300);

/// What the upstream `no` answers to `q`: its rcode and addresses. `big.` names have 40
/// records (past 512 bytes), `nx.` ones none (NXDOMAIN), the rest one.
pub fn records(no: u8, q: &Question) -> (u16, Vec<[u8; 4]>) {
    if q.name.starts_with("nx.") {
        (wire::NXDOMAIN, Vec::new())
    } else if q.name.starts_with("big.") {
        (0, (0..40).map(|i| [10, no, 1, i]).collect())
    } else {
        (0, vec![[10, no, 0, q.name.len() as u8]])
    }
}

/// The upstream `no`'s full response to a query for `q` with `id`.
pub fn expected(no: u8, id: u16, q: &Question) -> Vec<u8> {
    let (rcode, addrs) = records(no, q);
    wire::response(id, q, rcode, TTL, &addrs)
}

pub struct Upstream {
    pub addr: SocketAddr,
    pub udp_queries: Rc<Cell<u32>>,
    pub tcp_queries: Rc<Cell<u32>>,
    /// Before each UDP answer, send one with the wrong id, and one from another address.
    pub spoof: Rc<Cell<bool>>,
    _tasks: JoinSet<()>,
}

impl Upstream {
    /// Upstream `no` on `ip`.
    pub async fn start(ip: &str, no: u8) -> Upstream {
        let (udp, tcp) = bind_pair(ip).await;
        // Spoofed answers come from another address (another port on ::1).
        let spoof_ip = if ip.contains(':') { "::1" } else { "127.0.0.9" };
        let spoofer = UdpSocket::bind((spoof_ip, 0)).await.unwrap();
        let up = Upstream {
            addr: udp.local_addr().unwrap(),
            udp_queries: Rc::default(),
            tcp_queries: Rc::default(),
            spoof: Rc::default(),
            _tasks: JoinSet::new(),
        };
        let mut tasks = JoinSet::new();
        let (count, spoof) = (up.udp_queries.clone(), up.spoof.clone());
        tasks.spawn(serve_udp(no, Rc::new(udp), spoofer, count, spoof));
        tasks.spawn(serve_tcp(no, tcp, up.tcp_queries.clone()));
        Upstream {
            _tasks: tasks,
            ..up
        }
    }
}

async fn serve_udp(
    no: u8,
    sock: Rc<UdpSocket>,
    spoofer: UdpSocket,
    count: Rc<Cell<u32>>,
    spoof: Rc<Cell<bool>>,
) {
    let spoofer = Rc::new(spoofer);
    let mut answers = JoinSet::new();
    let mut buf = [0u8; 512];
    loop {
        while answers.try_join_next().is_some() {}
        let (n, from) = sock.recv_from(&mut buf).await.unwrap();
        let q = wire::parse(&buf[..n], false).unwrap();
        count.set(count.get() + 1);
        let (sock, spoofer, spoof) = (sock.clone(), spoofer.clone(), spoof.get());
        answers.spawn(async move {
            if q.question.name.starts_with("slow.") {
                overlap::time::sleep(SLOW).await;
            }
            let mut reply = expected(no, q.id, &q.question);
            if spoof {
                let fake = wire::response(q.id, &q.question, 0, TTL, &[[6, 6, 6, 6]]);
                spoofer.send_to(&fake, from).await.unwrap();
                let wrong_id = q.id.wrapping_add(1);
                let fake = wire::response(wrong_id, &q.question, 0, TTL, &[[6, 6, 6, 6]]);
                sock.send_to(&fake, from).await.unwrap();
            }
            if reply.len() > wire::UDP_LIMIT || q.question.name.starts_with("tc.") {
                reply = wire::truncated(&reply, q.question_end);
            }
            sock.send_to(&reply, from).await.unwrap();
        });
    }
}

async fn serve_tcp(no: u8, listener: TcpListener, count: Rc<Cell<u32>>) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let (conn, _) = listener.accept().await.unwrap();
        conns.spawn(serve_conn(no, conn, count.clone()));
    }
}

async fn serve_conn(no: u8, mut conn: TcpStream, count: Rc<Cell<u32>>) {
    while let Ok(msg) = read_frame(&mut conn).await {
        let q = wire::parse(&msg, false).unwrap();
        count.set(count.get() + 1);
        if write_frame(&mut conn, &expected(no, q.id, &q.question))
            .await
            .is_err()
        {
            return;
        }
    }
}
