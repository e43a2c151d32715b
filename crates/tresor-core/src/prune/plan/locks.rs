//! Step 7: deletions the storage's object lock holds back (S3 Object Lock retention or legal
//! hold). They are planned around: never attempted, kept for a later run (see
//! [`Repository::lock_end`] on clocks).

use crate::prune::report::{PackAction, PlannedPack};
use crate::prune::tables::PackRec;
use crate::repo::index::IdSet;
use crate::repo::{Repository, rfc3339_utc};
use tresor_format::ObjectId;
use tresor_storage::{ErrorKind, Kind};

/// The packs to delete now and those the storage still holds.
pub(super) struct Held {
    /// Packs deleted by this run.
    pub delete: Vec<PlannedPack>,
    /// Packs due for deletion but locked, with the end of the lock (RFC 3339, UTC; empty when
    /// the storage could not say).
    pub locked: Vec<(PlannedPack, String)>,
    /// Stored bytes of `delete`.
    pub bytes_freed: u64,
}

/// Ask the storage about every pack decided for deletion; a locked one (or one it cannot say
/// about) waits instead.
pub(super) fn hold(repo: &Repository, packs: &mut [PackRec], warnings: &mut Vec<String>) -> Held {
    let mut held = Held {
        delete: Vec::new(),
        locked: Vec::new(),
        bytes_freed: 0,
    };
    for d in packs.iter().filter(|p| p.action == PackAction::Delete) {
        let d = d.planned();
        match repo.lock_end(Kind::Pack, &d.id) {
            Ok(Some(until)) => held.locked.push((d, rfc3339_utc(until))),
            Ok(_) => held.delete.push(d),
            Err(e) if e.kind == ErrorKind::NotFound => held.delete.push(d),
            Err(e) => {
                warnings.push(format!(
                    "pack {}: could not ask the storage whether it is locked ({e}); kept for a later run",
                    d.id
                ));
                held.locked.push((d, String::new()));
            }
        }
    }
    held.bytes_freed = held.delete.iter().map(|d| d.size).sum();
    if !held.locked.is_empty() {
        let ids: IdSet<ObjectId> = held.locked.iter().map(|(d, _)| d.id).collect();
        for p in packs.iter_mut() {
            if p.action == PackAction::Delete && ids.contains(&p.id) {
                p.action = PackAction::Wait;
            }
        }
    }
    held
}
