//! `check`: prove the repository is intact.
//!
//! Structure (always): every key file and the config parse and match their names; every index
//! object opens; every indexed pack exists and is long enough for its blobs; every snapshot
//! opens; every tree of every snapshot loads and every data blob it names is indexed.
//! With `read_data`: every pack (or a deterministic subset) is read whole, its name checked
//! against its hash, its header opened and compared with the index, and every blob decrypted and
//! checked against its id. Each problem is reported once, naming the objects, snapshots and files
//! it affects.

use crate::blobs::BlobReader;
use crate::error::{CoreError, Result};
use crate::index::{IdMap, IdSet};
use crate::repository::Repository;
use std::collections::HashMap;
use tresor_format::blob::{self, BlobType};
use tresor_format::keyfile::KeyFile;
use tresor_format::pack;
use tresor_format::tree::NodeKind;
use tresor_format::{BlobId, ObjectId};
use tresor_storage::Kind;

/// Which packs `--read-data` reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// None: structure only.
    None,
    /// All packs.
    All,
    /// Part `n` of `m` (1-based): packs whose id, as a number, falls in the n-th of m buckets.
    Subset(u32, u32),
    /// About this percentage of packs, chosen by id.
    Percent(f64),
}

impl ReadData {
    fn selects(&self, id: &ObjectId) -> bool {
        let x = u32::from_be_bytes(id.0[..4].try_into().expect("4 bytes"));
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Subset(n, m) => ((u64::from(x) * u64::from(m)) >> 32) as u32 == n - 1,
            ReadData::Percent(p) => (f64::from(x) / 4_294_967_296.0) * 100.0 < p,
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
    /// Packs read whole.
    pub packs_read: usize,
    /// Bytes read whole.
    pub bytes_read: u64,
}

/// Check the repository.
///
/// # Errors
/// Only failures to list storage; damage goes into [`CheckReport::errors`].
pub fn check(repo: &Repository, read_data: ReadData) -> Result<CheckReport> {
    repo.require_read("check")?;
    let mut r = CheckReport::default();
    check_keys(repo, &mut r)?;
    let (index, bad) = repo.load_index_lenient()?;
    for problem in &repo.trust().problems {
        r.errors.push(problem.clone());
    }
    // Packs listed only by index objects readers ignore (unknown or revoked signer): not
    // leftovers of interrupted backups, and not for prune to judge as such.
    let mut ignored_packs: IdSet<ObjectId> = IdSet::default();
    for s in bad {
        match s.error {
            CoreError::Untrusted(m) => {
                if let Ok(b) = repo.read_object(Kind::Index, &s.id)
                    && let Ok((_, f)) = tresor_format::index::IndexFile::open(repo.key(), &b)
                {
                    ignored_packs.extend(f.packs.iter().map(|p| p.id));
                }
                r.warnings.push(m)
            }
            e => r.errors.push(format!("index {}: {e}", s.id)),
        }
    }
    r.packs = index.packs().len();
    r.blobs = index.len();
    let stored: HashMap<String, u64> = repo.storage().list(Kind::Pack)?.into_iter().collect();
    let mut pack_len: IdMap<ObjectId, u64> = IdMap::default();
    for (_, loc) in index.blobs() {
        let e = pack_len.entry(index.pack(loc.pack).id).or_default();
        *e = (*e).max(loc.offset + u64::from(loc.length));
    }
    for p in index.packs() {
        match stored.get(&p.id.to_hex()) {
            None => r.errors.push(format!(
                "pack {} is missing (listed in index {})",
                p.id, p.index_id
            )),
            Some(size) if *size < pack_len.get(&p.id).copied().unwrap_or(0) + pack::TRAILER_LEN => {
                r.errors.push(format!(
                    "pack {} is truncated: {size} bytes, its blobs need more",
                    p.id
                ))
            }
            Some(_) => {}
        }
    }
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
    let reader = BlobReader::new(repo, &index);
    check_snapshots(repo, &reader, &mut r)?;
    if read_data != ReadData::None {
        let bad = check_packs(repo, &index, read_data, &mut r);
        if !bad.is_empty() {
            name_users(repo, &reader, &bad, &mut r)?;
        }
    }
    Ok(r)
}

/// Files of one tree (and below) that hold one of the damaged blobs: `(blob, path)`.
type Hits = std::rc::Rc<Vec<(BlobId, String)>>;

/// Memoised per tree, so that each tree is read once however many snapshots share it.
fn tree_hits(
    reader: &BlobReader<'_>,
    tree: BlobId,
    bad: &IdSet<BlobId>,
    memo: &mut IdMap<BlobId, Hits>,
) -> Hits {
    if let Some(h) = memo.get(&tree) {
        return h.clone();
    }
    let mut out = Vec::new();
    if let Ok(t) = reader.load_tree(&tree) {
        for n in &t.nodes {
            let name = n.name_lossy();
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => {
                    for (b, p) in tree_hits(reader, sub, bad, memo).iter() {
                        out.push((*b, format!("/{name}{p}")));
                    }
                }
                _ => {
                    for b in n.content.iter().filter(|b| bad.contains(*b)) {
                        out.push((*b, format!("/{name}")));
                    }
                }
            }
        }
    }
    out.dedup();
    let h = Hits::new(out);
    memo.insert(tree, h.clone());
    h
}

