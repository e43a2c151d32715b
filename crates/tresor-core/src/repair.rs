//! `repair index` and `repair snapshots`: make a damaged repository usable again.
//!
//! **Index.** [`repair_index`] rebuilds the index from the packs in storage, verifying and
//! salvaging damaged packs (module `index`).
//!
//! **Snapshots.** [`repair_snapshots`] walks every snapshot. A file is damaged when one of its
//! blobs is not indexed or lies beyond the end of its (missing or short) pack — or, with
//! `read_data`, does not decode; a directory is damaged when its tree does not load. For each
//! snapshot with damage it writes new trees without exactly those entries (unchanged subtrees
//! keep their ids) and a new snapshot with the same metadata, the tag `repaired` and the old
//! snapshot as parent, and reports each entry it left out. The old snapshot stays unless
//! `forget` is set. Order: new tree packs and their index objects, then the snapshots, then
//! (with `forget`) the deletions.

mod index;
pub use index::{RepairIndexOptions, RepairIndexReport, repair_index, repair_index_with};

use crate::error::{CoreError, Result};
use crate::repo::Repository;
use crate::repo::blobs::BlobReader;
use crate::repo::index::{IdMap, IdSet, Index};
use crate::repo::packer::Packer;
use crate::repo::records::record_forgotten;
use crate::{PROGRAM_VERSION, Progress};
use serde::Serialize;
use tresor_format::blob::BlobType;
use tresor_format::pack;
use tresor_format::snapshot::Snapshot;
use tresor_format::tree::{Node, NodeKind, Tree};
use tresor_format::{BlobId, ObjectId};
use tresor_storage::{ErrorKind, Kind};

