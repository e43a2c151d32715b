//! `check`: prove the repository is intact.
//!
//! Structure (always): every key file and the config parse and match their names; every index
//! object opens; every indexed pack exists and is long enough for its blobs; every snapshot
//! opens, and none that this machine saw before is missing without a forget record (hidden by
//! the storage?); every tree of every snapshot loads (nested at most [`MAX_TREE_DEPTH`] deep) and every
//! data blob it names is indexed. Objects that are skipped are named with their reason: garbage
//! (no key wrote it: an admin's `prune` deletes it) and damage are errors, objects of ignored
//! signers are warnings.
//! With `read_data`: every pack (or a subset: a share chosen at random, or a fixed part by id;
//! at least one pack whenever there are any) is read whole, its name checked
//! against its hash, its header opened and compared with the index, and every blob decrypted and
//! checked against its id. Each problem is reported once, naming the objects, snapshots and files
//! it affects.

use crate::Progress;
use crate::error::{CoreError, Result};
use crate::repo::blobs::BlobReader;
use crate::repo::index::{IdMap, IdSet, Index, Lister, PackInfo};
use crate::repo::packs::WholePack;
use crate::repo::{Defect, Repository, Skipped};
use std::collections::HashMap;
use tresor_format::pack::{self, BlobEntry};
use tresor_format::tree::{MAX_TREE_DEPTH, Node, NodeKind};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Kind;
use tresor_storage::cold::Restore;

/// Which packs `--read-data` reads. Whenever the repository has packs, every choice but
/// [`ReadData::None`] reads at least one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// None: structure only.
    None,
    /// All packs.
    All,
    /// Part `n` of `m` (1-based): packs whose id, as a number, falls in the n-th of m buckets,
    /// the same packs on every run, so that parts 1 to m read every pack once. A part that
    /// holds no pack reads one pack chosen at random instead.
    Subset(u32, u32),
    /// This percentage of the packs (rounded up, at least one), chosen at random on every run.
    Percent(f64),
}

impl ReadData {
    fn in_part(n: u32, m: u32, id: &ObjectId) -> bool {
        let x = u32::from_be_bytes(id.0[..4].try_into().expect("4 bytes"));
        ((u64::from(x) * u64::from(m)) >> 32) as u32 == n - 1
    }
}

/// A random number below `n` (> 0), from the operating system's generator.
fn random_below(n: usize) -> usize {
    let mut b = [0u8; 8];
    // No randomness: the first candidates, which still reads packs.
    if getrandom::fill(&mut b).is_err() {
        return 0;
    }
    (u64::from_le_bytes(b) % n as u64) as usize
}

/// `k` distinct positions below `n`, chosen uniformly at random (a partial Fisher–Yates
/// shuffle), in increasing order.
fn random_choice(n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..k.min(n) {
        let j = i + random_below(n - i);
        all.swap(i, j);
    }
    all.truncate(k.min(n));
    all.sort_unstable();
    all
}

/// The packs `which` reads, as positions in `ids`, and how they were chosen (for the report).
#[cfg(test)]
fn select_packs(ids: &[ObjectId], which: ReadData) -> (Vec<usize>, String) {
    select_preferring(ids, which, &IdSet::default())
}

/// [`select_packs`], a random choice ([`ReadData::Percent`]) taking packs of `prefer` first.
fn select_preferring(
    ids: &[ObjectId],
    which: ReadData,
    prefer: &IdSet<ObjectId>,
) -> (Vec<usize>, String) {
    let n = ids.len();
    match which {
        ReadData::None => (Vec::new(), "no packs".into()),
        ReadData::All => ((0..n).collect(), "all packs".into()),
        ReadData::Subset(part, parts) => {
            let chosen: Vec<usize> = (0..n)
                .filter(|&i| ReadData::in_part(part, parts, &ids[i]))
                .collect();
            if chosen.is_empty() && n > 0 {
                let how = format!("part {part}/{parts} by pack id holds no pack: one at random");
                return (random_choice(n, 1), how);
            }
            (chosen, format!("part {part}/{parts} by pack id"))
        }
        ReadData::Percent(p) => {
            let k = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n.max(1));
            let (first, rest): (Vec<usize>, Vec<usize>) =
                (0..n).partition(|&i| prefer.contains(&ids[i]));
            let pick = |from: &[usize], k: usize| -> Vec<usize> {
                let chosen = random_choice(from.len(), k.min(from.len()));
                chosen.into_iter().map(|j| from[j]).collect()
            };
            let mut out = pick(&first, k);
            out.extend(pick(&rest, k - out.len()));
            out.sort_unstable();
            (out, format!("{p}% at random"))
        }
    }
}

