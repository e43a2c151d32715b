//! `forget`: apply a retention policy (or explicit ids) and delete the snapshot objects it
//! removes. Data is freed later by prune. The decisions come from [`crate::retention`], a pure
//! function of (snapshots, policy, time zone) that matches `restic forget`.

use crate::error::{CoreError, Result};
use crate::prune::{ForgetRecord, Record};
use crate::repository::Repository;
use crate::retention::{self, GroupBy, RetentionPolicy, SnapshotInfo};
use crate::snapshots::{SnapshotFilter, time_of};
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;
use tresor_storage::Kind;

/// The decisions of a policy over the repository's snapshots (filtered), grouped.
///
/// # Errors
/// [`CoreError::PutOnly`]; storage errors.
pub fn plan(
    repo: &Repository,
    policy: &RetentionPolicy,
    group_by: GroupBy,
    filter: &SnapshotFilter,
    tz: &jiff::tz::TimeZone,
) -> Result<Vec<retention::Group>> {
    let (list, _) = repo.load_snapshots()?;
    let infos: Vec<SnapshotInfo> = list
        .iter()
        .filter(|(_, s)| filter.matches(s))
        .map(|(id, s)| SnapshotInfo {
            id: id.to_hex(),
            time: time_of(s),
            hostname: s.hostname.clone(),
            paths: s.paths.clone(),
            tags: s.tags.clone(),
        })
        .collect();
    Ok(retention::apply(&infos, policy, group_by, tz))
}

/// What [`remove`] did.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// Snapshots deleted.
    pub deleted: Vec<ObjectId>,
    /// Snapshots the storage still holds under a lock (S3 Object Lock), with the time the lock
    /// ends: not attempted; forget them again after that time.
    pub locked: Vec<(ObjectId, std::time::SystemTime)>,
}

/// Write a forget record (format §16) listing `ids`, the snapshots about to be deleted, so that
/// clients that saw them do not report them as hidden by the storage. Nothing is written for no
/// ids.
///
/// # Errors
/// Sealing and storage errors: then nothing may be deleted.
pub fn record_forgotten(repo: &Repository, ids: &[ObjectId]) -> Result<Option<ObjectId>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    let rec = Record::Forgotten(ForgetRecord {
        version: tresor_format::FORMAT_VERSION,
        ids,
    });
    Ok(Some(crate::prune::write_record(repo, &rec)?.0))
}

/// Delete snapshot objects, except those still under the storage's object lock (reported in
/// [`Removed::locked`], never attempted), with the backup start markers they list. A forget
/// record listing the snapshots to delete is written first ([`record_forgotten`]).
///
/// # Errors
/// The first storage error (e.g. permission denied on append-only storage); snapshots deleted
/// before it stay deleted.
pub fn remove(repo: &Repository, ids: &[ObjectId]) -> Result<Removed> {
    repo.require_read("forget")?;
    let mut done = Removed::default();
    let mut delete = Vec::new();
    for id in ids {
        match repo.lock_end(Kind::Snapshot, id)? {
            Some(until) => done.locked.push((*id, until)),
            None => delete.push(*id),
        }
    }
    record_forgotten(repo, &delete)?;
    for id in &delete {
        // The backup start markers the snapshot lists (format §16.1) go with it: its backup
        // ended, and no other snapshot will list them.
        if let Ok(bytes) = repo.read_object(Kind::Snapshot, id)
            && let Ok((_, snap)) = Snapshot::open(repo.key(), &bytes)
        {
            for m in &snap.markers {
                if let Ok(None) = repo.lock_end(Kind::Marker, m) {
                    let _ = repo.storage().delete(Kind::Marker, &m.to_hex());
                }
            }
        }
        repo.storage()
            .delete(Kind::Snapshot, &id.to_hex())
            .map_err(CoreError::from)?;
        done.deleted.push(*id);
    }
    Ok(done)
}
