//! A TCP proxy on one link between two nodes, for the tests to cut and heal: cut, it drops
//! the connections it carries and closes new ones at once; its target may move (a node
//! restarted on a new port).

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use overlap::net::{TcpListener, TcpStream};
use overlap::sync::watch;
use overlap::task::JoinSet;

pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    _task: JoinSet<()>,
}

impl Proxy {
    pub async fn start(target: Rc<Cell<SocketAddr>>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = watch::Sender::new(true);
        let mut task = JoinSet::new();
        task.spawn(run(listener, target, up.subscribe()));
        Proxy {
            addr,
            up,
            _task: task,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }
}

async fn run(listener: TcpListener, target: Rc<Cell<SocketAddr>>, up: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        overlap::select! {
            Some(_) = conns.join_next() => {}
            res = listener.accept() => {
                let Ok((mut inbound, _)) = res else { continue };
                if !*up.borrow() {
                    continue; // cut: closed at once
                }
                let mut up = up.clone();
                let to = target.get();
                conns.spawn(async move {
                    let Ok(mut out) = TcpStream::connect(to).await else { return };
                    overlap::select! {
                        _ = overlap::io::copy_bidirectional(&mut inbound, &mut out) => {}
                        _ = up.wait_for(|up| !*up) => {}
                    }
                });
            }
        }
    }
}
