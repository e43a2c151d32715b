//! `forget`: apply a retention policy (or explicit ids) and delete the snapshot objects it
//! removes. Data is freed later by prune. The decisions come from [`crate::retention`], a pure
//! function of (snapshots, policy, time zone) that matches `restic forget`.

use crate::error::{CoreError, Result};
use crate::repository::Repository;
use crate::retention::{self, GroupBy, RetentionPolicy, SnapshotInfo};
use crate::snapshots::{SnapshotFilter, time_of};
use tresor_format::ObjectId;
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

/// Delete snapshot objects. Returns the ids deleted.
///
/// # Errors
/// The first storage error (e.g. permission denied on append-only storage); snapshots deleted
/// before it stay deleted.
pub fn remove(repo: &Repository, ids: &[ObjectId]) -> Result<Vec<ObjectId>> {
    repo.require_read("forget")?;
    let mut done = Vec::new();
    for id in ids {
        repo.storage()
            .delete(Kind::Snapshot, &id.to_hex())
            .map_err(CoreError::from)?;
        done.push(*id);
    }
    Ok(done)
}
