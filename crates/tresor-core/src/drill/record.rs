//! Drill records (format §18) in the repository: writing one, reading the trusted ones, and the
//! coverage they add up to.

use crate::error::{CoreError, Result};
use crate::repo::Repository;
use crate::repo::index::Index;
use crate::repo::trust::Verdict;
use std::collections::BTreeSet;
use tresor_format::ObjectId;
use tresor_format::drill::DrillRecord;
use tresor_storage::{ErrorKind, Kind};

/// A drill record readers accept: its id and content.
pub type Trusted = (ObjectId, DrillRecord);

/// Write `record`; a repository without a `drills/` folder gets one.
///
/// # Errors
/// Storage errors (a `read` role of `tresor serve` or read-only credentials refuse the write:
/// [`ErrorKind::PermissionDenied`]).
pub fn write(repo: &Repository, record: &DrillRecord) -> Result<ObjectId> {
    let bytes = record.seal(repo.key(), repo.signer())?;
    match repo.write_object(Kind::Drill, &bytes) {
        Err(CoreError::Storage(e)) if e.kind == ErrorKind::NotFound => {
            repo.storage().create()?;
            repo.write_object(Kind::Drill, &bytes)
        }
        r => r,
    }
}

/// The drill records signed by a certified, unrevoked full key, oldest first, and how many
/// others were ignored (garbage, damaged, or signed by a put-only, unknown or revoked key: a
/// put-only key cannot read, so it cannot have drilled).
///
/// # Errors
/// Storage errors listing `drills/` (a missing folder is no record).
pub fn load_trusted(repo: &Repository) -> Result<(Vec<Trusted>, u64)> {
    let listed = match repo.storage().list(Kind::Drill) {
        Err(e) if e.kind == ErrorKind::NotFound => Vec::new(),
        r => r?,
    };
    let (mut ok, mut ignored) = (Vec::new(), 0u64);
    for (name, size) in listed {
        let Ok(id) = name.parse::<ObjectId>() else {
            continue;
        };
        match open_trusted(repo, &id, size) {
            Some(r) => ok.push((id, r)),
            None => ignored += 1,
        }
    }
    ok.sort_by(|a: &Trusted, b: &Trusted| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
    Ok((ok, ignored))
}

fn open_trusted(repo: &Repository, id: &ObjectId, size: u64) -> Option<DrillRecord> {
    let bytes = repo.fetch(Kind::Drill, id, Some(size)).ok()?;
    let (signer, record) = DrillRecord::open(repo.key(), &bytes).ok()?;
    (repo.trust().verdict(&signer, id) == Verdict::Full).then_some(record)
}

/// Coverage: which packs of the index and which snapshots trusted drills reached.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Coverage {
    /// Packs in the index that some trusted drill record lists.
    pub packs_covered: u64,
    /// Packs in the index.
    pub packs_total: u64,
    /// `packs_covered / packs_total`, 0–1 (1 for an empty index).
    pub packs_share: f64,
    /// Snapshots present that some trusted drill record lists.
    pub snapshots_drilled: u64,
    /// Snapshots present.
    pub snapshots_total: u64,
    /// `snapshots_drilled / snapshots_total`, 0–1 (1 without snapshots).
    pub snapshots_share: f64,
}

/// Positions (in `index`) of the packs the records list.
pub fn covered_packs(index: &Index, records: &[Trusted]) -> BTreeSet<u32> {
    records
        .iter()
        .flat_map(|(_, r)| r.packs.iter())
        .filter_map(|p| index.pack_position(p))
        .collect()
}

/// Positions (first listings) of every distinct pack of `index`.
pub fn all_packs(index: &Index) -> BTreeSet<u32> {
    index
        .packs()
        .iter()
        .filter_map(|p| index.pack_position(&p.id))
        .collect()
}

/// Coverage of `records` over `index` and the snapshots `present`.
pub fn coverage(index: &Index, records: &[Trusted], present: &[ObjectId]) -> Coverage {
    let packs_total = all_packs(index).len() as u64;
    let packs_covered = covered_packs(index, records).len() as u64;
    let drilled: BTreeSet<&ObjectId> = records.iter().flat_map(|(_, r)| &r.snapshots).collect();
    let snapshots_drilled = present.iter().filter(|s| drilled.contains(s)).count() as u64;
    let share = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Coverage {
        packs_covered,
        packs_total,
        packs_share: share(packs_covered, packs_total),
        snapshots_drilled,
        snapshots_total: present.len() as u64,
        snapshots_share: share(snapshots_drilled, present.len() as u64),
    }
}
