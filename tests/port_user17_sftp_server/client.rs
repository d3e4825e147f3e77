//! The client: requests written whole under a lock by any number of tasks, a reader task
//! that hands each reply to whoever asked by its id (noting the order they came in), and
//! whole-file `put` and `get` with a window of requests in flight at increasing offsets,
//! as real SFTP clients do.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::rc::Rc;

use overlap::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use overlap::sync::{oneshot, Mutex};
use overlap::task::{AbortOnDropHandle, JoinSet};

use super::proto::*;

type Pending = Rc<RefCell<HashMap<u32, oneshot::Sender<Reply>>>>;

pub struct Client {
    wr: Mutex<Pin<Box<dyn AsyncWrite>>>,
    pending: Pending,
    next_id: Cell<u32>,
    /// Reply ids in the order they arrived.
    pub arrivals: Rc<RefCell<Vec<u32>>>,
    _reader: AbortOnDropHandle<()>,
}

impl Client {
    pub fn new<S: AsyncRead + AsyncWrite + 'static>(stream: S) -> Rc<Client> {
        let (rd, wr) = overlap::io::split(stream);
        let pending = Pending::default();
        let arrivals = Rc::<RefCell<Vec<u32>>>::default();
        let reader = overlap::spawn(read_replies(rd, pending.clone(), arrivals.clone()));
        Rc::new(Client {
            wr: Mutex::new(Box::pin(wr)),
            pending,
            next_id: Cell::new(1),
            arrivals,
            _reader: AbortOnDropHandle::new(reader),
        })
    }

    pub fn next_id(&self) -> u32 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Sends `packet` (built with id `id`) and waits for its reply.
    pub async fn call(&self, id: u32, packet: Vec<u8>) -> Result<Reply, Status> {
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        let lost = |e: std::io::Error| Status::new(CONNECTION_LOST, e.to_string());
        self.wr
            .lock()
            .await
            .write_all(&packet)
            .await
            .map_err(lost)?;
        rx.await
            .map_err(|_| Status::new(CONNECTION_LOST, "connection closed"))
    }

    /// A request of type `ty` with fields built by `fields`: its reply, a status
    /// other than OK as `Err`.
    pub async fn ask(
        &self,
        ty: u8,
        fields: impl FnOnce(Packet) -> Packet,
    ) -> Result<Reply, Status> {
        let id = self.next_id();
        match self.call(id, fields(Packet::new(ty, id)).finish()).await? {
            Reply::Status(s) if s.code != OK => Err(s),
            r => Ok(r),
        }
    }

    pub async fn open(&self, path: &str, flags: u32) -> Result<u32, Status> {
        match self
            .ask(OPEN, |p| p.bytes(path.as_bytes()).u32(flags))
            .await?
        {
            Reply::Handle(h) => Ok(h),
            r => Err(unexpected(r)),
        }
    }

    pub async fn close(&self, h: u32) -> Result<(), Status> {
        self.ask(CLOSE, |p| p.handle(h)).await.map(drop)
    }

    pub async fn read(&self, h: u32, off: u64, len: u32) -> Result<Vec<u8>, Status> {
        match self.ask(READ, |p| p.handle(h).u64(off).u32(len)).await? {
            Reply::Data(d) => Ok(d),
            r => Err(unexpected(r)),
        }
    }

    pub async fn write(&self, h: u32, off: u64, data: &[u8]) -> Result<(), Status> {
        self.ask(WRITE, |p| p.handle(h).u64(off).bytes(data))
            .await
            .map(drop)
    }

    pub async fn path_op(&self, ty: u8, path: &str) -> Result<Reply, Status> {
        self.ask(ty, |p| p.bytes(path.as_bytes())).await
    }

    pub async fn stat(&self, path: &str) -> Result<Attrs, Status> {
        match self.path_op(STAT, path).await? {
            Reply::Attrs(a) => Ok(a),
            r => Err(unexpected(r)),
        }
    }

    pub async fn fstat(&self, h: u32) -> Result<Attrs, Status> {
        match self.ask(FSTAT, |p| p.handle(h)).await? {
            Reply::Attrs(a) => Ok(a),
            r => Err(unexpected(r)),
        }
    }

    pub async fn realpath(&self, path: &str) -> Result<String, Status> {
        match self.path_op(REALPATH, path).await? {
            Reply::Name(mut n) if n.len() == 1 => Ok(n.remove(0).0),
            r => Err(unexpected(r)),
        }
    }

    pub async fn rename(&self, from: &str, to: &str) -> Result<(), Status> {
        let p = |p: Packet| p.bytes(from.as_bytes()).bytes(to.as_bytes());
        self.ask(RENAME, p).await.map(drop)
    }

    /// OPENDIR, READDIR until EOF, CLOSE: the names (sorted) and each batch's size.
    pub async fn list(&self, path: &str) -> Result<(Vec<(String, Attrs)>, Vec<usize>), Status> {
        let h = match self.path_op(OPENDIR, path).await? {
            Reply::Handle(h) => h,
            r => return Err(unexpected(r)),
        };
        let (mut names, mut batches) = (Vec::new(), Vec::new());
        loop {
            match self.ask(READDIR, |p| p.handle(h)).await {
                Ok(Reply::Name(n)) => {
                    batches.push(n.len());
                    names.extend(n);
                }
                Err(s) if s.code == EOF => break,
                Err(s) => return Err(s),
                Ok(r) => return Err(unexpected(r)),
            }
        }
        self.close(h).await?;
        names.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((names, batches))
    }

    /// Uploads `data` to `path` (created or truncated): `window` WRITEs of `chunk` bytes
    /// in flight at once.
    pub async fn put(
        self: &Rc<Self>,
        path: &str,
        data: &[u8],
        chunk: usize,
        window: usize,
    ) -> Result<(), Status> {
        let h = self.open(path, F_WRITE | F_CREAT | F_TRUNC).await?;
        let mut tasks = JoinSet::new();
        for (i, part) in data.chunks(chunk).enumerate() {
            if tasks.len() == window {
                tasks.join_next().await.unwrap().unwrap()?;
            }
            let (me, part) = (self.clone(), part.to_vec());
            tasks.spawn(async move { me.write(h, (i * chunk) as u64, &part).await });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap()?;
        }
        self.close(h).await
    }

    /// Downloads `path`: its size from FSTAT, then `window` READs of `chunk` bytes in
    /// flight at once; a short read asks again for the rest, an EOF ends the file there.
    pub async fn get(
        self: &Rc<Self>,
        path: &str,
        chunk: u32,
        window: usize,
    ) -> Result<Vec<u8>, Status> {
        let h = self.open(path, F_READ).await?;
        let size = self.fstat(h).await?.size;
        let mut out = vec![0u8; size as usize];
        let mut end = size;
        let mut todo: VecDeque<(u64, u32)> = (0..size)
            .step_by(chunk as usize)
            .map(|off| (off, chunk.min((size - off) as u32)))
            .collect();
        let mut tasks = JoinSet::new();
        while !todo.is_empty() || !tasks.is_empty() {
            while tasks.len() < window {
                let Some((off, len)) = todo.pop_front() else {
                    break;
                };
                let me = self.clone();
                tasks.spawn(async move { (off, len, me.read(h, off, len).await) });
            }
            let (off, len, got) = tasks.join_next().await.unwrap().unwrap();
            match got {
                Ok(d) => {
                    out[off as usize..off as usize + d.len()].copy_from_slice(&d);
                    if (d.len() as u32) < len {
                        todo.push_back((off + d.len() as u64, len - d.len() as u32));
                    }
                }
                Err(s) if s.code == EOF => end = end.min(off),
                Err(s) => return Err(s),
            }
        }
        self.close(h).await?;
        out.truncate(end as usize);
        Ok(out)
    }

    /// Writes raw bytes, for malformed packets.
    pub async fn send_raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.wr.lock().await.write_all(bytes).await
    }

    /// Registers a wait for the reply to `id`, for a request sent with `send_raw`.
    pub fn expect(&self, id: u32) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        rx
    }
}

fn unexpected(r: Reply) -> Status {
    Status::new(FAILURE, format!("unexpected reply {r:?}"))
}

async fn read_replies<R: AsyncRead + Unpin>(
    mut rd: R,
    pending: Pending,
    arrivals: Rc<RefCell<Vec<u32>>>,
) {
    loop {
        let mut head = [0u8; 4];
        if rd.read_exact(&mut head).await.is_err() {
            break;
        }
        let mut body = vec![0; u32::from_be_bytes(head) as usize];
        if body.len() < 5 || rd.read_exact(&mut body).await.is_err() {
            break;
        }
        let id = u32::from_be_bytes(body[1..5].try_into().unwrap());
        arrivals.borrow_mut().push(id);
        let Ok(reply) = decode_reply(body[0], &body[5..]) else {
            break;
        };
        if let Some(tx) = pending.borrow_mut().remove(&id) {
            let _ = tx.send(reply);
        }
    }
    // Every request still waiting learns the connection is gone.
    pending.borrow_mut().clear();
}
