//! Choosing what a drill restores: the files of the chosen snapshots, weighted toward packs no
//! trusted drill record covers yet (so successive drills reach every pack), random otherwise.

use crate::error::Result;
use crate::repo::blobs::BlobReader;
use crate::repo::index::Index;
use crate::repo::tree::walk;
use std::collections::{BTreeSet, HashMap};
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{Node, NodeKind};

/// How much to sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// This many files (`--sample N`).
    Files(u64),
    /// Files until their content reaches this many bytes (`--sample-bytes SIZE`).
    Bytes(u64),
    /// This share of the chosen snapshots' file bytes, 0–100 (`--share P%`).
    Share(f64),
}

/// A file (or symlink) a drill may restore.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The snapshot it is in.
    pub snapshot: ObjectId,
    /// Its path in the snapshot, as bytes (`/home/a/f`).
    pub path: Vec<u8>,
    /// Its node.
    pub node: Node,
    /// Positions in the index of the packs of its content blobs, sorted.
    pub packs: Vec<u32>,
}

/// The files and symlinks of `snapshots` with the packs of their content, and the packs of the
/// trees walked (loading a tree verifies it: those packs count as drilled).
///
/// # Errors
/// A tree that does not load.
pub fn candidates(
    reader: &BlobReader<'_>,
    index: &Index,
    snapshots: &[(ObjectId, Snapshot)],
) -> Result<(Vec<Candidate>, BTreeSet<u32>)> {
    let mut out = Vec::new();
    let mut tree_packs = BTreeSet::new();
    // A pack listed more than once is known by its first listing.
    let canon = |pos: u32| index.pack_position(&index.pack(pos).id).unwrap_or(pos);
    for (id, snap) in snapshots {
        tree_packs.extend(index.get(&snap.tree).map(|l| canon(l.pack)));
        walk(reader, &snap.tree, "/", &mut |path, node| {
            if let Some(t) = node.subtree {
                tree_packs.extend(index.get(&t).map(|l| canon(l.pack)));
            }
            if matches!(node.kind, NodeKind::File | NodeKind::Symlink) {
                let mut packs: Vec<u32> = node
                    .content
                    .iter()
                    .filter_map(|b| index.get(b).map(|l| canon(l.pack)))
                    .collect();
                packs.sort_unstable();
                packs.dedup();
                out.push(Candidate {
                    snapshot: *id,
                    path: path.to_vec(),
                    node: node.clone(),
                    packs,
                });
            }
        })?;
    }
    Ok((out, tree_packs))
}

/// A small seedable generator (splitmix64): sampling needs spread, not secrecy.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded with `seed`, or from the operating system.
    pub fn new(seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        });
        Rng(seed)
    }

    /// The next number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// Pick files from `all` within `budget`: first, while some candidate has content in a pack of
/// `uncovered` not yet picked, a random one of those (so every drill reaches new packs); then
/// random ones. Returns indices into `all`, in picking order. Each pick costs the packs it
/// closes times their candidates, not a scan of every candidate.
pub fn choose(
    all: &[Candidate],
    uncovered: &BTreeSet<u32>,
    budget: Budget,
    rng: &mut Rng,
) -> Vec<usize> {
    let total_bytes: u64 = all.iter().map(file_bytes).sum();
    let (max_files, max_bytes) = match budget {
        Budget::Files(n) => (n, u64::MAX),
        Budget::Bytes(b) => (u64::MAX, b),
        Budget::Share(p) => (u64::MAX, ((total_bytes as f64) * p / 100.0).ceil() as u64),
    };
    let mut open = uncovered.clone();
    // Per open pack its candidates; per candidate how many open packs it reaches.
    let mut by_pack: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut reach = vec![0usize; all.len()];
    for (i, c) in all.iter().enumerate() {
        let packs: BTreeSet<u32> = c
            .packs
            .iter()
            .copied()
            .filter(|p| open.contains(p))
            .collect();
        reach[i] = packs.len();
        for p in packs {
            by_pack.entry(p).or_default().push(i);
        }
    }
    let mut left = Pool::new(all.len(), |_| true);
    let mut fresh = Pool::new(all.len(), |i| reach[i] > 0);
    let (mut picked, mut bytes) = (Vec::new(), 0u64);
    while (picked.len() as u64) < max_files && bytes < max_bytes.max(1) && !left.is_empty() {
        let from = if fresh.is_empty() { &left } else { &fresh };
        let i = from.get(rng.below(from.len()));
        left.remove(i);
        fresh.remove(i);
        for p in &all[i].packs {
            if open.remove(p) {
                for &j in by_pack.get(p).map_or(&[][..], Vec::as_slice) {
                    reach[j] -= 1;
                    if reach[j] == 0 {
                        fresh.remove(j);
                    }
                }
            }
        }
        bytes += file_bytes(&all[i]);
        picked.push(i);
    }
    picked
}

