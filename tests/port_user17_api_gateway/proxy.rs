//! One client connection: its requests read one after another (keep-alive), each routed,
//! admitted (rate, breaker, route concurrency), rewritten and relayed to its backend over a
//! pooled connection, the response relayed back, both bodies streamed.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::net::TcpStream;
use overlap::time;

use super::gateway::{Route, Shared};
use super::http::RelayError;
use super::http::{check_request, relay_body, simple_response, Conn, Framing, Head, HeadError};

/// Methods whose request may be sent twice (RFC 9110 9.2.2); only those without a body are
/// retried, since a body streamed once is gone.
const IDEMPOTENT: [&str; 6] = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"];
/// The longest response head taken from a backend.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Whether the client connection carries on after a request.
#[derive(PartialEq)]
enum Next {
    KeepGoing,
    Close,
}

type Client = Conn<TcpStream>;

/// Serves one client connection until it closes, misbehaves, idles out, or the drain
/// finds it between requests.
pub async fn serve(stream: TcpStream, peer: SocketAddr, shared: Rc<Shared>) {
    let mut client = Conn::new(stream);
    loop {
        let head = overlap::select! {
            _ = shared.draining.cancelled() => {
                let s = &shared.stats.closed_idle_on_drain;
                s.set(s.get() + 1);
                return;
            }
            r = time::timeout(shared.cfg.client_idle, client.read_head(shared.cfg.max_head)) => r,
        };
        let head = match head {
            Err(_idle) => return,
            Ok(Ok(Some(head))) => head,
            Ok(Ok(None) | Err(HeadError::Truncated | HeadError::Io(_))) => return,
            Ok(Err(HeadError::TooLarge)) => {
                return reply(&mut client, &shared, 431, "head too large", &[], true).await;
            }
            Ok(Err(HeadError::Malformed(why))) => {
                return reply(&mut client, &shared, 400, why, &[], true).await;
            }
        };
        let s = &shared.stats.requests;
        s.set(s.get() + 1);
        let framing = match check_request(&head).and_then(|()| head.request_framing()) {
            Ok(framing) => framing,
            Err(why) => return reply(&mut client, &shared, 400, why, &[], true).await,
        };
        let keep = head.keeps_alive(2);
        let next = handle(&mut client, head, framing, peer, &shared).await;
        if next == Next::Close || !keep || shared.draining.is_cancelled() {
            return;
        }
    }
}

/// A reply of the gateway's own, counted.
async fn reply(
    client: &mut Client,
    shared: &Shared,
    status: u16,
    body: &str,
    extra: &[(&str, String)],
    close: bool,
) {
    shared.stats.count(status);
    let _ = client
        .write_all(&simple_response(status, body, extra, close))
        .await;
}

fn secs_up(d: Duration) -> String {
    d.as_secs_f64().ceil().max(1.0).to_string()
}