/// Result of a check.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Problems that mean damage or missing data, one line each.
    pub errors: Vec<String>,
    /// Things that are not damage (e.g. unreferenced packs from interrupted backups).
    pub warnings: Vec<String>,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Blobs in the index.
    pub blobs: usize,
    /// Bytes of all pack files the storage lists (the repository's size, near enough: the
    /// other objects are small).
    pub pack_bytes: u64,
    /// Packs read whole.
    pub packs_read: usize,
    /// Packs chosen to be read (those whose read failed are errors).
    pub packs_selected: usize,
    /// How they were chosen, e.g. `all packs`, `5% at random`, `part 2/7 by pack id`.
    pub selection: String,
    /// Packs chosen but not read because they lie in a cold storage class and are not thawed
    /// (S3 `GLACIER`, `DEEP_ARCHIVE`): not damage, one warning for all.
    pub packs_cold: usize,
    /// Bytes read whole.
    pub bytes_read: u64,
}

/// Check the repository.
///
/// # Errors
/// Only failures to list storage; damage goes into [`CheckReport::errors`].
pub fn check(repo: &Repository, read_data: ReadData) -> Result<CheckReport> {
    check_with(repo, read_data, &crate::NoProgress)
}

/// [`check`], telling `progress` its phases ([`Progress::phase`]: `"loading index"`,
/// `"checking snapshots"` with one step per snapshot, `"reading packs"` with one step per pack
/// and the bytes read).
///
/// # Errors
/// As [`check`].
pub fn check_with(
    repo: &Repository,
    read_data: ReadData,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let before = BeforeRead {
        prefer: IdSet::default(),
        thaw: &mut |_| Ok(true),
    };
    check_thawing(repo, read_data, progress, before)
}

/// What [`check_thawing`] calls before reading packs.
pub struct BeforeRead<'a> {
    /// Packs a random choice ([`ReadData::Percent`]) takes first: those thawed or thawing, so
    /// that a rerun reads the packs an earlier run had thawed.
    pub prefer: IdSet<ObjectId>,
    /// Called once with the packs chosen to be read, before any is read (not at all without
    /// `read_data`): thaws the cold ones ([`crate::thaw`]); `false`: some are still thawing,
    /// read none.
    pub thaw: &'a mut dyn FnMut(&[ObjectId]) -> Result<bool>,
}