fn delete(
    repo: &Repository,
    kind: Kind,
    id: &ObjectId,
    undeletable: &mut Vec<String>,
) -> Result<bool> {
    match repo.storage().delete(kind, &id.to_hex()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind == ErrorKind::PermissionDenied => {
            undeletable.push(format!("{kind} {id}: {}", e.message));
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Options of `repair snapshots`.
#[derive(Debug, Clone, Default)]
pub struct RepairSnapshotsOptions {
    /// Write and delete nothing; report what would be done.
    pub dry_run: bool,
    /// Delete each repaired snapshot's original once its replacement is written.
    pub forget: bool,
    /// Decode every data blob (finds bit flips; reads all the data) instead of checking that
    /// it is indexed and within its pack.
    pub read_data: bool,
    /// Compression and encryption threads for the new trees.
    pub workers: usize,
}

/// One damaged snapshot and what was done about it.
#[derive(Debug, Clone, Serialize)]
pub struct RepairedSnapshot {
    /// The damaged snapshot.
    pub snapshot: ObjectId,
    /// Its replacement (`None` in a dry run or when nothing could be saved).
    pub new_snapshot: Option<ObjectId>,
    /// Entries left out, absolute paths, each with the reason.
    pub removed: Vec<String>,
    /// Whether the damaged snapshot was deleted.
    pub forgotten: bool,
    /// Why no replacement could be written (root tree unreadable).
    pub error: Option<String>,
}

/// What `repair snapshots` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairSnapshotsReport {
    /// Nothing was written or deleted.
    pub dry_run: bool,
    /// Snapshots examined.
    pub snapshots: usize,
    /// Damaged snapshots.
    pub repaired: Vec<RepairedSnapshot>,
    /// Snapshot objects that could not be opened at all (not repairable; remove them).
    pub unreadable: Vec<String>,
    /// Index problems met while loading (the repair works with what loads).
    pub index_problems: Vec<String>,
    /// Objects the storage refused to delete.
    pub undeletable: Vec<String>,
}

#[derive(Clone)]
enum Fix {
    Same,
    Replaced(BlobId, Vec<String>),
    Lost(String),
}

struct Fixer<'a> {
    repo: &'a Repository,
    index: &'a Index,
    /// Signer of the snapshot being repaired (its copies are preferred after full keys').
    signer: Option<[u8; 32]>,
    sizes: IdMap<ObjectId, u64>,
    read_data: bool,
    trees: IdMap<BlobId, Fix>,
    data: IdMap<BlobId, Option<String>>,
    packer: Option<Packer>,
    added: IdSet<BlobId>,
}

/// A tree being repaired by [`Fixer::fix_tree`]: its nodes still to look at (reversed, the next
/// last), the node whose subtree is being repaired, and what is kept and left out so far.
struct FixFrame {
    id: BlobId,
    todo: Vec<Node>,
    pending: Option<Node>,
    nodes: Vec<Node>,
    removed: Vec<String>,
    changed: bool,
}

impl FixFrame {
    fn new(id: BlobId, tree: Tree) -> Self {
        let mut todo = tree.nodes;
        todo.reverse();
        FixFrame {
            id,
            todo,
            pending: None,
            nodes: Vec::new(),
            removed: Vec::new(),
            changed: false,
        }
    }

    /// Take the repair of the subtree of directory node `n` into this tree.
    fn apply(&mut self, mut n: Node, fix: Fix) {
        let name = n.name_shown();
        match fix {
            Fix::Same => self.nodes.push(n),
            Fix::Replaced(new, r) => {
                n.subtree = Some(new);
                self.removed
                    .extend(r.into_iter().map(|p| format!("{name}/{p}")));
                self.nodes.push(n);
                self.changed = true;
            }
            Fix::Lost(reason) => {
                self.removed
                    .push(format!("{name}/ (directory unreadable: {reason})"));
                self.changed = true;
            }
        }
    }
}

impl Fixer<'_> {
    fn reader(&self) -> BlobReader<'_> {
        BlobReader::for_snapshot(self.repo, self.index, self.signer)
    }

    /// `None` when the blob is readable, else why not.
    fn blob_problem(&mut self, id: &BlobId) -> Option<String> {
        if let Some(p) = self.data.get(id) {
            return p.clone();
        }
        let index = self.index;
        let problem = if self.read_data {
            self.reader()
                .load(id, BlobType::Data)
                .err()
                .map(|e| e.to_string())
        } else {
            let fits = |l: &crate::repo::index::BlobLocation| {
                let p = index.pack(l.pack);
                self.sizes.get(&p.id).is_some_and(|s| {
                    l.offset
                        .saturating_add(u64::from(l.length))
                        .saturating_add(pack::TRAILER_LEN)
                        <= *s
                })
            };
            match index.get(id) {
                None => Some(self.reader().not_indexed(id)),
                Some(_) if index.locations(id).any(fits) => None,
                Some(first) => Some(format!(
                    "blob {id}: pack {} is missing or truncated",
                    index.pack(first.pack).id
                )),
            }
        };
        self.data.insert(*id, problem.clone());
        problem
    }

    /// The tree `id` as it loads now, or what is wrong with it at `depth` below the root.
    fn open_tree(&mut self, id: BlobId, depth: usize) -> std::result::Result<Tree, Fix> {
        let lost = if depth > tresor_format::tree::MAX_TREE_DEPTH {
            crate::repo::limits::too_deep()
        } else {
            match self.reader().load_tree(&id) {
                Ok(t) => return Ok(t),
                Err(e) => e.to_string(),
            }
        };
        let f = Fix::Lost(lost);
        self.trees.insert(id, f.clone());
        Err(f)
    }

    /// The repair of a tree whose nodes are all looked at: a new tree without what was left out.
    fn finish(&mut self, f: FixFrame) -> Result<Fix> {
        let fix = if f.changed {
            let bytes = Tree { nodes: f.nodes }.encode();
            let new = BlobId::of(&self.repo.key().id_key, &bytes);
            if !self.index.contains(&new)
                && self.added.insert(new)
                && let Some(p) = &self.packer
            {
                p.add(BlobType::Tree, new, bytes)?;
            }
            Fix::Replaced(new, f.removed)
        } else {
            Fix::Same
        };
        self.trees.insert(f.id, fix.clone());
        Ok(fix)
    }

    /// Repair tree `root` and everything below it (memoised per tree), walking with an explicit
    /// stack: deep trees need no deep call stack; below [`tresor_format::tree::MAX_TREE_DEPTH`]
    /// levels a directory counts as unreadable.
    fn fix_tree(&mut self, root: BlobId) -> Result<Fix> {
        if let Some(f) = self.trees.get(&root) {
            return Ok(f.clone());
        }
        let mut stack = match self.open_tree(root, 0) {
            Ok(t) => vec![FixFrame::new(root, t)],
            Err(f) => return Ok(f),
        };
        loop {
            let depth = stack.len();
            let top = stack.last_mut().expect("the stack ends with its root");
            let Some(n) = top.todo.pop() else {
                let done = stack.pop().expect("the stack ends with its root");
                let fix = self.finish(done)?;
                match stack.last_mut() {
                    Some(parent) => {
                        let n = parent.pending.take().expect("a subtree was being repaired");
                        parent.apply(n, fix);
                    }
                    None => return Ok(fix),
                }
                continue;
            };
            let sub = match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => sub,
                _ => {
                    match n.content.iter().find_map(|b| self.blob_problem(b)) {
                        None => top.nodes.push(n),
                        Some(p) => {
                            top.removed.push(format!("{} ({p})", n.name_shown()));
                            top.changed = true;
                        }
                    }
                    continue;
                }
            };
            if let Some(f) = self.trees.get(&sub).cloned() {
                top.apply(n, f);
                continue;
            }
            match self.open_tree(sub, depth) {
                Ok(t) => {
                    top.pending = Some(n);
                    stack.push(FixFrame::new(sub, t));
                }
                Err(f) => top.apply(n, f),
            }
        }
    }
}

