//! The crawler: a fetch with a per-host `Semaphore`, a per-try `timeout`, retries with
//! backoff and redirects up to a limit; a frontier of fetches in a `FuturesUnordered` (or a
//! layer at a time through `buffer_unordered`), every URL fetched once.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::{Future, FutureExt};
use overlap::stream::{self, FuturesUnordered, StreamExt};
use overlap::sync::Semaphore;
use overlap::time::{sleep, timeout};

use super::client::{get, links, FetchError, Url};

#[derive(Clone)]
pub struct Config {
    /// Fetches in flight at once, all hosts together.
    pub concurrency: usize,
    /// Connections to one host at once.
    pub per_host: usize,
    /// Bound on each try (connect, request, whole answer).
    pub timeout: Duration,
    /// Tries after the first, for a timeout, a 5xx or an I/O error.
    pub retries: u32,
    /// The wait before the first retry, doubled for each next one.
    pub backoff: Duration,
    pub max_redirects: usize,
    pub body_cap: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            concurrency: 16,
            per_host: 2,
            timeout: Duration::from_millis(500),
            retries: 2,
            backoff: Duration::from_millis(2),
            max_redirects: 5,
            body_cap: 64 * 1024,
        }
    }
}

/// What the crawl found for a URL: the links of the page it ended on, or why it failed.
pub type Outcome = Result<Vec<String>, FetchError>;

pub struct Crawler {
    cfg: Config,
    hosts: RefCell<HashMap<SocketAddr, Rc<Semaphore>>>,
    /// Fetches in flight now and at most (the crawler's own count).
    pub in_flight: Cell<usize>,
    pub tries: Cell<usize>,
}

impl Crawler {
    pub fn new(cfg: Config) -> Rc<Crawler> {
        Rc::new(Crawler {
            cfg,
            hosts: RefCell::default(),
            in_flight: Cell::new(0),
            tries: Cell::new(0),
        })
    }

    fn host_limit(&self, host: SocketAddr) -> Rc<Semaphore> {
        let per_host = self.cfg.per_host;
        self.hosts
            .borrow_mut()
            .entry(host)
            .or_insert_with(|| Rc::new(Semaphore::new(per_host)))
            .clone()
    }

    /// The permits of `host`'s limit not taken now.
    pub fn free_permits(&self, host: SocketAddr) -> usize {
        self.host_limit(host).available_permits()
    }

    /// One URL: tries with backoff, each bounded by the timeout, following redirects.
    pub async fn fetch(self: Rc<Self>, url: String) -> (String, Outcome) {
        let out = self.fetch_inner(&url).await;
        (url, out)
    }

    async fn fetch_inner(&self, start: &str) -> Outcome {
        let mut chain = vec![start.to_string()];
        let mut url = start.to_string();
        loop {
            let parsed = Url::parse(&url)
                .ok_or_else(|| FetchError::BadResponse(format!("bad URL {url}")))?;
            let res = self.get_with_retries(&parsed).await?;
            match res.status {
                200 => return Ok(links(&res.body)),
                301 | 302 | 303 | 307 | 308 => {
                    let to = res.location.ok_or_else(|| {
                        FetchError::BadResponse("redirect without Location".into())
                    })?;
                    if chain.len() > self.cfg.max_redirects {
                        chain.push(to);
                        return Err(FetchError::TooManyRedirects(chain));
                    }
                    chain.push(to.clone());
                    url = to;
                }
                s => return Err(FetchError::Status(s)),
            }
        }
    }

    async fn get_with_retries(&self, url: &Url) -> Result<super::client::Response, FetchError> {
        let limit = self.host_limit(url.host);
        let mut attempt = 0;
        loop {
            let res = {
                let _permit = limit.acquire().await.expect("never closed");
                self.tries.set(self.tries.get() + 1);
                match timeout(self.cfg.timeout, get(url, self.cfg.body_cap)).await {
                    Err(_) => Err(FetchError::Timeout),
                    Ok(res) => res,
                }
            };
            let retry = match &res {
                Ok(r) => r.status >= 500,
                Err(FetchError::Timeout | FetchError::Io(_) | FetchError::Truncated { .. }) => true,
                Err(_) => false,
            };
            if !retry || attempt == self.cfg.retries {
                return match res {
                    Ok(r) if r.status >= 500 => Err(FetchError::Status(r.status)),
                    other => other,
                };
            }
            sleep(self.cfg.backoff * 2u32.pow(attempt)).await;
            attempt += 1;
        }
    }

