//! Steps 6 to 8 of a plan — mark, keep, decide: which blobs the snapshots use, which stored
//! copies of them are kept ([`crate::prune::copies::choose`]), what happens to every pack
//! ([`decide`]) — and the copies that must be read and verified before another copy of the same
//! blob may be condemned (format §16).

use super::packs::Orphans;
use super::snapshots::Snapshots;
use crate::error::{CoreError, Damage, Result};
use crate::prune::copies::{self, Check, Copy, Place, Users};
use crate::prune::decide::{PackFacts, Space, decide};
use crate::prune::options::PruneOptions;
use crate::prune::read::open_index;
use crate::prune::report::{GenerationStatus, PackAction};
use crate::prune::tables::{
    Entry, PackRec, Signers, SnapInfo, Source, Tables, bit, range_of, set_bit,
};
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use crate::repo::index::{IdSet, Index, Lister};
use crate::repo::limits::too_deep;
use crate::repo::packs::read_pack_header;
use crate::repo::records::read_fossils;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use tresor_format::index::IndexPack;
use tresor_format::tree::{MAX_TREE_DEPTH, NodeKind};
use tresor_format::{BlobId, ObjectId};

/// What keeping found: the blob entries (sorted by id), the copies kept, the used blobs and
/// their bytes (one copy each), and the space the decisions leave.
pub(super) struct Kept {
    /// Blob entries, sorted by id, then pack.
    pub entries: Vec<Entry>,
    /// Bit per entry: the copy of a used blob that is kept (or copied).
    pub chosen: Vec<u64>,
    /// Distinct blobs in use.
    pub used_blobs: u64,
    /// Their stored bytes.
    pub used_bytes: u64,
    /// Unused space, and what the repack copies.
    pub space: Space,
    /// The clock cold packs were judged by.
    pub now: std::time::SystemTime,
}

/// What [`decide`] needs besides the packs: the approved generations, the packs earlier runs
/// saw unindexed, the options.
struct Rules<'a> {
    approved: Vec<bool>,
    seen_before: &'a IdSet<ObjectId>,
    /// No backup can be running ([`super::packs::Orphans::free`]).
    free_orphans: bool,
    opts: &'a PruneOptions,
    /// The clock cold packs' minimum storage durations are judged by.
    now: std::time::SystemTime,
}

/// Mark the blobs the snapshots use (the tree index is freed afterwards), then keep copies and
/// decide per pack ([`keep_and_decide`]): the packs get their used counts and actions.
///
/// # Errors
/// [`Damage::SnapshotTree`] when a tree does not load, [`Damage::UsedDataMissing`] when a used
/// blob has no intact copy; storage errors of reading a copy.
pub(super) fn keep(
    repo: &Repository,
    snaps: &Snapshots,
    t: &mut Tables,
    status: &[GenerationStatus],
    orphans: &Orphans,
    opts: &PruneOptions,
    warnings: &mut Vec<String>,
) -> Result<Kept> {
    let mut entries = std::mem::take(&mut t.entries);
    entries.sort_unstable_by(|a, b| a.id.cmp(&b.id).then(a.pack.cmp(&b.pack)));
    let marked = mark_used(repo, &snaps.list, &entries, &t.trees)?;
    drop(std::mem::take(&mut t.trees));
    let rules = Rules {
        approved: status.iter().map(|s| s.approved).collect(),
        seen_before: &orphans.seen_before,
        free_orphans: orphans.free,
        opts,
        now: std::time::SystemTime::now(),
    };
    let signers = &snaps.signers;
    let (chosen, used_blobs, used_bytes, space) = keep_and_decide(
        repo,
        &entries,
        &marked,
        signers,
        &mut t.packs,
        &rules,
        warnings,
    )?;
    Ok(Kept {
        entries,
        chosen,
        used_blobs,
        used_bytes,
        space,
        now: rules.now,
    })
}

/// Choose the copies to keep ([`copies::choose`]), decide per pack, then read the copies that
/// must be verified before the packs decided on may go; when any was read, choose and decide
/// again (a copy that failed is replaced by the next). Each round reads at least one copy not
/// read before, so the loop ends.
///
/// # Errors
/// [`Damage::UsedDataMissing`] when a used blob has no intact copy in storage; storage errors
/// of reading a copy.
fn keep_and_decide(
    repo: &Repository,
    entries: &[Entry],
    marked: &Marked,
    signers: &Signers,
    packs: &mut [PackRec],
    rules: &Rules,
    warnings: &mut Vec<String>,
) -> Result<(Vec<u64>, u64, u64, Space)> {
    let mut checks = HashMap::new();
    loop {
        for p in packs.iter_mut() {
            (p.used_blobs, p.used_bytes, p.action) = (0, 0, PackAction::Keep);
        }
        let mut missing = marked.missing.clone();
        let t = CopyTables {
            entries,
            marked,
            signers,
            checks: &checks,
        };
        let (chosen, used_blobs, used_bytes) = choose_copies(&t, packs, &mut missing);
        if !missing.is_empty() {
            let m = format!(
                "snapshots use data that is not stored: {}",
                missing.join("; ")
            );
            return Err(CoreError::damage(Damage::UsedDataMissing, m));
        }
        super::cold::probe(repo, packs, rules.opts, warnings);
        let space = decide_all(packs, used_bytes, rules);
        let requests = verify_requests(&t, packs);
        if requests.is_empty() {
            return Ok((chosen, used_blobs, used_bytes, space));
        }
        verify_copies(repo, packs, entries, &requests, &mut checks, warnings)?;
    }
}

/// [`decide`] over the packs as the tables hold them; their actions are set.
fn decide_all(packs: &mut [PackRec], used_bytes: u64, rules: &Rules) -> Space {
    let facts: Vec<PackFacts> = packs
        .iter()
        .map(|p| PackFacts {
            id: p.id,
            size: p.size,
            live: p.live,
            bytes: p.bytes,
            used_blobs: p.used_blobs,
            used_bytes: p.used_bytes,
            generation: p.generation.map(|g| rules.approved[g as usize]),
            deleting: p.deleting,
            seen_unindexed: rules.seen_before.contains(&p.id),
            free: rules.free_orphans && p.listings.is_empty(),
            cold: super::cold::fact(p, rules.now),
        })
        .collect();
    let (actions, space) = decide(&facts, used_bytes, rules.opts);
    for (p, a) in packs.iter_mut().zip(actions) {
        p.action = a;
    }
    space
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
        let m = format!("snapshot {} directory {path}: {e}", s.id.short());
        CoreError::damage(Damage::SnapshotTree, m)
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
pub(super) struct CopyTables<'a> {
    /// Blob entries, sorted by id.
    pub entries: &'a [Entry],
    /// Marking's result.
    pub marked: &'a Marked,
    /// The signers of user sets.
    pub signers: &'a Signers,
    /// What reading showed, by entry (absent: not read).
    pub checks: &'a HashMap<usize, Check>,
}

impl CopyTables<'_> {
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
/// get their used counts (a pack out of the index holding a kept copy is then resurrected, see
/// [`decide`]). Used blobs with no intact copy in storage are added to `missing`.
pub(super) fn choose_copies(
    t: &CopyTables,
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
        }
    }
    (chosen, used_blobs, used_bytes)
}

/// The entries (copies) that must be verified before the packs decided on may be condemned.
pub(super) fn verify_requests(t: &CopyTables, packs: &[PackRec]) -> Vec<usize> {
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
