//! The guards an `RwLock` hands out, of every kind, as the lock review's model holds them,
//! and the ways a held one may change (downgraded, narrowed, given back by a `try_`).

use overlap::sync::{
    OwnedRwLockMappedWriteGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard,
    RwLockMappedWriteGuard, RwLockReadGuard, RwLockWriteGuard,
};

use super::support::Rng;
use super::Pair;

/// A guard an `RwLock` gave, of any of its kinds.
pub enum RwHeld {
    Read(RwLockReadGuard<'static, Pair>),
    ReadPart(RwLockReadGuard<'static, u64>),
    OwnedRead(OwnedRwLockReadGuard<Pair>),
    OwnedReadPart(OwnedRwLockReadGuard<Pair, u64>),
    Write(RwLockWriteGuard<'static, Pair>),
    WritePart(RwLockMappedWriteGuard<'static, u64>),
    OwnedWrite(OwnedRwLockWriteGuard<Pair>),
    OwnedWritePart(OwnedRwLockMappedWriteGuard<Pair, u64>),
}

impl RwHeld {
    pub fn is_writer(&self) -> bool {
        matches!(
            self,
            RwHeld::Write(_)
                | RwHeld::WritePart(_)
                | RwHeld::OwnedWrite(_)
                | RwHeld::OwnedWritePart(_)
        )
    }

    /// What the guard sees of the value.
    pub fn seen(&self) -> Vec<u64> {
        match self {
            RwHeld::Read(g) => g.to_vec(),
            RwHeld::OwnedRead(g) => g.to_vec(),
            RwHeld::Write(g) => g.to_vec(),
            RwHeld::OwnedWrite(g) => g.to_vec(),
            RwHeld::ReadPart(g) => vec![**g],
            RwHeld::OwnedReadPart(g) => vec![**g],
            RwHeld::WritePart(g) => vec![**g],
            RwHeld::OwnedWritePart(g) => vec![**g],
        }
    }

    /// A writer of the whole value writes the next number into both halves.
    pub fn write(&mut self, n: u64) {
        match self {
            RwHeld::Write(g) => **g = [n, n],
            RwHeld::OwnedWrite(g) => **g = [n, n],
            _ => unreachable!("only whole write guards are written"),
        }
    }
}

/// One of the ways a held guard may change: a writer downgraded (keeping one permit, the
/// others freed), narrowed or given back by a `try_` that finds nothing; a reader narrowed.
/// `n` is the lock's `max_readers`. The new guard, the permits freed, and what was done.
pub fn transform_rw(g: RwHeld, n: usize, rng: &mut Rng) -> (RwHeld, usize, String) {
    let k = rng.below(2);
    let some = rng.below(2) == 0;
    let pick = rng.below(3);
    match g {
        RwHeld::Write(w) => match pick {
            0 => (
                RwHeld::Read(RwLockWriteGuard::downgrade(w)),
                n - 1,
                "downgrade".into(),
            ),
            1 => match RwLockWriteGuard::try_downgrade_map(w, |v| some.then(|| &v[k])) {
                Ok(r) => (
                    RwHeld::ReadPart(r),
                    n - 1,
                    format!("try_downgrade_map to [{k}]"),
                ),
                Err(w) => (RwHeld::Write(w), 0, "try_downgrade_map to nothing".into()),
            },
            _ => match RwLockWriteGuard::try_map(w, |v| some.then(|| &mut v[k])) {
                Ok(p) => (RwHeld::WritePart(p), 0, format!("try_map to [{k}]")),
                Err(w) => (RwHeld::Write(w), 0, "try_map to nothing".into()),
            },
        },
        RwHeld::OwnedWrite(w) => match pick {
            0 => (
                RwHeld::OwnedReadPart(OwnedRwLockWriteGuard::downgrade_map(w, |v| &v[k])),
                n - 1,
                format!("owned downgrade_map to [{k}]"),
            ),
            1 => (
                RwHeld::OwnedRead(OwnedRwLockWriteGuard::downgrade(w)),
                n - 1,
                "owned downgrade".into(),
            ),
            _ => (
                RwHeld::OwnedWritePart(OwnedRwLockWriteGuard::map(w, |v| &mut v[k])),
                0,
                format!("owned map to [{k}]"),
            ),
        },
        RwHeld::Read(r) => match RwLockReadGuard::try_map(r, |v| some.then(|| &v[k])) {
            Ok(p) => (RwHeld::ReadPart(p), 0, format!("read try_map to [{k}]")),
            Err(r) => (RwHeld::Read(r), 0, "read try_map to nothing".into()),
        },
        RwHeld::OwnedRead(r) => (
            RwHeld::OwnedReadPart(OwnedRwLockReadGuard::map(r, |v| &v[k])),
            0,
            format!("owned read map to [{k}]"),
        ),
        part => (part, 0, "a narrowed guard kept as is".into()),
    }
}