/// [`check_with`], thawing the packs chosen to be read first (see [`BeforeRead`]). A chosen
/// pack that cannot be read because it is cold and not thawed (the storage's
/// [`cold_state`](tresor_storage::Storage::cold_state)) is counted in
/// [`CheckReport::packs_cold`], never as damage.
///
/// # Errors
/// As [`check`]; what `before.thaw` returns.
pub fn check_thawing(
    repo: &Repository,
    read_data: ReadData,
    progress: &dyn Progress,
    before: BeforeRead<'_>,
) -> Result<CheckReport> {
    repo.require_read("check")?;
    let mut r = CheckReport::default();
    check_keys(repo, &mut r)?;
    progress.phase("loading index", "index objects", 0);
    // Without reading data, data blobs need only be known by id (a lean index: at 20 million
    // blobs, 640 MB instead of 3.5 GB).
    let (index, bad) = match read_data {
        ReadData::None => repo.load_lean_index_lenient()?,
        _ => repo.load_index_lenient()?,
    };
    for problem in &repo.trust().problems {
        r.errors.push(problem.clone());
    }
    // Packs listed only by index objects readers ignore (unknown or revoked signer): not
    // leftovers of interrupted backups, and not for prune to judge as such.
    let mut ignored_packs: IdSet<ObjectId> = IdSet::default();
    for s in &bad {
        if s.defect == Defect::Ignored
            && let Ok(b) = repo.read_object(Kind::Index, &s.id)
            && let Ok((_, f)) = tresor_format::index::IndexFile::open(repo.key(), &b)
        {
            ignored_packs.extend(f.packs.iter().map(|p| p.id));
        }
        report_skipped(&mut r, "index", s);
    }
    r.packs = distinct_packs(&index).len();
    r.blobs = index.len();
    let stored: HashMap<String, u64> = repo.storage().list(Kind::Pack)?.into_iter().collect();
    r.pack_bytes = stored.values().sum();
    check_pack_sizes(&index, &stored, &mut r);
    for name in stored.keys() {
        let listed = name
            .parse::<ObjectId>()
            .is_ok_and(|id| index.pack_position(&id).is_some() || ignored_packs.contains(&id));
        if !listed {
            r.warnings.push(format!(
                "pack {name} is not in any index (left by an interrupted backup; prune removes it)"
            ));
        }
    }
    let mut ignored_packs: Vec<_> = ignored_packs
        .into_iter()
        .filter(|id| index.pack_position(id).is_none() && stored.contains_key(&id.to_hex()))
        .collect();
    ignored_packs.sort();
    if !ignored_packs.is_empty() {
        r.warnings.push(format!(
            "{} packs are listed only by ignored index objects (unknown or revoked signers), \
             e.g. {}: if those signers are yours, accept them (`tresor key signers`)",
            ignored_packs.len(),
            ignored_packs[0].short()
        ));
    }
    let snaps = check_snapshots(repo, &index, &mut r, progress)?;
    for h in repo.hidden_snapshots()? {
        r.errors.push(h.to_string());
    }
    if read_data != ReadData::None {
        let bad = check_packs(repo, &index, read_data, &mut r, progress, before)?;
        if !bad.is_empty() {
            name_users(repo, &index, &snaps, &bad, &mut r);
        }
    }
    Ok(r)
}

/// Report an object a loader skipped, once, naming it and saying what it is and what to do.
fn report_skipped(r: &mut CheckReport, kind: &str, s: &Skipped) {
    let m = match &s.error {
        CoreError::Damaged(m) | CoreError::Untrusted(m) => m.clone(),
        e => e.to_string(),
    };
    // Name the object once (most messages name it already).
    let m = if m.contains(&s.id.to_hex()) {
        m
    } else {
        format!("{kind} {}: {m}", s.id)
    };
    match s.defect {
        Defect::Ignored => r.warnings.push(m),
        Defect::Garbage => r.errors.push(format!(
            "{m} (garbage: no key wrote it; readers skip it, and an admin's `tresor prune` deletes it)"
        )),
        Defect::Damaged => r.errors.push(format!("{m} (damaged: readers skip it)")),
        Defect::Unreadable => r.errors.push(m),
    }
}

/// The positions of the first listing of every pack the index knows, one per pack id.
fn distinct_packs(index: &Index) -> Vec<u32> {
    let mut seen: IdSet<ObjectId> = IdSet::default();
    (0..index.packs().len() as u32)
        .filter(|&pos| seen.insert(index.pack(pos).id))
        .collect()
}

/// Every indexed pack exists and is long enough for the blobs each of its listings places in it.
fn check_pack_sizes(index: &Index, stored: &HashMap<String, u64>, r: &mut CheckReport) {
    // Per listing: a false listing (another writer's pack, made-up offsets) is named by itself.
    let mut missing: IdSet<ObjectId> = IdSet::default();
    for (pos, p) in index.packs().iter().enumerate() {
        match stored.get(&p.id.to_hex()) {
            None if missing.insert(p.id) => r.errors.push(format!(
                "pack {} is missing (listed in index {})",
                p.id, p.index_id
            )),
            None => {}
            Some(size)
                if *size
                    < index
                        .listing_end(pos as u32)
                        .saturating_add(pack::TRAILER_LEN) =>
            {
                r.errors.push(format!(
                    "pack {} is truncated: {size} bytes, the blobs index {} lists in it need more",
                    p.id,
                    p.index_id.short()
                ))
            }
            Some(_) => {}
        }
    }
}

