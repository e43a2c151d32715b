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
use crate::repo::index::{IdMap, Index};
use crate::repo::records::record_forgotten;
use crate::repo::tree_rewrite::{Drop, Fix, Fixer, new_packer};
use crate::{PROGRAM_VERSION, Progress};
use serde::Serialize;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;
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
    let (snaps, bad) = repo.load_snapshots_from_storage()?;
    for s in bad {
        match s.error {
            CoreError::Untrusted(_) => {}
            e => report.unreadable.push(format!("snapshot {}: {e}", s.id)),
        }
    }
    report.snapshots = snaps.len();
    let drop = Drop::Damaged {
        sizes,
        read_data: opts.read_data,
        data: IdMap::default(),
    };
    let packer = (!opts.dry_run).then(|| new_packer(repo, opts.workers));
    let mut fixer = Fixer::new(repo, &index, drop, packer);
    let staged = stage_repairs(&mut fixer, &snaps, progress)?;
    // Trees first (packs, then their index objects), then the snapshots.
    if let Some(p) = fixer.packer.take() {
        p.finish()?;
    }
    write_repairs(repo, opts, staged, &mut report)?;
    Ok(report)
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