/// A set of candidate indices with O(1) insert, remove and pick by position.
struct Pool {
    items: Vec<usize>,
    /// Each index's position in `items`, or `usize::MAX` when absent.
    at: Vec<usize>,
}

impl Pool {
    /// The indices `0..n` for which `keep` holds.
    fn new(n: usize, keep: impl Fn(usize) -> bool) -> Self {
        let items: Vec<usize> = (0..n).filter(|&i| keep(i)).collect();
        let mut at = vec![usize::MAX; n];
        for (k, &i) in items.iter().enumerate() {
            at[i] = k;
        }
        Pool { items, at }
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn get(&self, k: usize) -> usize {
        self.items[k]
    }

    fn remove(&mut self, i: usize) {
        let k = std::mem::replace(&mut self.at[i], usize::MAX);
        if k == usize::MAX {
            return;
        }
        self.items.swap_remove(k);
        if let Some(&moved) = self.items.get(k) {
            self.at[moved] = k;
        }
    }
}

/// The content bytes of a candidate (0 for a symlink).
pub fn file_bytes(c: &Candidate) -> u64 {
    if c.node.kind == NodeKind::File {
        c.node.size
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(packs: &[u32], size: u64) -> Candidate {
        Candidate {
            snapshot: ObjectId::default(),
            path: b"/f".to_vec(),
            node: Node {
                size,
                ..Node::bare(b"f", NodeKind::File)
            },
            packs: packs.to_vec(),
        }
    }

    /// One file per uncovered pack first, whatever the seed; then the budget holds.
    #[test]
    fn uncovered_packs_first_then_budget() {
        let all = vec![
            cand(&[0], 10),
            cand(&[0], 10),
            cand(&[1], 10),
            cand(&[2], 10),
        ];
        for seed in 0..20 {
            let mut rng = Rng::new(Some(seed));
            let un: BTreeSet<u32> = [0, 1, 2].into();
            let got = choose(&all, &un, Budget::Files(3), &mut rng);
            let mut packs: Vec<u32> = got.iter().flat_map(|&i| all[i].packs.clone()).collect();
            packs.sort_unstable();
            assert_eq!(packs, [0, 1, 2], "seed {seed}");
            let got = choose(&all, &un, Budget::Bytes(15), &mut rng);
            assert_eq!(got.len(), 2);
            let got = choose(&all, &BTreeSet::new(), Budget::Share(100.0), &mut rng);
            assert_eq!(got.len(), 4);
            let got = choose(&all, &BTreeSet::new(), Budget::Share(50.0), &mut rng);
            assert_eq!(got.len(), 2);
        }
    }

    #[test]
    fn same_seed_same_choice() {
        let all: Vec<Candidate> = (0..50).map(|i| cand(&[i], 1)).collect();
        let pick = |s| {
            choose(
                &all,
                &BTreeSet::new(),
                Budget::Files(5),
                &mut Rng::new(Some(s)),
            )
        };
        assert_eq!(pick(7), pick(7));
        assert_ne!(pick(7), pick(8));
    }
}