/// Files of one tree (and below) that hold one of the damaged blobs: `(blob, path)`.
type Hits = std::rc::Rc<Vec<(BlobId, String)>>;

/// A tree being searched by [`tree_hits`]: its nodes, the next one to look at, what was found.
struct HitFrame {
    id: BlobId,
    /// Its name in its parent (empty for the root).
    name: String,
    nodes: Vec<Node>,
    next: usize,
    out: Vec<(BlobId, String)>,
}

/// The files below `root` that hold one of the `bad` blobs. Memoised per tree, so that each
/// tree is read once however many snapshots share it; walked with an explicit stack (no
/// recursion), not below [`MAX_TREE_DEPTH`] levels. Trees that do not load hold nothing here
/// (`check` reports them).
fn tree_hits(
    reader: &BlobReader<'_>,
    root: BlobId,
    bad: &IdSet<BlobId>,
    memo: &mut IdMap<BlobId, Hits>,
) -> Hits {
    if let Some(h) = memo.get(&root) {
        return h.clone();
    }
    let frame = |id: BlobId, name: String| HitFrame {
        id,
        name,
        nodes: reader.load_tree(&id).map(|t| t.nodes).unwrap_or_default(),
        next: 0,
        out: Vec::new(),
    };
    let mut stack = vec![frame(root, String::new())];
    loop {
        let depth = stack.len();
        let top = stack.last_mut().expect("the stack ends with its root");
        let Some(n) = top.nodes.get(top.next) else {
            let done = stack.pop().expect("the stack ends with its root");
            let mut out = done.out;
            out.dedup();
            let h = Hits::new(out);
            memo.insert(done.id, h.clone());
            match stack.last_mut() {
                Some(parent) => {
                    let prefixed = h.iter().map(|(b, p)| (*b, format!("/{}{p}", done.name)));
                    parent.out.extend(prefixed);
                }
                None => return h,
            }
            continue;
        };
        top.next += 1;
        let name = n.name_shown();
        let sub = match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => sub,
            _ => {
                let hits = n.content.iter().filter(|b| bad.contains(*b));
                let found: Vec<_> = hits.map(|b| (*b, format!("/{name}"))).collect();
                top.out.extend(found);
                continue;
            }
        };
        if let Some(h) = memo.get(&sub) {
            top.out
                .extend(h.iter().map(|(b, p)| (*b, format!("/{name}{p}"))));
        } else if depth <= MAX_TREE_DEPTH {
            stack.push(frame(sub, name));
        }
    }
}

/// A snapshot as check walked it: id, root tree, signer (when its signature verifies).
type SnapRef = (ObjectId, BlobId, Option<[u8; 32]>);

/// Append to each damaged blob's error every snapshot and file it hits (the first three, then a
/// count).
fn name_users(
    repo: &Repository,
    index: &Index,
    snaps: &[SnapRef],
    bad: &[(usize, BlobId)],
    r: &mut CheckReport,
) {
    let set: IdSet<BlobId> = bad.iter().map(|(_, b)| *b).collect();
    let mut memo = IdMap::default();
    let mut users: IdMap<BlobId, Vec<String>> = IdMap::default();
    for &(id, tree, signer) in snaps {
        let reader = BlobReader::for_snapshot(repo, index, signer);
        for (b, path) in tree_hits(&reader, tree, &set, &mut memo).iter() {
            users
                .entry(*b)
                .or_default()
                .push(format!("snapshot {} file {path}", id.short()));
        }
    }
    for (at, b) in bad {
        if let Some(u) = users.get(b) {
            let more = if u.len() > 3 {
                format!(" and {} more", u.len() - 3)
            } else {
                String::new()
            };
            r.errors[*at].push_str(&format!(
                " (affects {}{more})",
                u[..u.len().min(3)].join(", ")
            ));
        }
    }
}

fn check_keys(repo: &Repository, r: &mut CheckReport) -> Result<()> {
    for (name, size) in repo.storage().list(Kind::Key)? {
        let read = crate::repo::limits::read_bounded(
            repo.storage().as_ref(),
            Kind::Key,
            &name,
            Some(size),
            crate::repo::limits::KEY,
        );
        let judged = read
            .map_err(|e| e.to_string())
            .and_then(|b| crate::repo::keyfiles::key_file_of(&name, &b));
        if let Err(e) = judged {
            r.errors.push(format!("key {name}: {e}"));
        }
    }
    Ok(())
}

