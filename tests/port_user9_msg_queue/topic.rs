//! A topic: its segments, the writer task that appends publishers' records in batches with
//! one `sync_data` per batch (group commit), and the reader a consumer streams from.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use overlap::fs::{File, OpenOptions};
use overlap::io::{AsyncReadExt, AsyncWriteExt, SeekFrom};
use overlap::net::tcp::OwnedWriteHalf;
use overlap::sync::{mpsc, oneshot, watch, CancellationToken};

use crate::log::{self, Segment, HEADER};

/// One publish: the payload, and where its offset (or the refusal) goes once synced.
pub struct Publish {
    pub payload: Vec<u8>,
    pub reply: oneshot::Sender<Result<u64, String>>,
}

/// What a topic counts for the tests.
#[derive(Default)]
pub struct Counts {
    pub fsyncs: Cell<u64>,
    pub batches_failed: Cell<u64>,
    pub torn_bytes_cut: Cell<u64>,
    /// Failed batches cut back off the active segment: a reader seeing this move seeks
    /// before reading on (see `Reader::ready`).
    pub cut_backs: Cell<u64>,
}

pub struct Topic {
    pub dir: PathBuf,
    /// Oldest first; the last one is written to. Only committed bytes are counted.
    pub segments: RefCell<Vec<Segment>>,
    /// The committed end offset: consumers wait on it for live records.
    pub committed: watch::Sender<u64>,
    pub publish: mpsc::Sender<Publish>,
    pub counts: Counts,
}

/// When to roll and what to keep.
#[derive(Clone, Copy)]
pub struct Limits {
    pub roll_bytes: u64,
    pub keep_segments: usize,
}

impl Topic {
    /// Recovers the topic's log and starts its writer, which ends when `token` is cancelled
    /// (after answering the batch it holds) or every publish sender is gone.
    pub async fn open(
        dir: PathBuf,
        limits: Limits,
        token: CancellationToken,
        tracker: &overlap::task::TaskTracker,
    ) -> io::Result<Rc<Topic>> {
        let (segments, cut) = log::recover(&dir).await?;
        let active = segments.last().unwrap().path.clone();
        let file = OpenOptions::new().append(true).open(&active).await?;
        let end = segments.last().unwrap().end();
        let (tx, rx) = mpsc::channel(1024);
        let topic = Rc::new(Topic {
            dir,
            segments: RefCell::new(segments),
            committed: watch::Sender::new(end),
            publish: tx,
            counts: Counts::default(),
        });
        topic.counts.torn_bytes_cut.set(cut);
        let weak = Rc::downgrade(&topic);
        tracker.spawn(async move {
            let mut writer = Writer {
                file,
                rx,
                limits,
                broken: None,
            };
            while let Some(topic) = weak.upgrade() {
                let batch = overlap::select! {
                    _ = token.cancelled() => break,
                    batch = overlap::future::FutureExt::fuse(writer.next_batch()) => batch,
                };
                let Some(batch) = batch else { break };
                writer.commit(&topic, batch).await;
            }
        });
        Ok(topic)
    }
}

struct Writer {
    file: File,
    rx: mpsc::Receiver<Publish>,
    limits: Limits,
    /// Set once the file could not be put back to its committed length: every later
    /// publish is refused with this reason.
    broken: Option<String>,
}

impl Writer {
    /// Waits for a publish, then takes every one queued behind it.
    async fn next_batch(&mut self) -> Option<Vec<Publish>> {
        let mut batch = Vec::new();
        (self.rx.recv_many(&mut batch, 256).await > 0).then_some(batch)
    }

