//! The tests' transactions: transaction `i` is always the same puts and deletes (made from
//! `i` as a seed), so a test, or a child process, can replay the store's history into a
//! model and compare.

use std::collections::BTreeMap;
use std::io;

use super::pager::PageStore;
use super::support::Rng;

pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// Transaction `txid`'s operations: one to six over forty keys, a put first (so every
/// transaction changes something), values of up to 700 bytes naming the transaction.
pub fn txn_ops(txid: u64) -> Vec<Op> {
    let mut rng = Rng(txid.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..1 + rng.below(6))
        .map(|j| {
            let key = format!("k{}", rng.below(40)).into_bytes();
            if j > 0 && rng.below(4) == 0 {
                Op::Delete(key)
            } else {
                let mut value = format!("t{txid}.{j}:").into_bytes();
                let len = value.len() + rng.below(700);
                value.resize(len, b'a' + (txid % 26) as u8);
                Op::Put(key, value)
            }
        })
        .collect()
}

pub fn apply(model: &mut Model, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put(k, v) => {
                model.insert(k.clone(), v.clone());
            }
            Op::Delete(k) => {
                model.remove(k);
            }
        }
    }
}

/// The keys and values after transactions `1..=n`.
pub fn model_after(n: u64) -> Model {
    let mut model = Model::new();
    for txid in 1..=n {
        apply(&mut model, &txn_ops(txid));
    }
    model
}

/// Runs transaction `txid` on the store (the next one it expects) and commits it.
pub async fn run_txn(store: &mut PageStore, txid: u64) -> io::Result<()> {
    assert_eq!(store.committed().seq + 1, txid, "transactions run in order");
    for op in txn_ops(txid) {
        match op {
            Op::Put(k, v) => store.put(&k, &v).await?,
            Op::Delete(k) => {
                store.delete(&k).await?;
            }
        }
    }
    assert_eq!(store.commit().await?, txid);
    Ok(())
}
