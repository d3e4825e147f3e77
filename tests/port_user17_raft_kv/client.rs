//! The client library: a text line per command over TCP to any node, following
//! `REDIRECT n` to the leader, trying the next node when one is down, silent or has no
//! leader, and giving up after a number of attempts.

use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use overlap::codec::{Framed, LinesCodec};
use overlap::net::TcpStream;
use overlap::sink::SinkExt;
use overlap::stream::StreamExt;
use overlap::time;

use crate::node::MAX_LINE;
use crate::transport::Net;

pub struct Client {
    net: Rc<Net>,
    n: u8,
    guess: u8,
    conns: HashMap<u8, Framed<TcpStream, LinesCodec>>,
    /// How long one node gets to answer.
    pub request_timeout: Duration,
    pub attempts: usize,
    /// Redirects followed and nodes given up on, for the tests.
    pub redirects: u64,
    pub failovers: u64,
}

impl Client {
    pub fn new(net: Rc<Net>, n: u8) -> Client {
        Client {
            net,
            n,
            guess: 0,
            conns: HashMap::new(),
            request_timeout: Duration::from_secs(1),
            attempts: 60,
            redirects: 0,
            failovers: 0,
        }
    }

    /// One line to node `id` and its answer, on a connection kept for the next.
    pub async fn ask(&mut self, id: u8, line: &str) -> io::Result<String> {
        if !self.conns.contains_key(&id) {
            let addr = self.net.client_addr(id).ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("node {id} is down"))
            })?;
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            self.conns.insert(
                id,
                Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE)),
            );
        }
        let conn = self.conns.get_mut(&id).unwrap();
        let r = time::timeout(self.request_timeout, async {
            conn.send(line.to_string())
                .await
                .map_err(io::Error::other)?;
            match conn.next().await {
                Some(r) => r.map_err(io::Error::other),
                None => Err(io::ErrorKind::UnexpectedEof.into()),
            }
        })
        .await;
        let r = r.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()));
        if r.is_err() {
            self.conns.remove(&id);
        }
        r
    }

    /// Runs a command on the leader: its reply (`OK`, `VALUE v`, `NONE`, `ERR ...`).
    pub async fn command(&mut self, line: &str) -> io::Result<String> {
        for _ in 0..self.attempts {
            let id = self.guess;
            match self.ask(id, line).await {
                Ok(r) if r.starts_with("REDIRECT ") => {
                    match r[9..].parse::<u8>() {
                        Ok(l) if l != id => {
                            self.redirects += 1;
                            self.guess = l;
                        }
                        // No leader known (or a stale one): an election is on.
                        _ => {
                            self.guess = (id + 1) % self.n;
                            time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                Ok(r) => return Ok(r),
                Err(_) => {
                    self.failovers += 1;
                    self.guess = (id + 1) % self.n;
                    time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{line:?}: no leader answered"),
        ))
    }

    pub async fn put(&mut self, key: &str, value: &str) -> io::Result<()> {
        match self.command(&format!("PUT {key} {value}")).await?.as_str() {
            "OK" => Ok(()),
            other => Err(io::Error::other(other.to_string())),
        }
    }

    pub async fn get(&mut self, key: &str) -> io::Result<Option<String>> {
        let r = self.command(&format!("GET {key}")).await?;
        match (r.as_str(), r.strip_prefix("VALUE ")) {
            (_, Some(v)) => Ok(Some(v.to_string())),
            ("NONE", _) => Ok(None),
            _ => Err(io::Error::other(r)),
        }
    }
}