    /// Appends `batch`, syncs once, and answers every publisher in it.
    async fn commit(&mut self, topic: &Topic, batch: Vec<Publish>) {
        match self.append(topic, &batch).await {
            Ok(first) => {
                for (i, p) in batch.into_iter().enumerate() {
                    let _ = p.reply.send(Ok(first + i as u64));
                }
            }
            Err(e) => {
                topic
                    .counts
                    .batches_failed
                    .set(topic.counts.batches_failed.get() + 1);
                let reason = e.to_string();
                for p in batch {
                    let _ = p.reply.send(Err(reason.clone()));
                }
            }
        }
    }

    async fn append(&mut self, topic: &Topic, batch: &[Publish]) -> io::Result<u64> {
        if let Some(reason) = &self.broken {
            return Err(io::Error::other(reason.clone()));
        }
        let mut bytes = Vec::new();
        for p in batch {
            log::frame(&p.payload, &mut bytes);
        }
        let (len, records) = {
            let segs = topic.segments.borrow();
            let active = segs.last().unwrap();
            (active.len, active.records)
        };
        if records > 0 && len + bytes.len() as u64 > self.limits.roll_bytes {
            self.roll(topic).await?;
        }
        let (first, len) = {
            let segs = topic.segments.borrow();
            let active = segs.last().unwrap();
            (active.end(), active.len)
        };
        let written = async {
            self.file.write_all(&bytes).await?;
            self.file.sync_data().await
        }
        .await;
        if let Err(e) = written {
            // Nothing of this batch is acked: take back whatever part of it landed, so
            // the next batch follows the last committed record.
            match self.file.set_len(len).await {
                Ok(()) => topic.counts.cut_backs.set(topic.counts.cut_backs.get() + 1),
                Err(cut) => self.broken = Some(format!("{e}; then could not cut back: {cut}")),
            }
            return Err(e);
        }
        topic.counts.fsyncs.set(topic.counts.fsyncs.get() + 1);
        let end = {
            let mut segs = topic.segments.borrow_mut();
            let active = segs.last_mut().unwrap();
            active.len += bytes.len() as u64;
            active.records += batch.len() as u64;
            active.end()
        };
        topic.committed.send_replace(end);
        Ok(first)
    }

    /// Starts a new segment at the committed end and deletes those past the limit.
    async fn roll(&mut self, topic: &Topic) -> io::Result<()> {
        let base = topic.segments.borrow().last().unwrap().end();
        let path = log::segment_path(&topic.dir, base);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .await?;
        self.file = file;
        let old: Vec<Segment> = {
            let mut segs = topic.segments.borrow_mut();
            segs.push(Segment {
                base,
                path,
                len: 0,
                records: 0,
            });
            let extra = segs.len().saturating_sub(self.limits.keep_segments);
            segs.drain(..extra).collect()
        };
        for seg in old {
            // A consumer still reading it keeps its fd: the bytes stay until it lets go.
            overlap::fs::remove_file(&seg.path).await?;
        }
        Ok(())
    }
}

/// A consumer's place in a topic: the segment file it reads and where.
pub struct Reader {
    base: u64,
    file: File,
    pos: u64,
    next: u64,
    /// The topic's `cut_backs` when this reader last read.
    cut_backs: u64,
}

impl Reader {
    /// A reader at `from`, or at the oldest record kept if `from` was deleted.
    pub async fn at(topic: &Topic, from: u64) -> io::Result<Reader> {
        let seg = {
            let segs = topic.segments.borrow();
            let i = segs.iter().rposition(|s| s.base <= from).unwrap_or(0);
            segs[i].clone()
        };
        let mut reader = Reader {
            base: seg.base,
            file: File::open(&seg.path).await?,
            pos: 0,
            next: seg.base,
            cut_backs: topic.counts.cut_backs.get(),
        };
        while reader.next < from.min(seg.end()) {
            reader.skip().await?;
        }
        Ok(reader)
    }

    async fn skip(&mut self) -> io::Result<()> {
        let mut h = [0u8; HEADER as usize];
        self.file.read_exact(&mut h).await?;
        let (len, _) = log::header(&h).ok_or_else(|| io::Error::other("bad header"))?;
        self.file.seek(SeekFrom::Current(i64::from(len))).await?;
        self.pos += HEADER + u64::from(len);
        self.next += 1;
        Ok(())
    }

