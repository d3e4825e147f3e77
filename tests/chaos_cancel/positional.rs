//! One `fs::PositionalFile` shared by a few tasks, each reading and writing a region of its
//! own through cut calls (`read_at`, `read_exact_at`, `read_vec_at`, `write_at`,
//! `write_all_at`, `write_vec_at`, `sync_data`) against a model of the region: a read gives
//! the model's bytes, and a write lands whole or not at all. With one job at most, requests
//! run in the order they were made, so a cut write is resolved by the read after it; with
//! more, requests overtake each other, so only reads are cut (a cut read still queued is
//! skipped). A keeper task waits for the region tasks to end, however they end, then for
//! every job to let go of the file (`try_into_std`), so that no write is in flight once the
//! runtime is dropped; the file on disk must then match the models.

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use overlap::fs::PositionalFile;

use crate::cut::{clear, cut, pause, pick, seed, Cut};
use crate::support::{pattern_seeded, Rng};
use crate::sync::Tasks;

/// Bytes per region.
const REGION: usize = 24 * 1024;

/// A region's bytes, and a write that may have landed or not, while the read that tells is
/// under way (or for good, if the task was aborted meanwhile).
#[derive(Default)]
pub struct Region {
    bytes: Vec<u8>,
    maybe: Option<(usize, Vec<u8>)>,
}

/// The file's regions, one per task.
pub type Regions = Rc<RefCell<Vec<Region>>>;

/// Starts the keeper and 1 to 4 region tasks on a fresh file at `path`; the regions are
/// for [`check`] once the runtime is gone.
pub fn actor(rng: &mut Rng, tasks: &mut Tasks, path: PathBuf) -> Regions {
    let count = 1 + rng.below(4);
    let std = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std.set_len((count * REGION) as u64).unwrap();
    let file = PositionalFile::from_std(std);
    let ordered = rng.below(2) == 0;
    file.set_max_jobs(if ordered { 1 } else { 2 + rng.below(3) });
    let regions: Regions = Rc::new(RefCell::new(
        (0..count)
            .map(|_| Region {
                bytes: vec![0; REGION],
                maybe: None,
            })
            .collect(),
    ));
    let live = Rc::new(Cell::new(count));
    for k in 0..count {
        // Made here, not in the task: a task aborted before its first poll counts out too.
        let leaving = Leaving(live.clone());
        let ops = region_ops(
            file.clone(),
            k,
            regions.clone(),
            ordered,
            leaving,
            Rng(rng.next() | 1),
        );
        tasks.spawn(format!("positional region {k}"), true, ops);
    }
    tasks.spawn("positional keeper".into(), false, keep(file, live));
    regions
}

/// Counts a region task out when dropped, however the task ends.
struct Leaving(Rc<Cell<usize>>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Waits for the region tasks to end, then for every job to let go of the file: requests
/// an aborted task left queued or running must still end, and nothing may hold the fd.
async fn keep(mut file: PositionalFile, live: Rc<Cell<usize>>) {
    while live.get() > 0 {
        overlap::time::sleep(Duration::from_millis(1)).await;
    }
    for _ in 0..20_000 {
        match file.try_into_std() {
            Ok(_) => return,
            Err(back) => file = back,
        }
        overlap::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "seed {}: a PositionalFile job never let go of the file",
        seed()
    );
}

async fn region_ops(
    file: PositionalFile,
    k: usize,
    regions: Regions,
    ordered: bool,
    _leaving: Leaving,
    mut rng: Rng,
) {
    let base = (k * REGION) as u64;
    let data = pattern_seeded(2 * REGION, rng.next() as u32);
    let mut buf = vec![0u8; REGION];
    for _ in 0..rng.below(40) {
        pause(&mut rng).await;
        let at = rng.below(REGION);
        let n = 1 + rng.below(REGION - at);
        let off = base + at as u64;
        let model = |got: &[u8]| {
            let r = &regions.borrow()[k];
            assert!(
                r.maybe.is_none() && got == &r.bytes[at..at + got.len()],
                "seed {}: region {k}: {} bytes read at {at}: wrong bytes",
                seed(),
                got.len()
            );
        };
        match rng.below(8) {
            0 => match cut(pick(&mut rng), file.read_at(&mut buf[..n], off)).await {
                Some(Ok(got)) => {
                    assert!(got >= 1 && got <= n, "seed {}: read_at gave {got}", seed());
                    model(&buf[..got]);
                }
                Some(Err(e)) => failed("read_at", &e),
                None => {}
            },
            1 => match cut(pick(&mut rng), file.read_exact_at(&mut buf[..n], off)).await {
                Some(Ok(())) => model(&buf[..n]),
                Some(Err(e)) => failed("read_exact_at", &e),
                None => {}
            },
            2 => match cut(pick(&mut rng), file.read_vec_at(n, off)).await {
                Some(Ok(got)) => {
                    assert_eq!(got.len(), n, "seed {}: read_vec_at", seed());
                    model(&got);
                }
                Some(Err(e)) => failed("read_vec_at", &e),
                None => {}
            },
            3 => {
                if let Some(Err(e)) = cut(pick(&mut rng), file.sync_data()).await {
                    failed("sync_data", &e)
                }
            }
            kind => {
                let from = rng.below(data.len() - n);
                let src = &data[from..from + n];
                // Until it is known to have landed or not (the task may be aborted).
                regions.borrow_mut()[k].maybe = Some((at, src.to_vec()));
                let how = if ordered { pick(&mut rng) } else { Cut::Never };
                let outcome = match kind {
                    4 | 5 => cut(how, file.write_all_at(src, off)).await,
                    6 => cut(how, file.write_vec_at(src.to_vec(), off))
                        .await
                        .map(|r| r.map(|back| assert!(back == src, "seed {}", seed()))),
                    _ => cut(how, file.write_at(src, off))
                        .await
                        .map(|r| r.map(|wrote| assert_eq!(wrote, n, "seed {}", seed()))),
                };
                let landed = match outcome {
                    Some(Ok(())) => true,
                    Some(Err(e)) => failed("write", &e),
                    // Ordered: whatever the cut write did, it did before this read runs.
                    None => match file.read_vec_at(n, off).await {
                        Ok(back) => {
                            let r = &regions.borrow()[k];
                            let kept = back == r.bytes[at..at + n];
                            assert!(
                                back == src || kept,
                                "seed {}: region {k}: a cut write of {n} at {at} left other bytes",
                                seed()
                            );
                            back == src
                        }
                        Err(e) => failed("read_vec_at", &e),
                    },
                };
                let mut regions = regions.borrow_mut();
                let r = &mut regions[k];
                if landed {
                    r.bytes[at..at + n].copy_from_slice(src);
                }
                r.maybe = None;
            }
        }
    }
}

fn failed(op: &str, e: &std::io::Error) -> ! {
    clear(op, e);
    panic!("seed {}: positional {op}: {e:?}", seed());
}

/// After the runtime is gone: each region holds its model's bytes, or those with the write
/// it may have made applied.
pub fn check(path: &PathBuf, regions: &Regions) {
    let on_disk = std::fs::read(path).unwrap();
    let regions = regions.borrow();
    assert_eq!(on_disk.len(), regions.len() * REGION, "seed {}", seed());
    for (k, r) in regions.iter().enumerate() {
        let got = &on_disk[k * REGION..(k + 1) * REGION];
        let mut with = r.bytes.clone();
        if let Some((at, src)) = &r.maybe {
            with[*at..at + src.len()].copy_from_slice(src);
        }
        assert!(
            got == r.bytes || got == with,
            "seed {}: positional region {k} on disk differs from its model",
            seed()
        );
    }
}
