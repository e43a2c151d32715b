//! Mark, keep, decide: which blobs the snapshots use, which stored copies of them are kept
//! ([`super::copies::choose`]), what happens to every indexed pack — and the copies that must
//! be read and verified before another copy of the same blob may be condemned (format §16).

use super::copies::{self, Check, Copy, Place, Users};
use super::{
    Entry, PackAction, PackRec, PruneOptions, SnapInfo, Source, bit, open_index, range_of,
    read_fossils, read_pack_header, set_bit, too_deep,
};
use crate::blobs::BlobReader;
use crate::error::{CoreError, Result};
use crate::index::{IdSet, Index, Lister};
use crate::repository::Repository;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use tresor_format::index::IndexPack;
use tresor_format::tree::{MAX_TREE_DEPTH, NodeKind};
use tresor_format::{BlobId, ObjectId};

/// The bit of the user sets that stands for every signer beyond the first 63.
const MORE: u8 = 63;

/// The signers of the snapshots that count, numbered for the per-blob user sets: bit `i` of a
/// set is signer `i` (for `i` < 63); bit 63 stands for all the others.
#[derive(Default)]
pub(super) struct Signers(Vec<[u8; 32]>);

impl Signers {
    /// The bit of `signer` in user sets.
    pub(super) fn bit(&mut self, signer: [u8; 32]) -> u8 {
        match self.0.iter().position(|s| *s == signer) {
            Some(i) => (i as u8).min(MORE),
            None => {
                self.0.push(signer);
                ((self.0.len() - 1) as u8).min(MORE)
            }
        }
    }

    /// The users in `set`, by name, into `out`; returns whether there are others.
    fn users(&self, set: u64, out: &mut Vec<[u8; 32]>) -> bool {
        out.clear();
        for (i, s) in self.0.iter().enumerate().take(MORE as usize) {
            if set >> i & 1 == 1 {
                out.push(*s);
            }
        }
        set >> MORE & 1 == 1
    }
}

/// What marking found: used entries, the users of each entry's blob, and the first few used
/// blobs stored nowhere.
pub(super) struct Marked {
    /// Bit per entry: its blob is used.
    pub used: Vec<u64>,
    /// Per entry: the user set of its blob (see [`Signers`]).
    pub users: Vec<u64>,
    /// Used blobs stored nowhere (at most 20).
    pub missing: Vec<String>,
}

/// Mark the entries of every blob a snapshot uses (trees through `trees`), and which counted
/// signers use them. Snapshots are walked per user (each tree once per user), so that a tree
/// two signers share counts for both.
///
/// # Errors
/// [`CoreError::Damaged`] naming the snapshot and directory when a tree does not load or is
/// nested deeper than [`MAX_TREE_DEPTH`]: its data cannot be marked.
pub(super) fn mark_used(
    repo: &Repository,
    snaps: &[SnapInfo],
    entries: &[Entry],
    trees: &Index,
) -> Result<Marked> {
    let mut m = Marked {
        used: vec![0u64; entries.len().div_ceil(64)],
        users: vec![0u64; entries.len()],
        missing: Vec::new(),
    };
    let mut groups: BTreeMap<Option<u8>, Vec<&SnapInfo>> = BTreeMap::new();
    for s in snaps {
        groups.entry(s.user).or_default().push(s);
    }
    for (user, group) in groups {
        let mut seen: IdSet<BlobId> = IdSet::default();
        for s in group {
            let reader = BlobReader::for_snapshot(repo, trees, Some(s.signer));
            walk_snapshot(&reader, s, &mut seen, &mut |id, what| {
                let r = range_of(entries, &id.0);
                if r.is_empty() && m.missing.len() < 20 {
                    m.missing
                        .push(format!("blob {id} ({}) is stored nowhere", what()));
                }
                for i in r {
                    set_bit(&mut m.used, i);
                    if let Some(u) = user {
                        m.users[i] |= 1 << u;
                    }
                }
            })?;
        }
    }
    Ok(m)
}