/// Walk every snapshot: every tree loads (nested at most [`MAX_TREE_DEPTH`] deep), every data
/// blob is indexed. Snapshots that do not load (or that readers ignore: an unknown or revoked
/// signer, a put-only key claiming another host) are reported by id and reason, and snapshots
/// dated in the future as warnings. Returns the snapshots walked, by id.
fn check_snapshots(
    repo: &Repository,
    index: &Index,
    r: &mut CheckReport,
    progress: &dyn Progress,
) -> Result<Vec<SnapRef>> {
    let (list, skipped) = repo.load_snapshots_from_storage()?;
    for s in &skipped {
        report_skipped(r, "snapshot", s);
    }
    let future = crate::repo::snapshots::future_after();
    for (id, s) in list
        .iter()
        .filter(|(_, s)| crate::repo::snapshots::is_future(s, future))
    {
        // Local time when it parses (the one time rule); else as recorded, escaped.
        let zone = crate::time::local_zone();
        let time = crate::time::human_recorded(&s.time, &zone)
            .unwrap_or_else(|| tresor_format::tree::escape_name(s.time.as_bytes()));
        r.warnings.push(format!(
            "snapshot {id} is dated {time}, more than a day ahead of this clock: never `latest`, not counted by retention policies or by prune's approval"
        ));
    }
    let mut snaps: Vec<SnapRef> = list
        .into_iter()
        .map(|(id, s)| (id, s.tree, repo.snapshot_signer(&id).ok()))
        .collect();
    snaps.sort_by_key(|s| s.0);
    r.snapshots = snaps.len();
    let mut seen_trees: IdSet<BlobId> = IdSet::default();
    let mut missing: IdMap<BlobId, Vec<String>> = IdMap::default();
    progress.phase("checking snapshots", "snapshots", snaps.len() as u64);
    for &(id, root, signer) in &snaps {
        progress.file_done(0);
        let reader = BlobReader::for_snapshot(repo, index, signer);
        let mut stack = vec![(root, String::new(), 0usize)];
        while let Some((tree_id, prefix, depth)) = stack.pop() {
            if !seen_trees.insert(tree_id) {
                continue;
            }
            let at = |e: &dyn std::fmt::Display| {
                format!("snapshot {} directory {prefix}/: {e}", id.short())
            };
            if depth > MAX_TREE_DEPTH {
                r.errors.push(at(&crate::repo::limits::too_deep()));
                continue;
            }
            let tree = match reader.load_tree(&tree_id) {
                Ok(t) => t,
                Err(e) => {
                    // The reason, e.g. `tree …: malformed tree: "..": not a valid name`.
                    let why = match e {
                        CoreError::Damaged(m) | CoreError::KnownDamage { message: m, .. } => m,
                        e => e.to_string(),
                    };
                    r.errors.push(at(&why));
                    continue;
                }
            };
            for n in &tree.nodes {
                let path = format!("{prefix}/{}", n.name_shown());
                match (n.kind, n.subtree) {
                    (NodeKind::Dir, Some(s)) => stack.push((s, path, depth + 1)),
                    (NodeKind::Dir, None) => r
                        .errors
                        .push(format!("snapshot {} directory {path}: no tree", id.short())),
                    _ => {
                        for b in n.content.iter().filter(|b| !index.contains(b)) {
                            missing
                                .entry(*b)
                                .or_default()
                                .push(format!("snapshot {} file {path}", id.short()));
                        }
                    }
                }
            }
        }
    }
    report_missing(missing, r);
    Ok(snaps)
}

/// One error per data blob missing from the index, naming the first three files using it.
fn report_missing(missing: IdMap<BlobId, Vec<String>>, r: &mut CheckReport) {
    let mut missing: Vec<_> = missing.into_iter().collect();
    missing.sort_by_key(|a| a.0);
    for (b, files) in missing {
        let more = if files.len() > 3 {
            format!(" and {} more", files.len() - 3)
        } else {
            String::new()
        };
        r.errors.push(format!(
            "data blob {b} is missing from the index; used by {}{more}",
            files[..files.len().min(3)].join(", ")
        ));
    }
}