async fn handle(
    client: &mut Client,
    head: Head,
    framing: Framing,
    peer: SocketAddr,
    shared: &Shared,
) -> Next {
    // A refusal before the body was read leaves the body unread: the connection closes.
    let unread = framing != Framing::Empty;
    let early = |close| if close { Next::Close } else { Next::KeepGoing };
    let path = head.target().split('?').next().unwrap_or("/").to_string();
    let Some(route) = shared.route(&path) else {
        reply(client, shared, 404, "no route", &[], unread).await;
        return early(unread);
    };
    if let Framing::Length(n) = framing {
        if n > route.cfg.max_body {
            reply(client, shared, 413, "body too large", &[], true).await;
            return Next::Close;
        }
    }
    if let Err(wait) = shared.rate.take(peer.ip(), time::now()) {
        let after = [("Retry-After", secs_up(wait))];
        reply(client, shared, 429, "slow down", &after, unread).await;
        return early(unread);
    }
    let queued = time::timeout(
        route.cfg.queue_timeout,
        route.permits.clone().acquire_owned(),
    );
    let Ok(Ok(_permit)) = queued.await else {
        reply(client, shared, 503, "route busy", &[], unread).await;
        return early(unread);
    };
    let backend = route.backend.clone();
    let ticket = match backend.breaker.allow(time::now()) {
        Ok(ticket) => ticket,
        Err(wait) => {
            let after = [("Retry-After", secs_up(wait))];
            reply(client, shared, 503, "circuit open", &after, unread).await;
            return early(unread);
        }
    };
    let up_head = upstream_head(&head, route, framing, peer);
    let method = head.method().to_string();
    let retryable = framing == Framing::Empty && IDEMPOTENT.contains(&method.as_str());
    let timeout = backend.cfg.timeout;
    let mut retried = false;
    // The exchange; `_permit` is held to its end, whichever way it ends.
    let (mut lease, resp) = loop {
        let mut lease = match time::timeout(timeout, backend.pool.checkout(retried)).await {
            Ok(Ok(lease)) => lease,
            Ok(Err(e)) => {
                shared.stats.backend_error(format_args!("connect: {e}"));
                ticket.failure(time::now());
                reply(client, shared, 502, "backend unreachable", &[], unread).await;
                return early(unread);
            }
            Err(_) => {
                shared.stats.backend_error("connect: timed out");
                ticket.failure(time::now());
                reply(client, shared, 502, "backend unreachable", &[], unread).await;
                return early(unread);
            }
        };
        let sent = lease.conn().write_all(&up_head.encode()).await;
        if sent.is_err() && lease.reused && retryable && !retried {
            retried = true;
            shared.stats.retries.set(shared.stats.retries.get() + 1);
            continue;
        }
        if sent.is_err() {
            ticket.failure(time::now());
            reply(client, shared, 502, "backend write failed", &[], unread).await;
            return early(unread);
        }
        match relay_body(client, &mut lease.conn().io, framing, framing, |_| {}).await {
            Ok(_) => {}
            Err(RelayError::Malformed(why)) => {
                reply(client, shared, 400, why, &[], true).await;
                return Next::Close;
            }
            // The client went away mid-upload: the lease and the permit go with us.
            Err(RelayError::SourceEof | RelayError::Source(_)) => return Next::Close,
            Err(e @ RelayError::Sink(_)) => {
                shared.stats.backend_error(e);
                ticket.failure(time::now());
                reply(client, shared, 502, "backend stopped reading", &[], true).await;
                return Next::Close;
            }
        }
        let got = time::timeout(timeout, read_final_head(lease.conn())).await;
        match got {
            Err(_) => {
                ticket.failure(time::now());
                reply(client, shared, 504, "backend timed out", &[], false).await;
                return Next::KeepGoing;
            }
            Ok(Ok(Some(resp))) => break (lease, resp),
            // Closed before a byte of answer: on a reused connection, the backend's close
            // crossed our request. Sent again on a fresh connection, once, if it is safe.
            Ok(Ok(None) | Err(HeadError::Io(_))) if lease.reused && retryable && !retried => {
                retried = true;
                shared.stats.retries.set(shared.stats.retries.get() + 1);
            }
            Ok(Ok(None)) => {
                shared.stats.backend_error("closed before answering");
                ticket.failure(time::now());
                reply(client, shared, 502, "bad answer from backend", &[], false).await;
                return Next::KeepGoing;
            }
            Ok(Err(e)) => {
                shared.stats.backend_error(e);
                ticket.failure(time::now());
                reply(client, shared, 502, "bad answer from backend", &[], false).await;
                return Next::KeepGoing;
            }
        }
    };
    let Ok(from) = resp.response_framing(&method) else {
        ticket.failure(time::now());
        reply(client, shared, 502, "bad framing from backend", &[], false).await;
        return Next::KeepGoing;
    };
    let http11 = head.word(2) == "HTTP/1.1";
    let to = match from {
        Framing::UntilClose if http11 => Framing::Chunked,
        other => other,
    };
    let close = !head.keeps_alive(2) || shared.draining.is_cancelled() || to == Framing::UntilClose;
    let mut down = resp.clone();
    down.strip_hop_by_hop();
    if to == Framing::Chunked {
        down.set("Transfer-Encoding", "chunked");
    }
    if close {
        down.set("Connection", "close");
    }
    shared.stats.count(resp.status());
    if client.write_all(&down.encode()).await.is_err() {
        return Next::Close;
    }
    let backend_keeps = resp.keeps_alive(0) && from != Framing::UntilClose;
    match relay_body(lease.conn(), &mut client.io, from, to, |_| {}).await {
        Ok(_) => {
            ticket.success();
            if backend_keeps {
                lease.put_back();
            }
        }
        // The backend died mid-answer: the client gets what came, then the close.
        Err(e @ (RelayError::SourceEof | RelayError::Source(_) | RelayError::Malformed(_))) => {
            shared.stats.backend_error(e);
            ticket.failure(time::now());
            return Next::Close;
        }
        // The client went away; the backend was fine.
        Err(RelayError::Sink(_)) => {
            ticket.success();
            return Next::Close;
        }
    }
    if close {
        Next::Close
    } else {
        Next::KeepGoing
    }
}

/// The response head after any interim (1xx) ones; `None` at end of file before it.
async fn read_final_head(
    conn: &mut Conn<super::pool::Upstream>,
) -> Result<Option<Head>, HeadError> {
    loop {
        match conn.read_head(MAX_RESPONSE_HEAD).await? {
            Some(h) if (100..200).contains(&h.status()) && h.status() != 101 => continue,
            other => return Ok(other),
        }
    }
}

/// The request as the backend gets it: hop-by-hop headers gone, the prefix cut if the
/// route says so, the client's address appended to `X-Forwarded-For`, a `Via`.
fn upstream_head(head: &Head, route: &Route, framing: Framing, peer: SocketAddr) -> Head {
    let mut up = head.clone();
    up.strip_hop_by_hop();
    if route.cfg.strip {
        let rest = &head.target()[route.cfg.prefix.len()..];
        let target = if rest.starts_with('/') {
            rest.to_string()
        } else {
            format!("/{rest}")
        };
        up.line = format!("{} {} HTTP/1.1", head.method(), target);
    } else {
        up.line = format!("{} {} HTTP/1.1", head.method(), head.target());
    }
    let forwarded = match head.get("x-forwarded-for") {
        Some(earlier) => format!("{earlier}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    up.set("X-Forwarded-For", forwarded);
    up.headers.push(("Via".into(), "1.1 gateway".into()));
    if framing == Framing::Chunked {
        up.set("Transfer-Encoding", "chunked");
    }
    up
}
