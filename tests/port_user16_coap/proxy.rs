//! The tests' packet-dropping proxy: a task on its own UDP socket between one client and
//! the server, dropping each datagram either way with a seeded generator's say, so that
//! what it drops is the same for a seed (the paused clock and loopback keep the order of
//! datagrams the same from run to run).

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::net::UdpSocket;
use overlap::task::JoinHandle;

use super::transmission::Prng;

#[derive(Clone, Debug, Default)]
pub struct ProxyStats {
    pub forwarded: u64,
    pub dropped_to_server: u64,
    pub dropped_to_client: u64,
}

pub struct Proxy {
    pub addr: SocketAddr,
    stats: Rc<RefCell<ProxyStats>>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Relays between the first peer that writes to it and `server`, dropping `loss`% of
    /// the datagrams each way.
    pub async fn start(server: SocketAddr, seed: u64, loss: u64) -> Proxy {
        let host = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(host).await.unwrap();
        let addr = sock.local_addr().unwrap();
        let stats = Rc::new(RefCell::new(ProxyStats::default()));
        let task = overlap::spawn(run(sock, server, Prng::new(seed), loss, stats.clone()));
        Proxy { addr, stats, task }
    }

    pub fn stats(&self) -> ProxyStats {
        self.stats.borrow().clone()
    }

    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn run(
    sock: UdpSocket,
    server: SocketAddr,
    mut rng: Prng,
    loss: u64,
    stats: Rc<RefCell<ProxyStats>>,
) {
    let mut buf = vec![0u8; 65536];
    let mut client = None;
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let to = if from == server {
            match client {
                Some(c) => c,
                None => continue,
            }
        } else {
            client = Some(from);
            server
        };
        if rng.percent(loss) {
            let mut st = stats.borrow_mut();
            if to == server {
                st.dropped_to_server += 1;
            } else {
                st.dropped_to_client += 1;
            }
            continue;
        }
        stats.borrow_mut().forwarded += 1;
        let _ = sock.send_to(&buf[..n], to).await;
    }
}