/// Walk the trees of one snapshot (those not in `seen`), calling `mark` for every tree and
/// content blob with a description of where it is used.
fn walk_snapshot(
    reader: &BlobReader,
    s: &SnapInfo,
    seen: &mut IdSet<BlobId>,
    mark: &mut dyn FnMut(&BlobId, &dyn Fn() -> String),
) -> Result<()> {
    let damaged = |path: &str, e: &dyn fmt::Display| {
        CoreError::Damaged(format!(
            "snapshot {} directory {path}: {e}; run `tresor repair snapshots` before pruning",
            s.id.short()
        ))
    };
    let mut stack = vec![(s.tree, String::from("/"), 0usize)];
    while let Some((tree_id, path, depth)) = stack.pop() {
        if !seen.insert(tree_id) {
            continue;
        }
        mark(&tree_id, &|| {
            format!("directory {path} of snapshot {}", s.id.short())
        });
        if depth > MAX_TREE_DEPTH {
            return Err(damaged(&path, &too_deep()));
        }
        let tree = reader.load_tree(&tree_id).map_err(|e| damaged(&path, &e))?;
        for n in &tree.nodes {
            if let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) {
                stack.push((sub, format!("{path}{}/", n.name_shown()), depth + 1));
                continue;
            }
            for b in &n.content {
                mark(b, &|| {
                    format!("file {path}{} of snapshot {}", n.name_shown(), s.id.short())
                });
            }
        }
    }
    Ok(())
}

/// Everything the choice of copies looks at.
pub(super) struct Tables<'a> {
    /// Blob entries, sorted by id.
    pub entries: &'a [Entry],
    /// Marking's result.
    pub marked: &'a Marked,
    /// The signers of user sets.
    pub signers: &'a Signers,
    /// What reading showed, by entry (absent: not read).
    pub checks: &'a HashMap<usize, Check>,
}

impl Tables<'_> {
    /// The copies of the blob at `range` as [`copies::choose`] takes them.
    fn copies(&self, packs: &[PackRec], range: std::ops::Range<usize>, out: &mut Vec<Copy>) {
        out.clear();
        for k in range {
            let p = &packs[self.entries[k].pack as usize];
            out.push(Copy {
                lister: if p.trusted { Lister::Full } else { p.lister },
                place: match (p.size, p.live) {
                    (None, _) => Place::Gone,
                    (Some(_), true) => Place::Indexed,
                    (Some(_), false) => Place::Dormant,
                },
                check: self.checks.get(&k).copied().unwrap_or(Check::Unchecked),
                doomed: doomed(p),
            });
        }
    }

    /// Call `f` with the first entry, the entry range and the choice of every used blob.
    fn each_choice(&self, packs: &[PackRec], f: &mut dyn FnMut(usize, copies::Choice)) {
        let (mut copies, mut names) = (Vec::new(), Vec::new());
        let entries = self.entries;
        let mut i = 0;
        while i < entries.len() {
            let mut j = i + 1;
            while j < entries.len() && entries[j].id == entries[i].id {
                j += 1;
            }
            if bit(&self.marked.used, i) {
                self.copies(packs, i..j, &mut copies);
                let more = self.signers.users(self.marked.users[i], &mut names);
                let users = Users {
                    signers: &names,
                    more,
                };
                f(i, copies::choose(&copies, &users));
            }
            i = j;
        }
    }
}

/// Whether a pack goes unless a copy in it is kept: condemned or repacked in this run, or
/// condemned (or unindexed) already and not resurrected.
fn doomed(p: &PackRec) -> bool {
    match p.live {
        true => matches!(p.action, PackAction::Condemn | PackAction::Repack),
        false => p.size.is_some() && p.action != PackAction::Resurrect,
    }
}

