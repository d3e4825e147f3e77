//! The piece picker: which block to ask which peer for. Rarest first (the fewest peers
//! holding it), ties broken by a rank drawn once from a seeded generator (so two leechers
//! with different seeds spread over different pieces, and a seed replays exactly); once
//! every missing block has been asked for, endgame: blocks outstanding at other peers are
//! asked again, and the late copies cancelled when one arrives. It also remembers who
//! sent each block, to ban the senders of a piece that fails its checksum.

use std::collections::HashMap;
use std::rc::Rc;

use super::wire::{Block, Meta, BLOCK};
use crate::support::Rng;

/// A connection, as the node numbers them.
pub type ConnId = u64;

pub struct Picker {
    meta: Rc<Meta>,
    pub have: Vec<bool>,
    /// Per piece, per block: the connection it came from, once written.
    got: Vec<Vec<Option<ConnId>>>,
    /// Blocks asked for and not yet received: the connections they are outstanding at.
    asked: HashMap<Block, Vec<ConnId>>,
    /// Per piece, how many connected peers hold it.
    pub avail: Vec<u32>,
    /// Per piece, its tie-break rank among pieces equally rare.
    rank: Vec<u64>,
    pub endgame_enabled: bool,
}

/// What a received block did.
#[derive(Debug, PartialEq, Eq)]
pub struct Received {
    /// The other connections it was outstanding at (endgame): cancel it there.
    pub cancel: Vec<ConnId>,
    /// Every block of its piece is now written: check the piece.
    pub piece_done: bool,
}

impl Picker {
    pub fn new(meta: Rc<Meta>, have: Vec<bool>, seed: u64) -> Picker {
        let got = (0..meta.pieces() as u32)
            .map(|i| vec![None; meta.blocks_in(i) as usize])
            .collect();
        let mut rng = Rng(seed | 1);
        let rank = (0..meta.pieces()).map(|_| rng.next()).collect();
        Picker {
            avail: vec![0; meta.pieces()],
            meta,
            have,
            got,
            asked: HashMap::new(),
            rank,
            endgame_enabled: true,
        }
    }

    pub fn complete(&self) -> bool {
        self.have.iter().all(|&h| h)
    }

    /// Whether `peer_has` holds a piece we lack.
    pub fn wants_from(&self, peer_has: &[bool]) -> bool {
        peer_has.iter().zip(&self.have).any(|(&p, &h)| p && !h)
    }

    pub fn add_peer(&mut self, has: &[bool], sign: i32) {
        for (a, _) in self.avail.iter_mut().zip(has).filter(|(_, &h)| h) {
            *a = a.saturating_add_signed(sign);
        }
    }

    /// Missing pieces that `peer_has`: pieces already begun first (finish what is
    /// started), then rarest first, ties by the seeded rank.
    pub fn order(&self, peer_has: &[bool]) -> Vec<u32> {
        let mut pieces: Vec<u32> = (0..self.have.len() as u32)
            .filter(|&i| !self.have[i as usize] && peer_has[i as usize])
            .collect();
        pieces.sort_by_key(|&i| {
            let i = i as usize;
            let begun = self.got[i].iter().any(Option::is_some)
                || self.asked.keys().any(|b| b.index as usize == i);
            (!begun, self.avail[i], self.rank[i])
        });
        pieces
    }

    fn missing_blocks(&self, index: u32) -> impl Iterator<Item = Block> + '_ {
        let got = &self.got[index as usize];
        (0..got.len() as u32)
            .filter(move |&n| got[n as usize].is_none())
            .map(move |n| self.meta.block(index, n))
    }

    /// Endgame: no missing block is left that nobody was asked for.
    pub fn endgame(&self) -> bool {
        (0..self.have.len() as u32)
            .filter(|&i| !self.have[i as usize])
            .all(|i| self.missing_blocks(i).all(|b| self.asked.contains_key(&b)))
    }

    /// The next block to ask `conn` for, if any, noted as outstanding there; and whether
    /// it is an endgame duplicate.
    pub fn pick(&mut self, conn: ConnId, peer_has: &[bool]) -> Option<(Block, bool)> {
        let order = self.order(peer_has);
        let fresh = order
            .iter()
            .flat_map(|&i| self.missing_blocks(i))
            .find(|b| !self.asked.contains_key(b));
        let (block, dup) = match fresh {
            Some(b) => (b, false),
            None if self.endgame_enabled && self.endgame() => {
                let b = order
                    .iter()
                    .flat_map(|&i| self.missing_blocks(i))
                    .find(|b| {
                        self.asked
                            .get(b)
                            .is_some_and(|at| !at.is_empty() && !at.contains(&conn))
                    })?;
                (b, true)
            }
            None => return None,
        };
        self.asked.entry(block).or_default().push(conn);
        Some((block, dup))
    }

    /// Whether `b` is outstanding at `conn`.
    pub fn is_asked(&self, conn: ConnId, b: &Block) -> bool {
        self.asked.get(b).is_some_and(|at| at.contains(&conn))
    }

    /// `b` no longer outstanding at `conn` (a timeout, a choke, a cancel, a drop).
    pub fn release(&mut self, conn: ConnId, b: &Block) {
        if let Some(at) = self.asked.get_mut(b) {
            at.retain(|&c| c != conn);
            if at.is_empty() {
                self.asked.remove(b);
            }
        }
    }

    /// `b` written, as received from `conn`. `None` if it was already written (a late
    /// endgame copy).
    pub fn received(&mut self, conn: ConnId, b: Block) -> Option<Received> {
        let slot = &mut self.got[b.index as usize][(b.begin / BLOCK) as usize];
        if slot.is_some() || self.have[b.index as usize] {
            self.release(conn, &b);
            return None;
        }
        *slot = Some(conn);
        let cancel = self
            .asked
            .remove(&b)
            .unwrap_or_default()
            .into_iter()
            .filter(|&c| c != conn)
            .collect();
        let piece_done = self.got[b.index as usize].iter().all(Option::is_some);
        Some(Received { cancel, piece_done })
    }

    pub fn verified(&mut self, index: u32) {
        self.have[index as usize] = true;
    }

    /// The piece failed its checksum: its blocks are forgotten, to be asked for again;
    /// the connections that sent them.
    pub fn failed(&mut self, index: u32) -> Vec<ConnId> {
        let mut from: Vec<ConnId> = self.got[index as usize]
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        from.sort_unstable();
        from.dedup();
        from
    }

    /// Every block `conn` sent for a piece not yet verified is forgotten (it was banned).
    pub fn forget_from(&mut self, conn: ConnId) {
        for (piece, blocks) in self.got.iter_mut().enumerate() {
            if !self.have[piece] {
                for slot in blocks.iter_mut().filter(|s| **s == Some(conn)) {
                    *slot = None;
                }
            }
        }
    }
}