/// Append to each damaged blob's error every snapshot and file it hits (the first three, then a
/// count).
fn name_users(
    repo: &Repository,
    reader: &BlobReader<'_>,
    bad: &[(usize, BlobId)],
    r: &mut CheckReport,
) -> Result<()> {
    let set: IdSet<BlobId> = bad.iter().map(|(_, b)| *b).collect();
    let mut memo = IdMap::default();
    let mut users: IdMap<BlobId, Vec<String>> = IdMap::default();
    let mut ids = repo.snapshot_ids()?;
    ids.sort();
    for id in ids {
        let Ok(snap) = repo.load_snapshot(&id) else {
            continue;
        };
        for (b, path) in tree_hits(reader, snap.tree, &set, &mut memo).iter() {
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
    Ok(())
}

fn check_keys(repo: &Repository, r: &mut CheckReport) -> Result<()> {
    for (name, _) in repo.storage().list(Kind::Key)? {
        match repo.storage().read(Kind::Key, &name) {
            Ok(b) if tresor_storage::name_of(&b) != name => r
                .errors
                .push(format!("key {name}: content does not match its name")),
            Ok(b) => {
                if let Err(e) = KeyFile::from_bytes(&b) {
                    r.errors.push(format!("key {name}: {e}"));
                }
            }
            Err(e) => r.errors.push(format!("key {name}: {e}")),
        }
    }
    Ok(())
}

/// Walk every snapshot: every tree loads, every data blob is indexed.
fn check_snapshots(repo: &Repository, reader: &BlobReader<'_>, r: &mut CheckReport) -> Result<()> {
    let mut seen_trees: IdSet<BlobId> = IdSet::default();
    let mut missing: IdMap<BlobId, Vec<String>> = IdMap::default();
    let mut ids = repo.snapshot_ids()?;
    ids.sort();
    for id in ids {
        let snap = match repo.load_snapshot(&id) {
            Ok(s) => s,
            Err(CoreError::Untrusted(m)) => {
                r.warnings.push(m);
                continue;
            }
            Err(e) => {
                let m = e.to_string();
                // Name the snapshot once (storage errors name it already).
                r.errors
                    .push(if m.contains(&id.to_hex()) || m.contains(&id.short()) {
                        m
                    } else {
                        format!("snapshot {id}: {m}")
                    });
                continue;
            }
        };
        r.snapshots += 1;
        let mut stack = vec![(snap.tree, String::new())];
        while let Some((tree_id, prefix)) = stack.pop() {
            if !seen_trees.insert(tree_id) {
                continue;
            }
            let tree = match reader.load_tree(&tree_id) {
                Ok(t) => t,
                Err(e) => {
                    // The reason, e.g. `tree …: malformed tree: "..": not a valid name`.
                    let why = match e {
                        CoreError::Damaged(m) => m,
                        e => e.to_string(),
                    };
                    r.errors.push(format!(
                        "snapshot {} directory {prefix}/: {why}",
                        id.short()
                    ));
                    continue;
                }
            };
            for n in &tree.nodes {
                let path = format!("{prefix}/{}", n.name_lossy());
                match (n.kind, n.subtree) {
                    (NodeKind::Dir, Some(s)) => stack.push((s, path)),
                    (NodeKind::Dir, None) => r
                        .errors
                        .push(format!("snapshot {} directory {path}: no tree", id.short())),
                    _ => {
                        for b in &n.content {
                            if !reader.index().contains(b) {
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
    }
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
    Ok(())
}

/// The pack of another copy of `id` (not one of `bad`) that reads back intact, if any.
fn intact_copy(
    repo: &Repository,
    index: &crate::index::Index,
    id: &BlobId,
    bad: &[(ObjectId, ObjectId, String)],
) -> Option<ObjectId> {
    let reader = BlobReader::new(repo, index);
    let first = index.get(id)?;
    std::iter::once(first)
        .chain(index.alternates(id))
        .filter(|loc| !bad.iter().any(|(p, _, _)| *p == index.pack(loc.pack).id))
        .find_map(|loc| {
            reader
                .load_at(id, loc.blob_type, loc)
                .ok()
                .map(|_| index.pack(loc.pack).id)
        })
}

/// Who signed an index object, for messages: "put-only key 1a2b3c4d (host vps)".
fn writer_of(repo: &Repository, index_id: &ObjectId) -> String {
    let signer = repo
        .storage()
        .read(Kind::Index, &index_id.to_hex())
        .ok()
        .and_then(|b| {
            tresor_format::index::IndexFile::envelope(&b)
                .ok()
                .map(|(s, _)| s)
        });
    match signer.as_ref().and_then(|s| repo.trust().key(s)) {
        Some(k) => format!(
            "{} key {} (host {})",
            match k.kind {
                tresor_format::keyfile::KeyKind::Full => "full",
                tresor_format::keyfile::KeyKind::PutOnly => "put-only",
            },
            k.id.short(),
            k.host
        ),
        None => "a key without a key file".into(),
    }
}

/// Read packs; returns the damaged blobs with the position of their error in `r.errors`.
/// A damaged copy of a blob that is also stored intact elsewhere is a warning, not damage.
fn check_packs(
    repo: &Repository,
    index: &crate::index::Index,
    which: ReadData,
    r: &mut CheckReport,
) -> Vec<(usize, BlobId)> {
    let mut bad = Vec::new();
    // Damaged copies per blob: (pack, index object listing it, what is wrong).
    let mut bad_copies: IdMap<BlobId, Vec<(ObjectId, ObjectId, String)>> = IdMap::default();
    let mut expected: IdMap<ObjectId, Vec<(BlobId, BlobType, u64, u32)>> = IdMap::default();
    for (id, loc) in index.all_locations() {
        expected.entry(index.pack(loc.pack).id).or_default().push((
            *id,
            loc.blob_type,
            loc.offset,
            loc.length,
        ));
    }
    for p in index.packs() {
        if !which.selects(&p.id) {
            continue;
        }
        let bytes = match repo.storage().read(Kind::Pack, &p.id.to_hex()) {
            Ok(b) => b,
            Err(e) => {
                r.errors.push(format!("pack {}: {e}", p.id));
                continue;
            }
        };
        r.packs_read += 1;
        r.bytes_read += bytes.len() as u64;
        if ObjectId::of(&bytes) != p.id {
            r.errors.push(format!(
                "pack {}: content does not match its name (modified or truncated)",
                p.id
            ));
        }
        match pack::read_header(repo.key(), &bytes) {
            Ok(h) if h.data_key != p.data_key => r
                .errors
                .push(format!("pack {}: header key differs from the index", p.id)),
            Ok(_) => {}
            Err(e) => r.errors.push(format!("pack {}: header: {e}", p.id)),
        }
        let mut list = expected.remove(&p.id).unwrap_or_default();
        list.sort_by_key(|e| e.2);
        for (id, t, off, len) in list {
            let why = match bytes.get(off as usize..(off + u64::from(len)) as usize) {
                None => "beyond the end of the pack".to_string(),
                Some(stored) => match blob::decode(&p.data_key, &repo.key().id_key, t, &id, stored)
                {
                    Ok(_) => continue,
                    Err(e) => e.to_string(),
                },
            };
            bad_copies
                .entry(id)
                .or_default()
                .push((p.id, p.index_id, why));
        }
    }
    let mut bad_copies: Vec<_> = bad_copies.into_iter().collect();
    bad_copies.sort_by_key(|(id, _)| *id);
    for (id, copies) in bad_copies {
        // A blob stored twice (two hosts, or a forger's copy) is intact when another copy is.
        match intact_copy(repo, index, &id, &copies) {
            Some(good) => {
                for (pack, index_id, why) in &copies {
                    r.warnings.push(format!(
                        "blob {id}: the copy in pack {pack} ({why}; listed in index {}, written \
                         by {}) is ignored; readers use the intact copy in pack {good}",
                        index_id.short(),
                        writer_of(repo, index_id)
                    ));
                }
            }
            None => {
                for (pack, _, why) in &copies {
                    bad.push((r.errors.len(), id));
                    r.errors.push(format!("blob {id} in pack {pack}: {why}"));
                }
            }
        }
    }
    bad
}