/// The copies kept: the chosen bits, the used blobs and their bytes (one copy each). Packs
/// get their used counts, and condemned or unindexed packs holding a kept copy are resurrected.
/// Used blobs with no intact copy in storage are added to `missing`.
pub(super) fn choose_copies(
    t: &Tables,
    packs: &mut [PackRec],
    missing: &mut Vec<String>,
) -> (Vec<u64>, u64, u64) {
    let mut chosen = vec![0u64; t.marked.used.len()];
    let (mut used_blobs, mut used_bytes) = (0u64, 0u64);
    t.each_choice(packs, &mut |i, c| {
        if c.keep.is_empty() && missing.len() < 20 {
            missing.push(format!(
                "blob {} has no intact copy in storage (every copy is in a pack missing from \
                 storage, or failed verification)",
                BlobId(t.entries[i].id)
            ));
        }
        if let Some(&k) = c.keep.first() {
            used_blobs += 1;
            used_bytes += u64::from(t.entries[i + k].len);
        }
        for k in c.keep {
            set_bit(&mut chosen, i + k);
        }
    });
    for (k, e) in t.entries.iter().enumerate() {
        if bit(&chosen, k) {
            let p = &mut packs[e.pack as usize];
            p.used_blobs += 1;
            p.used_bytes += u64::from(e.len);
            if !p.live {
                p.action = PackAction::Resurrect;
            }
        }
    }
    (chosen, used_blobs, used_bytes)
}

/// The entries (copies) that must be verified before the packs decided on may be condemned.
pub(super) fn verify_requests(t: &Tables, packs: &[PackRec]) -> Vec<usize> {
    let mut out = Vec::new();
    t.each_choice(packs, &mut |i, c| {
        if let Some(k) = c.verify
            && !t.checks.contains_key(&(i + k))
        {
            out.push(i + k);
        }
    });
    out
}

/// How much space partly used packs keep, and what is repacked.
#[derive(Default)]
pub(super) struct Decision {
    /// Unused bytes in indexed packs before this run.
    pub unused_bytes: u64,
    /// Unused bytes tolerated.
    pub max_unused_bytes: u64,
    /// Unused bytes left in kept packs.
    pub unused_after: u64,
    /// Blobs and bytes copied by the repack.
    pub repack_blobs: u64,
    /// See `repack_blobs`.
    pub repack_bytes: u64,
}

/// Step 7 of the plan, after the copies are chosen: indexed packs missing from storage are
/// dropped, unused ones condemned, partly used ones repacked (most unused first) until the
/// unused bytes left are within `opts.max_unused` or `opts.max_repack_size` is reached.
pub(super) fn decide(packs: &mut [PackRec], used_bytes: u64, opts: &PruneOptions) -> Decision {
    let mut d = Decision {
        max_unused_bytes: opts.max_unused.limit(used_bytes),
        ..Decision::default()
    };
    let mut candidates: Vec<u32> = Vec::new();
    for (pos, p) in packs.iter_mut().enumerate() {
        if !p.live {
            continue;
        }
        d.unused_bytes += p.bytes - p.used_bytes.min(p.bytes);
        if p.size.is_none() {
            p.action = PackAction::Drop;
        } else if p.used_blobs == 0 {
            p.action = PackAction::Condemn;
        } else if p.used_bytes < p.bytes {
            candidates.push(pos as u32);
        }
    }
    let unused = |p: &PackRec| p.bytes - p.used_bytes.min(p.bytes);
    d.unused_after = candidates.iter().map(|&c| unused(&packs[c as usize])).sum();
    candidates.sort_by(|&a, &b| {
        let (pa, pb) = (&packs[a as usize], &packs[b as usize]);
        // Unused fraction, largest first: ua/ta > ub/tb ⇔ ua·tb > ub·ta.
        let ka = u128::from(unused(pa)) * u128::from(pb.bytes);
        let kb = u128::from(unused(pb)) * u128::from(pa.bytes);
        kb.cmp(&ka).then(pa.id.cmp(&pb.id))
    });
    let mut repack_size = 0u64;
    for c in candidates {
        let p = &mut packs[c as usize];
        if d.unused_after <= d.max_unused_bytes {
            break;
        }
        let size = p.size.unwrap_or(p.bytes);
        if opts
            .max_repack_size
            .is_some_and(|m| repack_size.saturating_add(size) > m)
        {
            continue;
        }
        p.action = PackAction::Repack;
        repack_size += size;
        d.repack_blobs += u64::from(p.used_blobs);
        d.repack_bytes += p.used_bytes;
        d.unused_after -= unused(p);
    }
    d
}

