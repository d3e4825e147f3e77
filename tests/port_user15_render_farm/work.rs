//! The CPU work, run on the blocking pool: iterated hashing (`hash`), a Mandelbrot tile
//! (`mandel`) and a toy run-length compression (`rle`), each cut into steps. Between steps
//! a job reports its progress through a channel that works from a non-runtime thread
//! (`overlap::sync::mpsc::cross_thread`, tokio's `mpsc` with `blocking_send`) and looks at
//! its cooperative cancel flag, the only way to stop work the pool cannot interrupt.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use overlap::sync::mpsc::cross_thread;

/// The most pixels a tile may have. The check is an `assert!` in the job, as a user would
/// write it: a bigger tile panics on the pool thread.
pub const MAX_PIXELS: usize = 1 << 16;
/// Iterated hashing is cut into this many steps.
pub const HASH_STEPS: u32 = 8;
/// `rle` compresses this many bytes a step.
pub const RLE_CHUNK: usize = 1024;

/// A parsed job.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `rounds` rounds of a 64-bit mix over the FNV-1a hash of `data`.
    Hash { rounds: u32, data: Vec<u8> },
    /// A Mandelbrot tile: one byte of iteration count per pixel, row by row.
    Mandel(Tile),
    /// Run-length encoding: (count, byte) pairs, runs of at most 255, cut at chunk ends.
    Rle(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tile {
    pub x0: f64,
    pub y0: f64,
    pub step: f64,
    pub w: u16,
    pub h: u16,
    pub max_iter: u16,
}

impl Tile {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(30);
        for f in [self.x0, self.y0, self.step] {
            out.extend_from_slice(&f.to_be_bytes());
        }
        for n in [self.w, self.h, self.max_iter] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out
    }
}

impl Op {
    /// Parses `payload` for `op`: what a client can get wrong, answered with an `ERROR`
    /// before any work is queued.
    pub fn parse(op: &str, payload: &[u8]) -> Result<Op, String> {
        match op {
            "hash" => {
                if payload.len() < 4 {
                    return Err("hash: payload needs 4 bytes of rounds".into());
                }
                let rounds = u32::from_be_bytes(payload[..4].try_into().unwrap());
                Ok(Op::Hash {
                    rounds,
                    data: payload[4..].to_vec(),
                })
            }
            "mandel" => {
                if payload.len() != 30 {
                    return Err(format!(
                        "mandel: payload of {} bytes, not 30",
                        payload.len()
                    ));
                }
                let f = |at: usize| f64::from_be_bytes(payload[at..at + 8].try_into().unwrap());
                let n = |at: usize| u16::from_be_bytes(payload[at..at + 2].try_into().unwrap());
                let tile = Tile {
                    x0: f(0),
                    y0: f(8),
                    step: f(16),
                    w: n(24),
                    h: n(26),
                    max_iter: n(28),
                };
                if tile.max_iter == 0 || tile.w == 0 || tile.h == 0 {
                    return Err("mandel: empty tile or no iterations".into());
                }
                Ok(Op::Mandel(tile))
            }
            "rle" => Ok(Op::Rle(payload.to_vec())),
            other => Err(format!("unknown op {other:?}")),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::Hash { .. } => "hash",
            Op::Mandel(_) => "mandel",
            Op::Rle(_) => "rle",
        }
    }

    /// How many steps the job takes (one progress message each).
    pub fn steps(&self) -> u32 {
        match self {
            Op::Hash { .. } => HASH_STEPS,
            Op::Mandel(t) => t.h as u32,
            Op::Rle(data) => data.len().div_ceil(RLE_CHUNK).max(1) as u32,
        }
    }
}

/// Called by a job before each step (`step` from 0) and once more before it returns its
/// result (`step == total`): the tests hold a job there with a gate. `(op, step, total)`.
pub type StepHook = Arc<dyn Fn(&str, u32, u32) + Send + Sync>;