/// Write repaired copies of damaged snapshots (see the module documentation).
///
/// # Errors
/// [`CoreError::PutOnly`], storage errors on writing. Damage is what this reports, not raises.
pub fn repair_snapshots(
    repo: &Repository,
    opts: &RepairSnapshotsOptions,
    progress: &dyn Progress,
) -> Result<RepairSnapshotsReport> {
    repo.require_read("repair snapshots")?;
    let mut report = RepairSnapshotsReport {
        dry_run: opts.dry_run,
        ..RepairSnapshotsReport::default()
    };
    let (index, skipped): (Index, _) = repo.load_index_lenient()?;
    for s in skipped {
        report.index_problems.push(format!("{}: {}", s.id, s.error));
    }
    let sizes: IdMap<ObjectId, u64> = repo
        .storage()
        .list(Kind::Pack)?
        .into_iter()
        .filter_map(|(n, s)| n.parse().ok().map(|id| (id, s)))
        .collect();
    let (snaps, bad) = repo.load_snapshots()?;
    for s in bad {
        match s.error {
            CoreError::Untrusted(_) => {}
            e => report.unreadable.push(format!("snapshot {}: {e}", s.id)),
        }
    }
    report.snapshots = snaps.len();
    let mut fixer = Fixer {
        repo,
        index: &index,
        signer: None,
        sizes,
        read_data: opts.read_data,
        trees: IdMap::default(),
        data: IdMap::default(),
        packer: (!opts.dry_run).then(|| new_packer(repo, opts.workers)),
        added: IdSet::default(),
    };
    let staged = stage_repairs(&mut fixer, &snaps, progress)?;
    // Trees first (packs, then their index objects), then the snapshots.
    if let Some(p) = fixer.packer.take() {
        p.finish()?;
    }
    write_repairs(repo, opts, staged, &mut report)?;
    Ok(report)
}

/// The packer new trees go to, with `workers` workers (at least one).
fn new_packer(repo: &Repository, workers: usize) -> Packer {
    let cfg = repo.config();
    Packer::new(
        repo.storage().clone(),
        repo.key().clone(),
        repo.signer_copy(),
        cfg.pack_size,
        cfg.compression_level,
        workers.max(1),
        false,
    )
}

/// A damaged snapshot, staged: its id, its replacement (none when its root is lost), the
/// entries left out, and the error that lost the root.
type Staged = (ObjectId, Option<Snapshot>, Vec<String>, Option<String>);

/// Fix every snapshot's tree (new trees go to the fixer's packer) and stage a replacement for
/// each damaged one.
///
/// # Errors
/// Storage errors of writing trees.
fn stage_repairs(
    fixer: &mut Fixer<'_>,
    snaps: &[(ObjectId, Snapshot)],
    progress: &dyn Progress,
) -> Result<Vec<Staged>> {
    let mut staged = Vec::new();
    for (id, snap) in snaps {
        progress.file_done(0);
        fixer.signer = fixer.repo.snapshot_signer(id).ok();
        match fixer.fix_tree(snap.tree)? {
            Fix::Same => {}
            Fix::Replaced(new, removed) => {
                let mut s = snap.clone();
                s.tree = new;
                if !s.tags.iter().any(|t| t == "repaired") {
                    s.tags.push("repaired".into());
                }
                s.parent = Some(*id);
                s.original = Some(snap.original.unwrap_or(*id));
                s.summary = None;
                s.program_version = PROGRAM_VERSION.into();
                let removed = removed.into_iter().map(|p| format!("/{p}")).collect();
                staged.push((*id, Some(s), removed, None));
            }
            Fix::Lost(reason) => {
                staged.push((
                    *id,
                    None,
                    vec!["/ (root directory unreadable)".to_string()],
                    Some(format!("root tree unreadable: {reason}")),
                ));
            }
        }
    }
    Ok(staged)
}

/// Save the staged snapshots (not in a dry run) and, with `forget`, delete their originals;
/// every one goes to `report.repaired`.
///
/// # Errors
/// Storage errors of writing a snapshot or a forget record.
fn write_repairs(
    repo: &Repository,
    opts: &RepairSnapshotsOptions,
    staged: Vec<Staged>,
    report: &mut RepairSnapshotsReport,
) -> Result<()> {
    for (old, snap, removed, error) in staged {
        let mut entry = RepairedSnapshot {
            snapshot: old,
            new_snapshot: None,
            removed,
            forgotten: false,
            error,
        };
        if let (Some(s), false) = (&snap, opts.dry_run) {
            entry.new_snapshot = Some(repo.save_snapshot(s)?);
            if opts.forget {
                record_forgotten(repo, &[old])?;
                entry.forgotten = delete(repo, Kind::Snapshot, &old, &mut report.undeletable)?;
            }
        }
        report.repaired.push(entry);
    }
    Ok(())
}
