//! The guards a `Mutex` hands out, of every kind, as the lock review's model holds them,
//! and the ways a held one may be narrowed.

use std::rc::Rc;

use overlap::sync::{MappedMutexGuard, Mutex, MutexGuard, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::support::Rng;
use super::Pair;

/// A guard a `Mutex` gave, of any of its kinds.
pub enum MutexHeld {
    Whole(MutexGuard<'static, Pair>),
    Part(MappedMutexGuard<'static, u64>),
    Owned(OwnedMutexGuard<Pair>),
    OwnedPart(OwnedMappedMutexGuard<Pair, u64>),
}

impl MutexHeld {
    /// Checks the value is the last write, whole, then (for a guard of the whole value)
    /// writes `n` into both halves.
    pub fn check_and_write(&mut self, last: u64, n: u64) -> Result<(), String> {
        let seen = match self {
            MutexHeld::Whole(g) => g.to_vec(),
            MutexHeld::Owned(g) => g.to_vec(),
            MutexHeld::Part(g) => vec![**g],
            MutexHeld::OwnedPart(g) => vec![**g],
        };
        if seen.iter().any(|&v| v != last) {
            return Err(format!(
                "the holder sees {seen:?}, the last write was {last}"
            ));
        }
        match self {
            MutexHeld::Whole(g) => **g = [n, n],
            MutexHeld::Owned(g) => **g = [n, n],
            // A part is written with the same number: the whole stays consistent.
            MutexHeld::Part(g) => **g = last,
            MutexHeld::OwnedPart(g) => **g = last,
        }
        Ok(())
    }

    pub fn is_whole(&self) -> bool {
        matches!(self, MutexHeld::Whole(_) | MutexHeld::Owned(_))
    }
}

/// Narrows a held mutex guard one of the ways the API offers; a `try_map` that finds
/// nothing gives the same guard back. Checks a guard of the whole value names its mutex.
pub fn transform_mutex(
    g: MutexHeld,
    lock: &'static Rc<Mutex<Pair>>,
    rng: &mut Rng,
) -> (MutexHeld, String) {
    let (k, some) = (rng.below(2), rng.below(2) == 0);
    match g {
        MutexHeld::Whole(g) => {
            assert!(std::ptr::eq(MutexGuard::mutex(&g), &**lock));
            match MutexGuard::try_map(g, |v| some.then(|| &mut v[k])) {
                Ok(p) => (MutexHeld::Part(p), format!("try_map to [{k}]")),
                Err(g) => (MutexHeld::Whole(g), "try_map to nothing".into()),
            }
        }
        MutexHeld::Owned(g) => {
            assert!(Rc::ptr_eq(OwnedMutexGuard::mutex(&g), lock));
            match OwnedMutexGuard::try_map(g, |v| some.then(|| &mut v[k])) {
                Ok(p) => (MutexHeld::OwnedPart(p), format!("owned try_map to [{k}]")),
                Err(g) => (MutexHeld::Owned(g), "owned try_map to nothing".into()),
            }
        }
        MutexHeld::Part(p) => match MappedMutexGuard::try_map(p, |v| some.then_some(v)) {
            Ok(p) => (MutexHeld::Part(p), "mapped try_map to itself".into()),
            Err(p) => (MutexHeld::Part(p), "mapped try_map to nothing".into()),
        },
        MutexHeld::OwnedPart(p) => (
            MutexHeld::OwnedPart(OwnedMappedMutexGuard::map(p, |v| v)),
            "owned mapped map to itself".into(),
        ),
    }
}