/// Read and verify the copies at `requests` (entry positions) through
/// [`BlobReader::load_at`], recording each result in `checks`; a copy that fails is reported
/// in `warnings`. Copies are read pack by pack, each pack's listing read once.
///
/// # Errors
/// Storage errors (a failure to read says nothing about a copy), and damage of the listing a
/// pack's entries came from (it was read a moment ago).
pub(super) fn verify_copies(
    repo: &Repository,
    packs: &[PackRec],
    entries: &[Entry],
    requests: &[usize],
    checks: &mut HashMap<usize, Check>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut by_source: BTreeMap<(u8, ObjectId), Vec<usize>> = BTreeMap::new();
    for &k in requests {
        let p = &packs[entries[k].pack as usize];
        let key = match p.source {
            Source::Index(id) => (0, id),
            Source::Fossil(id) => (1, id),
            Source::Header => (2, p.id),
        };
        by_source.entry(key).or_default().push(k);
    }
    for ((_, source), ks) in by_source {
        let first = &packs[entries[ks[0]].pack as usize];
        let listed = listing(repo, first.source, source, first)?;
        for k in ks {
            let p = &packs[entries[k].pack as usize];
            let ip = listed
                .iter()
                .find(|ip| ip.id == p.id && ip.data_key.0 == p.key);
            let check = verify_one(repo, p, ip, &BlobId(entries[k].id))?;
            if let Err(why) = &check {
                warnings.push(why.clone());
            }
            checks.insert(
                k,
                if check.is_ok() {
                    Check::Intact
                } else {
                    Check::Bad
                },
            );
        }
    }
    Ok(())
}

/// The pack listings of one source: an index object's, a fossil record's, or `pack`'s header.
fn listing(
    repo: &Repository,
    kind: Source,
    id: ObjectId,
    pack: &PackRec,
) -> Result<Vec<IndexPack>> {
    Ok(match kind {
        Source::Index(_) => open_index(repo, &id)?.1.packs,
        Source::Fossil(_) => read_fossils(repo, &id)?
            .packs
            .into_iter()
            .map(|f| f.pack)
            .collect(),
        Source::Header => {
            let h = read_pack_header(repo, &pack.id, pack.size.unwrap_or(0))?;
            vec![IndexPack {
                id: pack.id,
                data_key: h.data_key,
                blobs: h.blobs,
            }]
        }
    })
}

/// Read one copy of blob `id` in pack `p` as `listed` places it. `Ok(Err(reason))` when the
/// copy is not intact.
///
/// # Errors
/// Storage errors that are not damage.
fn verify_one(
    repo: &Repository,
    p: &PackRec,
    listed: Option<&IndexPack>,
    id: &BlobId,
) -> Result<std::result::Result<(), String>> {
    let bad = |why: &dyn fmt::Display| {
        Ok(Err(format!(
            "blob {id} in pack {} does not verify ({why}): forged or damaged; that copy is not kept",
            p.id
        )))
    };
    let found = listed.and_then(|ip| ip.blobs.iter().find(|b| b.id == *id).map(|b| (ip, b)));
    let Some((listed, entry)) = found else {
        return bad(&"its listing is gone");
    };
    let mut index = Index::default();
    let ip = IndexPack {
        id: p.id,
        data_key: listed.data_key.clone(),
        blobs: vec![entry.clone()],
    };
    index.add_pack(p.id, p.lister, &ip);
    let loc = index.get(id).copied().expect("just added");
    match BlobReader::new(repo, &index).load_at(id, entry.blob_type, &loc) {
        Ok(_) => Ok(Ok(())),
        Err(e) if e.is_damage() => bad(&e),
        Err(e) => Err(e),
    }
}
