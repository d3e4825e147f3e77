//! A connection pool (deadpool's shape): at most `max_size` connections, a checkout
//! waiting for a permit within `checkout_timeout`, an idle connection health-checked (an
//! empty query) before it is handed out, and a broken one discarded, on the way in as on
//! the way back. A checkout cut short by its timeout during the health check leaves nothing
//! behind: the connection task reads the empty query's answer to its end.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;

use overlap::sync::{OwnedSemaphorePermit, Semaphore};

use super::client::{Client, Config, Error};

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub addr: SocketAddr,
    pub max_size: usize,
    pub checkout_timeout: Duration,
    pub client: Config,
}

#[derive(Debug, Default)]
pub struct PoolStats {
    pub created: Cell<usize>,
    pub discarded: Cell<usize>,
    pub health_checks: Cell<usize>,
    pub timeouts: Cell<usize>,
}

pub struct Pool {
    config: PoolConfig,
    idle: RefCell<Vec<Client>>,
    permits: Rc<Semaphore>,
    pub stats: PoolStats,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

impl Pool {
    pub fn new(config: PoolConfig) -> Rc<Pool> {
        Rc::new(Pool {
            permits: Rc::new(Semaphore::new(config.max_size)),
            config,
            idle: RefCell::default(),
            stats: PoolStats::default(),
        })
    }

    /// Closes the pool: waiting checkouts fail at once, and so do later ones; the idle
    /// connections go.
    pub fn close(&self) {
        self.permits.close();
        self.idle.borrow_mut().clear();
    }

    pub fn idle(&self) -> usize {
        self.idle.borrow().len()
    }

    pub async fn get(self: &Rc<Self>) -> Result<Pooled, Error> {
        match overlap::time::timeout(self.config.checkout_timeout, self.checkout()).await {
            Ok(r) => r,
            Err(_) => {
                bump(&self.stats.timeouts);
                Err(Error::Timeout)
            }
        }
    }

    async fn checkout(self: &Rc<Self>) -> Result<Pooled, Error> {
        let permit = self.permits.clone().acquire_owned().await;
        let permit = permit.map_err(|_| Error::PoolClosed)?;
        loop {
            let Some(client) = self.idle.borrow_mut().pop() else {
                break;
            };
            if client.is_closed() {
                bump(&self.stats.discarded);
                continue;
            }
            bump(&self.stats.health_checks);
            match client.simple_query("").await {
                Ok(_) => return Ok(self.wrap(client, permit)),
                Err(_) => bump(&self.stats.discarded),
            }
        }
        let (client, _notifications, _task) =
            Client::connect(self.config.addr, &self.config.client).await?;
        bump(&self.stats.created);
        Ok(self.wrap(client, permit))
    }

    fn wrap(self: &Rc<Self>, client: Client, permit: OwnedSemaphorePermit) -> Pooled {
        Pooled {
            client: Some(client),
            pool: self.clone(),
            _permit: permit,
        }
    }
}

/// A checked-out connection; back to the pool when dropped, unless it is broken.
pub struct Pooled {
    client: Option<Client>,
    pool: Rc<Pool>,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Pooled {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("until dropped")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let client = self.client.take().expect("once");
        if client.is_closed() {
            bump(&self.pool.stats.discarded);
        } else {
            self.pool.idle.borrow_mut().push(client);
        }
    }
}