    /// Crawls from `seeds` until nothing is left, a `FuturesUnordered` frontier of at most
    /// `concurrency` fetches.
    pub async fn crawl(self: &Rc<Self>, seeds: Vec<String>) -> BTreeMap<String, Outcome> {
        self.crawl_until(seeds, std::future::pending()).await.0
    }

    /// As `crawl`, until `shutdown` resolves first: then the fetches in flight are dropped,
    /// and the result says so (`false`).
    pub async fn crawl_until(
        self: &Rc<Self>,
        seeds: Vec<String>,
        shutdown: impl Future<Output = ()>,
    ) -> (BTreeMap<String, Outcome>, bool) {
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        for s in seeds {
            if seen.insert(s.clone()) {
                queue.push_back(s);
            }
        }
        let mut done = BTreeMap::new();
        let mut frontier = FuturesUnordered::new();
        let shutdown = shutdown.fuse();
        overlap::pin_mut!(shutdown);
        loop {
            while frontier.len() < self.cfg.concurrency {
                let Some(url) = queue.pop_front() else { break };
                self.in_flight.set(self.in_flight.get() + 1);
                frontier.push(self.clone().fetch(url));
            }
            if frontier.is_empty() {
                return (done, true);
            }
            overlap::select! {
                next = frontier.select_next_some() => {
                    self.in_flight.set(self.in_flight.get() - 1);
                    let (url, out): (String, Outcome) = next;
                    record(&mut seen, &mut done, url, out, |l| queue.push_back(l));
                }
                _ = shutdown => return (done, false),
            }
        }
    }

    /// As `crawl_until`, with each fetch a task of a `JoinSet` (tokio's `JoinSet::spawn` and
    /// `join_next` in a `select!`): when `shutdown` wins, the set's drop aborts them.
    pub async fn crawl_spawned_until(
        self: &Rc<Self>,
        seeds: Vec<String>,
        shutdown: impl Future<Output = ()>,
    ) -> (BTreeMap<String, Outcome>, bool) {
        let mut seen: HashSet<String> = seeds.iter().cloned().collect();
        let mut queue: VecDeque<String> = seeds.into();
        let mut done = BTreeMap::new();
        let mut set = overlap::task::JoinSet::new();
        let shutdown = shutdown.fuse();
        overlap::pin_mut!(shutdown);
        loop {
            while set.len() < self.cfg.concurrency {
                let Some(url) = queue.pop_front() else { break };
                set.spawn(self.clone().fetch(url));
            }
            if set.is_empty() {
                return (done, true);
            }
            overlap::select! {
                next = set.join_next() => {
                    let (url, out) = next.expect("not empty").expect("no fetch panics");
                    record(&mut seen, &mut done, url, out, |l| queue.push_back(l));
                }
                _ = shutdown => return (done, false),
            }
        }
    }

    /// Crawls a layer at a time: each layer's URLs through
    /// `stream::iter(urls).map(fetch).buffer_unordered(concurrency)`.
    pub async fn crawl_by_layers(self: &Rc<Self>, seeds: Vec<String>) -> BTreeMap<String, Outcome> {
        let mut seen: HashSet<String> = seeds.iter().cloned().collect();
        let mut layer = seeds;
        let mut done = BTreeMap::new();
        while !layer.is_empty() {
            let results: Vec<(String, Outcome)> = stream::iter(std::mem::take(&mut layer))
                .map(|url| self.clone().fetch(url))
                .buffer_unordered(self.cfg.concurrency)
                .collect()
                .await;
            for (url, out) in results {
                record(&mut seen, &mut done, url, out, |l| layer.push(l));
            }
        }
        done
    }
}

/// Records a fetch's outcome, handing each link found that was never seen to `next` (the
/// queue or the next layer): every URL is fetched once.
fn record(
    seen: &mut HashSet<String>,
    done: &mut BTreeMap<String, Outcome>,
    url: String,
    out: Outcome,
    mut next: impl FnMut(String),
) {
    if let Ok(found) = &out {
        for l in found {
            if seen.insert(l.clone()) {
                next(l.clone());
            }
        }
    }
    done.insert(url, out);
}
