//! The exporter's HTTP server: an accept loop on a loopback listener, one task per
//! connection (keep-alive, a deadline on each request head), and the routes: `GET /metrics`
//! runs the collectors under a scrape limit (a semaphore; a scrape past it gets a 503 at
//! once, as Prometheus would rather retry than queue), `GET /` a small HTML page, 404 for
//! other paths, 405 for other methods, 400/431/408 for heads that are bad, too big or late.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::Semaphore;
use overlap::time::timeout;
use overlap::JoinHandle;

use crate::collect::Registry;
use crate::exposition::{render, CONTENT_TYPE};
use crate::http::{write_and_linger, HeadError, HeadReader, Request, Response};

/// The page `GET /` answers with.
pub const INDEX: &str = "<html><head><title>Node Exporter</title></head><body>\
<h1>Node Exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

/// The exporter's settings.
pub struct Config {
    pub registry: Registry,
    /// Scrapes allowed at once; one more gets a 503.
    pub max_scrapes: usize,
    /// How long a connection may take to send a request head, idle time included.
    pub request_timeout: Duration,
    /// The largest request head accepted (431 above it).
    pub max_head_bytes: usize,
}

impl Config {
    /// Settings with these collectors and the defaults: 2 scrapes, 30 s, 8 KiB.
    pub fn new(registry: Registry) -> Config {
        Config {
            registry,
            max_scrapes: 2,
            request_timeout: Duration::from_secs(30),
            max_head_bytes: 8 * 1024,
        }
    }
}

/// A running exporter, as the tests see it.
pub struct Exporter {
    cfg: Config,
    scrapes: Rc<Semaphore>,
    /// Connections open now.
    pub live: Cell<usize>,
    /// Scrapes answered with 200.
    pub scraped: Cell<u64>,
}

/// Serves `listener` until the returned task is aborted.
pub fn serve(listener: TcpListener, cfg: Config) -> (Rc<Exporter>, JoinHandle<()>) {
    let ex = Rc::new(Exporter {
        scrapes: Rc::new(Semaphore::new(cfg.max_scrapes)),
        cfg,
        live: Cell::new(0),
        scraped: Cell::new(0),
    });
    let task = overlap::spawn({
        let ex = ex.clone();
        async move {
            loop {
                match listener.accept().await {
                    Ok((conn, _)) => {
                        overlap::spawn(connection(ex.clone(), conn));
                    }
                    Err(e) => {
                        // EMFILE and the like: wait for fds to be given back.
                        eprintln!("node_exporter: accept: {e}");
                        overlap::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    });
    (ex, task)
}

/// Counts a connection in `live` while it lives.
struct Live(Rc<Exporter>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.set(self.0.live.get() - 1);
    }
}

async fn connection(ex: Rc<Exporter>, mut conn: TcpStream) {
    ex.live.set(ex.live.get() + 1);
    let _live = Live(ex.clone());
    let limit = ex.cfg.request_timeout;
    let mut heads = HeadReader::new(ex.cfg.max_head_bytes);
    loop {
        let req = match timeout(limit, heads.next(&mut conn)).await {
            Ok(Ok(req)) => req,
            Ok(Err(HeadError::Closed)) => return,
            Ok(Err(HeadError::TooLarge)) => {
                return refuse(&mut conn, Response::error(431, "request head too large")).await;
            }
            Ok(Err(HeadError::Bad(why))) => {
                return refuse(&mut conn, Response::error(400, &why)).await
            }
            Err(_) if heads.partial() => {
                return refuse(
                    &mut conn,
                    Response::error(408, "request head took too long"),
                )
                .await;
            }
            Err(_) => return, // idle keep-alive connection
        };
        let resp = route(&ex, &req).await;
        let keep = req.keep_alive && !req.has_body;
        if !keep {
            return refuse(&mut conn, resp).await;
        }
        let sent = timeout(limit, conn.write_all(&resp.to_bytes(false))).await;
        if !matches!(sent, Ok(Ok(()))) {
            return; // the client went away or stopped reading
        }
    }
}

/// Sends a last response and closes, giving a peer that does not read 5 s at most.
async fn refuse(conn: &mut TcpStream, resp: Response) {
    let bytes = resp.to_bytes(true);
    let _ = timeout(Duration::from_secs(5), write_and_linger(conn, &bytes)).await;
}

async fn route(ex: &Exporter, req: &Request) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/metrics") => scrape(ex).await,
        ("GET", "/") => Response::new(200, "text/html; charset=utf-8", INDEX),
        (_, "/metrics" | "/") => {
            let mut r = Response::error(405, "method not allowed");
            r.extra.push(("Allow", "GET".into()));
            r
        }
        _ => Response::error(404, "not found"),
    }
}

async fn scrape(ex: &Exporter) -> Response {
    let Ok(_permit) = ex.scrapes.clone().try_acquire_owned() else {
        let mut r = Response::error(503, "too many scrapes in progress");
        r.extra.push(("Retry-After", "1".into()));
        return r;
    };
    let mut families = ex.cfg.registry.gather().await;
    ex.scraped.set(ex.scraped.get() + 1);
    Response::new(200, CONTENT_TYPE, render(&mut families))
}
