//! Alerts: each change of a check's status POSTed to a webhook as JSON, in order, retried
//! with backoff; while the webhook is down, changes of a check already queued are
//! coalesced into its entry, and past the queue's bound the oldest entry is dropped.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::{AsyncReadExt, AsyncWriteExt};
use overlap::net::TcpStream;
use overlap::sync::{CancellationToken, Notify};

use super::checks::{parse_response, Status};

#[derive(Clone, Debug)]
pub struct AlertConfig {
    pub webhook: SocketAddr,
    pub path: String,
    /// At most this many checks' alerts wait.
    pub queue: usize,
    /// The first and the longest wait between failed deliveries.
    pub backoff: (Duration, Duration),
    pub timeout: Duration,
}

/// One check's undelivered change: from the status last delivered (or known) to the
/// latest, through `changes` changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    pub check: String,
    pub from: Status,
    pub to: Status,
    pub changes: u32,
}

impl Pending {
    pub fn json(&self) -> String {
        format!(
            r#"{{"check":"{}","from":"{}","to":"{}","changes":{}}}"#,
            json_escape(&self.check),
            self.from,
            self.to,
            self.changes
        )
    }
}

/// `s` as the inside of a JSON string.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub struct Alerts {
    bound: usize,
    queue: RefCell<VecDeque<Pending>>,
    wake: Notify,
    pub dropped: Cell<u64>,
    pub delivered: Cell<u64>,
    pub failures: Cell<u64>,
}

impl Alerts {
    pub fn new(bound: usize) -> Alerts {
        Alerts {
            bound,
            queue: RefCell::new(VecDeque::new()),
            wake: Notify::new(),
            dropped: Cell::new(0),
            delivered: Cell::new(0),
            failures: Cell::new(0),
        }
    }

    /// Queues a change of `check`: merged into its entry if it has one waiting.
    pub fn push(&self, check: &str, from: Status, to: Status) {
        let mut queue = self.queue.borrow_mut();
        if let Some(p) = queue.iter_mut().find(|p| p.check == check) {
            p.to = to;
            p.changes += 1;
        } else {
            if queue.len() == self.bound {
                queue.pop_front();
                self.dropped.set(self.dropped.get() + 1);
            }
            queue.push_back(Pending {
                check: check.to_string(),
                from,
                to,
                changes: 1,
            });
        }
        self.wake.notify_one();
    }

    pub fn waiting(&self) -> Vec<Pending> {
        self.queue.borrow().iter().cloned().collect()
    }

    /// `sent` went out: off the queue, or, if the check changed again meanwhile, what is
    /// left of its entry.
    fn sent(&self, sent: &Pending) {
        let mut queue = self.queue.borrow_mut();
        let Some(i) = queue.iter().position(|p| p.check == sent.check) else {
            return; // dropped for the bound meanwhile
        };
        if queue[i] == *sent {
            queue.remove(i);
        } else {
            queue[i].from = sent.to;
            queue[i].changes = queue[i].changes.saturating_sub(sent.changes).max(1);
        }
    }
}

/// The delivery task: the oldest alert first, retried with doubling waits until the
/// webhook takes it.
pub async fn deliver(alerts: Rc<Alerts>, cfg: AlertConfig, token: CancellationToken) {
    let mut wait = cfg.backoff.0;
    loop {
        let front = alerts.queue.borrow().front().cloned();
        let Some(alert) = front else {
            overlap::select! {
                _ = alerts.wake.notified() => continue,
                _ = token.cancelled() => return,
            }
        };
        let body = alert.json();
        let posted = overlap::select! {
            r = post(&cfg, &body) => r,
            _ = token.cancelled() => return,
        };
        match posted {
            Ok(()) => {
                alerts.delivered.set(alerts.delivered.get() + 1);
                alerts.sent(&alert);
                wait = cfg.backoff.0;
            }
            Err(_) => {
                alerts.failures.set(alerts.failures.get() + 1);
                overlap::select! {
                    _ = overlap::time::sleep(wait) => {}
                    _ = token.cancelled() => return,
                }
                wait = (wait * 2).min(cfg.backoff.1);
            }
        }
    }
}

/// One POST; `Ok` for a 2xx answer.
async fn post(cfg: &AlertConfig, body: &str) -> std::io::Result<()> {
    let exchange = async {
        let mut stream = TcpStream::connect(cfg.webhook).await?;
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            cfg.path,
            cfg.webhook,
            body.len()
        );
        stream.write_all(req.as_bytes()).await?;
        let mut response = Vec::new();
        (&mut stream)
            .take(16 * 1024)
            .read_to_end(&mut response)
            .await?;
        std::io::Result::Ok(response)
    };
    let response = overlap::time::timeout(cfg.timeout, exchange).await??;
    match parse_response(&response) {
        Some((code, _)) if (200..300).contains(&code) => Ok(()),
        other => Err(std::io::Error::other(format!(
            "webhook answered {:?}",
            other.map(|o| o.0)
        ))),
    }
}
