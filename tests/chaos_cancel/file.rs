//! A file in a temp dir, used through cut reads, writes, seeks, flushes and positional reads
//! and writes against a model of its contents: a read gives the model's bytes, a write that
//! returned counts, one cut while it waited does not; a cut seek may land or not (the next
//! seek tells which), and so may a cut `write_at` (reading its span back tells). The
//! file on disk must equal the model once the runtime is gone, even if the task was
//! aborted with bytes still buffered.

use std::cell::RefCell;
use std::io::SeekFrom;
use std::path::PathBuf;
use std::rc::Rc;

use overlap::io::{AsyncReadExt, AsyncWriteExt};

use crate::cut::{clear, cut, pause, pick, seed};
use crate::support::{open_fresh, pattern_seeded, Rng};

/// The contents the file must have, and the position the `File` must be at.
#[derive(Default)]
pub struct Model {
    pub bytes: Vec<u8>,
    pos: usize,
    /// Bytes a write took after a cut seek, at one of two places, while the seek that
    /// tells which is under way (the task may be aborted meanwhile).
    unplaced: Option<([usize; 2], Vec<u8>)>,
    /// The size a cut `set_len` may have set, while the seek that tells is under way.
    unsized_to: Option<usize>,
    /// A `write_at` of these bytes at this offset that may have landed or not, while the
    /// read that tells is under way.
    maybe_at: Option<(usize, Vec<u8>)>,
    /// The open returned. A task aborted before may leave no file: an open dropped while
    /// its job still waits for a pool thread never runs.
    opened: bool,
}

impl Model {
    /// Writes `src` at `at`, growing the file as needed (nothing, if `src` is empty).
    fn put(&mut self, at: usize, src: &[u8]) {
        if src.is_empty() {
            return;
        }
        if self.bytes.len() < at + src.len() {
            self.bytes.resize(at + src.len(), 0);
        }
        self.bytes[at..at + src.len()].copy_from_slice(src);
    }
}