/// What the blocking jobs count, all of them together (atomics: the jobs run on pool
/// threads).
#[derive(Debug, Default)]
pub struct WorkCounters {
    pub started: AtomicU64,
    pub steps: AtomicU64,
    /// Jobs that saw their cancel flag and stopped.
    pub stopped_early: AtomicU64,
    /// Jobs that ran to their end.
    pub finished: AtomicU64,
    /// Progress messages whose receiver was gone (a timed-out or abandoned job).
    pub progress_unsent: AtomicU64,
}

/// What a job gives back.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Done(Vec<u8>),
    /// It saw its cancel flag before step `at_step`.
    Cancelled {
        at_step: u32,
    },
}

/// Everything a job takes to its pool thread (all `Send`).
pub struct JobCtx {
    pub cancel: Arc<AtomicBool>,
    pub progress: cross_thread::Sender<(u32, u32)>,
    pub hook: Option<StepHook>,
    pub counters: Arc<WorkCounters>,
}

/// Runs `op` in steps: the blocking job's body.
pub fn run(op: &Op, ctx: JobCtx) -> Outcome {
    ctx.counters.started.fetch_add(1, Ordering::SeqCst);
    let total = op.steps();
    if let Op::Mandel(t) = op {
        let pixels = t.w as usize * t.h as usize;
        assert!(pixels <= MAX_PIXELS, "tile too large: {}x{}", t.w, t.h);
    }
    let mut out = Vec::new();
    let mut state = match op {
        Op::Hash { data, .. } => fnv1a(data),
        _ => 0,
    };
    for step in 0..total {
        if let Some(hook) = &ctx.hook {
            hook(op.name(), step, total);
        }
        if ctx.cancel.load(Ordering::SeqCst) {
            ctx.counters.stopped_early.fetch_add(1, Ordering::SeqCst);
            return Outcome::Cancelled { at_step: step };
        }
        match op {
            Op::Hash { rounds, .. } => {
                let (from, to) = hash_step_range(*rounds, step);
                for i in from..to {
                    state = mix(state ^ i as u64);
                }
            }
            Op::Mandel(t) => out.extend(mandel_row(t, step as u16)),
            Op::Rle(data) => {
                let from = step as usize * RLE_CHUNK;
                let to = (from + RLE_CHUNK).min(data.len());
                rle_chunk(&data[from..to], &mut out);
            }
        }
        ctx.counters.steps.fetch_add(1, Ordering::SeqCst);
        // A bounded channel: the job waits while the connection's task is behind, and
        // goes on without telling once nobody listens.
        if ctx.progress.blocking_send((step + 1, total)).is_err() {
            ctx.counters.progress_unsent.fetch_add(1, Ordering::SeqCst);
        }
    }
    if let Some(hook) = &ctx.hook {
        hook(op.name(), total, total);
    }
    if let Op::Hash { .. } = op {
        out = state.to_be_bytes().to_vec();
    }
    ctx.counters.finished.fetch_add(1, Ordering::SeqCst);
    Outcome::Done(out)
}

/// The rounds of step `step`: `rounds / HASH_STEPS` each, the last taking the rest.
fn hash_step_range(rounds: u32, step: u32) -> (u32, u32) {
    let per = rounds / HASH_STEPS;
    let from = per * step;
    let to = if step + 1 == HASH_STEPS {
        rounds
    } else {
        from + per
    };
    (from, to)
}

pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64's finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn mandel_row(t: &Tile, row: u16) -> Vec<u8> {
    let cy = t.y0 + row as f64 * t.step;
    (0..t.w)
        .map(|col| {
            let cx = t.x0 + col as f64 * t.step;
            let (mut x, mut y, mut n) = (0.0f64, 0.0f64, 0u16);
            while n < t.max_iter && x * x + y * y <= 4.0 {
                let xt = x * x - y * y + cx;
                y = 2.0 * x * y + cy;
                x = xt;
                n += 1;
            }
            n.min(255) as u8
        })
        .collect()
}

fn rle_chunk(chunk: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < chunk.len() {
        let b = chunk[i];
        let mut run = 1;
        while i + run < chunk.len() && chunk[i + run] == b && run < 255 {
            run += 1;
        }
        out.push(run as u8);
        out.push(b);
        i += run;
    }
}