    /// Moves on to the next segment while this one is read to its end: the committed end
    /// of the segment now read, or `None` if no committed record is left.
    async fn ready(&mut self, topic: &Topic) -> io::Result<Option<u64>> {
        loop {
            let (seg_end, later) = {
                let segs = topic.segments.borrow();
                match segs.iter().position(|s| s.base == self.base) {
                    Some(i) => (
                        segs[i].len,
                        segs.get(i + 1).map(|s| (s.base, s.path.clone())),
                    ),
                    // Deleted under us: carry on from the oldest kept.
                    None if segs[0].base > self.next => {
                        (self.pos, Some((segs[0].base, segs[0].path.clone())))
                    }
                    None => (self.pos, None),
                }
            };
            if self.pos < seg_end {
                // overlap's `File` reads ahead, and bytes it fetched are the file as it was
                // then: after a cut-back they may be a failed batch's, so fetch anew.
                let cut_backs = topic.counts.cut_backs.get();
                if cut_backs != self.cut_backs {
                    self.file.seek(SeekFrom::Start(self.pos)).await?;
                    self.cut_backs = cut_backs;
                }
                return Ok(Some(seg_end));
            }
            match later {
                Some((base, path)) => {
                    self.file = File::open(&path).await?;
                    (self.base, self.pos, self.next) = (base, 0, base);
                }
                None => return Ok(None),
            }
        }
    }

    /// The next committed record, `None` if there is none yet.
    pub async fn next(&mut self, topic: &Topic) -> io::Result<Option<(u64, Vec<u8>)>> {
        if self.ready(topic).await?.is_none() {
            return Ok(None);
        }
        let mut h = [0u8; HEADER as usize];
        self.file.read_exact(&mut h).await?;
        let (len, crc) = log::header(&h).ok_or_else(|| io::Error::other("bad header"))?;
        let mut payload = vec![0; len as usize];
        self.file.read_exact(&mut payload).await?;
        if log::crc32(&payload) != crc {
            return Err(io::Error::other(format!(
                "bad checksum at offset {}",
                self.next
            )));
        }
        self.pos += HEADER + u64::from(len);
        self.next += 1;
        Ok(Some((self.next - 1, payload)))
    }

    /// Sends the next whole committed records of one segment, at most `max` bytes of them
    /// (at least one), to `to` as they lie on disk, with `sendfile`, after a `BATCH first
    /// count bytes` line: the first offset and how many, or `None` if there is none yet.
    pub async fn send_batch(
        &mut self,
        topic: &Topic,
        to: &mut OwnedWriteHalf,
        max: u64,
    ) -> io::Result<Option<u64>> {
        let Some(seg_end) = self.ready(topic).await? else {
            return Ok(None);
        };
        let (start, first) = (self.pos, self.next);
        while self.pos < seg_end {
            let mut h = [0u8; HEADER as usize];
            self.file.read_exact(&mut h).await?;
            let (len, _) = log::header(&h).ok_or_else(|| io::Error::other("bad header"))?;
            let size = HEADER + u64::from(len);
            if self.pos > start && self.pos + size - start > max {
                self.file.seek(SeekFrom::Start(self.pos)).await?;
                break;
            }
            self.file.seek(SeekFrom::Current(i64::from(len))).await?;
            self.pos += size;
            self.next += 1;
        }
        let (count, bytes) = (self.next - first, self.pos - start);
        to.write_all(format!("BATCH {first} {count} {bytes}\n").as_bytes())
            .await?;
        let sent = self.file.send_to(&*to, start, bytes).await?;
        if sent != bytes {
            return Err(io::Error::other(format!("{sent} of {bytes} bytes sent")));
        }
        Ok(Some(count))
    }
}
