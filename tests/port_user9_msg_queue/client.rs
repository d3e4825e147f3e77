//! The clients the tests drive: a publisher waiting for each answer, and a consumer that
//! reads `MSG` records and acks them.

use std::io;
use std::net::SocketAddr;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use overlap::net::TcpStream;

pub struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let conn = TcpStream::connect(addr).await.unwrap();
        // Acks go at once, not behind Nagle's wait for the broker's delayed ACK.
        conn.set_nodelay(true).unwrap();
        let (rd, wr) = conn.into_split();
        Conn {
            rd: BufReader::new(rd),
            wr,
        }
    }

    pub async fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self.rd.read_line(&mut line).await?;
        Ok(line)
    }

    /// Publishes `payload`: its offset, or the broker's refusal.
    pub async fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<u64, String> {
        let mut req = format!("PUB {topic} {}\n", payload.len()).into_bytes();
        req.extend_from_slice(payload);
        self.wr.write_all(&req).await.map_err(|e| e.to_string())?;
        let line = self.line().await.map_err(|e| e.to_string())?;
        match line.strip_prefix("OK ") {
            Some(o) => Ok(o.trim_end().parse().unwrap()),
            None => Err(line),
        }
    }

    pub async fn subscribe(&mut self, topic: &str, from: u64) {
        let req = format!("SUB {topic} {from}\n");
        self.wr.write_all(req.as_bytes()).await.unwrap();
    }

    /// The next record: its offset and payload; or the line that came instead.
    pub async fn next(&mut self) -> Result<(u64, Vec<u8>), String> {
        let line = self.line().await.map_err(|e| e.to_string())?;
        let Some(rest) = line.strip_prefix("MSG ") else {
            return Err(line);
        };
        let (offset, len) = rest.trim_end().split_once(' ').unwrap();
        let mut payload = vec![0; len.parse().unwrap()];
        self.rd.read_exact(&mut payload).await.unwrap();
        Ok((offset.parse().unwrap(), payload))
    }

    pub async fn ack(&mut self, offset: u64) {
        self.wr
            .write_all(format!("ACK {offset}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next record, acked at once.
    pub async fn take(&mut self) -> (u64, Vec<u8>) {
        let (offset, payload) = self.next().await.unwrap();
        self.ack(offset).await;
        (offset, payload)
    }

    /// Fetches the records from `from` on, at most `max` bytes of them, as they lie on
    /// disk: each is checked against its CRC. The broker answers once there is one.
    pub async fn fetch(&mut self, topic: &str, from: u64, max: u64) -> Vec<(u64, Vec<u8>)> {
        let req = format!("FETCH {topic} {from} {max}\n");
        self.wr.write_all(req.as_bytes()).await.unwrap();
        let line = self.line().await.unwrap();
        let words: Vec<u64> = match line.trim_end().strip_prefix("BATCH ") {
            Some(rest) => rest.split(' ').map(|w| w.parse().unwrap()).collect(),
            None => panic!("{line:?}"),
        };
        let mut raw = vec![0; words[2] as usize];
        self.rd.read_exact(&mut raw).await.unwrap();
        let mut records = Vec::new();
        let mut at = &raw[..];
        for offset in words[0]..words[0] + words[1] {
            let (len, crc) = crate::log::header(at[..8].try_into().unwrap()).unwrap();
            let payload = &at[8..8 + len as usize];
            assert_eq!(crate::log::crc32(payload), crc, "record {offset} intact");
            records.push((offset, payload.to_vec()));
            at = &at[8 + len as usize..];
        }
        assert!(at.is_empty(), "whole records only");
        records
    }
}