/// The pack of another copy of `id` (not at one of the listing positions in `bad`) that reads
/// back intact, if any.
fn intact_copy(
    repo: &Repository,
    index: &Index,
    id: &BlobId,
    bad: &[(u32, String)],
) -> Option<ObjectId> {
    let reader = BlobReader::new(repo, index);
    reader
        .candidates(id)
        .into_iter()
        .filter(|loc| !bad.iter().any(|(pos, _)| *pos == loc.pack))
        .find_map(|loc| {
            reader
                .load_at(id, loc.blob_type, loc)
                .ok()
                .map(|_| index.pack(loc.pack).id)
        })
}

/// Who listed a pack, for messages: "put-only key 1a2b3c4d (host vps)".
fn writer_of(repo: &Repository, p: &PackInfo) -> String {
    match p.lister {
        Lister::Full => "a full key".into(),
        Lister::Unverified => "a put-only key (in a prune record)".into(),
        Lister::PutOnly(s) => match repo.trust().key(&s) {
            Some(k) => format!("put-only key {} (host {})", k.id.short(), k.host),
            None => "a put-only key without a key file (revoked and accepted)".into(),
        },
    }
}

/// What is wrong with each listed blob of one pack read whole: `(blob, listing position, why)`.
fn pack_failures(
    repo: &Repository,
    index: &Index,
    bytes: &[u8],
    listings: &[u32],
    expected: &[Vec<BlobEntry>],
    r: &mut CheckReport,
) -> Vec<(BlobId, u32, String)> {
    let header = pack::read_header(repo.key(), bytes);
    let mut out = Vec::new();
    for &pos in listings {
        let p = index.pack(pos);
        match &header {
            Ok(h) if h.data_key != p.data_key => r.errors.push(format!(
                "pack {}: header key differs from its listing in index {} (written by {})",
                p.id,
                p.index_id,
                writer_of(repo, p)
            )),
            Ok(_) => {}
            Err(e) if pos == listings[0] => r.errors.push(format!("pack {}: header: {e}", p.id)),
            Err(_) => {}
        }
        let mut list = expected[pos as usize].clone();
        // By offset: the members of a frame follow each other, and it is decoded once.
        list.sort_by_key(|e| (e.offset, e.member));
        let mut whole = WholePack::new(bytes, &p.data_key, &repo.key().id_key);
        for e in list {
            if let Err(why) = whole.blob(&e) {
                out.push((e.id, pos, why));
            }
        }
    }
    out
}

/// Read packs (each once, bounded by [`crate::repo::limits`]); returns the damaged blobs with the
/// position of their error in `r.errors`. A damaged copy of a blob that is also stored intact
/// elsewhere is a warning, not damage.
fn check_packs(
    repo: &Repository,
    index: &Index,
    which: ReadData,
    r: &mut CheckReport,
    progress: &dyn Progress,
    before: BeforeRead<'_>,
) -> Result<Vec<(usize, BlobId)>> {
    // Damaged copies per blob: (listing position, what is wrong).
    let mut bad_copies: IdMap<BlobId, Vec<(u32, String)>> = IdMap::default();
    let mut expected: Vec<Vec<BlobEntry>> = vec![Vec::new(); index.packs().len()];
    for (id, loc) in index.all_locations() {
        expected[loc.pack as usize].push(BlobEntry {
            blob_type: loc.blob_type,
            id: *id,
            offset: loc.offset,
            length: u64::from(loc.length),
            raw_length: u64::from(loc.raw_length),
            member: loc.member(),
        });
    }
    let mut listings: IdMap<ObjectId, Vec<u32>> = IdMap::default();
    for (pos, p) in index.packs().iter().enumerate() {
        listings.entry(p.id).or_default().push(pos as u32);
    }
    let limit = crate::repo::limits::max_object_size(Kind::Pack, repo.config());
    let ids: Vec<ObjectId> = distinct_packs(index)
        .into_iter()
        .map(|first| index.pack(first).id)
        .collect();
    let (chosen, selection) = select_preferring(&ids, which, &before.prefer);
    (r.packs_selected, r.selection) = (chosen.len(), selection);
    let chosen: Vec<ObjectId> = chosen.into_iter().map(|i| ids[i]).collect();
    if !(before.thaw)(&chosen)? {
        return Ok(Vec::new());
    }
    progress.phase("reading packs", "packs", chosen.len() as u64);
    let mut cold = Vec::new();
    for id in chosen {
        progress.file_done(0);
        let Some(bytes) = read_pack(repo, &id, limit, r, &mut cold) else {
            continue;
        };
        r.packs_read += 1;
        r.bytes_read += bytes.len() as u64;
        progress.bytes_read(bytes.len() as u64);
        if ObjectId::of(&bytes) != id {
            r.errors.push(format!(
                "pack {id}: content does not match its name (modified or truncated)"
            ));
        }
        for (blob, pos, why) in pack_failures(repo, index, &bytes, &listings[&id], &expected, r) {
            bad_copies.entry(blob).or_default().push((pos, why));
        }
    }
    report_cold(&cold, r);
    Ok(judge_copies(repo, index, bad_copies, r))
}

