//! The other design a tokio user reaches for, tokio-postgres's: a task owns the connection
//! and runs the requests queued on an `mpsc` channel, each answered through a `oneshot`.
//! A query future dropped midway then costs nothing: the task still reads the whole
//! answer (draining it) and finds the reply channel closed; a request dropped before the
//! task took it up is skipped. The connection is never left mid-message.

use std::io;
use std::net::SocketAddr;

use overlap::sync::{mpsc, oneshot};
use overlap::task::JoinHandle;

use super::client::{Connection, DbError};

struct Request {
    sql: String,
    reply: oneshot::Sender<Result<Vec<String>, DbError>>,
}

/// A handle on the connection's task; clones share the connection.
#[derive(Clone)]
pub struct Client {
    requests: mpsc::Sender<Request>,
}

impl Client {
    /// Connects, and spawns the task that drives the connection; it ends (saying goodbye
    /// to the server) once every `Client` is dropped.
    pub async fn connect(
        addr: SocketAddr,
        password: &str,
    ) -> Result<(Client, JoinHandle<(usize, usize)>), DbError> {
        let conn = Connection::connect(addr, "app", password).await?;
        // A queue of one, so callers also wait (and are cut) in `send`.
        let (requests, queue) = mpsc::channel(1);
        Ok((Client { requests }, overlap::spawn(drive(conn, queue))))
    }

    pub async fn query(&self, sql: &str) -> Result<Vec<String>, DbError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            sql: sql.to_string(),
            reply,
        };
        let gone = || {
            DbError::Io(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection task gone",
            ))
        };
        self.requests.send(request).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Runs the queued requests one by one, each to the end of its answer; returns how many
/// it ran and how many it skipped.
async fn drive(mut conn: Connection, mut queue: mpsc::Receiver<Request>) -> (usize, usize) {
    let (mut ran, mut skipped) = (0, 0);
    while let Some(request) = queue.recv().await {
        if request.reply.is_closed() {
            // Its caller gave up before it was sent: not worth a round trip.
            skipped += 1;
            continue;
        }
        ran += 1;
        let res = conn.query(&request.sql).await;
        let failed = matches!(res, Err(DbError::Io(_)));
        let _ = request.reply.send(res);
        if failed {
            break;
        }
    }
    conn.terminate().await;
    (ran, skipped)
}
