//! UDP and accept: datagrams sent and received through cut operations, and connections
//! accepted through cut `accept`s while their clients' `connect`s are cut too.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::{TcpListener, TcpStream, UdpSocket};
use overlap::sync::Notify;

use crate::cut::{clear, cut, pause, pick, seed};
use crate::support::{datagram, Rng};

/// The id of the datagram that ends a run.
const END: u32 = u32::MAX;

/// Sends up to 40 numbered datagrams (each maybe cut) from a socket to another, which one
/// to three tasks share, each receiving through cut `recv_from`s (a cut wait must not keep
/// a datagram from another): every datagram a `send_to` reported sent arrives once, whole,
/// from the right address, in order for each receiver, and no other does.
pub async fn udp(rng: &mut Rng) {
    let host = if rng.below(3) == 0 {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let rx = Rc::new(UdpSocket::bind(host).await.unwrap());
    let tx = UdpSocket::bind(host).await.unwrap();
    let (to, from) = (rx.local_addr().unwrap(), tx.local_addr().unwrap());
    let sent = Rc::new(RefCell::new(Vec::new()));
    let count = rng.below(40) as u32;
    let receivers = 1 + rng.below(3);
    let mut srng = Rng(rng.next() | 1);
    let sent2 = sent.clone();
    let sender = overlap::spawn(async move {
        for id in 0..count {
            let msg = numbered(id);
            match cut(pick(&mut srng), tx.send_to(&msg, to)).await {
                Some(Ok(n)) => {
                    assert_eq!(n, msg.len(), "seed {}: udp: short send", seed());
                    sent2.borrow_mut().push(id);
                }
                Some(Err(e)) => {
                    clear("udp send_to", &e);
                    panic!("seed {}: udp send_to: {e:?}", seed());
                }
                None => {}
            }
            pause(&mut srng).await;
        }
        // One end mark per receiver: each stops at the first it gets.
        for _ in 0..receivers {
            tx.send_to(&numbered(END), to).await.unwrap();
        }
    });
    let tasks: Vec<_> = (0..receivers)
        .map(|_| {
            let (rx, sent, mut rrng) = (rx.clone(), sent.clone(), Rng(rng.next() | 1));
            overlap::spawn(async move { receive(&rx, from, &sent, &mut rrng).await })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.extend(task.await.unwrap());
    }
    sender.await.unwrap();
    got.sort_unstable();
    assert_eq!(got, *sent.borrow(), "seed {}: udp: datagrams lost", seed());
}

/// One receiver's loop, until an end mark: the numbers it got.
async fn receive(
    rx: &UdpSocket,
    from: SocketAddr,
    sent: &RefCell<Vec<u32>>,
    rng: &mut Rng,
) -> Vec<u32> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 2000];
    loop {
        if rng.below(4) == 0 {
            // A peek, cut or not, takes nothing from the queue.
            if let Some(res) = cut(pick(rng), rx.peek_from(&mut buf)).await {
                let (n, addr) = res.unwrap_or_else(|e| panic!("seed {}: udp peek: {e:?}", seed()));
                check_datagram(&buf[..n], addr, from);
            }
        }
        match cut(pick(rng), rx.recv_from(&mut buf)).await {
            Some(Ok((n, addr))) => {
                let id = check_datagram(&buf[..n], addr, from);
                if id == END {
                    return got;
                }
                assert!(
                    sent.borrow().contains(&id) && got.last().is_none_or(|&l| l < id),
                    "seed {}: udp: datagram {id} arrived, sent {:?}, got {got:?}",
                    seed(),
                    sent.borrow()
                );
                got.push(id);
            }
            Some(Err(e)) => {
                clear("udp recv_from", &e);
                panic!("seed {}: udp recv_from: {e:?}", seed());
            }
            None => {}
        }
    }
}

/// Datagram `id`: its number, then bytes derived from it.
fn numbered(id: u32) -> Vec<u8> {
    let mut msg = id.to_le_bytes().to_vec();
    msg.extend(datagram(id as usize % 5000));
    msg
}

/// Checks a received datagram; its number.
fn check_datagram(msg: &[u8], addr: SocketAddr, from: SocketAddr) -> u32 {
    assert_eq!(addr, from, "seed {}: udp: wrong source", seed());
    assert!(msg.len() >= 4, "seed {}: udp: runt datagram", seed());
    let id = u32::from_le_bytes(msg[..4].try_into().unwrap());
    assert!(
        msg == numbered(id),
        "seed {}: udp: datagram {id} mangled",
        seed()
    );
    id
}

/// Up to six clients connect (each `connect` maybe cut) and send their number; one to
/// three tasks sharing a listener accept through cut `accept`s. Every client whose `connect` completed is accepted and
/// heard: a cut `accept` loses no connection.
pub async fn accept(rng: &mut Rng) {
    let host = if rng.below(3) == 0 {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let listener = TcpListener::bind(host).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heard = Rc::new(RefCell::new(BTreeSet::new()));
    let news = Rc::new(Notify::new());
    let readers = Rc::new(RefCell::new(Vec::new()));
    let (heard2, news2, readers2) = (heard.clone(), news.clone(), readers.clone());
    let listener = Rc::new(listener);
    let servers: Vec<_> = (0..1 + rng.below(3))
        .map(|_| {
            let (listener, heard2, news2, readers2) = (
                listener.clone(),
                heard2.clone(),
                news2.clone(),
                readers2.clone(),
            );
            let mut srng = Rng(rng.next() | 1);
            overlap::spawn(async move {
                loop {
                    match cut(pick(&mut srng), listener.accept()).await {
                        Some(Ok((mut s, _))) => {
                            let (heard, news) = (heard2.clone(), news2.clone());
                            readers2.borrow_mut().push(overlap::spawn(async move {
                                let mut got = Vec::new();
                                // A client cut while connecting may have closed, or reset.
                                if s.read_to_end(&mut got).await.is_ok() && got.len() == 4 {
                                    heard
                                        .borrow_mut()
                                        .insert(u32::from_le_bytes(got[..].try_into().unwrap()));
                                    news.notify_one();
                                }
                            }));
                        }
                        Some(Err(e)) => clear("accept", &e),
                        None => pause(&mut srng).await,
                    }
                }
            })
        })
        .collect();
    drop(listener);
    let clients: Vec<_> = (0..rng.below(7) as u32)
        .map(|id| {
            let how = pick(rng);
            overlap::spawn(async move {
                let mut s = cut(how, TcpStream::connect(addr)).await?.unwrap();
                s.write_all(&id.to_le_bytes()).await.unwrap();
                s.close().await.unwrap();
                Some(id)
            })
        })
        .collect();
    let mut expected = BTreeSet::new();
    for c in clients {
        expected.extend(c.await.unwrap());
    }
    while !expected.is_subset(&heard.borrow()) {
        news.notified().await;
    }
    for server in servers {
        server.abort();
        assert!(server.await.unwrap_err().is_cancelled());
    }
    let readers = std::mem::take(&mut *readers.borrow_mut());
    for reader in readers {
        reader.await.unwrap();
    }
}
