//! The deletions of a run: garbage, superseded objects, approved packs, resolved markers —
//! never of an object the storage still holds under a lock.

use crate::prune::read::open_marker;
use crate::prune::report::{GarbageObject, PackAction, PruneStats};
use crate::prune::tables::{Resolved, Work};
use crate::repo::{Repository, rfc3339_utc};
use tresor_format::ObjectId;
use tresor_storage::{ErrorKind, Kind};

/// Step 0: the garbage objects of the plan (no reader uses them).
pub(super) fn garbage(repo: &Repository, garbage: &[GarbageObject], stats: &mut PruneStats) {
    for g in garbage {
        if delete_object(repo, g.kind, &g.id, stats) {
            stats.garbage_deleted += 1;
        }
    }
}

/// Step 6: the superseded states, then the index objects the consolidated one supersedes and
/// those superseded already. Returns whether every one of those index objects is gone.
pub(super) fn superseded(
    repo: &Repository,
    w: &Work,
    supersedes: &[ObjectId],
    stats: &mut PruneStats,
) -> bool {
    for old in &w.superseded_states {
        if delete_object(repo, Kind::PruneRecord, old, stats) {
            stats.records_deleted += 1;
        }
    }
    let mut gone_index = true;
    for id in supersedes.iter().chain(w.leftovers.iter()) {
        if delete_object(repo, Kind::Index, id, stats) {
            stats.index_deleted += 1;
        } else {
            gone_index = false;
        }
    }
    gone_index
}

/// Step 7: the packs approved for deletion (those under an object lock stay in the `deleting`
/// list). Returns whether all of them are gone — `none_locked`: no pack was held back by a
/// lock when the plan was made.
pub(super) fn approved_packs(
    repo: &Repository,
    w: &Work,
    none_locked: bool,
    stats: &mut PruneStats,
) -> bool {
    let mut all_deleted = none_locked;
    for p in &w.packs {
        if p.action == PackAction::Delete {
            if delete_object(repo, Kind::Pack, &p.id, stats) {
                stats.packs_deleted += 1;
                stats.bytes_freed += p.size.unwrap_or(0);
            } else {
                all_deleted = false;
            }
        }
    }
    all_deleted
}

/// Delete the backup start markers that snapshots of their own host list (their backups have
/// ended), also when a run has nothing else to do.
pub(super) fn resolved_markers(repo: &Repository, resolved: &Resolved, stats: &mut PruneStats) {
    if resolved.is_empty() {
        return;
    }
    if let Ok(list) = repo.storage().list(Kind::Marker) {
        for (name, _) in list {
            if let Ok(id) = name.parse::<ObjectId>()
                && let Some(host) = resolved.get(&id)
                && open_marker(repo, &id).is_ok_and(|(_, h)| h == *host)
                && delete_object(repo, Kind::Marker, &id, stats)
            {
                stats.markers_deleted += 1;
            }
        }
    }
}

/// Delete an object unless the storage holds it under a lock (then it is reported in
/// [`PruneStats::locked`] and not attempted). Returns whether it is gone.
pub(super) fn delete_object(
    repo: &Repository,
    kind: Kind,
    id: &ObjectId,
    stats: &mut PruneStats,
) -> bool {
    if let Ok(Some(until)) = repo.lock_end(kind, id) {
        stats
            .locked
            .push(format!("{kind} {id}: locked until {}", rfc3339_utc(until)));
        return false;
    }
    match repo.storage().delete(kind, &id.to_hex()) {
        Ok(()) => true,
        Err(e) if e.kind == ErrorKind::NotFound => true,
        Err(e) if e.kind == ErrorKind::PermissionDenied => {
            stats
                .undeletable
                .push(format!("{kind} {id}: {}", e.message));
            false
        }
        Err(e) => {
            stats
                .warnings
                .push(format!("could not delete {kind} {id}: {e}"));
            false
        }
    }
}
