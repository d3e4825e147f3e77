//! The agent: a tailer task per file and a syslog task, all feeding one bounded channel,
//! and the shipper at its other end; one cancellation token stops them.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::future::FutureExt;
use overlap::net::UdpSocket;
use overlap::sync::{mpsc, CancellationToken};
use overlap::task::JoinSet;
use overlap::time::sleep;

use crate::checkpoint::Checkpoint;
use crate::shipper::{self, Connect, ShipStats};
use crate::syslog;
use crate::tailer::{self, TailStats, Tailer};

pub struct Setup {
    pub dir: PathBuf,
    pub files: Vec<&'static str>,
    pub syslog: bool,
    pub connect: Connect,
    /// Lines between the inputs and the shipper, at most.
    pub channel: usize,
    pub poll: Duration,
    pub ship: shipper::Config,
    /// How long a shutdown waits for the collector to ack what was read.
    pub grace: Duration,
}

pub struct Agent {
    pub token: CancellationToken,
    pub tails: Vec<Rc<TailStats>>,
    pub ship: Rc<ShipStats>,
    pub syslog_addr: Option<SocketAddr>,
    tasks: JoinSet<io::Result<()>>,
}

impl Agent {
    pub async fn start(setup: Setup) -> io::Result<Agent> {
        let ck = Checkpoint::load(&setup.ship.checkpoint).await?;
        let token = CancellationToken::new();
        let (tx, rx) = mpsc::channel(setup.channel);
        let mut tasks = JoinSet::new();
        let mut tails = Vec::new();
        for name in &setup.files {
            let stats = Rc::new(TailStats::default());
            let mark = ck.marks.get(*name).copied();
            let t = Tailer::open(&setup.dir.join(name), mark, stats.clone()).await?;
            tasks.spawn(tailer::run(t, tx.clone(), token.clone(), setup.poll));
            tails.push(stats);
        }
        let mut syslog_addr = None;
        if setup.syslog {
            let sock = UdpSocket::bind("127.0.0.1:0").await?;
            syslog_addr = Some(sock.local_addr()?);
            let seq = ck.marks.get("syslog").map_or(0, |m| m.seq);
            tasks.spawn(syslog::run(sock, tx.clone(), token.clone(), seq));
        }
        drop(tx);
        let ship = Rc::new(ShipStats::default());
        let stats = ship.clone();
        let stop = token.clone();
        tasks.spawn(async move {
            let run = shipper::run(rx, setup.connect, setup.ship, ck, stats);
            let give_up = async {
                stop.cancelled().await;
                sleep(setup.grace).await;
            };
            overlap::select! {
                res = run.fuse() => res,
                _ = give_up.fuse() => Ok(()),
            }
        });
        Ok(Agent {
            token,
            tails,
            ship,
            syslog_addr,
            tasks,
        })
    }

    /// Cancels the token and waits for every task: the tailers stop, the shipper ships
    /// what they read (within the grace time) and checkpoints it.
    pub async fn shutdown(mut self) -> io::Result<()> {
        self.token.cancel();
        while let Some(res) = self.tasks.join_next().await {
            res.expect("no task panics")?;
        }
        Ok(())
    }

    /// A crash: every task dropped where it stands, nothing flushed.
    pub fn kill(self) {
        drop(self.tasks);
    }
}