/// Runs random operations on a fresh file at `path`, keeping `model` up to date.
pub async fn file_ops(path: PathBuf, model: Rc<RefCell<Model>>, mut rng: Rng) {
    let mut f = open_fresh(&path).await;
    model.borrow_mut().opened = true;
    if rng.below(3) == 0 {
        f.set_max_buf_size(1 + rng.below(8192));
    }
    let data = pattern_seeded(300_000, rng.next() as u32);
    let mut buf = vec![0u8; 100_000];
    for _ in 0..rng.below(60) {
        let (len, pos) = {
            let m = model.borrow();
            (m.bytes.len(), m.pos)
        };
        match rng.below(10) {
            0..=2 => {
                let most = if rng.below(2) == 0 { 100 } else { 100_000 };
                let n = 1 + rng.below(most);
                let from = rng.below(data.len() - n);
                let src = &data[from..from + n];
                match cut(pick(&mut rng), f.write(src)).await {
                    Some(Ok(k)) => {
                        assert!(k > 0 && k <= n, "seed {}: file write gave {k}", seed());
                        let mut m = model.borrow_mut();
                        m.put(pos, &src[..k]);
                        m.pos = pos + k;
                    }
                    Some(Err(e)) => failed("write", &e),
                    None => {}
                }
            }
            3 | 4 => {
                let n = 1 + rng.below(buf.len());
                match cut(pick(&mut rng), f.read(&mut buf[..n])).await {
                    Some(Ok(k)) => {
                        let expect = n.min(len.saturating_sub(pos));
                        assert!(
                            k <= expect && (k > 0 || expect == 0),
                            "seed {}: file read gave {k} of {n} at {pos} of {len}",
                            seed()
                        );
                        assert!(
                            k == 0 || buf[..k] == model.borrow().bytes[pos..pos + k],
                            "seed {}: file read at {pos} gave the wrong bytes",
                            seed()
                        );
                        model.borrow_mut().pos = pos + k;
                    }
                    Some(Err(e)) => failed("read", &e),
                    None => {}
                }
            }
            5 | 6 => {
                let (to, target) = match rng.below(3) {
                    0 => {
                        let at = rng.below(len + 100);
                        (SeekFrom::Start(at as u64), at)
                    }
                    1 => {
                        let back = rng.below(pos + 1);
                        (SeekFrom::Current(-(back as i64)), pos - back)
                    }
                    _ => {
                        let back = rng.below(len + 1);
                        (SeekFrom::End(-(back as i64)), len - back)
                    }
                };
                let at = match cut(pick(&mut rng), f.seek(to)).await {
                    Some(Ok(at)) => {
                        let at = at as usize;
                        assert_eq!(at, target, "seed {}: {to:?} from {pos}", seed());
                        at
                    }
                    Some(Err(e)) => return failed("seek", &e),
                    None => {
                        // A cut seek lands or not. A read or a write may come first; then
                        // a seek tells where the file is, hence where that one went.
                        let (n, read) = (1 + rng.below(2000), rng.below(3));
                        let k = match read {
                            0 => 0,
                            1 => match f.read(&mut buf[..n]).await {
                                Ok(k) => k,
                                Err(e) => return failed("read", &e),
                            },
                            _ => match f.write(&data[..n]).await {
                                Ok(k) => {
                                    model.borrow_mut().unplaced =
                                        Some(([pos, target], data[..k].to_vec()));
                                    k
                                }
                                Err(e) => return failed("write", &e),
                            },
                        };
                        let at = match f.seek(SeekFrom::Current(0)).await {
                            Ok(at) => at as usize,
                            Err(e) => return failed("seek", &e),
                        };
                        let from = at.wrapping_sub(k);
                        assert!(
                            from == pos || from == target,
                            "seed {}: after a cut {to:?} from {pos} and {k} bytes moved, the \
                             file is at {at}",
                            seed()
                        );
                        let mut m = model.borrow_mut();
                        if read == 1 {
                            let expect = n.min(len.saturating_sub(from));
                            assert!(
                                k <= expect
                                    && (k > 0 || expect == 0)
                                    && (k == 0 || buf[..k] == m.bytes[from..from + k]),
                                "seed {}: read {k} of {n} at {from} of {len}: wrong bytes",
                                seed()
                            );
                        } else {
                            m.unplaced = None;
                            m.put(from, &data[..k]);
                        }
                        at
                    }
                };
                model.borrow_mut().pos = at;
            }
            7 if rng.below(2) == 0 => {
                let (at, n) = (rng.below(len + 100), 1 + rng.below(buf.len()));
                match cut(pick(&mut rng), f.read_at(&mut buf[..n], at as u64)).await {
                    Some(Ok(k)) => {
                        let expect = n.min(f.max_buf_size()).min(len.saturating_sub(at));
                        assert!(
                            k <= expect
                                && (k > 0 || expect == 0)
                                && (k == 0 || buf[..k] == model.borrow().bytes[at..at + k]),
                            "seed {}: read_at({n} at {at}) of {len} gave {k}: wrong bytes",
                            seed()
                        );
                    }
                    Some(Err(e)) => return failed("read_at", &e),
                    None => {}
                }
            }
            7 => {
                // One job's worth at most: a cut one lands whole or not at all.
                let at = rng.below(len + 100);
                let n = 1 + rng.below(f.max_buf_size().min(20_000));
                let from = rng.below(data.len() - n);
                let src = &data[from..from + n];
                model.borrow_mut().maybe_at = Some((at, src.to_vec()));
                let landed = match cut(pick(&mut rng), f.write_at(src, at as u64)).await {
                    Some(Ok(k)) => {
                        assert_eq!(k, n, "seed {}: write_at of {n} at {at}", seed());
                        true
                    }
                    Some(Err(e)) => return failed("write_at", &e),
                    None => {
                        let mut back = vec![0u8; n];
                        let mut got = 0;
                        while got < n {
                            match f.read_at(&mut back[got..], (at + got) as u64).await {
                                Ok(0) => break,
                                Ok(k) => got += k,
                                Err(e) => return failed("read_at", &e),
                            }
                        }
                        let landed = got == n && back == src;
                        let old = &model.borrow().bytes;
                        let kept = got == n.min(old.len().saturating_sub(at))
                            && back[..got] == old[at.min(old.len())..at.min(old.len()) + got];
                        assert!(
                            landed || kept,
                            "seed {}: a cut write_at({n} at {at}) left other bytes",
                            seed()
                        );
                        landed
                    }
                };
                let mut m = model.borrow_mut();
                if landed {
                    m.put(at, src);
                }
                m.maybe_at = None;
            }
            8 => {
                // A cut set_len truncates or not; a seek to the end tells which.
                let size = rng.below(len + 2000);
                // Until it is known to have happened or not (the task may be aborted).
                model.borrow_mut().unsized_to = Some(size);
                let done = match cut(pick(&mut rng), f.set_len(size as u64)).await {
                    Some(Ok(())) => true,
                    Some(Err(e)) => return failed("set_len", &e),
                    None => false,
                };
                if done {
                    let mut m = model.borrow_mut();
                    m.bytes.resize(size, 0);
                    m.unsized_to = None;
                    continue;
                }
                let end = match f.seek(SeekFrom::End(0)).await {
                    Ok(end) => end as usize,
                    Err(e) => return failed("seek", &e),
                };
                assert!(
                    end == len || end == size,
                    "seed {}: a cut set_len({size}) left {end} bytes of {len}",
                    seed()
                );
                let mut m = model.borrow_mut();
                m.bytes.resize(end, 0);
                m.pos = end;
                m.unsized_to = None;
            }
            _ => {
                let res = if rng.below(4) == 0 {
                    cut(pick(&mut rng), f.sync_all()).await
                } else {
                    cut(pick(&mut rng), f.flush()).await
                };
                if let Some(Err(e)) = res {
                    failed("flush", &e);
                }
            }
        }
        pause(&mut rng).await;
    }
    if rng.below(2) == 0 {
        // Left to the drop otherwise, which must not lose the buffered bytes either.
        f.flush().await.unwrap();
    }
}

