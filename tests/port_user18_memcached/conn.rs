//! One TCP connection, memcached's way: run every complete command in the input, queue
//! the replies, write them all out before reading again. Once the queue passes
//! `output_limit` the connection writes it out before running another command, so a
//! client that pipelines without reading is held back by its own socket (the server
//! stops reading it) instead of growing the server's memory.

use std::rc::Rc;

use overlap::io::AsyncReadBufExt;
use overlap::net::TcpStream;

use super::exec::{Output, Session, Step};
use super::server::Shared;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Quit,
    /// The client closed between commands.
    Eof,
    /// The client closed in the middle of a data block.
    Truncated,
    LineTooLong,
    Idle,
    Shutdown,
    /// Reading or writing failed (the client reset the connection).
    Io,
}

/// Counts an open connection until dropped, and records how it ended.
struct Open(Rc<Shared>, End);

impl Drop for Open {
    fn drop(&mut self) {
        let c = &self.0.counters;
        c.curr_connections.set(c.curr_connections.get() - 1);
        c.ends.borrow_mut().push(self.1);
    }
}

pub async fn serve(mut stream: TcpStream, shared: Rc<Shared>) {
    let c = &shared.counters;
    c.curr_connections.set(c.curr_connections.get() + 1);
    c.total_connections.set(c.total_connections.get() + 1);
    let mut open = Open(shared.clone(), End::Io);
    open.1 = run(&mut stream, &shared).await;
}

async fn run(stream: &mut TcpStream, shared: &Rc<Shared>) -> End {
    let cfg = shared.cfg;
    let c = &shared.counters;
    let mut session = Session::new(shared.clone());
    let mut out = Output::default();
    let mut input: Vec<u8> = Vec::new();
    let mut start = 0;
    loop {
        // Run what the input holds while the replies fit.
        while out.len() <= cfg.output_limit {
            match session.step(&input[start..], &mut out) {
                Step::Used(n) => {
                    start += n;
                    if !session.mid_block() {
                        c.commands.set(c.commands.get() + 1);
                    }
                }
                Step::More => break,
                Step::Quit => {
                    // The replies of the commands before it still go out.
                    let _ = out.write_to(stream).await;
                    return End::Quit;
                }
                Step::TooLong => {
                    let _ = out.write_to(stream).await;
                    return End::LineTooLong;
                }
            }
        }
        c.peak_output.set(c.peak_output.get().max(out.len()));
        if out.len() > cfg.output_limit {
            c.output_waits.set(c.output_waits.get() + 1);
            c.output_waiting.set(c.output_waiting.get() + 1);
            let written = out.write_to(stream).await;
            c.output_waiting.set(c.output_waiting.get() - 1);
            if written.is_err() {
                return End::Io;
            }
            continue;
        }
        if !out.is_empty() && out.write_to(stream).await.is_err() {
            return End::Io;
        }
        input.drain(..start);
        start = 0;
        let idle = async {
            match cfg.idle_timeout {
                Some(d) => overlap::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let old = input.len();
        input.reserve(16 * 1024);
        // Stop first: after a shutdown nothing more is read, even if it is there.
        let read = overlap::select! {
            biased;
            _ = shared.stop.cancelled() => return End::Shutdown,
            r = stream.read_buf(&mut input) => r,
            _ = { idle } => return End::Idle,
        };
        match read {
            Ok(0) if old > 0 || session.mid_block() => return End::Truncated,
            Ok(0) => return End::Eof,
            Ok(_) => {}
            Err(_) => return End::Io,
        }
    }
}