/// Read pack `id` whole (at most `limit` bytes). A read that fails is an error in `r`, unless
/// the pack is cold and not thawed: then it goes to `cold`.
fn read_pack(
    repo: &Repository,
    id: &ObjectId,
    limit: u64,
    r: &mut CheckReport,
    cold: &mut Vec<ObjectId>,
) -> Option<Vec<u8>> {
    let storage = repo.storage().as_ref();
    let e = match crate::repo::limits::read_bounded(storage, Kind::Pack, &id.to_hex(), None, limit)
    {
        Ok(b) => return Some(b),
        Err(e) => e,
    };
    let frozen = storage
        .cold_state(Kind::Pack, &id.to_hex())
        .is_ok_and(|s| s.is_some_and(|s| s.restore != Restore::Done));
    if frozen {
        cold.push(*id);
        return None;
    }
    r.errors.push(match e {
        CoreError::Damaged(m) => m,
        e => format!("pack {id}: {e}"),
    });
    None
}

/// One warning for the chosen packs that are cold and not thawed.
fn report_cold(cold: &[ObjectId], r: &mut CheckReport) {
    r.packs_cold = cold.len();
    let Some(first) = cold.first() else {
        return;
    };
    let more = match cold.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    let (n, are) = match cold.len() {
        1 => ("1 pack".to_string(), "is"),
        n => (format!("{n} packs"), "are"),
    };
    r.warnings.push(format!(
        "{n} {are} cold, not read: give --thaw-tier to thaw first (pack {first}{more})"
    ));
}

/// Damaged copies of blobs: a warning each when the blob is intact elsewhere, else an error
/// each. Returns the damaged blobs with the position of their error in `r.errors`.
fn judge_copies(
    repo: &Repository,
    index: &Index,
    bad_copies: IdMap<BlobId, Vec<(u32, String)>>,
    r: &mut CheckReport,
) -> Vec<(usize, BlobId)> {
    let mut bad = Vec::new();
    let mut bad_copies: Vec<_> = bad_copies.into_iter().collect();
    bad_copies.sort_by_key(|(id, _)| *id);
    for (id, copies) in bad_copies {
        // A blob stored twice (two hosts, or a forger's copy) is intact when another copy is.
        match intact_copy(repo, index, &id, &copies) {
            Some(good) => {
                for (pos, why) in &copies {
                    let p = index.pack(*pos);
                    r.warnings.push(format!(
                        "blob {id}: the copy in pack {} ({why}; listed in index {}, written \
                         by {}) is ignored; readers use the intact copy in pack {good}",
                        p.id,
                        p.index_id.short(),
                        writer_of(repo, p)
                    ));
                }
            }
            None => {
                for (pos, why) in &copies {
                    bad.push((r.errors.len(), id));
                    r.errors
                        .push(format!("blob {id} in pack {}: {why}", index.pack(*pos).id));
                }
            }
        }
    }
    bad
}

#[cfg(test)]
mod read_data_tests;
