//! The tests' client: one connection, one request at a time, answers as lines.

use std::io;
use std::net::SocketAddr;

use overlap::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use overlap::net::TcpStream;

use super::hash::{from_hex, to_hex};

pub struct Client {
    conn: BufReader<TcpStream>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            conn: BufReader::new(stream),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.get_mut().write_all(bytes).await
    }

    /// The next answer line, without its newline; empty at the end of the stream.
    pub async fn line(&mut self) -> io::Result<String> {
        let mut s = String::new();
        self.conn.read_line(&mut s).await?;
        Ok(s.trim_end_matches('\n').to_string())
    }

    /// Whether the server closed the connection (nothing more to read).
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        match self.conn.read_to_end(&mut rest).await {
            Ok(_) => rest.is_empty(),
            Err(_) => true,
        }
    }

    /// PUTs `bytes`; the answer line.
    pub async fn put_line(&mut self, bytes: &[u8]) -> io::Result<String> {
        self.send(format!("PUT {}\n", bytes.len()).as_bytes())
            .await?;
        self.send(bytes).await?;
        self.line().await
    }

    /// PUTs `bytes`, which must succeed; the hash.
    pub async fn put(&mut self, bytes: &[u8]) -> u64 {
        let line = self.put_line(bytes).await.unwrap();
        let hex = line
            .strip_prefix("OK ")
            .unwrap_or_else(|| panic!("PUT: {line}"));
        from_hex(hex).unwrap()
    }

    /// GETs a blob: its bytes, or the `ERR` line.
    pub async fn get(&mut self, hash: u64) -> io::Result<Result<Vec<u8>, String>> {
        self.send(format!("GET {}\n", to_hex(hash)).as_bytes())
            .await?;
        let line = self.line().await?;
        let Some(len) = line.strip_prefix("OK ") else {
            return Ok(Err(line));
        };
        let mut bytes = vec![0u8; len.parse().unwrap()];
        self.conn.read_exact(&mut bytes).await?;
        Ok(Ok(bytes))
    }

    pub async fn has(&mut self, hash: u64) -> String {
        self.send(format!("HAS {}\n", to_hex(hash)).as_bytes())
            .await
            .unwrap();
        self.line().await.unwrap()
    }

    pub async fn del(&mut self, hash: u64) -> String {
        self.send(format!("DEL {}\n", to_hex(hash)).as_bytes())
            .await
            .unwrap();
        self.line().await.unwrap()
    }
}