fn failed(op: &str, e: &std::io::Error) {
    clear(op, e);
    panic!("seed {}: file {op}: {e:?}", seed());
}

/// After the runtime is gone: the file holds exactly the model's bytes (with unplaced ones
/// at either of their places).
pub fn check(path: &PathBuf, model: &Model) {
    let on_disk = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !model.opened => return,
        Err(e) => panic!("seed {}: reading {path:?}: {e}", seed()),
    };
    let mut fits = vec![model.bytes.clone()];
    if let Some((places, src)) = &model.unplaced {
        fits = places
            .iter()
            .map(|&at| {
                let mut m = Model {
                    bytes: model.bytes.clone(),
                    ..Model::default()
                };
                m.put(at, src);
                m.bytes
            })
            .collect();
    }
    if let Some((at, src)) = &model.maybe_at {
        let mut m = Model {
            bytes: model.bytes.clone(),
            ..Model::default()
        };
        m.put(*at, src);
        fits.push(m.bytes);
    }
    if let Some(size) = model.unsized_to {
        let mut cut = model.bytes.clone();
        cut.resize(size, 0);
        fits.push(cut);
    }
    let fits = fits.contains(&on_disk);
    if !fits {
        let first = on_disk.iter().zip(&model.bytes).position(|(a, b)| a != b);
        panic!(
            "seed {}: file holds {} bytes, the model {}; first difference at {first:?}",
            seed(),
            on_disk.len(),
            model.bytes.len()
        );
    }
}
