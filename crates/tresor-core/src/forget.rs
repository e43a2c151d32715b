//! `forget`: apply a retention policy (or explicit ids) and delete the snapshot objects it
//! removes. Data is freed later by prune. The decisions come from [`crate::retention`], a pure
//! function of (snapshots, policy, time zone) that matches `restic forget`.

use crate::error::{CoreError, Result};
use crate::repo::Repository;
use crate::repo::records::record_forgotten;
use crate::repo::snapshots::time_of;
use crate::retention::{self, GroupBy, RetentionPolicy, SnapshotInfo};
use crate::snapshots::SnapshotFilter;
use tresor_format::ObjectId;
use tresor_format::snapshot::Snapshot;
use tresor_storage::Kind;

/// The decisions of a policy over the repository's snapshots (filtered), grouped; see
/// [`plan_policy`].
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
    Ok(plan_policy(repo, policy, group_by, filter, tz)?.groups)
}

/// What a policy decides, and the snapshots it does not judge.
#[derive(Debug, Clone)]
pub struct PolicyPlan {
    /// The decisions, per group.
    pub groups: Vec<retention::Group>,
    /// Snapshots that pass the filter but are dated in the future
    /// ([`crate::repo::snapshots::is_future`]), with their time: the policy neither counts nor
    /// removes them (format §11), so a snapshot claiming a far future time cannot push the
    /// real ones out of `--keep-last`.
    pub future: Vec<(ObjectId, String)>,
    /// The snapshots the policy judged (time, host, paths, tags), for showing its decisions.
    pub snapshots: Vec<SnapshotInfo>,
}

/// The decisions of a policy over the repository's snapshots (filtered), grouped. Snapshots
/// readers ignore (unknown or revoked signers, put-only keys claiming another host) are not
/// loaded at all; snapshots dated in the future are left out and returned apart.
///
/// # Errors
/// [`CoreError::PutOnly`]; storage errors.
pub fn plan_policy(
    repo: &Repository,
    policy: &RetentionPolicy,
    group_by: GroupBy,
    filter: &SnapshotFilter,
    tz: &jiff::tz::TimeZone,
) -> Result<PolicyPlan> {
    let (list, _) = repo.load_snapshots()?;
    let after = crate::repo::snapshots::future_after();
    let (future, list): (Vec<_>, Vec<_>) = list
        .into_iter()
        .filter(|(_, s)| filter.matches(s))
        .partition(|(_, s)| crate::repo::snapshots::is_future(s, after));
    let infos: Vec<SnapshotInfo> = list
        .iter()
        .map(|(id, s)| SnapshotInfo {
            id: id.to_hex(),
            time: time_of(s),
            hostname: s.hostname.clone(),
            paths: s.paths.clone(),
            tags: s.tags.clone(),
        })
        .collect();
    Ok(PolicyPlan {
        groups: retention::apply(&infos, policy, group_by, tz),
        future: future.into_iter().map(|(id, s)| (id, s.time)).collect(),
        snapshots: infos,
    })
}

/// The host a backup start marker names, if it opens.
fn marker_host(repo: &Repository, id: &ObjectId) -> Option<String> {
    let b = repo.read_object(Kind::Marker, id).ok()?;
    let (_, m) = tresor_format::marker::Marker::open(repo.key(), &b).ok()?;
    Some(m.hostname)
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
        // ended, and no other snapshot will list them. Only a snapshot that speaks for its
        // host, and only that host's markers: a put-only key listing other hosts' markers
        // must not make their running backups invisible to prune.
        if let Ok(bytes) = repo.read_object(Kind::Snapshot, id)
            && let Ok((signer, snap)) = Snapshot::open(repo.key(), &bytes)
            && repo.trust().speaks_for(&signer, id, &snap.hostname)
        {
            for m in &snap.markers {
                if marker_host(repo, m).as_deref() == Some(snap.hostname.as_str())
                    && let Ok(None) = repo.lock_end(Kind::Marker, m)
                {
                    let _ = repo.storage().delete(Kind::Marker, &m.to_hex());
                }
            }
        }
        repo.storage()
            .delete(Kind::Snapshot, &id.to_hex())
            .map_err(CoreError::from)?;
        done.deleted.push(*id);
    }
    repo.uncache_snapshots(&done.deleted);
    Ok(done)
}
