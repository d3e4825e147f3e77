//! The tests' origin server: resources by path (a body, headers, a validator, and a way of
//! sending: whole, dying after some bytes, or held at gates the test opens), one request
//! per connection, every request counted and kept.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::io::AsyncWriteExt;
use overlap::net::{TcpListener, TcpStream};
use overlap::sync::watch;
use overlap::task::JoinHandle;

use crate::http::{self, header, Request};

/// How a resource's response goes out.
#[derive(Clone, Copy, Debug)]
pub enum Send {
    Whole,
    /// Nothing until gate 1 opens; then the full `Content-Length` announced, these many
    /// body bytes sent, and a close.
    DieAfter(usize),
    /// Nothing until gate 1 opens; then the head and the body's first `n` bytes; the rest
    /// once gate 2 opens.
    Gated(usize),
}

#[derive(Clone, Debug)]
pub struct Resource {
    pub body: Vec<u8>,
    /// Headers besides `Content-Length` (`Cache-Control`, `ETag`, `Date`, ...).
    pub headers: Vec<(String, String)>,
    pub send: Send,
    /// `Vary: Accept-Language`, the language appended to the body.
    pub vary_language: bool,
}

impl Resource {
    pub fn new(body: &[u8], headers: &[(&str, &str)]) -> Resource {
        Resource {
            body: body.to_vec(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            send: Send::Whole,
            vary_language: false,
        }
    }

    pub fn sent(mut self, send: Send) -> Resource {
        self.send = send;
        self
    }
}

#[derive(Default)]
struct State {
    resources: HashMap<String, Resource>,
    hits: HashMap<String, usize>,
    not_modified: usize,
    requests: Vec<Request>,
}

/// A running origin.
pub struct Origin {
    pub addr: SocketAddr,
    state: Rc<RefCell<State>>,
    gate: Rc<watch::Sender<u32>>,
    tasks: Rc<RefCell<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Origin {
    pub async fn start() -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state: Rc<RefCell<State>> = Rc::default();
        let gate = Rc::new(watch::Sender::new(0));
        let tasks: Rc<RefCell<Vec<JoinHandle<()>>>> = Rc::default();
        let (s, g, t) = (state.clone(), gate.clone(), tasks.clone());
        let accept = overlap::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                sock.set_nodelay(true).unwrap();
                let task = overlap::spawn(answer(s.clone(), g.clone(), sock));
                let mut tasks = t.borrow_mut();
                tasks.retain(|t| !t.is_finished());
                tasks.push(task);
            }
        });
        Origin {
            addr,
            state,
            gate,
            tasks,
            accept,
        }
    }

    pub fn put(&self, path: &str, resource: Resource) {
        let mut state = self.state.borrow_mut();
        state.resources.insert(path.to_string(), resource);
    }

    /// Requests for `path` answered (304s included).
    pub fn hits(&self, path: &str) -> usize {
        self.state.borrow().hits.get(path).copied().unwrap_or(0)
    }

    pub fn not_modified(&self) -> usize {
        self.state.borrow().not_modified
    }

    /// The last request the origin had.
    pub fn last_request(&self) -> Request {
        self.state
            .borrow()
            .requests
            .last()
            .cloned()
            .expect("a request")
    }

    /// Opens gate `n` (1: heads and first parts, 2: the rest).
    pub fn open_gate(&self, n: u32) {
        self.gate.send_replace(n);
    }

    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn answer(state: Rc<RefCell<State>>, gate: Rc<watch::Sender<u32>>, mut sock: TcpStream) {
    let mut buf = Vec::new();
    let Ok(head) = http::read_head(&mut sock, &mut buf, 16 * 1024).await else {
        return;
    };
    let req = http::parse_request(&head).expect("the proxy sends good requests");
    let found = {
        let mut st = state.borrow_mut();
        st.requests.push(req.clone());
        *st.hits.entry(req.target.clone()).or_default() += 1;
        st.resources.get(&req.target).cloned()
    };
    let Some(res) = found else {
        let _ = sock
            .write_all(&http::simple(404, "Not Found", &[], true))
            .await;
        return;
    };
    let mut headers = res.headers.clone();
    let mut body = res.body.clone();
    if res.vary_language {
        headers.push(("Vary".into(), "Accept-Language".into()));
        body.extend_from_slice(
            header(&req.headers, "accept-language")
                .unwrap_or("-")
                .as_bytes(),
        );
    }
    let etag = header(&headers, "etag");
    let last_modified = header(&headers, "last-modified");
    let unchanged = match (header(&req.headers, "if-none-match"), etag) {
        (Some(asked), Some(etag)) => asked == etag,
        (Some(_), None) => false,
        (None, _) => {
            header(&req.headers, "if-modified-since").is_some_and(|s| Some(s) == last_modified)
        }
    };
    if unchanged {
        state.borrow_mut().not_modified += 1;
        let _ = sock
            .write_all(&http::write_head(304, "Not Modified", &headers))
            .await;
        return;
    }
    headers.push(("Content-Length".into(), body.len().to_string()));
    headers.push(("Connection".into(), "close".into()));
    let head = http::write_head(200, "OK", &headers);
    let mut rx = gate.subscribe();
    let cut = match res.send {
        Send::Whole => body.len(),
        Send::DieAfter(n) | Send::Gated(n) => {
            let _ = rx.wait_for(|g| *g >= 1).await;
            n
        }
    };
    if sock.write_all(&head).await.is_err() || sock.write_all(&body[..cut]).await.is_err() {
        return;
    }
    if let Send::Gated(_) = res.send {
        let _ = rx.wait_for(|g| *g >= 2).await;
        let _ = sock.write_all(&body[cut..]).await;
    }
}
